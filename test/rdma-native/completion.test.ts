// The three ways completions reach JavaScript (rdma-native/transport.ts CompletionMode):
// the event loop watching the CQ's wait fd, the native progress thread, and a busy-poll
// loop that spins only while traffic flows. Two transports in this process over
// tcp;ofi_rxm (the conformance suite covers the modes against another process).
import assert from 'node:assert/strict';
import type { TransportConnection } from '../../node/transport/types.js';
import { RdmaTransport, type RdmaTransportOptions } from '../../rdma-native/transport.js';
import { requireRdma } from './require-rdma.js';

const ENDPOINT = 'rdma+tcp;ofi_rxm://127.0.0.1:0';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Sends `count` messages one at a time, each answered by the echo server. */
async function roundTrips(conn: TransportConnection, count: number, size = 64): Promise<void> {
  let wake: (() => void) | undefined;
  conn.onMessages(() => wake?.());
  for (let i = 0; i < count; i++) {
    const reply = new Promise<void>((r) => {
      wake = r;
    });
    conn.send(Buffer.alloc(size, i & 0xff));
    await reply;
  }
}

async function withPair(
  client: RdmaTransportOptions,
  body: (c: RdmaTransport, conn: TransportConnection) => Promise<void>,
): Promise<void> {
  const server = new RdmaTransport({ provider: 'tcp;ofi_rxm', completion: 'event-loop' });
  const t = new RdmaTransport({ provider: 'tcp;ofi_rxm', ...client });
  server.onConnection((c) => c.onMessages((b) => c.send(b[0]!)));
  try {
    const conn = await t.connect(await server.listen(ENDPOINT));
    await body(t, conn);
  } finally {
    await t.close();
    await server.close();
  }
}

describe('rdma-native completion modes', function () {
  this.timeout(60_000);

  before(function () {
    requireRdma(this);
  });

  it('drains completions on the event loop, with no progress thread, in event-loop mode', async () => {
    await withPair({ completion: 'event-loop' }, async (t, conn) => {
      await roundTrips(conn, 200);
      const s = t.nativeStats()!;
      assert.equal(t.completion, 'event-loop');
      assert.equal(s.watching, true);
      assert.equal(s.progressThread, false);
      assert.ok(s.fdWakes >= 1, 'the wait fd woke the loop');
      // Small messages are injects: no completion is left to reap and none reached JS.
      assert.equal(s.outstandingOps, 0);
      assert.ok(s.completedOps >= 200, `completedOps ${s.completedOps}`);
      assert.ok(t.stats.events <= 200 + 10, `events reaching JS: ${t.stats.events}`);
    });
  });

  it('carries messages larger than the inject size in event-loop mode', async () => {
    await withPair({ completion: 'event-loop' }, async (t, conn) => {
      await roundTrips(conn, 20, 256 * 1024);
      assert.equal(t.nativeStats()?.outstandingOps, 0);
    });
  });

  it('falls back to the progress thread where the provider has no wait fd (shm)', async () => {
    const t = new RdmaTransport({ provider: 'shm', completion: 'event-loop' });
    try {
      await t.listen('rdma+shm://');
      assert.equal(t.completion, 'thread');
      assert.equal(t.nativeStats()?.progressThread, true);
    } finally {
      await t.close();
    }
  });

  it('stops busy-polling when idle and wakes for the next message', async () => {
    await withPair({ completion: 'busy-poll', spinUs: 1_000 }, async (t, conn) => {
      await roundTrips(conn, 50);
      const deadline = Date.now() + 5_000;
      while (t.polling && Date.now() < deadline) await sleep(5);
      assert.equal(t.polling, false, 'the poll loop parked after spinUs without traffic');
      const parks = t.stats.pollParks;
      assert.ok(parks >= 1);
      await sleep(50);
      assert.equal(t.stats.pollParks, parks, 'a parked loop stays parked while idle');
      await roundTrips(conn, 50);
    });
  });

  it('refuses a spin time outside 0..1 s', () => {
    assert.throws(() => new RdmaTransport({ completion: 'busy-poll', spinUs: -1 }), RangeError);
    assert.throws(() => new RdmaTransport({ completion: 'thread', spinUs: 1_000_001 }), RangeError);
  });
});
