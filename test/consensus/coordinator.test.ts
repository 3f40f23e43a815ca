import assert from 'node:assert/strict';
import { type Action, Coordinator, makeConfig } from '../../consensus/index.js';
import { LocalCluster } from '../sim/cluster.js';

const config = makeConfig({ n: 3, pillars: 2, window: 8, checkpointInterval: 4 });
const deliver = (pillar: number, order: bigint): Action => ({
  type: 'deliver',
  pillar,
  order,
  view: 0n,
  batch: new Uint8Array([Number(order)]),
  batchDigest: new Uint8Array(32),
  fresh: true,
});

describe('coordinator', () => {
  it('merges pillar output strictly by order number, each order once', () => {
    const co = new Coordinator(config);
    const out: Action[] = [];
    co.absorb(1, [deliver(1, 1n), deliver(1, 3n)], out);
    assert.deepEqual(out, []);
    co.absorb(0, [deliver(0, 0n)], out);
    co.absorb(0, [deliver(0, 0n), deliver(0, 2n)], out);
    assert.deepEqual(
      (out as Action[]).map((a) => (a.type === 'deliver' ? a.order : -1n)),
      [0n, 1n, 2n, 3n],
    );
    assert.equal(co.executedNext, 4n);
  });

  it('pulls the other pillars into a view change that one pillar started', () => {
    const co = new Coordinator(config);
    const out: Action[] = [];
    const follow = co.absorb(0, [{ type: 'view-change-started', pillar: 0, toView: 1n }], out);
    assert.deepEqual(follow, [{ pillar: 1, event: { type: 'sync-view', view: 1n } }]);
  });

  it('at the leader, fills a pillar that lags behind the others with empty batches on tick', () => {
    const co = new Coordinator(config);
    const out: Action[] = [];
    const status = (pillar: number, nextOrder: bigint): Action => ({
      type: 'status',
      pillar,
      view: 1n,
      leading: true,
      nextOrder,
      queued: 0,
    });
    co.absorb(0, [status(0, 6n)], out);
    co.absorb(1, [status(1, 1n)], out);
    const routed = co.route({ type: 'tick', nowMs: 5 }, out);
    const fills = routed.filter((r) => r.event.type === 'propose');
    assert.deepEqual(
      fills.map((r) => r.pillar),
      [1],
    );
    // Once both are level, nothing is filled.
    co.absorb(1, [status(1, 5n)], out);
    assert.equal(
      co.route({ type: 'tick', nowMs: 6 }, out).filter((r) => r.event.type === 'propose').length,
      0,
    );
  });

  it('interleaves proposals over pillars so orders are dense', () => {
    const c = new LocalCluster(config);
    for (let i = 0; i < 3; i++) c.step(0, { type: 'propose', batch: new Uint8Array([i + 1]) });
    c.drain();
    // Orders 0, 1, 2 went to pillars 0, 1, 0; all three execute everywhere.
    for (let v = 0; v < 3; v++)
      assert.deepEqual(
        c.executed[v]!.map((e) => e.order),
        [0n, 1n, 2n],
      );
    // Pillar 1 now lags pillar 0 (next 3 vs 4): nothing is stuck, so no filler is needed.
    c.tick(10);
    assert.equal(c.executed[0]!.length, 3);
  });
});
