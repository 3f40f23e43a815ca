// The core's half of sending ahead of the write (docs/consensus.md, "Sending ahead of the
// write"): which persists it marks `ahead`, what a restart from a `sentAhead` header does to
// the counters and the view, and the view-request an amnesic replica rejoins with.
import assert from 'node:assert/strict';
import {
  type Action,
  applyPersist,
  Counter,
  compareCounter,
  decodeMessage,
  encodeMessage,
  makeConfig,
  type PersistDelta,
  type PillarSnapshot,
  Replica,
} from '../../consensus/index.js';
import { LocalCluster, TEST_TRINX_KEY } from '../sim/cluster.js';

const config = makeConfig({
  n: 3,
  pillars: 1,
  window: 16,
  checkpointInterval: 4,
  retransmitMs: 10,
  viewTimeoutMs: 100,
  viewTimeoutMsMax: 800,
});
const batch = (i: number): Uint8Array => new TextEncoder().encode(`b${i}`);
type Persist = Extract<Action, { type: 'persist' }>;
const persistsOf = (c: LocalCluster, v: number): Persist[] =>
  c.trace.filter((t) => t.v === v && t.a.type === 'persist').map((t) => t.a as Persist);
const typeOf = (bytes: Uint8Array): string | null => {
  const m = decodeMessage(bytes, config);
  return m.ok ? m.value.type : null;
};

/** Leader 0 proposes three batches, one at a time, each committed before the next. */
function threeProposals(sendAhead: boolean): LocalCluster {
  const c = new LocalCluster(config, { sendAhead });
  c.tracing = true;
  for (let i = 0; i < 3; i++) {
    c.step(0, { type: 'propose', batch: batch(i) });
    c.drain();
  }
  return c;
}

/** Replica 0's disk after the cluster's run: every persist delta it emitted, folded. */
function diskOf(c: LocalCluster, v: number): PillarSnapshot {
  let snap: PillarSnapshot | null = null;
  for (const p of persistsOf(c, v)) snap = applyPersist(snap, p.delta as PersistDelta);
  assert.ok(snap !== null);
  return snap;
}

describe('consensus: sending ahead of the write', () => {
  it("marks a leader's persist of its own new prepare ahead, from the second on, and nothing else", () => {
    const c = threeProposals(true);
    const leader = persistsOf(c, 0);
    assert.equal(leader.length, 3);
    // The first after start: no header it could compare with (and none durable with the flag).
    assert.deepEqual(
      leader.map((p) => [p.ahead === true, p.delta.sentAhead]),
      [
        [false, false],
        [true, true],
        [true, true],
      ],
    );
    for (const v of [1, 2]) for (const p of persistsOf(c, v)) assert.notEqual(p.ahead, true, `follower ${v}`);
    assert.ok(threeProposals(false).trace.every((t) => t.a.type !== 'persist' || t.a.ahead !== true));
  });

  it('restarts from a sentAhead header past the window: ORDER and TOP moved, the view left, no VIEW-CHANGE', () => {
    const c = threeProposals(true);
    const snap = diskOf(c, 0);
    assert.equal(snap.sentAhead, true);
    const r = new Replica({
      config,
      validator: 0,
      trinxKey: TEST_TRINX_KEY,
      snapshots: [snap],
      executedNext: 3n,
    });
    const trinx = r.trinxes[0]!;
    // Nothing below the window's end (low watermark 0 + 16) can be certified again in view 0.
    assert.ok(compareCounter(trinx.current(Counter.ORDER), { view: 0n, order: 17n }) >= 0);
    assert.deepEqual(trinx.current(Counter.TOP), { view: 0n, order: 16n });
    const out = r.step({ type: 'tick', nowMs: 50 });
    const sent = out.flatMap((a) => (a.type === 'broadcast' || a.type === 'send' ? [typeOf(a.bytes)] : []));
    assert.ok(!sent.includes('view-change'), `sent ${sent.join(', ')}`);
    assert.ok(sent.includes('view-request'), `sent ${sent.join(', ')}`);
    assert.equal(r.pillars[0]!.inViewChange, true, 'it left view 0');
    assert.equal(r.step({ type: 'propose', batch: batch(9) })[0]?.type, 'proposal-refused');
    // Its headers keep the flag while the gap is open: a second restart forgets the same way.
    const moved = r.step({ type: 'sync-view', view: 2n });
    const p = moved.find((a): a is Persist => a.type === 'persist');
    assert.equal(p?.delta.sentAhead, true);
  });

  it('answers view-requests with the NEW-VIEW, at most once per retransmit interval per peer', () => {
    const c = new LocalCluster(config);
    c.tracing = true;
    c.step(0, { type: 'propose', batch: batch(0) });
    c.drain();
    c.isolated.add(0);
    c.step(1, { type: 'request-timeout' });
    c.step(2, { type: 'request-timeout' });
    c.drain();
    // (Isolated replica 0 still believes it leads view 0.)
    assert.ok(c.replicas[1]!.pillars[0]!.isLeading() && c.replicas[1]!.pillars[0]!.currentView === 1n);
    const request = encodeMessage({ type: 'view-request', pillar: 0, view: 1n });
    const newViewsTo0 = (out: Action[]): number =>
      out.filter((a) => a.type === 'send' && a.to === 0 && typeOf(a.bytes) === 'new-view').length;
    const ask = (nowMs: number): number => {
      c.step(1, { type: 'tick', nowMs });
      return [0, 1, 2].reduce(
        (n) => n + newViewsTo0(c.replicas[1]!.step({ type: 'receive', from: 0, bytes: request })),
        0,
      );
    };
    assert.equal(ask(1000), 1, 'three requests at once: one answer');
    assert.equal(ask(1005), 0, 'inside the retransmit interval: none');
    assert.equal(ask(1011), 1, 'after it: one again');
    // A follower of view 1 (no NEW-VIEW of its own to resend) and a request for a later view
    // are not answered.
    assert.equal(newViewsTo0(c.replicas[2]!.step({ type: 'receive', from: 0, bytes: request })), 0);
    const later = encodeMessage({ type: 'view-request', pillar: 0, view: 2n });
    c.step(1, { type: 'tick', nowMs: 2000 });
    assert.equal(newViewsTo0(c.replicas[1]!.step({ type: 'receive', from: 0, bytes: later })), 0);
  });
});
