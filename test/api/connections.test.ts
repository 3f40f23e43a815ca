// The API's connection bound (ApiLimits.connectionsMax, node config api.connectionsMax):
// connections above it are closed on arrival, and a slot freed is usable again.
import assert from 'node:assert/strict';
import { type AddressInfo, connect, type Socket } from 'node:net';
import { createApiServer } from '../../api/server.js';
import { startSingleNode } from './fixtures/single-node.js';

/** Opens a socket and sends one keep-alive request; resolves to the status line, or 'closed'. */
function request(port: number): Promise<{ socket: Socket; status: string }> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let buf = '';
    let done = false;
    const finish = (status: string) => {
      if (done) return;
      done = true;
      resolve({ socket, status });
    };
    socket.on('connect', () =>
      socket.write('GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n'),
    );
    socket.on('data', (d) => {
      buf += d.toString('latin1');
      const line = buf.split('\r\n')[0];
      if (line !== undefined && buf.includes('\r\n')) finish(line);
    });
    socket.on('close', () => finish('closed'));
    socket.on('error', () => finish('closed'));
  });
}

describe('API connection limit', () => {
  it('closes connections above connectionsMax and accepts again once one is freed', async () => {
    const node = await startSingleNode();
    const app = await createApiServer({ node: node.port, limits: { connectionsMax: 3 }, rateLimit: false });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as AddressInfo;
    const held: Socket[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const r = await request(port);
        assert.match(r.status, /^HTTP\/1\.1 200/, `connection ${i} is served`);
        held.push(r.socket);
      }
      const over = await request(port);
      assert.equal(over.status, 'closed', 'the fourth connection is closed on arrival');
      held.shift()?.destroy();
      await new Promise((r) => setTimeout(r, 100));
      const again = await request(port);
      assert.match(again.status, /^HTTP\/1\.1 200/, 'a freed slot is usable again');
      held.push(again.socket);
    } finally {
      for (const s of held) s.destroy();
      await app.close();
      await node.close();
    }
  });
});
