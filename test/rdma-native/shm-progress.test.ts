// What an idle shm endpoint costs and how fast it still answers. shm's CQ wait spins
// (FI_WAIT_YIELD), so the progress thread naps instead, and sleeps long once idle because
// peers ring its doorbell (rdma-native/src/doorbell.h) after posting to it. Two
// transports in this process, progress-thread mode (what the node runs over shm); the
// fallback without a doorbell through the raw addon.
import assert from 'node:assert/strict';
import type { TransportConnection } from '../../node/transport/types.js';
import { EVENT_RECV, type NativeFabricStats, nativeAddon } from '../../rdma-native/native.js';
import { RdmaTransport } from '../../rdma-native/transport.js';
import { requireRdma } from './require-rdma.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const small = { ringBytes: 64 * 1024, recvSlots: 8, recvSlotBytes: 4096, msgCredits: 4 };
/** Idle wake-ups allowed per second: a 20 ms doorbell nap is 50, a 10 ms nap (no doorbell) 100; a 1 ms nap was 1,000. */
const IDLE_WAKES_PER_S_MAX = 150;

interface Pair {
  server: RdmaTransport;
  client: RdmaTransport;
  /** The client's connection to the server. */
  conn: TransportConnection;
  /** Resolves with the next message the server receives. */
  nextAtServer(): Promise<Buffer>;
}

async function withShmPair(body: (p: Pair) => Promise<void>): Promise<void> {
  // Heartbeats far apart, so "idle" means no traffic at all while the test measures.
  const opts = { provider: 'shm', completion: 'thread', limits: small, heartbeatMs: 60_000 } as const;
  const server = new RdmaTransport({ ...opts, peerTimeoutMs: 120_000 });
  const client = new RdmaTransport({ ...opts, peerTimeoutMs: 120_000 });
  let waiter: ((b: Buffer) => void) | undefined;
  server.onConnection((c) =>
    c.onMessages((batch) => {
      for (const b of batch) waiter?.(Buffer.from(b));
    }),
  );
  try {
    const conn = await client.connect(await server.listen('rdma+shm://'));
    const nextAtServer = () =>
      new Promise<Buffer>((resolve) => {
        waiter = resolve;
      });
    await body({ server, client, conn, nextAtServer });
  } finally {
    // In-process shm peers share mappings, and a send to one already closed crashes
    // inside libfabric: the client goes first, the server once it saw the BYE.
    await client.close();
    const deadline = Date.now() + 5_000;
    while (server.connectionCount > 0 && Date.now() < deadline) await sleep(5);
    await server.close();
  }
}

const stats = (t: RdmaTransport): NativeFabricStats => {
  const s = t.nativeStats();
  assert.ok(s, 'the transport has a fabric');
  return s;
};

