// `npm run sim -- --seeds N [--seed S] [--n 3|5|7] [--pillars P] [--byzantine] [--no-faults]`
// Runs N seeds starting at S and prints one JSON summary line; a failing seed prints
// the command that replays it.
import { Command } from 'commander';
import { gridCase, replayCommand, runSeed } from './sim.js';

const program = new Command()
  .name('sim')
  .option('--seeds <n>', 'number of seeds', '20')
  .option('--seed <s>', 'first seed', '1')
  .option('--n <n>', 'validators (3, 5 or 7); default cycles through all')
  .option('--pillars <p>', 'pillars (1, 2 or 4); default cycles through all')
  .option('--byzantine', 'up to f Byzantine replicas', false)
  .option('--no-faults', 'no drops, partitions or crashes')
  .option('--heal-ms <ms>', 'virtual time with faults', '2000')
  .option('--liveness-ms <ms>', 'virtual time after healing', '6000')
  .option('--steps-max <n>', 'steps per seed', '400000')
  .option('--verbose', 'one line per seed', false);
program.parse();
const o = program.opts<{
  seeds: string;
  seed: string;
  n?: string;
  pillars?: string;
  byzantine: boolean;
  faults: boolean;
  healMs: string;
  livenessMs: string;
  stepsMax: string;
  verbose: boolean;
}>();

const seeds = Number(o.seeds);
const first = Number(o.seed);
let steps = 0;
let committed = 0;
let viewChanges = 0;
let violations = 0;
const failing: string[] = [];
for (let s = first; s < first + seeds; s++) {
  const grid = gridCase(s);
  const n = o.n === undefined ? grid.n : Number(o.n);
  const pillars = o.pillars === undefined ? grid.pillars : Number(o.pillars);
  const r = runSeed({
    seed: s,
    n,
    pillars,
    byzantine: o.byzantine,
    faults: o.faults,
    healMs: Number(o.healMs),
    livenessMs: Number(o.livenessMs),
    stepsMax: Number(o.stepsMax),
  });
  steps += r.steps;
  committed += r.committed;
  viewChanges += r.viewChanges;
  violations += r.violations.length;
  if (o.verbose) console.log(JSON.stringify({ ...r, byzStats: undefined }));
  if (r.violations.length > 0) {
    failing.push(replayCommand(r, o.byzantine));
    console.error(`seed ${s} (n=${n}, P=${pillars}) failed:\n  ${r.violations.join('\n  ')}`);
    console.error(`replay: ${replayCommand(r, o.byzantine)}`);
  }
}
console.log(JSON.stringify({ seeds, steps, violations, committed, viewChanges }));
process.exitCode = violations > 0 ? 1 : 0;
