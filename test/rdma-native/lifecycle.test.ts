// Every native resource is released by close(). A connection owns an AV entry and a ring
// memory region on each side; a transport owns the fabric, domain, AV, CQ, endpoint,
// posted receive buffers and the progress thread. Open/close cycles of both must leave
// the process's file descriptors, memory and native counts where they were.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { RdmaTransport } from '../../rdma-native/transport.js';
import { requireRdma } from './require-rdma.js';

const fdCount = (): number => readdirSync('/proc/self/fd').length;
const small = { ringBytes: 64 * 1024, recvSlots: 8, recvSlotBytes: 4096, msgCredits: 4 };
const ENDPOINT = 'rdma+tcp;ofi_rxm://127.0.0.1:0';

async function echo(conn: import('../../node/transport/types.js').TransportConnection): Promise<void> {
  await new Promise<void>((resolve) => {
    conn.onMessages(() => resolve());
    conn.send(Buffer.from('x'));
  });
}

async function settle(t: RdmaTransport): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (t.connectionCount > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
}

function measure(): { fds: number; rss: number } {
  global.gc?.();
  return { fds: fdCount(), rss: process.memoryUsage().rss };
}

function assertNoGrowth(before: { fds: number; rss: number }, what: string, rssSlackBytes: number): void {
  const after = measure();
  assert.ok(after.fds - before.fds <= 4, `${what}: file descriptors ${before.fds} -> ${after.fds}`);
  const grown = after.rss - before.rss;
  assert.ok(grown < rssSlackBytes, `${what}: RSS grew ${(grown / 1048576).toFixed(1)} MiB`);
}

describe('rdma-native resource lifecycle', function () {
  this.timeout(120_000);

  before(function () {
    requireRdma(this);
  });

  it('releases every AV entry and ring across 1,000 connection open/close cycles', async () => {
    const server = new RdmaTransport({ provider: 'tcp;ofi_rxm', completion: 'thread', limits: small });
    const client = new RdmaTransport({ provider: 'tcp;ofi_rxm', completion: 'busy-poll', limits: small });
    server.onConnection((c) => c.onMessages((b) => c.send(b[0]!)));
    try {
      const endpoint = await server.listen(ENDPOINT);
      for (let i = 0; i < 20; i++) await (await client.connect(endpoint)).close();
      await settle(server);
      const before = measure();
      for (let i = 0; i < 1_000; i++) {
        const conn = await client.connect(endpoint);
        if (i % 10 === 0) await echo(conn);
        await conn.close();
      }
      await settle(server);
      assert.equal(server.connectionCount, 0, 'the server saw every BYE');
      assert.equal(server.nativeStats()?.openRings, 0, 'the server deregistered every ring');
      assert.equal(client.nativeStats()?.openRings, 0, 'the client deregistered every ring');
      // 1,000 leaked 64 KiB rings on each side would be 128 MiB.
      assertNoGrowth(before, 'connections', 32 * 1024 * 1024);
    } finally {
      await client.close();
      await server.close();
    }
  });

  it('releases the fabric, endpoint, progress thread and fd watcher across 1,000 transport open/close cycles', async () => {
    const server = new RdmaTransport({ provider: 'tcp;ofi_rxm', completion: 'thread', limits: small });
    server.onConnection((c) => c.onMessages((b) => c.send(b[0]!)));
    const endpoint = await server.listen(ENDPOINT);
    const cycle = async (i: number) => {
      const t = new RdmaTransport({
        provider: 'tcp;ofi_rxm',
        dataPath: i % 2 === 0 ? 'rma' : 'msg',
        // i % 6: rma and msg paths over all three completion modes (watchers closed too).
        completion: (['thread', 'event-loop', 'busy-poll'] as const)[Math.floor(i / 2) % 3]!,
        limits: small,
      });
      await echo(await t.connect(endpoint));
      await t.close();
      assert.equal(t.nativeStats(), undefined, 'close() released the fabric');
    };
    try {
      for (let i = 0; i < 10; i++) await cycle(i);
      const before = measure();
      for (let i = 0; i < 1_000; i++) await cycle(i);
      await settle(server);
      assert.equal(server.connectionCount, 0);
      assertNoGrowth(before, 'transports', 48 * 1024 * 1024);
    } finally {
      await server.close();
    }
  });
});
