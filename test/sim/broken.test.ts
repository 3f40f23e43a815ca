import assert from 'node:assert/strict';
import { makeAlwaysFreshPillar, makeNonMonotonicTrinx, makeQuorumOfFPillar } from './broken.js';
import { runSeed } from './sim.js';

describe('simulator catches broken variants', () => {
  it('reports an agreement violation when TrInX monotonicity is disabled and the leader equivocates', () => {
    const r = runSeed({
      seed: 1,
      n: 3,
      pillars: 1,
      byzantine: true,
      behaviours: ['equivocate'],
      faults: false,
      healMs: 0,
      livenessMs: 2000,
      stepsMax: 100_000,
      replicaOptions: { makeTrinx: makeNonMonotonicTrinx },
    });
    assert.ok(r.byzStats.equivocationAttempts > 0);
    assert.equal(r.byzStats.equivocationRefusedByTrinx, 0, 'the broken TrInX signed the second batch');
    assert.ok(
      r.violations.some((v) => v.includes('agreement')),
      `expected an agreement violation, got ${JSON.stringify(r.violations)}`,
    );
  });

  it('the same equivocation against the real TrInX is refused and violates nothing', () => {
    const r = runSeed({
      seed: 1,
      n: 3,
      pillars: 1,
      byzantine: true,
      behaviours: ['equivocate'],
      faults: false,
      healMs: 0,
      livenessMs: 2000,
      stepsMax: 100_000,
    });
    assert.ok(r.byzStats.equivocationRefusedByTrinx > 0);
    assert.ok(r.rejects > 0, 'receivers rejected the forged prepares');
    assert.deepEqual(r.violations, []);
  });

  it('reports a violation within a few seeds when commits need only f certified messages', () => {
    const found: string[] = [];
    let seed = 1;
    for (; seed <= 40 && found.length === 0; seed++) {
      const r = runSeed({
        seed,
        n: 3,
        pillars: 1,
        byzantine: false,
        faults: true,
        healMs: 1500,
        livenessMs: 2500,
        stepsMax: 200_000,
        replicaOptions: { makePillar: makeQuorumOfFPillar },
      });
      found.push(...r.violations);
    }
    assert.ok(found.length > 0, 'no seed exposed the too-small quorum');
    assert.ok(
      found.some((v) => v.includes('agreement') || v.includes('state transfer')),
      JSON.stringify(found),
    );
  });

  it('reports a freshness violation within a few seeds when re-proposed batches are delivered as fresh', () => {
    const found: string[] = [];
    for (let seed = 1000; seed < 1040 && found.length === 0; seed++) {
      const r = runSeed({
        seed,
        n: 3,
        pillars: 1,
        byzantine: true,
        faults: true,
        healMs: 1000,
        livenessMs: 2500,
        stepsMax: 300_000,
        replicaOptions: { makePillar: makeAlwaysFreshPillar },
      });
      found.push(...r.violations);
    }
    assert.ok(found.length > 0, 'no seed exposed the wrongly fresh deliveries');
    assert.ok(
      found.every((v) => v.includes('freshness')),
      JSON.stringify(found),
    );
  });
});
