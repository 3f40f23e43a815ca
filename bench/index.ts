// `npm run bench -- <name> [--quick]`: runs bench/<name>.ts, which prints a table and
// writes bench/results/<name>.json. `npm run bench -- all` runs every benchmark in turn.
import { readdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

interface BenchModule {
  run(opts: { quick: boolean }): Promise<unknown>;
}

const here = dirname(fileURLToPath(import.meta.url));
const available = readdirSync(here)
  .filter((f) => f.endsWith('.js') && f !== 'index.js' && !f.startsWith('_'))
  .map((f) => f.slice(0, -3))
  .sort();

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const names = args.filter((a) => !a.startsWith('--'));

if (names.length === 0) {
  console.error(`usage: npm run bench -- <name>|all [--quick]\navailable: ${available.join(', ')}`);
  process.exit(2);
}

const selected = names.includes('all') ? available : names;
for (const name of selected) {
  if (!available.includes(name)) {
    console.error(`unknown benchmark '${name}'; available: ${available.join(', ')}`);
    process.exit(2);
  }
  const mod = (await import(`./${name}.js`)) as BenchModule;
  console.log(`\n== bench ${name}${quick ? ' (quick)' : ''} ==`);
  await mod.run({ quick });
}
