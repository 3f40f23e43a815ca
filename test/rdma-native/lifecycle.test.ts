// Every native resource is released by close(): 1,000 open/close cycles of a transport
// (fabric, domain, AV, CQ, endpoint, posted receive buffers, progress thread) each with
// a connection (AV entry and a ring memory region on both sides) leave the process's
// file descriptors and memory where they were.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { RdmaTransport } from '../../rdma-native/transport.js';
import { requireRdma } from './require-rdma.js';

const fdCount = (): number => readdirSync('/proc/self/fd').length;
const small = { ringBytes: 64 * 1024, recvSlots: 8, recvSlotBytes: 4096, msgCredits: 4 };

async function cycle(server: RdmaTransport, endpoint: string, i: number): Promise<void> {
  const t = new RdmaTransport({
    provider: 'tcp;ofi_rxm',
    dataPath: i % 2 === 0 ? 'rma' : 'msg',
    completion: i % 4 < 2 ? 'thread' : 'busy-poll',
    limits: small,
  });
  const conn = await t.connect(endpoint);
  await new Promise<void>((resolve) => {
    conn.onMessages(() => resolve());
    conn.send(Buffer.from('x'));
  });
  await t.close();
  assert.equal(t.nativeStats(), undefined, 'close() released the fabric');
  void server;
}

describe('rdma-native resource lifecycle', function () {
  this.timeout(120_000);

  before(function () {
    requireRdma(this);
  });

  it('leaks no descriptors or memory across 1,000 open/connect/close cycles', async () => {
    const server = new RdmaTransport({ provider: 'tcp;ofi_rxm', completion: 'thread', limits: small });
    server.onConnection((c) => c.onMessages((b) => c.send(b[0]!)));
    const endpoint = await server.listen('rdma+tcp;ofi_rxm://127.0.0.1:0');
    try {
      for (let i = 0; i < 50; i++) await cycle(server, endpoint, i);
      global.gc?.();
      const fdsBefore = fdCount();
      const rssBefore = process.memoryUsage().rss;
      for (let i = 0; i < 1_000; i++) await cycle(server, endpoint, i);
      // The server saw every BYE: its connections, AV entries and rings are gone too.
      const deadline = Date.now() + 5_000;
      while (server.connectionCount > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      global.gc?.();
      const fdsAfter = fdCount();
      const rssGrowthBytes = process.memoryUsage().rss - rssBefore;
      assert.equal(server.connectionCount, 0);
      assert.equal(server.nativeStats()?.openRings, 0, 'the server deregistered every ring');
      assert.ok(fdsAfter - fdsBefore <= 4, `file descriptors ${fdsBefore} -> ${fdsAfter}`);
      // 1,000 leaked rings alone would be 64 MiB, leaked fabrics far more.
      assert.ok(rssGrowthBytes < 48 * 1024 * 1024, `RSS grew ${(rssGrowthBytes / 1048576).toFixed(1)} MiB`);
    } finally {
      await server.close();
    }
  });
});
