// A known limit kept executable (docs/consensus.md, "Known limits"): a faulty leader of an
// intermediate view certifies its own prepares for already committed orders without any
// NEW-VIEW, and reports them in its next VIEW-CHANGE; the highest-view rule prefers them.
// When the view change binds each reported prepare to an accepted NEW-VIEW, this test must
// flip to expect no violation (and `fabricate-prepare` can join the random rotation).
import assert from 'node:assert/strict';
import { fabricatedPrepareScenario } from './scenarios.js';
import { runSeed } from './sim.js';

describe('fabricate-prepare attack (known limit)', () => {
  it('still breaks agreement: replica 2 executes the fabricated batches where 0 executed the committed ones', () => {
    const r = runSeed(fabricatedPrepareScenario(1));
    assert.ok(r.byzStats.fabricatedSent > 0);
    assert.ok(
      r.violations.some((v) => v.includes('agreement') && v.includes('at replica 2')),
      `the known limit no longer reproduces (closed?): ${JSON.stringify(r.violations)}`,
    );
  });
});
