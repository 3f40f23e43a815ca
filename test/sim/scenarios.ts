// Scripted simulator runs for attacks that random seeds reach only rarely.
import type { SimOptions } from './sim.js';

/**
 * The `lower-top` attack, n = 3: replica 2 is cut off while leader 0 and the Byzantine
 * replica 1 commit a run of batches (f + 1 = 2 certified messages each). Then leader 0 is
 * cut off and replica 2 comes back: 2 and 1 must change view without 0. Replica 1 lets its
 * own view changes fail and answers 2's view changes with forged ones claiming a lower top,
 * until 2 leads a view and builds its NEW-VIEW from its own empty history and the forgery.
 */
export function lowerTopScenario(seed = 1): SimOptions {
  return {
    seed,
    n: 3,
    pillars: 1,
    byzantine: true,
    behaviours: ['lower-top'],
    byzantineIds: [1],
    faults: false,
    isolations: [
      { node: 2, fromMs: 0, untilMs: 1500 },
      { node: 0, fromMs: 1500, untilMs: 14_000 },
    ],
    healMs: 14_000,
    livenessMs: 6000,
    stepsMax: 400_000,
  };
}

/**
 * The `fabricate-prepare` attack, same partitions as above: the Byzantine replica 1 leads
 * view 1, fabricates view-1 prepares for the orders committed in view 0 and reports them when
 * replica 2 (leading view 2) builds its NEW-VIEW from 1's and its own view change.
 */
export function fabricatedPrepareScenario(seed = 1): SimOptions {
  return { ...lowerTopScenario(seed), behaviours: ['fabricate-prepare'] };
}

/**
 * The `stale-prepare` attack, n = 3, Byzantine replica 1: replica 2 is cut off while leader 0
 * and 1 commit; from 1300 ms replica 1 hides 0's prepares from its core and keeps them. Then 0
 * is cut off, 1 and 2 change view without it and commit other batches at those orders. Then
 * 2 is cut off and 0 comes back: 0 and 1 change to a view led by 0, built from 0's and 1's
 * view changes, where 1 reports the kept view-0 prepares instead of its later ones.
 */
export function stalePrepareScenario(seed = 1): SimOptions {
  return {
    seed,
    n: 3,
    pillars: 1,
    byzantine: true,
    behaviours: ['stale-prepare'],
    byzantineIds: [1],
    faults: false,
    isolations: [
      { node: 2, fromMs: 0, untilMs: 1500 },
      { node: 0, fromMs: 1500, untilMs: 6000 },
      { node: 2, fromMs: 6000, untilMs: 14_000 },
    ],
    healMs: 14_000,
    livenessMs: 6000,
    stepsMax: 400_000,
  };
}
