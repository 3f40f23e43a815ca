import assert from 'node:assert/strict';
import { linkDigest } from '../../consensus/digest.js';
import {
  type Action,
  batchDigest,
  Counter,
  decodeMessage,
  encodeMessage,
  makeConfig,
  type NewView,
  SoftwareTrinx,
  type ViewChange,
} from '../../consensus/index.js';
import { viewChangeDigest } from '../../consensus/messages.js';
import { LocalCluster } from '../sim/cluster.js';
import { GatedTrinx } from '../sim/lower-top.js';

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
const broadcasts = (c: LocalCluster, type: string): { v: number; bytes: Uint8Array }[] =>
  c.trace
    .filter((t) => t.a.type === 'broadcast')
    .map((t) => ({ v: t.v, bytes: (t.a as Extract<Action, { type: 'broadcast' }>).bytes }))
    .filter((b) => {
      const m = decodeMessage(b.bytes, config);
      return m.ok && m.value.type === type;
    });

/** Leader 0 commits batches 0..k-1 with everyone, then goes dark; 1 and 2 time out. */
function leaderFails(k: number): LocalCluster {
  const c = new LocalCluster(config);
  for (let i = 0; i < k; i++) c.step(0, { type: 'propose', batch: batch(i) });
  c.drain();
  c.isolated.add(0);
  c.tracing = true;
  c.step(1, { type: 'request-timeout' });
  c.step(2, { type: 'request-timeout' });
  c.drain();
  return c;
}

