// The `fabricate-prepare` attack (test/sim/fabricate.ts, scripted in scenarios.ts): a faulty
// leader of an intermediate view certifies its own prepares for already committed orders
// without any NEW-VIEW and reports them in its next VIEW-CHANGE, where the highest-view rule
// would prefer them. Prepares of a view above 0 count only with that view's proof (f + 1
// ACCEPTs of its NEW-VIEW), so the forged view changes are rejected; the broken variant that
// skips that check shows the attack still breaks agreement without it.
import assert from 'node:assert/strict';
import { makeUncheckedViewProofPillar } from './broken.js';
import { fabricatedPrepareScenario } from './scenarios.js';
import { runSeed } from './sim.js';

describe('fabricate-prepare attack on the highest-view rule', () => {
  it('is rejected by the view proofs: no violation, and the cluster executes everything after healing', () => {
    const r = runSeed(fabricatedPrepareScenario(1));
    assert.ok(
      r.byzStats.fabricatedSent > 0,
      'the Byzantine replica sent view changes with fabricated prepares',
    );
    assert.ok(r.rejects > 0, 'correct replicas rejected them');
    assert.deepEqual(r.violations, []);
    assert.ok(r.committed > 100, `only ${r.committed} committed`);
  });

  it('breaks agreement when prepares of a view count without that view proof', () => {
    const r = runSeed({
      ...fabricatedPrepareScenario(1),
      replicaOptions: { makePillar: makeUncheckedViewProofPillar },
    });
    assert.ok(
      r.violations.some((v) => v.includes('agreement') && v.includes('at replica 2')),
      `expected an agreement violation, got ${JSON.stringify(r.violations)}`,
    );
  });
});
