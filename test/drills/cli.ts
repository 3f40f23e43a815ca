// npm run drill -- <name> [options]: runs one fault drill against real validator
// processes and prints a one-line JSON verdict. Exit status 0 when the verdict is ok.
//   names: kill-leader, restart-follower, partition, netem, disk-full, backup-restore (or "all", one line each)
//   --transport tcp|rdma   --net auto|loopback|netns   --validators N   --rate TX_PER_S
//   --fault-ms MS          --target leader|follower    --timeout-ms MS

import { parseArgs } from 'node:util';
import { DRILL_NAMES, type DrillName, type DrillOptions, runDrill } from './drills.js';

const usage = `usage: npm run drill -- <${DRILL_NAMES.join('|')}|all> [--transport tcp|rdma] [--net auto|loopback|netns]
  [--validators N] [--rate TX_PER_S] [--fault-ms MS] [--target leader|follower] [--timeout-ms MS]`;

function fail(message: string): never {
  process.stderr.write(`${message}\n${usage}\n`);
  process.exit(64);
}

let parsed: ReturnType<typeof parseArgs>;
try {
  parsed = parseArgs({
    allowPositionals: true,
    options: {
      transport: { type: 'string' },
      net: { type: 'string' },
      validators: { type: 'string' },
      rate: { type: 'string' },
      'fault-ms': { type: 'string' },
      target: { type: 'string' },
      'timeout-ms': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
} catch (e) {
  fail((e as Error).message);
}
const { values, positionals } = parsed;
if (values.help) {
  process.stdout.write(`${usage}\n`);
  process.exit(0);
}
const name = positionals[0];
if (!name) fail('which drill?');
const names: DrillName[] =
  name === 'all'
    ? [...DRILL_NAMES]
    : (DRILL_NAMES as readonly string[]).includes(name)
      ? [name as DrillName]
      : fail(`unknown drill "${name}"`);

function oneOf<T extends string>(v: unknown, allowed: readonly T[], flag: string): T | undefined {
  if (v === undefined) return undefined;
  if (typeof v === 'string' && (allowed as readonly string[]).includes(v)) return v as T;
  return fail(`--${flag} must be one of ${allowed.join(', ')}`);
}

function int(v: unknown, flag: string, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (!Number.isInteger(x) || x < min || x > max) fail(`--${flag} must be an integer in ${min}..${max}`);
  return x;
}

const opts: Partial<DrillOptions> = {};
const transport = oneOf(values.transport, ['tcp', 'rdma'] as const, 'transport');
if (transport) opts.transport = transport;
const net = oneOf(values.net, ['auto', 'loopback', 'netns'] as const, 'net');
if (net) opts.net = net;
const target = oneOf(values.target, ['leader', 'follower'] as const, 'target');
if (target) opts.target = target;
const validators = int(values.validators, 'validators', 3, 15);
if (validators !== undefined) {
  if (validators % 2 === 0) fail('--validators must be odd (n = 2f+1)');
  opts.validators = validators;
}
const rate = int(values.rate, 'rate', 1, 10_000);
if (rate !== undefined) opts.ratePerSec = rate;
const faultMs = int(values['fault-ms'], 'fault-ms', 0, 600_000);
if (faultMs !== undefined) opts.faultMs = faultMs;
const timeoutMs = int(values['timeout-ms'], 'timeout-ms', 10_000, 3_600_000);
if (timeoutMs !== undefined) opts.timeoutMs = timeoutMs;

let allOk = true;
for (const n of names) {
  const verdict = await runDrill(n, opts);
  allOk &&= verdict.ok;
  process.stdout.write(`${JSON.stringify(verdict)}\n`);
}
process.exit(allOk ? 0 : 1);
