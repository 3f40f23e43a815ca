// The `lower-top` attack (test/sim/lower-top.ts, scripted in scenarios.ts). Before the TOP
// counter, `top` was proved by ORDER link chains checked one view deep, and this scenario
// broke agreement: replica 2 executed a new batch at an order replica 0 had already executed
// (order 28 with seeds 1-3). The broken variant below reproduces that with today's messages.
import assert from 'node:assert/strict';
import { makeUncheckedTopPillar } from './broken.js';
import { lowerTopScenario } from './scenarios.js';
import { runSeed } from './sim.js';

describe('lower-top attack on view-change completeness', () => {
  it('is rejected by the TOP proof: no violation, and the cluster executes everything after healing', () => {
    const r = runSeed(lowerTopScenario(1));
    assert.ok(r.byzStats.lowerTopSent > 0, 'the Byzantine replica sent forged view changes');
    assert.ok(r.rejects > 0, 'correct replicas rejected them');
    assert.deepEqual(r.violations, []);
    assert.ok(r.committed > 100, `only ${r.committed} committed`);
  });

  it('breaks agreement when view changes are trusted for their claimed top', () => {
    const r = runSeed({ ...lowerTopScenario(1), replicaOptions: { makePillar: makeUncheckedTopPillar } });
    assert.ok(
      r.violations.some((v) => v.includes('agreement')),
      `expected an agreement violation, got ${JSON.stringify(r.violations)}`,
    );
  });
});
