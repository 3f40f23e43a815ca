// A leader whose clock runs 90 s fast, in a real 3-validator network: libfaketime
// (LD_PRELOAD) shifts the wall clock of validator 0's process only. Its followers must
// withhold their commits for its batches (the timestamp guard), and the request timer must
// replace it by a view change.
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { getJson, loadAccounts, metric, status, submit, transfer } from '../helpers/client.js';
import { startTestnet, type Testnet } from '../helpers/testnet.js';

const CHAIN_ID = 'hybster-testnet';
/** Past the genesis default drift bound (consensus.timestampDriftMsMax, 30 s). */
const SKEW_MS = 90_000;
const FAKETIME_LIBS = [
  '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1',
  '/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1',
];

describe('a leader whose clock runs ahead (real processes, libfaketime)', function () {
  this.timeout(120_000);
  let net: Testnet | null = null;
  const lib = FAKETIME_LIBS.find((p) => existsSync(p));

  before(function () {
    if (!lib) {
      assert.ok(!process.env.CI, 'libfaketime is missing: .ci/run installs the faketime package');
      this.skip();
    }
  });

  /** Pids of processes started under libfaketime: each leaves a shm segment and a semaphore. */
  const faked: number[] = [];

  after(async () => {
    await net?.stop();
    // libfaketime 0.9.10 names them by pid and never removes them.
    for (const pid of faked)
      for (const f of [`/dev/shm/faketime_shm_${pid}`, `/dev/shm/sem.faketime_sem_${pid}`])
        rmSync(f, { force: true });
  });

  it('has its batches withheld and is replaced by a view change', async () => {
    net = await startTestnet({
      validators: 3,
      envFor: (i): Record<string, string> =>
        i === 0
          ? { LD_PRELOAD: lib!, FAKETIME: `+${SKEW_MS / 1000}s`, FAKETIME_DONT_FAKE_MONOTONIC: '1' }
          : {},
    });
    const fastPid = net.validators[0]!.process?.pid;
    if (fastPid !== undefined) faked.push(fastPid);
    const [fast, honest] = [net.apiUrls[0]!, net.apiUrls[1]!];
    assert.equal(Number((await status(fast)).leader), 0, 'the fast validator leads view 0');
    const [account] = loadAccounts(net.dir);
    const t = transfer(CHAIN_ID, account!, new Uint8Array(32).fill(5), 1n);
    const r = await submit(honest, t.hex, 'commit', 60_000);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.status, 'committed');

    const st = await status(honest);
    assert.ok(Number(st.view) >= 1, `view ${st.view}: the fast leader was replaced`);
    const withheld =
      ((await metric(net.apiUrls[1]!, 'hybster_proposals_withheld_total')) ?? 0) +
      ((await metric(net.apiUrls[2]!, 'hybster_proposals_withheld_total')) ?? 0);
    assert.ok(withheld > 0, 'the followers withheld commits for the fast leader’s batches');
    // What the guard cannot stop: batches the fast leader prepared before it was replaced
    // travel in its VIEW-CHANGE and must be carried over by the NEW-VIEW (another follower
    // may have committed them), so they execute with their times. They are bounded by the
    // leader's in-flight limit, and chain time never runs backwards.
    const height = Number(st.height);
    let fastBlocks = 0;
    let prevMs = 0;
    for (let h = 1; h <= height; h++) {
      const b = await getJson(`${honest}/v1/blocks/${h}`);
      const header = b.header as { timestampMs: number; proposer: number; view: number };
      if (header.proposer === 0 && header.view === 0) fastBlocks++;
      assert.ok(header.timestampMs >= prevMs, `block ${h} runs chain time backwards`);
      prevMs = header.timestampMs;
    }
    assert.ok(
      fastBlocks <= 8,
      `${fastBlocks} blocks of the fast leader's view committed (in-flight limit 8)`,
    );
  });
});
