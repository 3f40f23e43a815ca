import assert from 'node:assert/strict';
import {
  type Action,
  applyPersist,
  Counter,
  makeConfig,
  type PillarSnapshot,
  Replica,
} from '../../consensus/index.js';
import { LocalCluster, TEST_TRINX_KEY } from '../sim/cluster.js';

const config = makeConfig({ n: 3, pillars: 1, window: 8, checkpointInterval: 4, pendingBatchesMax: 4 });
const batch = (i: number): Uint8Array => new TextEncoder().encode(`b${i}`);

describe('checkpoints, window and persistence', () => {
  it('moves the low watermark once f + 1 replicas checkpoint the same state', () => {
    const c = new LocalCluster(config);
    for (let i = 0; i < 3; i++) c.step(0, { type: 'propose', batch: batch(i) });
    c.drain();
    for (const r of c.replicas) assert.equal(r.pillars[0]!.lowWatermark, 0n);
    c.step(0, { type: 'propose', batch: batch(3) });
    c.drain();
    // Order 3 closes the first interval of K = 4.
    for (const r of c.replicas) assert.equal(r.pillars[0]!.lowWatermark, 4n);
  });

  it('a leader never proposes past lowWatermark + W and refuses proposals when its queue is full', () => {
    const c = new LocalCluster(config);
    c.isolated.add(1);
    c.isolated.add(2);
    const refused: string[] = [];
    for (let i = 0; i < 20; i++) {
      for (const a of c.step(0, { type: 'propose', batch: batch(i) })) {
        if (a.type === 'proposal-refused') refused.push(a.reason);
      }
    }
    c.drain();
    // Nothing commits without followers: W = 8 orders in flight, 4 queued, the rest refused.
    assert.equal(c.executed[0]!.length, 0);
    assert.equal(refused.length, 20 - 8 - 4);
    assert.ok(refused.every((r) => r === 'queue-full'));
    c.isolated.clear();
    for (let t = 0; t < 20; t++) c.tick(100);
    assert.equal(c.executed[1]!.length, 12, 'retransmissions and the freed window order the queued batches');
  });

  it('refuses proposals at a follower', () => {
    const c = new LocalCluster(config);
    const actions = c.step(1, { type: 'propose', batch: batch(0) });
    assert.deepEqual(
      actions.filter((a) => a.type === 'proposal-refused'),
      [{ type: 'proposal-refused', reason: 'not-leader' }],
    );
  });

  it('asks for state transfer when a stable checkpoint passes what it executed', () => {
    const c = new LocalCluster(config);
    c.isolated.add(2);
    for (let i = 0; i < 8; i++) {
      c.step(0, { type: 'propose', batch: batch(i) });
      c.drain();
    }
    c.isolated.clear();
    c.tracing = true;
    for (let t = 0; t < 10; t++) c.tick(200);
    const need = c.trace.filter((x) => x.v === 2 && x.a.type === 'need-state-transfer');
    assert.ok(need.length >= 1);
    const a = need[0]!.a as Extract<Action, { type: 'need-state-transfer' }>;
    assert.equal(a.fromOrder, 0n);
    assert.equal(a.toOrder, 7n);
    assert.equal(a.checkpoint.certs.length >= 2, true);
  });

  it('persists before sending, and a restarted replica never reuses a counter value', () => {
    const c = new LocalCluster(config);
    const disk: (PillarSnapshot | null)[] = [null];
    const record = (actions: readonly Action[]): void => {
      const firstSend = actions.findIndex((a) => a.type === 'send' || a.type === 'broadcast');
      const persist = actions.findIndex((a) => a.type === 'persist');
      if (firstSend >= 0)
        assert.ok(persist >= 0 && persist < firstSend, 'persist comes before the first send');
      for (const a of actions) if (a.type === 'persist') disk[0] = applyPersist(disk[0]!, a.delta);
    };
    for (let i = 0; i < 3; i++) {
      record(c.step(0, { type: 'propose', batch: batch(i) }));
      c.drain();
    }
    const before = c.replicas[0]!.trinxes[0]!.current(Counter.ORDER);
    assert.equal(before.order, 4n, 'order 2 was certified as (0, 2 + 2)');
    const restarted = new Replica({
      config,
      validator: 0,
      trinxKey: TEST_TRINX_KEY,
      snapshots: [disk[0]!],
      executedNext: 3n,
    });
    assert.deepEqual(restarted.trinxes[0]!.current(Counter.ORDER), before);
    assert.equal(restarted.pillars[0]!.isLeading(), true);
    const actions = restarted.step({ type: 'propose', batch: batch(3) });
    const prepare = actions.find((a) => a.type === 'broadcast');
    assert.ok(prepare !== undefined);
    assert.equal(
      restarted.trinxes[0]!.current(Counter.ORDER).order,
      5n,
      'the next prepare is order 3, not a reuse',
    );
  });
});
