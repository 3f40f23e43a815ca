// The re-gossip rule (docs/node.md) on a real 3-validator network (separate processes,
// real LevelDB, tcp): a tx a follower holds but the leader never got is re-sent to the
// leader and committed in the same view, without a request timeout.
//
// The leader's mempool holds only 8 txs, so of a burst of 32 gossiped by a follower it
// keeps 8 and refuses the rest as full: those exist only in the followers' mempools. The
// leader orders its 8; after half a request timeout (1 s of the testnet's 2 s) in which
// it orders nothing more of theirs, the followers re-send every old tx, 8 more get in,
// and so on. Without re-gossip the leader would never see the other 24: after a request
// timeout without progress the followers would change view (asserted against below).
import assert from 'node:assert/strict';
import { ApiClient } from '../../api/client.js';
import { fromHex } from '../../ledger/codec/binary.js';
import { loadAccounts, metric, transfer, waitAllReady, waitFor } from '../helpers/client.js';
import { startTestnet, type Testnet } from '../helpers/testnet.js';

const CHAIN_ID = 'hybster-testnet';
const LEADER_POOL_TXS = 8;
const BURST = 32;

describe('integration: re-gossip of txs the leader missed', function () {
  this.timeout(120_000);
  let net: Testnet;

  before(async () => {
    net = await startTestnet({
      validators: 3,
      testnetArgs: ['--accounts', String(BURST + 1)],
      envFor: (i): Record<string, string> =>
        i === 0 ? { HYBSTER_MEMPOOL_TX_COUNT_MAX: String(LEADER_POOL_TXS) } : {},
    });
    await waitAllReady(net.apiUrls);
  });
  after(async () => {
    await net?.stop();
  });

  it('commits every tx only the followers held, in view 0, without a view change', async () => {
    const accounts = loadAccounts(net.dir);
    const to = accounts[0]!.address;
    const txs = accounts.slice(1, BURST + 1).map((a) => fromHex(transfer(CHAIN_ID, a, to, 1n).hex));
    const follower = new ApiClient(net.apiUrls[1] as string);
    const res = await follower.submitTxs(txs);
    const hashes = res.results.flatMap((r) => ('hash' in r && !('error' in r) ? [r.hash] : []));
    assert.equal(hashes.length, BURST, 'the follower accepts the whole burst');

    const clients = net.apiUrls.map((u) => new ApiClient(u));
    // 4 rounds of 8 at about one re-gossip interval each; a view change would take longer
    // than this only on a very loaded machine, and is checked for below anyway.
    await waitFor(
      async () => {
        for (const c of clients)
          for (const h of hashes) if ((await c.tx(h)).status !== 'committed') return false;
        return true;
      },
      60_000,
      'every tx of the burst committed on every validator',
    );
    for (const url of net.apiUrls) {
      assert.equal(await metric(url, 'hybster_view_changes_total'), 0, `no view change at ${url}`);
      assert.equal(await metric(url, 'hybster_view'), 0, `still view 0 at ${url}`);
    }
  });
});
