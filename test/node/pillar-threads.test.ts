import assert from 'node:assert/strict';
import {
  type Action,
  applyPersist,
  makeConfig,
  type PillarSnapshot,
  Replica,
} from '../../consensus/index.js';
import { PillarWorkerError, ThreadedReplica } from '../../node/pillar-threads.js';
import { TEST_TRINX_KEY } from '../sim/cluster.js';
import { PillarCluster, type ReplicaKind } from './pillar-cluster.js';

const batchOf = (i: number): Uint8Array => {
  const b = new Uint8Array(64 + (i % 7));
  b.fill(i & 0xff);
  b[0] = i >> 8;
  return b;
};

interface Outcome {
  trace: string[][];
  delivered: PillarCluster['delivered'];
  refusals: string[];
  leaderAfter: number;
}

/**
 * One scripted run: batches at leader 0, then leader 0 cut off and a view change by the
 * other two, batches at the new leader, then 0 back. Every event is answered before the next.
 */
async function scenario(pillars: number, kind: ReplicaKind): Promise<Outcome> {
  const config = makeConfig({
    n: 3,
    pillars,
    window: 8 * pillars,
    checkpointInterval: 4,
    pendingBatchesMax: 4,
  });
  const c = await PillarCluster.create(config, kind);
  const refusals: string[] = [];
  let now = 0;
  const advance = (ms: number): number => {
    now += ms;
    return now;
  };
  let next = 0;
  const proposeAt = async (v: number, count: number): Promise<void> => {
    for (let k = 0; k < count; k++) {
      const out = await c.stepNow(v, { type: 'propose', batch: batchOf(next++) });
      for (const a of out) if (a.type === 'proposal-refused') refusals.push(`${v}:${a.reason}`);
    }
  };
  try {
    for (let round = 0; round < 4; round++) {
      await proposeAt(0, 6);
      await c.run(true);
      await c.tick(advance(10));
    }
    c.isolated.add(0);
    await proposeAt(0, 2);
    c.push(1, { type: 'request-timeout' });
    c.push(2, { type: 'request-timeout' });
    await c.run(true);
    for (let i = 0; i < 10 && !c.leads(1); i++) await c.tick(advance(300));
    const leaderAfter = c.leads(1) ? 1 : -1;
    await proposeAt(1, 10);
    await c.run(true);
    await c.tick(advance(10));
    c.isolated.delete(0);
    for (let i = 0; i < 3; i++) await c.tick(advance(150));
    return { trace: c.trace, delivered: c.delivered, refusals, leaderAfter };
  } finally {
    await c.close();
  }
}

