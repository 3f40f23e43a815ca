// The `stale-prepare` attack (test/sim/stale-prepare.ts, scripted in scenarios.ts): a faulty
// replica reports a view-0 prepare it kept from its core for an order at which it later
// certified another batch that a correct replica committed. Before the TOP counter carried
// the last certifying view, this broke agreement (orders 25-28 with seeds 1-3). A VIEW-CHANGE
// may now report only entries of the view its TOP proof shows (or later), so the forged view
// changes are rejected; the broken variant that skips that check still breaks agreement.
import assert from 'node:assert/strict';
import { makeUncheckedLastViewPillar } from './broken.js';
import { stalePrepareScenario } from './scenarios.js';
import { runSeed } from './sim.js';

describe('stale-prepare attack on the reporter choice among its own prepares', () => {
  it('is rejected by the last-view rule: no violation, and the cluster executes everything after healing', () => {
    const r = runSeed(stalePrepareScenario(1));
    assert.ok(r.byzStats.staleSent > 0, 'the Byzantine replica sent view changes with stale prepares');
    assert.ok(r.rejects > 0, 'correct replicas rejected them');
    assert.deepEqual(r.violations, []);
    assert.ok(r.committed > 100, `only ${r.committed} committed`);
  });

  it('breaks agreement when a view change may report prepares older than its last certifying view', () => {
    const r = runSeed({
      ...stalePrepareScenario(1),
      replicaOptions: { makePillar: makeUncheckedLastViewPillar },
    });
    assert.ok(r.byzStats.staleSent > 0);
    assert.ok(
      r.violations.some((v) => v.includes('agreement') && v.includes('at replica 0')),
      `expected an agreement violation, got ${JSON.stringify(r.violations)}`,
    );
  });
});