describe('view change', () => {
  it('moves to view 1 with leader 1 after f + 1 view changes and keeps ordering there', () => {
    const c = leaderFails(3);
    for (const v of [1, 2]) assert.equal(c.replicas[v]!.pillars[0]!.currentView, 1n);
    assert.ok(c.trace.some((t) => t.a.type === 'view-changed' && t.a.view === 1n && t.a.leader === 1));
    c.step(1, { type: 'propose', batch: batch(3) });
    c.drain();
    for (const v of [1, 2]) {
      assert.deepEqual(
        c.executed[v]!.map((e) => e.batch),
        [0, 1, 2, 3].map(batch),
      );
    }
    assert.deepEqual(c.rejects, []);
  });

  it('a single view change does not move the others (one faulty replica cannot force it)', () => {
    const c = new LocalCluster(config);
    c.step(2, { type: 'request-timeout' });
    c.drain();
    assert.equal(c.replicas[0]!.pillars[0]!.currentView, 0n);
    assert.equal(c.replicas[1]!.pillars[0]!.inViewChange, false);
    assert.equal(c.replicas[2]!.pillars[0]!.inViewChange, true);
  });

  it('re-proposes a batch committed by only part of the replicas in the new view', () => {
    const c = new LocalCluster(config);
    // Replica 2 misses the prepare; 0 and 1 commit order 0 (f + 1 = 2 certified messages).
    c.isolated.add(2);
    c.step(0, { type: 'propose', batch: batch(42) });
    c.drain();
    assert.equal(c.executed[0]!.length, 1);
    assert.equal(c.executed[1]!.length, 1);
    c.isolated.clear();
    c.isolated.add(0);
    c.step(1, { type: 'request-timeout' });
    c.step(2, { type: 'request-timeout' });
    c.drain();
    assert.equal(c.replicas[2]!.pillars[0]!.currentView, 1n);
    assert.deepEqual(
      c.executed[2]!.map((e) => e.batch),
      [batch(42)],
    );
    assert.equal(c.executed[2]![0]!.view, 1n, 'delivered from the re-proposal in view 1');
    // Leader 1 only re-proposed it: it vouches for nothing in the batch.
    assert.equal(c.executed[2]![0]!.fresh, false);
    c.step(1, { type: 'propose', batch: batch(43) });
    c.drain();
    for (const v of [1, 2]) {
      const last = c.executed[v]!.at(-1)!;
      assert.deepEqual([last.batch, last.view, last.fresh], [batch(43), 1n, true]);
    }
    assert.ok(c.executed[1]!.slice(0, 1).every((e) => e.view === 0n && e.fresh));
  });

  it('sends NEW-VIEW-ACK from a replica that enters the new view without having sent a view change', () => {
    const c = new LocalCluster(config);
    c.step(0, { type: 'propose', batch: batch(0) });
    c.drain();
    // 1 and 2 change view; 0 comes back afterwards and learns the new view from NEW-VIEW.
    c.isolated.add(0);
    c.tracing = true;
    c.step(1, { type: 'request-timeout' });
    c.step(2, { type: 'request-timeout' });
    c.drain();
    const nv = broadcasts(c, 'new-view')[0]!;
    c.isolated.clear();
    c.step(0, { type: 'receive', from: 1, bytes: nv.bytes });
    c.drain();
    assert.equal(c.replicas[0]!.pillars[0]!.currentView, 1n);
    assert.equal(broadcasts(c, 'new-view-ack').filter((b) => b.v === 0).length, 1);
    assert.deepEqual(c.rejects, []);
  });

  it('rejects a view change that hides part of its history, even with a fresh TOP proof', () => {
    const c = new LocalCluster(config);
    for (let i = 0; i < 3; i++) c.step(0, { type: 'propose', batch: batch(i) });
    c.drain();
    c.tracing = true;
    c.isolated.add(0);
    c.step(2, { type: 'request-timeout' });
    const vcBytes = broadcasts(c, 'view-change').find((b) => b.v === 2)!.bytes;
    const r = decodeMessage(vcBytes, config);
    assert.ok(r.ok && r.value.type === 'view-change');
    const vc = r.value as ViewChange;
    assert.equal(vc.history.length, 3);
    assert.equal(vc.top, 3n);
    const trinx = c.replicas[2]!.trinxes[0]!;
    // Replica 2 turns faulty: it asks its own TrInX for whatever a shorter history needs.
    const reprove = (u: Omit<ViewChange, 'proof'>): ViewChange => {
      const d = viewChangeDigest(
        u,
        u.history.map((p) => batchDigest(p.batch)),
      );
      const proof = trinx.certifyContinuing(Counter.TOP, trinx.current(Counter.TOP), d);
      assert.ok(proof.ok);
      return { ...u, proof: proof.value };
    };
    const history = vc.history.slice(0, 2);
    const hidden = reprove({ ...vc, history });
    const p1 = c.replicas[1]!.pillars[0]!;
    assert.equal(p1.viewChangeValid(vc, 2), true);
    assert.equal(p1.viewChangeProblem(hidden, 2), 'history-short');
    // Claiming a lower top to match: the link can be re-issued, but TOP still says 3.
    const value = { view: 1n, order: 0n };
    const relink = trinx.certifyContinuing(Counter.ORDER, value, linkDigest(0, value, 2n));
    assert.ok(relink.ok);
    const lowered = reprove({ ...vc, history, top: 2n, link: relink.value });
    assert.equal(p1.viewChangeProblem(lowered, 2), 'top-proof');
    // Forging the proof's values breaks its MAC.
    const forged = {
      ...lowered,
      proof: { ...lowered.proof, prev: { view: 0n, order: 2n }, value: { view: 0n, order: 2n } },
    };
    assert.equal(p1.viewChangeProblem(forged, 2), 'top-proof');
    c.rejects.length = 0;
    c.step(1, { type: 'receive', from: 2, bytes: encodeMessage(hidden) });
    c.step(1, { type: 'receive', from: 2, bytes: encodeMessage(lowered) });
    assert.deepEqual(
      c.rejects.map((x) => x.reason),
      ['view-change-invalid:history-short', 'view-change-invalid:top-proof'],
    );
  });

  it('keeps top across views: orders certified views ago cannot be dropped by certifying low orders later', () => {
    // The attack the old one-level entry proof missed: replica 1 commits orders 0..3 in view 0,
    // then certifies order 0 again in views 1 and 2 and claims top 1 in a view change to 3.
    const c = new LocalCluster(config);
    c.tracing = true;
    for (let i = 0; i < 4; i++) c.step(0, { type: 'propose', batch: batch(i) });
    c.drain();
    const trinx = c.replicas[1]!.trinxes[0]!;
    assert.deepEqual(trinx.current(Counter.TOP), { view: 0n, order: 4n });
    const junk = batchDigest(batch(7));
    for (const view of [1n, 2n]) {
      const link = trinx.certifyContinuing(Counter.ORDER, { view, order: 0n }, junk);
      // A lower TOP value is refused: the counter only grows.
      assert.equal(trinx.certifyContinuing(Counter.TOP, { view: 0n, order: 1n }, junk).ok, false);
      const real = trinx.certifyIndependent(Counter.ORDER, { view, order: 2n }, junk);
      assert.ok(link.ok && real.ok);
    }
    const value = { view: 3n, order: 0n };
    const link = trinx.certifyContinuing(Counter.ORDER, value, linkDigest(0, value, 1n));
    assert.ok(link.ok);
    const first = decodeMessage(broadcasts(c, 'prepare')[0]!.bytes, config);
    assert.ok(first.ok && first.value.type === 'prepare');
    const unsigned = {
      type: 'view-change' as const,
      pillar: 0,
      toView: 3n,
      top: 1n,
      stable: null,
      history: [first.value],
      proofs: [],
      link: link.value,
    };
    const d = viewChangeDigest(unsigned, [batchDigest(first.value.batch)]);
    const proof = trinx.certifyContinuing(Counter.TOP, trinx.current(Counter.TOP), d);
    assert.ok(proof.ok);
    assert.deepEqual(proof.value.value, { view: 0n, order: 4n });
    const p2 = c.replicas[2]!.pillars[0]!;
    assert.equal(p2.viewChangeProblem({ ...unsigned, proof: proof.value }, 1), 'top-proof');
  });

  it('counts prepares of a view above 0 in a view change only with that view proof and its slots', () => {
    const c = leaderFails(3);
    c.trace.length = 0;
    c.step(1, { type: 'request-timeout' });
    const sent = broadcasts(c, 'view-change').find((b) => b.v === 1)!;
    const decoded = decodeMessage(sent.bytes, config);
    assert.ok(decoded.ok && decoded.value.type === 'view-change');
    const vc = decoded.value;
    assert.equal(vc.toView, 2n);
    assert.deepEqual(
      vc.history.map((p) => p.view),
      [1n, 1n, 1n],
    );
    assert.deepEqual(
      vc.proofs.map((vp) => vp.view),
      [1n],
    );
    const p2 = c.replicas[2]!.pillars[0]!;
    assert.equal(p2.viewChangeProblem(vc, 1), null);
    // The TOP proof does not cover the view proofs (they verify on their own): only they are
    // missing, first the one of the last certifying view the TOP proof shows.
    assert.equal(vc.proof.value.view, 1n);
    assert.equal(p2.viewChangeProblem({ ...vc, proofs: [] }, 1), 'last-view-unproven');
    const proof = vc.proofs[0]!;
    const otherSlot = proof.slotDigests.map((d, i) => (i === 0 ? batchDigest(batch(99)) : d));
    assert.equal(
      p2.viewChangeProblem({ ...vc, proofs: [{ ...proof, slotDigests: otherSlot }] }, 1),
      'view-proof',
    );
    assert.equal(
      p2.viewChangeProblem({ ...vc, proofs: [{ ...proof, certs: proof.certs.slice(1) }] }, 1),
      'view-proof',
    );
    assert.equal(
      p2.viewChangeProblem({ ...vc, proofs: [proof, { ...proof, view: 0n }] }, 1),
      'view-proof-order',
    );
  });

  it('rejects a view change that reports a prepare older than its last certifying view', () => {
    const c = new LocalCluster(config);
    c.tracing = true;
    for (let i = 0; i < 3; i++) c.step(0, { type: 'propose', batch: batch(i) });
    c.drain();
    const first = decodeMessage(broadcasts(c, 'prepare')[0]!.bytes, config);
    assert.ok(first.ok && first.value.type === 'prepare' && first.value.view === 0n);
    c.isolated.add(0);
    c.step(1, { type: 'request-timeout' });
    c.step(2, { type: 'request-timeout' });
    c.drain();
    // Both certified the NEW-VIEW slots of view 1: TOP moved into view 1, up to its top.
    assert.deepEqual(c.replicas[1]!.trinxes[0]!.current(Counter.TOP), { view: 1n, order: 3n });
    assert.deepEqual(c.replicas[2]!.trinxes[0]!.current(Counter.TOP), { view: 1n, order: 3n });
    c.trace.length = 0;
    c.step(1, { type: 'request-timeout' });
    const sent = decodeMessage(broadcasts(c, 'view-change').find((b) => b.v === 1)!.bytes, config);
    assert.ok(sent.ok && sent.value.type === 'view-change');
    const vc = sent.value;
    assert.equal(vc.proof.value.view, 1n);
    const p2 = c.replicas[2]!.pillars[0]!;
    assert.equal(p2.viewChangeProblem(vc, 1), null);
    // The view-0 prepare of order 0 in place of the view-1 one, with a fresh TOP proof.
    const history = [first.value, ...vc.history.slice(1)];
    const unsigned = { ...vc, history };
    const trinx = c.replicas[1]!.trinxes[0]!;
    const proof = trinx.certifyContinuing(
      Counter.TOP,
      trinx.current(Counter.TOP),
      viewChangeDigest(
        unsigned,
        history.map((p) => batchDigest(p.batch)),
      ),
    );
    assert.ok(proof.ok);
    assert.equal(p2.viewChangeProblem({ ...unsigned, proof: proof.value }, 1), 'history-below-last-view');
  });

  it('certifies nothing in a new view before f + 1 ACCEPTs of its NEW-VIEW form the view proof', () => {
    const c = new LocalCluster(config);
    for (let i = 0; i < 2; i++) c.step(0, { type: 'propose', batch: batch(i) });
    c.drain();
    c.isolated.add(0);
    c.tracing = true;
    const kinds = (actions: readonly Action[]): string[] =>
      actions.flatMap((a) => {
        if (a.type !== 'broadcast') return [];
        const m = decodeMessage(a.bytes, config);
        return m.ok ? [m.value.type] : [];
      });
    c.step(1, { type: 'request-timeout' });
    c.step(2, { type: 'request-timeout' });
    const vc2 = broadcasts(c, 'view-change').find((b) => b.v === 2)!.bytes;
    // Leader 1 builds the NEW-VIEW from its own and 2's view change: no prepare yet.
    const atLeader = c.step(1, { type: 'receive', from: 2, bytes: vc2 });
    assert.deepEqual(kinds(atLeader), ['new-view', 'accept']);
    const nv = broadcasts(c, 'new-view').find((b) => b.v === 1)!.bytes;
    const accept1 = broadcasts(c, 'accept').find((b) => b.v === 1)!.bytes;
    // Follower 2 checks it and accepts, but commits nothing while it holds one ACCEPT (its own).
    assert.deepEqual(kinds(c.step(2, { type: 'receive', from: 1, bytes: nv })), ['accept']);
    const accept2 = broadcasts(c, 'accept').find((b) => b.v === 2)!.bytes;
    // The second ACCEPT proves the view at the leader: it now certifies the two slots.
    assert.deepEqual(kinds(c.step(1, { type: 'receive', from: 2, bytes: accept2 })), ['prepare', 'prepare']);
    const prepares = broadcasts(c, 'prepare').filter((b) => b.v === 1);
    // At the follower the prepares wait for the proof, then are committed in order.
    for (const p of prepares)
      assert.deepEqual(kinds(c.step(2, { type: 'receive', from: 1, bytes: p.bytes })), []);
    assert.deepEqual(kinds(c.step(2, { type: 'receive', from: 1, bytes: accept1 })), ['commit', 'commit']);
    assert.deepEqual(c.rejects, []);
  });

  it('rejects a NEW-VIEW whose batches differ from what its view changes imply', () => {
    const c = new LocalCluster(config);
    for (let i = 0; i < 2; i++) c.step(0, { type: 'propose', batch: batch(i) });
    c.drain();
    c.tracing = true;
    c.isolated.add(0);
    c.isolated.add(2);
    c.step(1, { type: 'request-timeout' });
    c.step(2, { type: 'request-timeout' });
    // Deliver 2's view change to 1 only, so 1 builds NEW-VIEW while 2 has not seen it yet.
    const vc2 = broadcasts(c, 'view-change').find((b) => b.v === 2)!.bytes;
    c.step(1, { type: 'receive', from: 2, bytes: vc2 });
    const nvBytes = broadcasts(c, 'new-view').find((b) => b.v === 1)!.bytes;
    const nv = decodeMessage(nvBytes, config);
    assert.ok(nv.ok);
    const good = nv.value as NewView;
    assert.equal(good.batches.length, 2);
    const p2 = c.replicas[2]!.pillars[0]!;
    assert.equal(p2.newViewValid(good), true);
    assert.equal(p2.newViewValid({ ...good, batches: good.batches.slice(0, 1) }), false);
    assert.equal(p2.newViewValid({ ...good, viewChanges: good.viewChanges.slice(1) }), false);
    const swapped = good.batches.map((b, i) => (i === 1 ? batch(99) : b));
    assert.equal(p2.newViewValid({ ...good, batches: swapped }), false);
    c.step(2, { type: 'receive', from: 1, bytes: encodeMessage({ ...good, batches: swapped }) });
    assert.equal(p2.currentView, 0n);
    c.step(2, { type: 'receive', from: 1, bytes: nvBytes });
    assert.equal(p2.currentView, 1n);
  });

  it('doubles the view-change timeout on each consecutive failure, capped at the maximum', () => {
    // Nobody can certify a NEW-VIEW, so every view change fails; 1 and 2 change views together.
    const c = new LocalCluster(config, {
      makeTrinx: (key, v, p, s) =>
        new GatedTrinx(new SoftwareTrinx(key, { validator: v, pillar: p }, s), 3, true),
    });
    c.isolated.add(0);
    const started: number[] = [];
    const record = (t: number, actions: readonly Action[]): void => {
      if (actions.some((a) => a.type === 'view-change-started')) started.push(t);
    };
    c.step(1, { type: 'request-timeout' });
    record(0, c.step(2, { type: 'request-timeout' }));
    c.drain();
    for (let t = 5; t <= 3500; t += 5) {
      c.step(1, { type: 'tick', nowMs: t });
      record(t, c.step(2, { type: 'tick', nowMs: t }));
      c.drain();
    }
    const gaps = started.slice(1).map((t, i) => t - started[i]!);
    assert.deepEqual(gaps.slice(0, 5), [100, 200, 400, 800, 800]);
  });

  it('waits at its target when it timed out ahead of everyone, and the view forms once the others arrive', () => {
    // Moving on alone would only carry it further from the others (simulator seed 245).
    const c = new LocalCluster(config);
    c.isolated.add(0);
    c.isolated.add(1);
    const started: number[] = [];
    c.step(2, { type: 'request-timeout' });
    for (let t = 5; t <= 3000; t += 5) {
      if (c.step(2, { type: 'tick', nowMs: t }).some((a) => a.type === 'view-change-started'))
        started.push(t);
    }
    assert.deepEqual(started, []);
    assert.equal(c.replicas[2]!.pillars[0]!.inViewChange, true);
    // Replica 1 (the leader of view 1) times out too; 2's retransmitted VIEW-CHANGE completes the view.
    c.isolated.delete(1);
    c.step(1, { type: 'tick', nowMs: 3000 });
    c.step(1, { type: 'request-timeout' });
    c.drain();
    for (let t = 3005; t <= 3200; t += 5) {
      for (const v of [1, 2]) c.step(v, { type: 'tick', nowMs: t });
      c.drain();
    }
    for (const v of [1, 2]) assert.equal(c.replicas[v]!.pillars[0]!.currentView, 1n);
    c.step(1, { type: 'propose', batch: batch(7) });
    c.drain();
    assert.deepEqual(
      c.executed[2]!.map((e) => e.batch),
      [batch(7)],
    );
    assert.deepEqual(c.rejects, []);
  });

  it('resets the view-change timeout after progress in a new view', () => {
    const c = leaderFails(1);
    // 1 and 2 each used one timeout (now doubled); committing in view 1 resets it.
    c.step(1, { type: 'propose', batch: batch(1) });
    c.drain();
    c.isolated.add(1);
    const started: number[] = [];
    const t0 = 10_000;
    c.step(2, { type: 'tick', nowMs: t0 });
    if (c.step(2, { type: 'request-timeout' }).some((a) => a.type === 'view-change-started'))
      started.push(t0);
    // Replica 0 (cut off, never a leader here) shows a view above 2's target, so 2 moves on at its deadline.
    const p0 = c.replicas[0]!.pillars[0]!;
    const vc = p0.step({ type: 'sync-view', view: 3n }).find((a) => a.type === 'broadcast');
    assert.ok(vc?.type === 'broadcast');
    c.step(2, { type: 'receive', from: 0, bytes: vc.bytes });
    for (let t = t0 + 5; t <= t0 + 400; t += 5) {
      if (c.step(2, { type: 'tick', nowMs: t }).some((a) => a.type === 'view-change-started'))
        started.push(t);
    }
    assert.equal(started[1]! - started[0]!, 100);
  });
});
