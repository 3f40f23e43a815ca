// npm run fuzz -- --seconds N [--target NAME] [--exclude A,B] [--seed S --path P [--runs R]] [--rss-mb-max M]
// Runs every target round-robin for N seconds and prints ONE JSON line:
// {"targets":…,"cases":…,"failures":0,…}. A failure prints the command that replays it
// and exits 1. Lives under test/ because it is a test driver, not shipped code.
import { parseArgs } from 'node:util';
import { checkTarget, describe } from './harness.js';
import { allTargets } from './targets/index.js';

interface Failure {
  target: string;
  seed: number;
  path: string | null;
  error: string;
  replay: string;
}

const CHUNK_RUNS = 200;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '10' },
      target: { type: 'string' },
      exclude: { type: 'string' },
      seed: { type: 'string' },
      path: { type: 'string' },
      // fast-check's generation depends on the run count, so a replay names it too.
      runs: { type: 'string', default: String(CHUNK_RUNS) },
      'rss-mb-max': { type: 'string', default: '1024' },
    },
    allowPositionals: false,
  });
  const seconds = Number(values.seconds);
  const rssMbMax = Number(values['rss-mb-max']);
  if (!Number.isFinite(seconds) || seconds <= 0) {
    process.stderr.write('--seconds must be a positive number\n');
    return 2;
  }
  const all = allTargets();
  const excluded = new Set((values.exclude ?? '').split(',').filter(Boolean));
  const targets = (values.target ? all.filter((t) => t.name === values.target) : all).filter(
    (t) => !excluded.has(t.name),
  );
  if (targets.length === 0) {
    process.stderr.write(`unknown target ${values.target}; known: ${all.map((t) => t.name).join(', ')}\n`);
    return 2;
  }
  const baseSeed = values.seed !== undefined ? Number(values.seed) : Date.now() % 0x7fffffff;
  const failures: Failure[] = [];
  let rssMbSeen = 0;
  const perTarget: Record<string, { cases: number; accepted: number; rejected: number }> = {};
  for (const t of targets) perTarget[t.name] = { cases: 0, accepted: 0, rejected: 0 };

  // The size limit is checked once per target: one input just above it must be refused.
  for (const t of targets) {
    const big = t.oversized();
    if (!big) continue;
    try {
      if ((await t.run(big)) !== 'rejected') throw new Error('accepted an input above its limit');
    } catch (e) {
      failures.push({ target: t.name, seed: baseSeed, path: null, error: describe(e), replay: '' });
    }
  }

  if (values.path !== undefined) {
    // Replay one recorded counterexample.
    for (const t of targets) {
      const d = await checkTarget(t, { seed: baseSeed, path: values.path, numRuns: Number(values.runs) });
      if (d.failed) failures.push(failureOf(t.name, d.seed, d.counterexamplePath, d.errorInstance));
    }
  } else {
    const deadline = Date.now() + seconds * 1000;
    let round = 0;
    let rssMax = 0;
    outer: while (Date.now() < deadline) {
      for (const [i, t] of targets.entries()) {
        const left = deadline - Date.now();
        if (left <= 0) break outer;
        const seed = (baseSeed + round * targets.length + i) | 0;
        const counts = perTarget[t.name]!;
        const d = await checkTarget(
          t,
          { seed, numRuns: CHUNK_RUNS, interruptAfterTimeLimit: left, markInterruptAsFailure: false },
          counts,
        );
        counts.cases += d.numRuns;
        if (d.failed) failures.push(failureOf(t.name, d.seed, d.counterexamplePath, d.errorInstance));
        rssMax = Math.max(rssMax, process.memoryUsage().rss);
      }
      round++;
      if (failures.length > 0) break;
    }
    const rssMb = Math.round(rssMax / 2 ** 20);
    if (rssMb > rssMbMax) {
      failures.push({
        target: '*',
        seed: baseSeed,
        path: null,
        error: `resident memory reached ${rssMb} MiB, limit ${rssMbMax}`,
        replay: '',
      });
    }
    rssMbSeen = rssMb;
  }

  for (const f of failures) {
    process.stderr.write(`FAIL ${f.target}: ${f.error}\n${f.replay ? `  replay: ${f.replay}\n` : ''}`);
  }
  const cases = Object.values(perTarget).reduce((n, c) => n + c.cases, 0);
  const summary = {
    targets: targets.length,
    cases,
    failures: failures.length,
    seconds,
    seed: baseSeed,
    rssMb: rssMbSeen,
    perTarget,
    ...(failures.length > 0 ? { failed: failures } : {}),
  };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  return failures.length === 0 ? 0 : 1;
}

function failureOf(target: string, seed: number, path: string | null, error: unknown): Failure {
  const replay = `npm run fuzz -- --target ${target} --seed ${seed}${path ? ` --path ${path}` : ''}`;
  return { target, seed, path, error: describe(error).slice(0, 500), replay };
}

process.exitCode = await main();