describe('rdma-native shm progress thread', function () {
  this.timeout(30_000);

  before(function () {
    requireRdma(this);
  });

  it('naps with a doorbell instead of spinning, and wakes rarely while idle', async () => {
    await withShmPair(async ({ server, conn, nextAtServer }) => {
      const got = nextAtServer();
      conn.send(Buffer.from('hello'));
      assert.equal((await got).toString(), 'hello');
      assert.equal(server.completion, 'thread');
      await sleep(200); // past the post-traffic ramp
      const a = stats(server);
      assert.equal(a.progressThread, true);
      const t0 = performance.now();
      await sleep(1_000);
      const b = stats(server);
      const seconds = (performance.now() - t0) / 1000;
      const naps = b.progressNaps - a.progressNaps;
      const wakesPerS = (b.progressWakes - a.progressWakes) / seconds;
      // A thread blocked in shm's fi_cq_sread would spin there and take no naps at all.
      assert.ok(naps >= 10, `the idle progress thread naps (${naps} naps in ${seconds.toFixed(2)} s)`);
      assert.ok(
        wakesPerS <= IDLE_WAKES_PER_S_MAX,
        `an idle progress thread woke ${wakesPerS.toFixed(0)} times/s (max ${IDLE_WAKES_PER_S_MAX})`,
      );
      assert.equal(b.doorbell, true, 'a shm endpoint binds a doorbell');
    });
  });

  it('picks up a message sent after a second of idleness, woken by the doorbell', async () => {
    await withShmPair(async ({ server, client, conn, nextAtServer }) => {
      let got = nextAtServer();
      conn.send(Buffer.from('first'));
      await got;
      await sleep(1_000);
      const rings = stats(client).ringsSent;
      const bellWakes = stats(server).bellWakes;
      got = nextAtServer();
      conn.send(Buffer.alloc(64, 7));
      assert.deepEqual(await got, Buffer.alloc(64, 7));
      assert.ok(stats(client).ringsSent > rings, 'the sender rang the receiver');
      assert.ok(stats(server).bellWakes > bellWakes, "the ring woke the receiver's progress thread");
    });
  });

  it('carries a message larger than the inject size after idleness (a send in flight)', async () => {
    await withShmPair(async ({ client, conn, nextAtServer }) => {
      let got = nextAtServer();
      conn.send(Buffer.from('first'));
      await got;
      await sleep(500);
      const big = Buffer.alloc(48 * 1024, 9);
      got = nextAtServer();
      conn.send(big);
      assert.deepEqual(await got, big);
      const deadline = Date.now() + 5_000;
      while (stats(client).outstandingOps > 0 && Date.now() < deadline) await sleep(5);
      assert.equal(stats(client).outstandingOps, 0, 'the send completed on the napping sender');
    });
  });

  it('still picks up messages where the receiver has no doorbell, and wakes rarely while idle', async () => {
    // The raw addon: a receiver without a bell (as in another network namespace, where a
    // sender cannot reach it) and a sender whose rings go nowhere.
    const addon = nativeAddon();
    const open = (name: string, doorbell: boolean) =>
      new addon.Fabric({
        provider: 'shm',
        node: `hyb-test-${process.pid}-${name}`,
        waitable: true,
        doorbell,
      });
    const receiver = open('rx', false);
    const sender = open('tx', true);
    let arrived: ((b: Buffer) => void) | undefined;
    receiver.start((events) => {
      for (const e of events) if (e.kind === EVENT_RECV && e.data) arrived?.(e.data);
    });
    const next = () =>
      new Promise<Buffer>((resolve) => {
        arrived = resolve;
      });
    const send = async (dest: number, buf: Buffer) => {
      // -FI_EAGAIN until the receiver has accepted the sender (it reads its CQ for that).
      for (let i = 0; i < 5_000; i++) {
        const rc = sender.send(dest, buf, 1);
        if (rc === 0) return;
        assert.equal(rc, addon.EAGAIN, `send failed (${rc})`);
        await sleep(1);
      }
      assert.fail('the receiver never accepted the sender');
    };
    try {
      const dest = sender.avInsert(receiver.info().name);
      let got = next();
      await send(dest, Buffer.from('first'));
      assert.equal((await got).toString(), 'first');
      await sleep(300);
      const a = receiver.stats();
      assert.equal(a.doorbell, false);
      const t0 = performance.now();
      await sleep(1_000);
      const b = receiver.stats();
      const wakesPerS = (b.progressWakes - a.progressWakes) / ((performance.now() - t0) / 1000);
      assert.ok(b.progressNaps > a.progressNaps, 'the idle thread naps');
      assert.ok(wakesPerS <= IDLE_WAKES_PER_S_MAX, `woke ${wakesPerS.toFixed(0)} times/s without a doorbell`);
      got = next();
      await send(dest, Buffer.from('after idleness'));
      assert.equal((await got).toString(), 'after idleness');
      assert.equal(b.bellWakes, 0, 'nothing rang');
    } finally {
      sender.close(); // the sender first: nothing sends to a closed in-process endpoint
      receiver.close();
    }
  });
});
