// batch.sendAhead on a real 3-validator network (separate processes, real LevelDB, TCP):
// the leader's PREPAREs leave while their writes are in flight; a leader stopped cleanly
// restarts as the leader of the same view (its last header is rewritten without
// `sentAhead`), and a SIGKILLed one restarts unable to help form a view change until it
// certified in a later view, while the others change the view without it, lose no
// acknowledged tx, and take it back in (docs/consensus.md, "Sending ahead of the write").
import assert from 'node:assert/strict';
import {
  type Account,
  blockAt,
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

describe('integration: a leader sending its PREPAREs ahead of its writes (batch.sendAhead)', function () {
  this.timeout(120_000);
  let net: Testnet;
  let accounts: Account[];
  let recipient: Uint8Array;

  before(async () => {
    net = await startTestnet({
      validators: 3,
      transport: 'tcp',
      testnetArgs: ['--accounts', '4'],
      env: { HYBSTER_BATCH_SEND_AHEAD: 'true' },
    });
    accounts = loadAccounts(net.dir);
    recipient = (accounts.pop() as Account).address;
    await waitAllReady(net.apiUrls);
  });

  after(async () => {
    await net?.stop();
  });

  /** Commits `count` transfers from `a`, one after another, through the validators in `urls`. */
  async function commit(a: Account, count: number, urls: string[]): Promise<string[]> {
    const hashes: string[] = [];
    for (let i = 0; i < count; i++) {
      const r = await submit(
        urls[i % urls.length] as string,
        transfer(CHAIN_ID, a, recipient, 1n).hex,
        'commit',
        15_000,
      );
      assert.equal(r.status, 200, JSON.stringify(r.body));
      hashes.push(String(r.body.hash));
    }
    return hashes;
  }

  const leaderNow = async (): Promise<number> => Number((await status(net.apiUrls[0] as string)).leader);

  it("sends the leader's PREPAREs ahead, and a cleanly restarted leader keeps its view", async () => {
    await commit(accounts[0] as Account, 6, net.apiUrls);
    const leader = await leaderNow();
    const ahead = (await metric(net.apiUrls[leader] as string, 'hybster_prepares_sent_ahead_total')) ?? 0;
    assert.ok(ahead > 0, 'the leader sent PREPAREs ahead of their writes');
    const viewBefore = Number((await status(net.apiUrls[leader] as string)).view);
    await net.kill(leader, 'SIGTERM');
    await net.restart(leader);
    await waitAllReady(net.apiUrls);
    await commit(accounts[0] as Account, 4, net.apiUrls);
    const s = await status(net.apiUrls[leader] as string);
    assert.equal(Number(s.view), viewBefore, 'no view change after a clean restart');
    assert.equal(Number(s.leader), leader);
  });

  it('changes the view without a SIGKILLed leader, loses no acknowledged tx, and takes it back in', async () => {
    const leader = await leaderNow();
    const followers = [0, 1, 2].filter((i) => i !== leader).map((i) => net.apiUrls[i] as string);
    const acknowledged = await commit(accounts[1] as Account, 2, followers);
    // The last write before the kill must be a PREPARE's (written with sentAhead): blocks at
    // checkpoint heights (testnet K = 16) are followed by a stable checkpoint's plain write,
    // after which a restart has nothing to forget.
    while ((await heightOf(followers[0] as string)) % 16 !== 5)
      acknowledged.push(...(await commit(accounts[1] as Account, 1, followers)));
    const viewBefore = Number((await status(followers[0] as string)).view);
    await net.kill(leader, 'SIGKILL');
    // Back at once, inside the request timeout: without sendAhead it would lead on; with it,
    // it does not know what it sent and leaves the view, and the followers move on without it.
    await net.restart(leader);
    acknowledged.push(...(await commit(accounts[1] as Account, 6, followers)));
    const s = await status(followers[0] as string);
    assert.ok(Number(s.view) > viewBefore, `view ${s.view} should have moved past ${viewBefore}`);
    // The restarted validator joins the new view and executes its blocks like the others.
    acknowledged.push(...(await commit(accounts[2] as Account, 6, followers)));
    const url = net.apiUrls[leader] as string;
    const target = await heightOf(followers[0] as string);
    await waitFor(async () => (await heightOf(url)) >= target, 40_000, 'the restarted validator catching up');
    await waitFor(
      async () => Number((await status(url)).view) === Number((await status(followers[0] as string)).view),
      40_000,
      'the restarted validator in the new view',
    );
    for (const u of net.apiUrls)
      for (const hash of acknowledged) {
        const t = await getJson(`${u}/v1/txs/${hash}`);
        assert.equal(t.status, 'committed', `${hash} missing on ${u}`);
      }
    const blocks = await Promise.all(net.apiUrls.map((u) => blockAt(u, target)));
    assert.equal(new Set(blocks.map((b) => b.hash)).size, 1, 'identical blocks everywhere');
  });
});
