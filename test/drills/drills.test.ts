// One short drill end to end in the default test run (the others run with
// `npm run drill -- <name>`), plus the drill CLI's handling of bad input.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runDrill } from './drills.js';

const CLI = join(dirname(fileURLToPath(import.meta.url)), 'cli.js');

describe('fault drills', () => {
  it('rejects an unknown drill name and an even validator count with usage and exit status 64', () => {
    const unknown = spawnSync(process.execPath, [CLI, 'meteor-strike'], { encoding: 'utf8' });
    assert.equal(unknown.status, 64);
    assert.match(unknown.stderr, /unknown drill "meteor-strike"/);
    assert.match(unknown.stderr, /kill-leader\|restart-follower\|partition\|netem\|disk-full/);
    const even = spawnSync(process.execPath, [CLI, 'kill-leader', '--validators', '4'], { encoding: 'utf8' });
    assert.equal(even.status, 64);
    assert.match(even.stderr, /odd/);
  });

  it('a follower killed under load and restarted catches up, with identical chains and no acknowledged tx lost', async function () {
    // The drill itself takes ~20 s; validator start-up on a loaded 2-core machine adds more.
    this.timeout(150_000);
    const v = await runDrill('restart-follower', {
      net: 'loopback',
      ratePerSec: 40,
      concurrency: 8,
      faultMs: 1500,
      timeoutMs: 140_000,
    });
    const why = JSON.stringify(v);
    assert.equal(v.drill, 'restart-follower');
    assert.equal(v.method, 'SIGKILL of a follower under load, then restart', why);
    assert.ok(v.txs.acked > 0, `some txs acknowledged: ${why}`);
    assert.equal(v.txs.lost, 0, why);
    assert.ok(v.checks.commitsAfterFault && v.timingsMs.recovery !== null, `commits after the fault: ${why}`);
    assert.ok(v.checks.caughtUp && v.timingsMs.catchUp !== null, `the follower caught up: ${why}`);
    assert.ok(v.checks.identicalChains, `identical chains: ${why}`);
    assert.ok(v.ok, why);
  });
});
