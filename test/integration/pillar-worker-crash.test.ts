// A pillar worker thread dying inside a real validator process. Three validators run as
// separate processes with P = 2 pillars in worker threads; validator 2 is started with
// the test-only fault HYBSTER_TEST_FAULTS=pillar-worker-crash=1@<order> (node/pillar-worker.ts),
// so its pillar-1 worker dies of an uncaught exception once it delivers that order. The
// process must stop with exit code 1 (so a supervisor restarts it) and say why; the other
// two keep committing; restarted from the same home without the fault, it catches up and
// all three hold the same chain.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import {
  type Account,
  blockAt,
  heightOf,
  loadAccounts,
  metric,
  submit,
  transfer,
  waitAllReady,
  waitFor,
} from '../helpers/client.js';
import { startTestnet, type Testnet } from '../helpers/testnet.js';

const CHAIN_ID = 'hybster-testnet';
const PILLARS = 2;
/** Validator 0 leads view 0; the victim is a follower, so the survivors need no view change. */
const VICTIM = 2;
const CRASH_PILLAR = 1;
/** Pillar 1 owns the odd order numbers; this one is reached after a few blocks. */
const CRASH_ORDER = 5;
const FAULT = `pillar-worker-crash=${CRASH_PILLAR}@${CRASH_ORDER}`;

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

async function commitAt(url: string, from: Account, to: Uint8Array): Promise<void> {
  const r = await submit(url, transfer(CHAIN_ID, from, to, 1n).hex, 'commit', 20_000);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.status, 'committed');
}

/** The validator's JSON log records (testnet.ts keeps the last few hundred lines). */
function records(lines: readonly string[]): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const l of lines) {
    try {
      out.push(JSON.parse(l) as Record<string, unknown>);
    } catch {
      // not a log record (e.g. a stack trace line)
    }
  }
  return out;
}

describe('integration: a pillar worker dies inside a validator process', function () {
  this.timeout(150_000);
  let net: Testnet;
  let accounts: Account[];
  let recipient: Uint8Array;
  let victimExit: Promise<Exit>;
  let victimLaunches = 0;

  before(async () => {
    net = await startTestnet({
      validators: 3,
      testnetArgs: ['--accounts', '4', '--pillars', String(PILLARS)],
      // Only the first launch of the victim carries the fault; its restart runs clean.
      envFor: (i): Record<string, string> =>
        i === VICTIM && victimLaunches++ === 0 ? { HYBSTER_TEST_FAULTS: FAULT } : {},
    });
    const p = net.validators[VICTIM]?.process as ChildProcess;
    victimExit = new Promise((resolve) => p.once('exit', (code, signal) => resolve({ code, signal })));
    accounts = loadAccounts(net.dir);
    recipient = (accounts.pop() as Account).address;
    await waitAllReady(net.apiUrls);
    for (const url of net.apiUrls) assert.equal(await metric(url, 'hybster_pillar_threads'), PILLARS, url);
  });

  after(async () => {
    await net?.stop();
  });

  it('exits with code 1 and logs which pillar worker crashed', async () => {
    const a = accounts[0] as Account;
    let exit: Exit | null = null;
    void victimExit.then((e) => {
      exit = e;
    });
    // Each committed transfer is at least one block; the victim's pillar 1 dies at order CRASH_ORDER.
    for (let i = 0; i < 4 * CRASH_ORDER && exit === null; i++) {
      await commitAt(net.apiUrls[i % 2] as string, a, recipient);
    }
    const e = await Promise.race([
      victimExit,
      new Promise<null>((r) => setTimeout(() => r(null), 20_000).unref()),
    ]);
    const log = net.validators[VICTIM]?.log ?? [];
    assert.ok(e !== null, `validator ${VICTIM} still runs:\n${log.slice(-30).join('\n')}`);
    assert.deepEqual(e, { code: 1, signal: null }, log.slice(-30).join('\n'));
    const fatal = records(log).find((r) => r.msg === 'pillar worker failed; stopping');
    assert.ok(fatal, `no fatal record in:\n${log.slice(-30).join('\n')}`);
    assert.equal(fatal.pillar, CRASH_PILLAR);
    // The thread's uncaught exception, as the main thread saw it (no stack: not a reported failure).
    assert.equal(
      fatal.err,
      `pillar ${CRASH_PILLAR} worker: test fault: pillar worker crashed at order ${CRASH_ORDER} (HYBSTER_TEST_FAULTS)`,
    );
  });

  it('leaves the other two validators committing', async () => {
    const before = await Promise.all([0, 1].map((i) => heightOf(net.apiUrls[i] as string)));
    const a = accounts[1] as Account;
    for (let i = 0; i < 4; i++) await commitAt(net.apiUrls[i % 2] as string, a, recipient);
    const after = await Promise.all([0, 1].map((i) => heightOf(net.apiUrls[i] as string)));
    for (let i = 0; i < 2; i++) {
      assert.ok(
        (after[i] as number) >= (before[i] as number) + 4,
        `validator ${i}: ${before[i]} -> ${after[i]}`,
      );
    }
  });

  it('catches up after a restart from the same home, and all three hold identical blocks', async () => {
    await net.restart(VICTIM);
    const url = net.apiUrls[VICTIM] as string;
    assert.equal(await metric(url, 'hybster_pillar_threads'), PILLARS);
    const b = accounts[2] as Account;
    // Blocks the restarted validator helps commit, not only ones it fetches.
    for (let i = 0; i < 3; i++) await commitAt(net.apiUrls[i] as string, b, recipient);
    const target = await heightOf(net.apiUrls[0] as string);
    await waitFor(
      async () => (await Promise.all(net.apiUrls.map(heightOf))).every((h) => h >= target),
      40_000,
      'the restarted validator catching up',
    );
    assert.ok(target > CRASH_ORDER + 4, `common height ${target}`);
    for (let h = 1; h <= target; h++) {
      const hashes = await Promise.all(net.apiUrls.map(async (u) => (await blockAt(u, h)).hash));
      assert.equal(new Set(hashes).size, 1, `block ${h}: ${hashes.join(' ')}`);
    }
    assert.equal(victimLaunches, 2);
    assert.ok(net.validators[VICTIM]?.process, 'the restarted validator is still running');
  });
});
