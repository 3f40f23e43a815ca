// POST /v1/txs/batch against a real 3-validator network (separate processes, real
// LevelDB, tcp): a batch handed to a follower is answered per tx in order, its good txs
// are gossiped, ordered and committed everywhere, and its bad ones change nothing.
import assert from 'node:assert/strict';
import { ApiClient } from '../../api/client.js';
import { fromHex } from '../../ledger/codec/binary.js';
import { type Account, loadAccounts, transfer, waitAllReady, waitFor } from '../helpers/client.js';
import { startTestnet, type Testnet } from '../helpers/testnet.js';

const CHAIN_ID = 'hybster-testnet';

describe('integration: batch submission to a 3-validator network', function () {
  this.timeout(120_000);
  let net: Testnet;
  let accounts: Account[];

  before(async () => {
    net = await startTestnet({ validators: 3, testnetArgs: ['--accounts', '40'] });
    await waitAllReady(net.apiUrls);
    accounts = loadAccounts(net.dir);
  });
  after(async () => {
    await net?.stop();
  });

  it('answers each tx in order and commits the good ones on every validator', async () => {
    const to = accounts[0]!.address;
    const good = accounts.slice(1, 33).map((a) => fromHex(transfer(CHAIN_ID, a, to, 3n).hex));
    const forged = fromHex(transfer(CHAIN_ID, accounts[33]!, to, 1n).hex);
    forged[forged.length - 1]! ^= 1;
    const wrongChain = fromHex(transfer('other-chain', accounts[34]!, to, 1n).hex);
    const txs = [...good.slice(0, 16), forged, ...good.slice(16), wrongChain];
    // A follower (validator 1 is not the leader of view 0): the txs reach the leader by gossip.
    const follower = new ApiClient(net.apiUrls[1] as string);
    const res = await follower.submitTxs(txs);
    assert.equal(res.results.length, txs.length);
    const codes = res.results.map((r) => ('error' in r ? r.error.code : r.status));
    assert.deepEqual(codes, [
      ...Array(16).fill('accepted'),
      'bad-signature',
      ...Array(16).fill('accepted'),
      'wrong-chain',
    ]);
    const hashes = res.results.flatMap((r) => ('hash' in r ? [r.hash] : []));
    assert.equal(hashes.length, 32);

    const clients = net.apiUrls.map((u) => new ApiClient(u));
    await waitFor(
      async () => {
        for (const c of clients) {
          for (const h of hashes) if ((await c.tx(h)).status !== 'committed') return false;
        }
        return true;
      },
      60_000,
      'every batched tx committed on every validator',
    );
    // Same place everywhere, and the forged tx's sender kept its money.
    for (const h of hashes.slice(0, 3)) {
      const where = await Promise.all(clients.map(async (c) => JSON.stringify((await c.tx(h)).location)));
      assert.equal(new Set(where).size, 1, `tx ${h} sits at one location on every validator`);
    }
    const forgedSender = Buffer.from(accounts[33]!.address).toString('hex');
    const acct = await clients[2]!.account(forgedSender);
    assert.equal(acct.nonce, '0');

    // Submitting the same batch again executes nothing twice: every good tx is already known.
    const again = await new ApiClient(net.apiUrls[2] as string).submitTxs(txs);
    const againCodes = again.results.map((r) => ('error' in r ? r.error.code : r.status));
    assert.ok(
      againCodes.every((c, i) =>
        i === 16 || i === 33 ? c !== 'accepted' : c === 'committed' || c === 'known',
      ),
      `resubmission answers: ${againCodes.join(',')}`,
    );
  });
});
