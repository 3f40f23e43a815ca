// The fuzz CLI as CI runs it: a short run over every target, one JSON line out.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { allTargets } from './targets/index.js';

const CLI = join(dirname(fileURLToPath(import.meta.url)), 'cli.js');
const SECONDS = process.env.FUZZ_SECONDS ?? '3';

describe('npm run fuzz', function () {
  this.timeout(60_000);

  it(`runs every target for ${SECONDS} s and prints one JSON summary line`, () => {
    const r = spawnSync(process.execPath, [CLI, '--seconds', SECONDS], { encoding: 'utf8' });
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 1, r.stdout);
    const summary = JSON.parse(lines[0]!) as {
      targets: number;
      cases: number;
      failures: number;
      failed?: unknown;
    };
    assert.equal(summary.targets, allTargets().length);
    assert.ok(summary.cases >= summary.targets, `only ${summary.cases} cases`);
    assert.equal(summary.failures, 0, `${JSON.stringify(summary.failed)}\n${r.stderr}`);
    assert.equal(r.status, 0);
  });

  it('exits non-zero with a usage message for an unknown target', () => {
    const r = spawnSync(process.execPath, [CLI, '--seconds', '1', '--target', 'no-such-target'], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /unknown target/);
  });
});
