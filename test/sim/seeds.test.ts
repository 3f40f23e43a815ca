// The CI part of the simulator: 306 seeds with network faults, crashes and Byzantine
// replicas over n = 3, 5, 7 and P = 1, 2, 4. Prints the same summary line as `npm run sim`.
import assert from 'node:assert/strict';
import { BEHAVIOURS } from './byzantine.js';
import { replayCommand, runSeed, type SimResult } from './sim.js';

const SEEDS_PER_CASE = 34;
const CASES = [3, 5, 7].flatMap((n) => [1, 2, 4].map((pillars) => ({ n, pillars })));

describe('simulator seeds with faults and Byzantine replicas', function () {
  this.timeout(300_000);
  const results: SimResult[] = [];

  for (const [i, c] of CASES.entries()) {
    it(`keeps agreement, validity and liveness over ${SEEDS_PER_CASE} seeds with n=${c.n}, P=${c.pillars}`, () => {
      for (let k = 0; k < SEEDS_PER_CASE; k++) {
        const seed = 1000 + i * SEEDS_PER_CASE + k;
        const r = runSeed({
          seed,
          ...c,
          byzantine: true,
          faults: true,
          healMs: 1000,
          livenessMs: 2500,
          stepsMax: 300_000,
        });
        results.push(r);
        assert.deepEqual(r.violations, [], `replay: ${replayCommand(r, true)}`);
        assert.ok(r.committed > 0, `seed ${seed} committed nothing`);
      }
    });
  }

  it('exercised every Byzantine behaviour and saw them rejected', () => {
    const used = new Set(results.flatMap((r) => Object.values(r.byzantine)));
    for (const b of BEHAVIOURS) assert.ok(used.has(b), `behaviour ${b} never ran`);
    const sum = (k: keyof SimResult['byzStats']): number => results.reduce((a, r) => a + r.byzStats[k], 0);
    assert.ok(
      sum('equivocationAttempts') > 0 && sum('equivocationRefusedByTrinx') === sum('equivocationAttempts'),
    );
    assert.ok(sum('hiddenHistories') > 0);
    assert.ok(sum('lowerTopSent') > 0);
    assert.ok(sum('fabricatedSent') > 0);
    assert.ok(sum('badNewViews') > 0);
    assert.ok(sum('garbageSent') > 0 && sum('replayed') > 0);
    assert.ok(results.reduce((a, r) => a + r.rejects, 0) > 0);
    assert.ok(results.reduce((a, r) => a + r.viewChanges, 0) > 0);
    assert.ok(results.reduce((a, r) => a + r.crashes, 0) > 0);
  });

  it('checked the freshness of deliveries on both sides: fresh proposals and NEW-VIEW re-proposals', () => {
    // Each fresh delivery was checked against what its correct leader cut (sim.ts checkFresh).
    assert.ok(results.reduce((a, r) => a + r.freshDeliveries, 0) > 0);
    assert.ok(results.reduce((a, r) => a + r.reproposedDeliveries, 0) > 0);
  });

  after(() => {
    const line = {
      seeds: results.length,
      steps: results.reduce((a, r) => a + r.steps, 0),
      violations: results.reduce((a, r) => a + r.violations.length, 0),
      committed: results.reduce((a, r) => a + r.committed, 0),
      viewChanges: results.reduce((a, r) => a + r.viewChanges, 0),
    };
    console.log(JSON.stringify(line));
  });
});
