// The read caches (rendered blocks, per-block txs and trees, certificate verdicts) must
// never change an answer: a server whose caches hold one entry (every other lookup evicts
// and rebuilds) answers exactly like one whose caches hold everything, over the same ledger.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { ApiClient } from '../../api/client.js';
import { createApiServer } from '../../api/server.js';
import { toHex } from '../../ledger/codec/binary.js';
import { verifyMerkleProof } from '../../ledger/merkle.js';
import { txHash } from '../../ledger/tx.js';
import { type SingleNode, startSingleNode } from './fixtures/single-node.js';

describe('REST API read caches', function () {
  this.timeout(30_000);
  let node: SingleNode;
  const apps: FastifyInstance[] = [];
  let roomy: ApiClient;
  let tiny: ApiClient;
  const txs: Uint8Array[] = [];

  before(async () => {
    node = await startSingleNode({ accounts: 4 });
    const to = node.accountKeys[3]!.publicKey;
    for (let b = 0; b < 6; b++) {
      const block = Array.from({ length: 5 + b }, (_, i) =>
        node.signedTx(i % 3, { type: 'transfer', to, amount: 1n }),
      );
      // From the second block on, replay a tx of the block before: it fails, and its
      // location stays where it first committed.
      if (b > 0) block.push(txs[txs.length - 1]!);
      await node.appendBlock(block);
      txs.push(...block);
    }
    const clientOf = async (limits: Parameters<typeof createApiServer>[0]['limits']) => {
      const app = await createApiServer({ node: node.port, rateLimit: false, explorer: false, limits });
      apps.push(app);
      await app.listen({ host: '127.0.0.1', port: 0 });
      return new ApiClient(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}`);
    };
    roomy = await clientOf({});
    tiny = await clientOf({
      blockCacheEntries: 1,
      blockTxsCacheEntries: 1,
      blockTxsCacheBytesMax: 1,
      txAnswerCacheEntries: 1,
      certVerdictsEntries: 1,
    });
  });
  after(async () => {
    for (const app of apps) await app.close();
    await node.close();
  });

  it('answer every tx lookup alike, with proofs that verify, when every lookup evicts', async () => {
    const order = txs.map((_, i) => (i * 7) % txs.length);
    for (const i of [...order, ...order]) {
      const hash = toHex(txHash(txs[i]!));
      const [a, b] = [await roomy.tx(hash), await tiny.tx(hash)];
      assert.deepEqual(b, a);
      assert.equal(a.status, 'committed');
      assert.equal(a.encoded, toHex(txs[i]!));
      assert.ok(a.proof && a.location);
      const proof = { ...a.proof, siblings: a.proof.siblings.map((s) => Buffer.from(s, 'hex')) };
      assert.equal(verifyMerkleProof(txHash(txs[i]!), proof, Buffer.from(a.proof.root, 'hex')), true);
      assert.equal(a.result?.ok, true, 'the first occurrence (which succeeded) is the one served');
    }
  });

  it('answer every block alike, certificates verified, when every lookup evicts', async () => {
    const height = Number(node.port.store.latestHeight());
    for (const h of [1, 3, 2, 6, 1, 5, 4, 6, 2]) {
      const [a, b] = [await roomy.block(h), await tiny.block(h)];
      assert.deepEqual(b, a);
      assert.equal(a.header.height, h);
      assert.equal(a.commit?.verified, true);
      if (h > 1) assert.equal(a.parentCommit?.verified, true);
    }
    assert.equal(height, 6);
  });

  it('answer concurrent requests that miss the same block alike (one shared read)', async () => {
    const hash = toHex(txHash(txs[3]!));
    const [blocks, lookups] = await Promise.all([
      Promise.all(Array.from({ length: 16 }, () => tiny.block(2))),
      Promise.all(Array.from({ length: 16 }, () => tiny.tx(hash))),
    ]);
    const [block, tx] = [await roomy.block(2), await roomy.tx(hash)];
    for (const b of blocks) assert.deepEqual(b, block);
    for (const t of lookups) assert.deepEqual(t, tx);
  });
});

describe('REST API tx answer cache', function () {
  this.timeout(30_000);
  let node: SingleNode;
  let app: FastifyInstance;
  let api: ApiClient;
  const txs: Uint8Array[] = [];

  before(async () => {
    node = await startSingleNode({ accounts: 3 });
    const to = node.accountKeys[2]!.publicKey;
    txs.push(node.signedTx(0, { type: 'transfer', to, amount: 1n }));
    txs.push(node.signedTx(1, { type: 'transfer', to, amount: 1n }));
    txs.push(node.signedTx(0, { type: 'transfer', to, amount: 1n }));
    await node.appendBlock(txs);
    app = await createApiServer({ node: node.port, rateLimit: false, explorer: false });
    await app.listen({ host: '127.0.0.1', port: 0 });
    api = new ApiClient(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}`);
  });
  after(async () => {
    await app.close();
    await node.close();
  });

  it('keeps a committed tx looked up twice and answers it after the store has closed', async () => {
    const [twice, once, never] = txs.map((t) => toHex(txHash(t))) as [string, string, string];
    const first = await api.tx(twice);
    assert.deepEqual(await api.tx(twice), first);
    await api.tx(once);
    await node.port.store.close();
    assert.deepEqual(await api.tx(twice), first, 'served from memory');
    for (const hash of [once, never]) {
      // Not admitted (one lookup) or never seen: these need the store, which is shut.
      const res = await fetch(`${api.baseUrl}/v1/txs/${hash}`);
      assert.equal(res.status, 503);
    }
  });
});
