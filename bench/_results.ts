// Where every benchmark records its result: bench/results/<name>.json in the source tree.
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { repoRoot } from './_repo-root.js';

/** Writes `json` as bench/results/<name>.json (pretty, newline-terminated); returns the path. */
export function writeResult(name: string, json: unknown): string {
  const dir = join(repoRoot(), 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${name}.json`);
  writeFileSync(path, `${JSON.stringify(json, null, 2)}\n`);
  return path;
}

/** The machine a result was measured on, as the results record it. */
export const machineInfo = () => ({
  cpus: os.cpus().length,
  model: os.cpus()[0]?.model,
  loadavg: os.loadavg(),
});
