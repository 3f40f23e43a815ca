// A real 3-validator network with P = 2 pillars from genesis, each pillar in a worker
// thread of its validator process (consensus.pillarThreads defaults to auto): commits,
// identical blocks everywhere, and a view change after the leader is SIGKILLed, then
// the leader restarting from its persisted pillar state (restored inside the workers).
import assert from 'node:assert/strict';
import {
  type Account,
  getJson,
  heightOf,
  loadAccounts,
  metric,
  status,
  submit,
  transfer,
  waitAllReady,
  waitFor,
} from '../helpers/client.js';
import { startTestnet, type Testnet } from '../helpers/testnet.js';

const CHAIN_ID = 'hybster-testnet';
const PILLARS = 2;

async function commitAt(url: string, from: Account, to: Uint8Array): Promise<string> {
  const r = await submit(url, transfer(CHAIN_ID, from, to, 1n).hex, 'commit', 20_000);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.status, 'committed');
  return String(r.body.hash);
}

describe(`integration: 3 validators with ${PILLARS} pillars in worker threads`, function () {
  this.timeout(120_000);
  let net: Testnet;
  let accounts: Account[];
  let recipient: Uint8Array;

  before(async () => {
    net = await startTestnet({
      validators: 3,
      testnetArgs: ['--accounts', '4', '--pillars', String(PILLARS)],
    });
    accounts = loadAccounts(net.dir);
    recipient = (accounts.pop() as Account).address;
    await waitAllReady(net.apiUrls);
  });

  after(async () => {
    await net?.stop();
  });

  it('runs every pillar of every validator in a worker thread', async () => {
    for (const url of net.apiUrls) assert.equal(await metric(url, 'hybster_pillar_threads'), PILLARS, url);
  });

  it('commits transactions submitted to any validator, in the same blocks everywhere', async () => {
    const a = accounts[0] as Account;
    for (let i = 0; i < 6; i++) await commitAt(net.apiUrls[i % 3] as string, a, recipient);
    // The txs entered at followers reached the other follower as gossip before the leader's
    // batch: it executed them on two vouchers (the deliveries' fresh flag crossed the workers).
    const vouched = await Promise.all(
      net.apiUrls.map((u) => metric(u, 'hybster_vouched_txs_total', 'outcome="executed"')),
    );
    assert.ok(
      vouched.reduce((x: number, y) => x + (y ?? 0), 0) >= 1,
      `executed on vouchers: ${vouched.join(' ')}`,
    );
    const h = await heightOf(net.apiUrls[0] as string);
    // Both pillars ordered: with P = 2, consecutive orders alternate between them.
    assert.ok(h >= 2, `height ${h}`);
    await waitFor(
      async () => (await Promise.all(net.apiUrls.map(heightOf))).every((x) => x >= h),
      15_000,
      'heights',
    );
    for (const height of [1, h]) {
      const blocks = await Promise.all(net.apiUrls.map((u) => getJson(`${u}/v1/blocks/${height}`)));
      const hashes = blocks.map((b) => String(b.hash ?? (b.header as Record<string, unknown>).hash));
      assert.equal(new Set(hashes).size, 1, `block ${height}: ${hashes.join(' ')}`);
    }
  });

  it('changes view with workers after the leader is SIGKILLed, and the leader rejoins after a restart', async () => {
    const leader = Number((await status(net.apiUrls[0] as string)).leader);
    const viewBefore = Number((await status(net.apiUrls[0] as string)).view);
    const followers = [0, 1, 2].filter((i) => i !== leader).map((i) => net.apiUrls[i] as string);
    await net.kill(leader, 'SIGKILL');
    const a = accounts[1] as Account;
    // Commit mode waits through the request timeout and the view change.
    for (let i = 0; i < 4; i++) await commitAt(followers[i % 2] as string, a, recipient);
    const s = await status(followers[0] as string);
    assert.ok(Number(s.view) > viewBefore, `view ${s.view} should have moved past ${viewBefore}`);
    assert.notEqual(Number(s.leader), leader);

    await net.restart(leader);
    const url = net.apiUrls[leader] as string;
    assert.equal(await metric(url, 'hybster_pillar_threads'), PILLARS);
    const b = accounts[2] as Account;
    for (let i = 0; i < 3; i++) await commitAt(followers[i % 2] as string, b, recipient);
    const target = await heightOf(followers[0] as string);
    await waitFor(async () => (await heightOf(url)) >= target, 40_000, 'the restarted leader catching up');
  });
});

describe('integration: consensus.pillarThreads=off keeps P = 2 pillars in the main thread', function () {
  this.timeout(60_000);
  let net: Testnet;

  after(async () => {
    await net?.stop();
  });

  it('commits with no worker threads', async () => {
    net = await startTestnet({
      validators: 1,
      testnetArgs: ['--accounts', '2', '--pillars', '2'],
      env: { HYBSTER_CONSENSUS_PILLAR_THREADS: 'off' },
    });
    const [a, b] = loadAccounts(net.dir) as [Account, Account];
    const url = net.apiUrls[0] as string;
    assert.equal(await metric(url, 'hybster_pillar_threads'), 0);
    for (let i = 0; i < 3; i++) await commitAt(url, a, b.address);
    assert.ok((await heightOf(url)) >= 2);
  });
});
