// A baseline build for an A/B benchmark that differs from the current build only where the
// change under test does: `node <build>/bench/_link-baseline.js <oldBuild> <currentBuild>
// <outDir> <file.js>...` (paths of the changed modules inside a build, e.g. api/handlers.js).
//
// outDir mirrors currentBuild: the listed modules are copied from oldBuild (a `git archive`
// of the earlier commit compiled with tsc --outDir), the modules that import them (directly
// or not) are copied from currentBuild so their imports resolve to the old ones, and every
// other module is a symlink to currentBuild's. Node resolves symlinked ES modules to their
// real path, so both sides of the benchmark share one instance of everything unchanged: one
// JIT history for them and no second copy of the ledger, zod or fastify code paths to warm,
// which alone moved an A/A comparison of two full builds by 3-8%.
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

export function linkBaseline(
  oldBuild: string,
  currentBuild: string,
  outDir: string,
  changed: string[],
): string[] {
  const [from, cur, out] = [oldBuild, currentBuild, outDir].map((p) => resolve(p)) as [
    string,
    string,
    string,
  ];
  const files: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      if (statSync(p).isDirectory()) walk(p);
      else if (p.endsWith('.js')) files.push(relative(cur, p));
    }
  };
  walk(cur);
  const importRe = /(?:from|import)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g;
  const imports = new Map(
    files.map((f) => {
      const src = readFileSync(join(cur, f), 'utf8');
      const deps = [...src.matchAll(importRe)].map((m) =>
        relative(cur, resolve(dirname(join(cur, f)), m[1] ?? '')),
      );
      return [f, deps] as const;
    }),
  );
  const swapped = new Set(changed);
  const copies = new Set<string>();
  for (let grew = true; grew; ) {
    grew = false;
    for (const f of files) {
      if (swapped.has(f) || copies.has(f)) continue;
      if ((imports.get(f) ?? []).some((d) => swapped.has(d) || copies.has(d))) {
        copies.add(f);
        grew = true;
      }
    }
  }
  rmSync(out, { recursive: true, force: true });
  for (const f of files) {
    const dst = join(out, f);
    mkdirSync(dirname(dst), { recursive: true });
    if (swapped.has(f)) copyFileSync(join(from, f), dst);
    else if (copies.has(f)) copyFileSync(join(cur, f), dst);
    else symlinkSync(join(cur, f), dst);
  }
  return [...copies].sort();
}

if (
  process.argv[1] !== undefined &&
  resolve(process.argv[1]) === resolve(new URL(import.meta.url).pathname)
) {
  const [oldBuild, currentBuild, outDir, ...changed] = process.argv.slice(2);
  if (oldBuild === undefined || currentBuild === undefined || outDir === undefined || changed.length === 0) {
    console.error('usage: node _link-baseline.js <oldBuild> <currentBuild> <outDir> <changed.js>...');
    process.exit(2);
  }
  const copies = linkBaseline(oldBuild, currentBuild, outDir, changed);
  console.log(`old: ${changed.join(' ')}; copied (they import those): ${copies.join(' ')}`);
}