describe('pillars in worker threads (ThreadedReplica)', function () {
  this.timeout(60_000);

  for (const pillars of [2, 4]) {
    it(`with P=${pillars} produces exactly the in-thread replica's actions for the same events, view change included`, async () => {
      const ref = await scenario(pillars, 'in-thread');
      const thr = await scenario(pillars, 'threaded');
      // The reference run must really order, change view and order again, or equality proves little.
      assert.equal(ref.leaderAfter, 1, 'the view change completed');
      for (const v of [1, 2]) assert.ok(ref.delivered[v]!.length >= 30, `validator ${v} delivered batches`);
      assert.ok(
        ref.delivered[1]!.some((d) => d.view === 1n),
        'batches were committed in the new view',
      );
      assert.deepEqual(thr.delivered, ref.delivered);
      assert.deepEqual(thr.refusals, ref.refusals);
      for (let v = 0; v < 3; v++) {
        // Whole action lists: persists, sends and broadcasts of every pillar, in order.
        assert.equal(thr.trace[v]!.length, ref.trace[v]!.length, `validator ${v} action count`);
        assert.deepEqual(thr.trace[v], ref.trace[v], `validator ${v} actions`);
      }
      const persists = ref.trace[1]!.filter((s) => s.includes('"type":"persist"')).length;
      assert.ok(persists > 10, 'the trace holds persists');
    });
  }

  it("reports each proposal a pillar took or refused, with the caller's own batch", async () => {
    const config = makeConfig({ n: 3, pillars: 2, window: 16, checkpointInterval: 4, batchBytesMax: 1024 });
    const t = await ThreadedReplica.start({ config, validator: 0, trinxKey: TEST_TRINX_KEY });
    try {
      const settled: { batch: Uint8Array; refused: string | null }[] = [];
      const later: Action[] = [];
      t.onProposalSettled((batch, refused) => settled.push({ batch, refused }));
      t.onActions((a) => later.push(...a));
      const small = new Uint8Array(100).fill(1);
      const big = new Uint8Array(2000).fill(2);
      assert.deepEqual(t.step({ type: 'propose', batch: small }), []);
      assert.deepEqual(t.step({ type: 'propose', batch: big }), []);
      await t.idle();
      assert.equal(settled.length, 2);
      assert.equal(settled[0]!.batch, small);
      assert.equal(settled[0]!.refused, null);
      assert.equal(settled[1]!.batch, big);
      assert.equal(settled[1]!.refused, 'oversized');
      // The accepted proposal went out as a prepare, after its persist.
      const kinds = later.map((a) => a.type);
      assert.ok(kinds.indexOf('persist') >= 0 && kinds.indexOf('persist') < kinds.indexOf('broadcast'));
      assert.equal(t.threads, 2);
      assert.equal(t.pillars[0]!.isLeading(), true);
      assert.equal(t.pillars[1]!.currentView, 0n);
    } finally {
      await t.close();
    }
  });

  it('refuses a proposal at once when no pillar leads (coordinator refusal, returned by step)', async () => {
    const config = makeConfig({ n: 3, pillars: 2, window: 16, checkpointInterval: 4 });
    const t = await ThreadedReplica.start({ config, validator: 1, trinxKey: TEST_TRINX_KEY });
    try {
      const out = t.step({ type: 'propose', batch: new Uint8Array(8) });
      assert.deepEqual(out, [{ type: 'proposal-refused', reason: 'not-leader' }]);
      assert.equal(t.inflight, 0);
      assert.equal(
        t.pillars.some((p) => p.isLeading()),
        false,
      );
    } finally {
      await t.close();
    }
  });

  it("keeps the caller's TrInX key intact and starts from persisted snapshots like Replica", async () => {
    const config = makeConfig({ n: 3, pillars: 2, window: 16, checkpointInterval: 4 });
    const key = TEST_TRINX_KEY.slice();
    // Build a snapshot by running a leader in-thread, then restart it threaded.
    const r = new Replica({ config, validator: 0, trinxKey: key });
    const deltas = r
      .step({ type: 'propose', batch: new Uint8Array(10) })
      .concat(r.step({ type: 'propose', batch: new Uint8Array(11) }))
      .filter((a): a is Extract<Action, { type: 'persist' }> => a.type === 'persist');
    const snapshots = [0, 1].map((p) => {
      let s: PillarSnapshot | null = null;
      for (const d of deltas) if (d.delta.pillar === p) s = applyPersist(s, d.delta);
      assert.ok(s !== null, `pillar ${p} persisted`);
      return s;
    });
    const t = await ThreadedReplica.start({ config, validator: 0, trinxKey: key, snapshots });
    try {
      assert.deepEqual(key, TEST_TRINX_KEY);
      const later: Action[] = [];
      t.onActions((a) => later.push(...a));
      t.step({ type: 'propose', batch: new Uint8Array(12) });
      await t.idle();
      // Orders 0 and 1 were taken before the restart; the next proposal gets order 2.
      const persist = later.find((a) => a.type === 'persist');
      assert.ok(persist && persist.type === 'persist');
      assert.deepEqual(
        persist.delta.putEntries.map((e) => e.prepare.order),
        [2n],
      );
    } finally {
      await t.close();
    }
  });

  it('bounds the events waiting for workers: drops input and ticks, refuses proposals, coalesces ticks', async () => {
    const config = makeConfig({ n: 3, pillars: 2, window: 16, checkpointInterval: 4 });
    const t = await ThreadedReplica.start({
      config,
      validator: 0,
      trinxKey: TEST_TRINX_KEY,
      inflightEventsMax: 2,
    });
    try {
      assert.deepEqual(t.step({ type: 'tick', nowMs: 1 }), []);
      assert.equal(t.inflight, 2, 'a tick goes to every pillar');
      // The previous tick is still in the workers: this one is skipped.
      t.step({ type: 'tick', nowMs: 2 });
      assert.equal(t.dropped, 1);
      assert.deepEqual(t.step({ type: 'propose', batch: new Uint8Array(4) }), [
        { type: 'proposal-refused', reason: 'queue-full' },
      ]);
      assert.deepEqual(t.step({ type: 'receive', from: 1, bytes: new Uint8Array(40) }), []);
      assert.equal(t.dropped, 2);
      assert.equal(t.inflight, 2);
      await t.idle();
      assert.equal(t.inflight, 0);
      t.step({ type: 'propose', batch: new Uint8Array(4) });
      assert.equal(t.inflight, 1, 'taken again once the workers caught up');
      await t.idle();
    } finally {
      await t.close();
    }
  });

  it('refuses to start with an unusable TrInX key, naming the pillar but never the key', async () => {
    const config = makeConfig({ n: 3, pillars: 2, window: 16, checkpointInterval: 4 });
    const key = new Uint8Array([0xab, 0xcd, 0xef, 0x12, 0x34, 0x56, 0x78, 0x9a]);
    await assert.rejects(ThreadedReplica.start({ config, validator: 0, trinxKey: key }), (e: unknown) => {
      assert.ok(e instanceof PillarWorkerError);
      assert.match(e.message, /at least 16 bytes/);
      assert.doesNotMatch(e.message, /abcdef|171, 205/i);
      return true;
    });
  });

  it('fails loudly when a worker dies: error listeners fire, idle() rejects, step() throws', async () => {
    const config = makeConfig({ n: 3, pillars: 2, window: 16, checkpointInterval: 4 });
    const t = await ThreadedReplica.start({ config, validator: 0, trinxKey: TEST_TRINX_KEY });
    try {
      const errors: PillarWorkerError[] = [];
      const failed = new Promise<void>((resolve) =>
        t.onError((e) => {
          errors.push(e);
          resolve();
        }),
      );
      await t.threadHandles[1]!.terminate();
      await failed;
      assert.equal(errors.length, 1);
      assert.equal(errors[0]!.pillar, 1);
      assert.match(errors[0]!.message, /pillar 1 worker: exited/);
      await assert.rejects(t.idle(), PillarWorkerError);
      assert.throws(() => t.step({ type: 'tick', nowMs: 1 }), PillarWorkerError);
    } finally {
      await t.close();
    }
  });
});
