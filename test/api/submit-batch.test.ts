// POST /v1/txs/batch against the real server on a real socket, backed by the real
// single-process ledger (LevelDB on disk, the real executor, signed txs): per-item
// results in order with the codes POST /v1/txs gives, whole-request errors, idempotency
// and a full mempool.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { ApiClient } from '../../api/client.js';
import type { NodePort } from '../../api/node-port.js';
import { createApiServer } from '../../api/server.js';
import { blockHash } from '../../ledger/block.js';
import { toHex } from '../../ledger/codec/binary.js';
import { decodeTx, encodeTx, signTx, TX_BYTES_MAX, txHash, txToJson } from '../../ledger/tx.js';
import { rejects } from './fixtures/rejects.js';
import { type SingleNode, startSingleNode } from './fixtures/single-node.js';

const BATCH_TXS_MAX = 16;
const BATCH_BODY_BYTES_MAX = 256 * 1024;

async function listen(app: FastifyInstance): Promise<string> {
  await app.listen({ host: '127.0.0.1', port: 0 });
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
}

async function postBatch(url: string, body: string) {
  const res = await fetch(`${url}/v1/txs/batch`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
  });
  return {
    status: res.status,
    retryAfter: res.headers.get('retry-after'),
    json: (await res.json()) as { error?: { code: string; field?: string } },
  };
}

type Item = { hash?: string; status?: string; error?: { code: string; field?: string } };
const codes = (results: Item[]) => results.map((r) => r.error?.code ?? r.status);

describe('POST /v1/txs/batch', function () {
  this.timeout(30_000);
  let node: SingleNode;
  let app: FastifyInstance;
  let url: string;
  let api: ApiClient;
  const to = (i: number) => node.accountKeys[i]!.publicKey;
  const transfer = (from: number, amount = 1n, o: { nonce?: bigint } = {}) =>
    node.signedTx(from, { type: 'transfer', to: to((from + 1) % 8), amount }, o);
  const chainOf = () => node.chainId;
  /** Signed outside the fixture's nonce counter: for txs that must be refused and use up nothing. */
  const raw = (from: number, nonce: bigint, chainId = chainOf(), amount = 1n) => {
    const key = node.accountKeys[from]!;
    return encodeTx(
      signTx(
        { chainId, from: key.publicKey, nonce, payload: { type: 'transfer', to: to(0), amount } },
        key.secretKey,
      ),
    );
  };

  before(async () => {
    node = await startSingleNode({ accounts: 8, mempoolTxsMax: 40 });
    app = await createApiServer({
      node: node.port,
      rateLimit: false,
      limits: { batchTxsMax: BATCH_TXS_MAX, batchBodyBytesMax: BATCH_BODY_BYTES_MAX },
    });
    url = await listen(app);
    api = new ApiClient(url);
  });
  after(async () => {
    await app.close();
    await node.close();
  });
  // Every test starts from an empty mempool.
  afterEach(async () => {
    await node.produceBlock();
  });

  it('accepts every tx of a batch and answers their hashes in the order sent', async () => {
    const txs = [3, 0, 5, 1, 4].map((a) => transfer(a));
    const r = await api.submitTxs(txs);
    assert.deepEqual(
      r.results,
      txs.map((t) => ({ hash: toHex(txHash(t)), status: 'accepted' })),
    );
    assert.equal(r.retryAfterMs, undefined);
    const block = await node.produceBlock();
    assert.deepEqual(
      new Set(block.txs.map((t) => toHex(txHash(t)))),
      new Set(txs.map((t) => toHex(txHash(t)))),
    );
    for (const t of txs) assert.equal((await api.tx(toHex(txHash(t)))).status, 'committed');
  });

  it('answers each refused tx with the code and field POST /v1/txs gives, and still takes the others', async () => {
    const good = transfer(0, 5n);
    const forged = Uint8Array.from(raw(1, 1n));
    forged[forged.length - 1]! ^= 1;
    const first = transfer(4, 1n);
    const firstDecoded = decodeTx(first);
    assert.ok(firstDecoded.ok);
    const asJson = transfer(5);
    const asJsonDecoded = decodeTx(asJson);
    assert.ok(asJsonDecoded.ok);
    const body = {
      txs: [
        toHex(good),
        toHex(forged),
        toHex(raw(2, 1n, 'other-chain')),
        toHex(raw(3, 0n)),
        toHex(first),
        toHex(raw(4, firstDecoded.value.nonce, chainOf(), 9n)),
        'zz',
        toHex(good.subarray(0, good.length - 3)),
        { ...txToJson(asJsonDecoded.value), nonce: 'x' },
        txToJson(asJsonDecoded.value),
        'ab'.repeat(TX_BYTES_MAX + 1),
      ],
    };
    const res = await postBatch(url, JSON.stringify(body));
    assert.equal(res.status, 200);
    const results = (res.json as { results: Item[] }).results;
    assert.deepEqual(codes(results), [
      'accepted',
      'bad-signature',
      'wrong-chain',
      'stale-nonce',
      'accepted',
      'duplicate-nonce',
      'malformed',
      'malformed',
      'schema-violation',
      'accepted',
      'too-large',
    ]);
    assert.deepEqual(
      results.map((r) => r.error?.field),
      [
        undefined,
        'signature',
        'tx.chainId',
        'nonce',
        undefined,
        'nonce',
        'tx',
        'tx.signature',
        'tx.nonce',
        undefined,
        'tx',
      ],
    );
    assert.equal(results[9]?.hash, toHex(txHash(asJson)));
    // The same tx alone through POST /v1/txs is refused with the same code and field.
    for (const [i, r] of results.entries()) {
      if (r.error === undefined) continue;
      const single = await fetch(`${url}/v1/txs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ tx: body.txs[i] }),
      });
      const e = ((await single.json()) as { error?: { code: string; field?: string } }).error;
      assert.deepEqual(
        { code: e?.code, field: e?.field },
        { code: r.error.code, field: r.error.field },
        `item ${i} alone`,
      );
    }
    assert.equal(res.retryAfter, null, 'no Retry-After when nothing was refused for load');
    // Only the three accepted txs reached the mempool.
    assert.equal(node.port.status().mempool.txs, 3);
  });

  it('refuses each tx string that is not whole hex as malformed, wherever the bad digit is, and takes the rest', async () => {
    const taken = [0, 1, 2, 3].map((i) => transfer(i));
    const [a, b, c, d] = taken.map(toHex);
    const spoil = (h: string, at: number, ch: string) => h.slice(0, at) + ch + h.slice(at + 1);
    const good = toHex(raw(4, 900n));
    const body = {
      txs: [
        a as string,
        spoil(good, good.length >> 1, 'g'),
        spoil(good, good.length - 1, 'z'),
        spoil(good, 0, 'x'),
        good.slice(0, -1),
        '',
        '0x',
        `0x${(b as string).toUpperCase()}`,
        `${good.slice(0, 100)} ${good.slice(101)}`,
        c as string,
        `${good.slice(0, 100)}\u00e9${good.slice(101)}`,
        // The same digit in the low byte of a wider character: the decoder alone would read it as that digit.
        `${good.slice(0, 100)}${String.fromCharCode(0x100 | good.charCodeAt(100))}${good.slice(101)}`,
        d as string,
      ],
    };
    const res = await postBatch(url, JSON.stringify(body));
    assert.equal(res.status, 200);
    const results = (res.json as { results: Item[] }).results;
    assert.deepEqual(codes(results), [
      'accepted',
      'malformed',
      'malformed',
      'malformed',
      'malformed',
      'malformed',
      'malformed',
      'accepted',
      'malformed',
      'accepted',
      'malformed',
      'malformed',
      'accepted',
    ]);
    for (const r of results) if (r.error !== undefined) assert.equal(r.error.field, 'tx');
    assert.equal(
      results[7]?.hash,
      toHex(txHash(taken[1]!)),
      'a 0x-prefixed upper-case tx is taken as its bytes',
    );
    assert.equal(node.port.status().mempool.txs, 4);
  });

  it('refuses a batch with an item that is neither a string nor an object with 400 naming the item', async () => {
    for (const bad of [null, true, ['ab'], 12]) {
      const r = await postBatch(url, JSON.stringify({ txs: [toHex(raw(5, 900n)), bad] }));
      assert.equal(r.status, 400, JSON.stringify(bad));
      assert.equal(r.json.error?.code, 'schema-violation');
      assert.equal(r.json.error?.field, 'txs.1');
    }
    for (const envelope of ['null', '[]', '"txs"', '{"txs":["ab"],"encoding":"utf8"}']) {
      const r = await postBatch(url, envelope);
      assert.equal(r.status, 400, envelope);
      assert.equal(r.json.error?.code, 'schema-violation', envelope);
    }
    assert.equal(node.port.status().mempool.txs, 0, 'a refused request takes no tx');
  });

  it('answers a batch sent again with the txs current status and never executes them twice', async () => {
    const txs = [0, 1, 2].map((a) => transfer(a, 2n));
    const first = await api.submitTxs(txs);
    assert.deepEqual(codes(first.results), ['accepted', 'accepted', 'accepted']);
    const again = await api.submitTxs(txs);
    assert.deepEqual(
      again.results,
      first.results.map((r) => ({ ...r, status: 'known' })),
    );
    const block = await node.produceBlock();
    const third = await api.submitTxs(txs);
    assert.deepEqual(codes(third.results), ['committed', 'committed', 'committed']);
    for (const [i, r] of third.results.entries()) {
      assert.ok(!('error' in r));
      assert.equal(r.hash, toHex(txHash(txs[i]!)));
      assert.equal(r.location?.height, Number(block.header.height));
      assert.equal(r.location?.blockHash, toHex(blockHash(block.header)));
      assert.deepEqual(r.result, { ok: true });
      assert.equal(toHex(txHash(block.txs[r.location.index]!)), r.hash);
    }
    const balances = await Promise.all(
      [0, 1, 2].map((a) => api.account(toHex(node.accountKeys[a]!.publicKey))),
    );
    await node.produceBlock();
    const after = await Promise.all([0, 1, 2].map((a) => api.account(toHex(node.accountKeys[a]!.publicKey))));
    assert.deepEqual(after, balances, 'a resubmitted batch changes no state');
  });

  it('refuses the txs the full mempool cannot take with mempool-full and Retry-After, and takes them later', async () => {
    const txs = Array.from({ length: 45 }, (_, i) => transfer(i % 8));
    const chunks = [txs.slice(0, 15), txs.slice(15, 30), txs.slice(30, 45)];
    const answers = [];
    for (const c of chunks) {
      const res = await postBatch(url, JSON.stringify({ txs: c.map(toHex) }));
      assert.equal(res.status, 200);
      answers.push(res);
    }
    const all = answers.flatMap((a) => (a.json as { results: Item[] }).results);
    assert.deepEqual(codes(all), [...Array(40).fill('accepted'), ...Array(5).fill('mempool-full')]);
    const last = answers[2]!;
    assert.ok(Number(last.retryAfter) >= 1, `Retry-After header: ${last.retryAfter}`);
    assert.ok(((last.json as { retryAfterMs?: number }).retryAfterMs ?? 0) > 0);
    await node.produceBlock();
    const retried = await api.submitTxs(txs.slice(40));
    assert.deepEqual(codes(retried.results), Array(5).fill('accepted'));
  });

  it('refuses an empty batch, a malformed envelope and a commit mode with 400', async () => {
    await rejects(api.call('submitTxs', { body: { txs: [] } }), 400, 'schema-violation', 'txs');
    const bad = await postBatch(url, '{"txs": [');
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error?.code, 'malformed');
    for (const [body, field] of [
      [{ txs: 'abcd' }, 'txs'],
      [{ tx: 'abcd' }, 'txs'],
      [{ txs: [toHex(transfer(0))], mode: 'commit' }, 'mode'],
      [{ txs: [toHex(transfer(0))], surprise: 1 }, undefined],
      [{ txs: [7] }, undefined],
    ] as const) {
      const r = await postBatch(url, JSON.stringify(body));
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.json.error?.code, 'schema-violation', JSON.stringify(body));
      if (field !== undefined) assert.equal(r.json.error?.field, field);
    }
    assert.equal(node.port.status().mempool.txs, 0, 'a refused request takes no tx');
  });

  it('refuses more txs than batchTxsMax and a body above batchBodyBytesMax with 413', async () => {
    const many = Array.from({ length: BATCH_TXS_MAX + 1 }, (_, i) => transfer(i % 8));
    await rejects(api.submitTxs(many), 413, 'too-large', 'txs');
    const fits = JSON.stringify({ txs: Array(BATCH_TXS_MAX).fill('ab'.repeat(1024)) });
    assert.ok(fits.length < BATCH_BODY_BYTES_MAX);
    assert.equal((await postBatch(url, fits)).status, 200, 'a body under the limit is read');
    const big = await postBatch(url, JSON.stringify({ txs: ['ab'.repeat(BATCH_BODY_BYTES_MAX / 2)] }));
    assert.equal(big.status, 413);
    assert.equal(big.json.error?.code, 'too-large');
    assert.equal(node.port.status().mempool.txs, 0);
  });

  it('answers 503 unavailable with Retry-After when the node takes nothing', async () => {
    node.setReady(false);
    try {
      const res = await postBatch(url, JSON.stringify({ txs: [toHex(raw(6, 500n))] }));
      assert.equal(res.status, 503);
      assert.equal(res.json.error?.code, 'unavailable');
      assert.ok(Number(res.retryAfter) >= 1);
    } finally {
      node.setReady(true);
    }
  });

  it("answers a tx that does not decode or names another chain with the API's own error even when the node refuses it for load", async () => {
    const refusing: NodePort = {
      ...node.port,
      submitTxs: async (encoded) =>
        encoded.map(() => ({
          kind: 'rejected',
          code: 'unavailable',
          message: 'stopping',
          retryAfterMs: 1000,
        })),
    };
    const app2 = await createApiServer({ node: refusing, rateLimit: false, explorer: false });
    try {
      const url2 = await listen(app2);
      const good = toHex(raw(6, 901n));
      const res = await postBatch(
        url2,
        JSON.stringify({ txs: ['abcd', toHex(raw(6, 902n, 'other-chain')), good] }),
      );
      assert.equal(res.status, 200, 'not every tx was refused for load');
      const results = (res.json as { results: Item[] }).results;
      assert.deepEqual(codes(results), ['malformed', 'wrong-chain', 'unavailable']);
      assert.deepEqual(
        results.map((r) => r.error?.field),
        ['tx.version', 'tx.chainId', undefined],
      );
      assert.ok(Number(res.retryAfter) >= 1);
      const all = await postBatch(url2, JSON.stringify({ txs: [good] }));
      assert.equal(all.status, 503);
    } finally {
      await app2.close();
    }
  });

  it('gives the same answers through a node port without a batch path', async () => {
    const { submitTxs: _, ...rest } = node.port;
    const port: NodePort = rest;
    const plain = await createApiServer({ node: port, rateLimit: false, explorer: false });
    try {
      const plainApi = new ApiClient(await listen(plain));
      const a = transfer(7);
      const r = await plainApi.submitTxs([a, a, raw(7, 0n)]);
      assert.deepEqual(codes(r.results), ['accepted', 'known', 'stale-nonce']);
    } finally {
      await plain.close();
    }
  });

  it('is documented in the OpenAPI document', async () => {
    const doc = (await (await fetch(`${url}/openapi.json`)).json()) as {
      paths: Record<string, { post?: { responses?: Record<string, unknown> } }>;
    };
    const op = doc.paths['/v1/txs/batch']?.post;
    assert.ok(op, '/v1/txs/batch documented');
    for (const status of ['200', '400', '413', '503']) assert.ok(status in (op.responses ?? {}), status);
  });
});
