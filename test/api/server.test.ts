// Every route of the REST API against the real server on a real socket, backed by a
// real single-process ledger (test/api/fixtures/single-node.ts): LevelDB on disk, the
// real executor, signed txs. Calls go through the typed client where it can express
// them, and through raw fetch for the malformed requests it cannot.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { ApiClient } from '../../api/client.js';
import { createApiServer } from '../../api/server.js';
import { toHex } from '../../ledger/codec/binary.js';
import { verifyMerkleProof } from '../../ledger/merkle.js';
import { TX_BYTES_MAX, txHash } from '../../ledger/tx.js';
import { rejects } from './fixtures/rejects.js';
import { type SingleNode, startSingleNode } from './fixtures/single-node.js';

const hex = (b: Uint8Array): string => toHex(b);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

async function listen(app: FastifyInstance): Promise<string> {
  await app.listen({ host: '127.0.0.1', port: 0 });
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
}

async function post(url: string, body: string, contentType = 'application/json') {
  const res = await fetch(`${url}/v1/txs`, {
    method: 'POST',
    headers: { 'content-type': contentType },
    body,
  });
  return {
    status: res.status,
    headers: res.headers,
    json: (await res.json()) as { error?: { code: string; field?: string } },
  };
}

describe('REST API', function () {
  this.timeout(30_000);
  let node: SingleNode;
  let app: FastifyInstance;
  let url: string;
  let api: ApiClient;
  const addr = (i: number) => hex(node.accountKeys[i]!.publicKey);

  before(async () => {
    node = await startSingleNode({ accounts: 6, mempoolTxsMax: 50 });
    app = await createApiServer({ node: node.port, rateLimit: false, limits: { bodyBytesMax: 200_000 } });
    url = await listen(app);
    api = new ApiClient(url);
  });
  after(async () => {
    await app.close();
    await node.close();
  });

  describe('POST /v1/txs', () => {
    it('accepts a hex-encoded tx into the mempool with 202 and its hash', async () => {
      const tx = node.signedTx(0, { type: 'transfer', to: node.accountKeys[1]!.publicKey, amount: 10n });
      const r = await api.submitTx(tx);
      assert.deepEqual(r, { hash: hex(txHash(tx)), status: 'pending', duplicate: false });
      assert.equal((await api.tx(r.hash)).status, 'pending');
    });

    it('answers a resubmission with the current status and never executes it twice', async () => {
      const tx = node.signedTx(0, { type: 'transfer', to: node.accountKeys[1]!.publicKey, amount: 7n });
      await api.submitTx(tx);
      const again = await api.submitTx(tx);
      assert.equal(again.status, 'pending');
      assert.equal(again.duplicate, true);
      await node.produceBlock();
      const third = await api.submitTx(tx);
      assert.equal(third.status, 'committed');
      assert.equal(third.duplicate, true);
      assert.equal(third.result?.ok, true);
      const before = await api.account(addr(0));
      await node.produceBlock();
      assert.deepEqual(await api.account(addr(0)), before, 'a duplicate changes no state');
      const blk = await api.block(third.location!.height);
      assert.equal(blk.txs.filter((t) => t.hash === third.hash).length, 1);
    });

    it('accepts the tx as JSON and as base64', async () => {
      const { decodeTx, txToJson } = await import('../../ledger/tx.js');
      const tx = node.signedTx(2, { type: 'kv.put', key: enc('cfg/a'), value: enc('1') });
      const d = decodeTx(tx);
      assert.ok(d.ok);
      const r1 = await api.submitTx(txToJson(d.value));
      assert.equal(r1.hash, hex(txHash(tx)));
      const tx2 = node.signedTx(2, { type: 'kv.put', key: enc('cfg/b'), value: enc('2') });
      const r2 = await api.call('submitTx', {
        body: { tx: Buffer.from(tx2).toString('base64'), encoding: 'base64' },
      });
      assert.equal(r2.hash, hex(txHash(tx2)));
      await node.produceBlock();
    });

    it('in commit mode waits for the block and returns location, result and a verified commit certificate', async () => {
      const tx = node.signedTx(3, { type: 'transfer', to: node.accountKeys[4]!.publicKey, amount: 1n });
      const pending = api.submitTx(tx, { mode: 'commit', timeoutMs: 5000 });
      // Cut the block once the tx is in the mempool, while the request is still waiting.
      while ((await node.port.txStatus(txHash(tx))).state !== 'pending') await sleep(5);
      await node.produceBlock();
      const r = await pending;
      assert.equal(r.status, 'committed');
      assert.equal(r.duplicate, false);
      assert.deepEqual(r.result, { ok: true });
      assert.ok(r.location && r.location.height >= 1);
      const block = await api.block(r.location.height);
      assert.equal(block.txs[r.location.index]?.hash, r.hash);
      assert.equal(r.location.blockHash, block.header.hash);
      assert.ok(r.commit, 'commit certificate present');
      assert.equal(r.commit.blockHash, block.header.hash);
      assert.equal(r.commit.verified, true);
      assert.equal(r.commit.signatures.length, 2);
    });

    it('in commit mode answers 202 pending when the timeout passes first', async () => {
      const tx = node.signedTx(3, { type: 'transfer', to: node.accountKeys[4]!.publicKey, amount: 1n });
      const started = Date.now();
      const r = await api.submitTx(tx, { mode: 'commit', timeoutMs: 150 });
      assert.equal(r.status, 'pending');
      assert.ok(Date.now() - started >= 140);
      await node.produceBlock();
    });

    it('refuses malformed JSON with 400 malformed', async () => {
      const r = await post(url, '{"tx": ');
      assert.equal(r.status, 400);
      assert.equal(r.json.error?.code, 'malformed');
    });

    it('refuses a schema violation with 400 schema-violation naming the field', async () => {
      const r = await post(url, JSON.stringify({ tx: 'abcd', mode: 'later' }));
      assert.equal(r.status, 400);
      assert.equal(r.json.error?.code, 'schema-violation');
      assert.equal(r.json.error?.field, 'mode');
      const extra = await post(url, JSON.stringify({ tx: 'abcd', surprise: 1 }));
      assert.equal(extra.json.error?.code, 'schema-violation');
      await rejects(
        api.call('submitTx', { body: { tx: { chainId: 'x' } as never } }),
        400,
        'schema-violation',
      );
    });

    it('refuses non-hex and undecodable bytes with 400 malformed', async () => {
      await rejects(api.call('submitTx', { body: { tx: 'zz' } }), 400, 'malformed', 'tx');
      await rejects(
        api.call('submitTx', { body: { tx: 'base64?!', encoding: 'base64' } }),
        400,
        'malformed',
        'tx',
      );
      const tx = node.signedTx(
        5,
        { type: 'transfer', to: node.accountKeys[1]!.publicKey, amount: 1n },
        { nonce: 99n },
      );
      await rejects(api.submitTx(tx.subarray(0, tx.length - 3)), 400, 'malformed');
      await rejects(api.submitTx(Uint8Array.of(...tx, 0)), 400, 'malformed');
    });

    it('refuses a tx above TX_BYTES_MAX and a body above the limit with 413', async () => {
      const big = new Uint8Array(TX_BYTES_MAX + 1);
      big[0] = 1;
      await rejects(api.submitTx(big), 413, 'too-large', 'tx');
      const r = await post(url, JSON.stringify({ tx: 'ab'.repeat(150_000) }));
      assert.equal(r.status, 413);
      assert.equal(r.json.error?.code, 'too-large');
    });

    it('refuses a bad signature and a wrong chain id with 422', async () => {
      const tx = node.signedTx(
        5,
        { type: 'transfer', to: node.accountKeys[1]!.publicKey, amount: 1n },
        { nonce: 1n },
      );
      const forged = Uint8Array.from(tx);
      forged[forged.length - 1]! ^= 1;
      await rejects(api.submitTx(forged), 422, 'bad-signature', 'signature');
      const other = node.signedTx(
        5,
        { type: 'transfer', to: node.accountKeys[1]!.publicKey, amount: 1n },
        {
          nonce: 1n,
          chainId: 'other-chain',
        },
      );
      await rejects(api.submitTx(other), 422, 'wrong-chain', 'tx.chainId');
    });

    it('refuses a stale or duplicate nonce with 409', async () => {
      const stale = node.signedTx(
        0,
        { type: 'transfer', to: node.accountKeys[1]!.publicKey, amount: 3n },
        { nonce: 1n },
      );
      await rejects(api.submitTx(stale), 409, 'stale-nonce', 'nonce');
      const a = node.signedTx(
        1,
        { type: 'transfer', to: node.accountKeys[2]!.publicKey, amount: 1n },
        { nonce: 1n },
      );
      const b = node.signedTx(
        1,
        { type: 'transfer', to: node.accountKeys[2]!.publicKey, amount: 2n },
        { nonce: 1n },
      );
      await api.submitTx(a);
      await rejects(api.submitTx(b), 409, 'duplicate-nonce', 'nonce');
      await node.produceBlock();
    });

    it('answers 503 with Retry-After when the mempool is full or the node is not ready', async () => {
      for (let i = 0; i < 50; i++) {
        await api.submitTx(node.signedTx(4, { type: 'kv.put', key: enc(`fill/${i}`), value: enc('x') }));
      }
      const e = await rejects(
        api.submitTx(node.signedTx(4, { type: 'kv.put', key: enc('fill/overflow'), value: enc('x') })),
        503,
        'mempool-full',
      );
      assert.ok((e.retryAfterMs ?? 0) >= 1000);
      await node.produceBlock();
      node.setReady(false);
      try {
        await rejects(
          api.submitTx(
            node.signedTx(4, { type: 'kv.put', key: enc('fill/overflow'), value: enc('x') }, { nonce: 51n }),
          ),
          503,
          'unavailable',
        );
        await rejects(api.ready(), 503, 'unavailable');
      } finally {
        node.setReady(true);
      }
    });

    it('refuses other content types with 415', async () => {
      const r = await post(url, '<tx/>', 'application/xml');
      assert.equal(r.status, 415);
      assert.equal(r.json.error?.code, 'unsupported-media-type');
    });
  });

  describe('GET /v1/txs/:hash', () => {
    it('returns a committed tx with its location, result and a Merkle proof that verifies', async () => {
      const txs = [0, 1, 2].map((i) =>
        node.signedTx(i, { type: 'transfer', to: node.accountKeys[5]!.publicKey, amount: 2n }),
      );
      for (const t of txs) await api.submitTx(t);
      await node.produceBlock();
      const r = await api.tx(hex(txHash(txs[1]!)));
      assert.equal(r.status, 'committed');
      assert.equal(r.encoded, hex(txs[1]!));
      assert.equal(r.tx?.payload.type, 'transfer');
      assert.ok(r.proof && r.location);
      const block = await api.block(r.location.height);
      assert.equal(r.proof.root, block.header.txRoot);
      const proof = {
        index: r.proof.index,
        leafCount: r.proof.leafCount,
        siblings: r.proof.siblings.map((s) => Buffer.from(s, 'hex')),
      };
      assert.equal(verifyMerkleProof(txHash(txs[1]!), proof, Buffer.from(r.proof.root, 'hex')), true);
      assert.equal(verifyMerkleProof(txHash(txs[0]!), proof, Buffer.from(r.proof.root, 'hex')), false);
    });

    it('reports an unknown hash as unknown and a malformed hash as 400', async () => {
      assert.deepEqual(await api.tx('00'.repeat(32)), { hash: '00'.repeat(32), status: 'unknown' });
      await rejects(api.tx('1234'), 400, 'schema-violation', 'params.hash');
    });
  });

  describe('blocks', () => {
    it('serves the latest block, a block by height and by hash, all the same', async () => {
      const latest = await api.latestBlock();
      const byHeight = await api.block(latest.header.height);
      const byHash = await api.blockByHash(latest.header.hash);
      assert.deepEqual(byHeight, latest);
      assert.deepEqual(byHash, latest);
      assert.equal(latest.header.txCount, latest.txs.length);
      assert.equal(latest.commit?.verified, true);
      const prev = await api.block(latest.header.height - 1);
      assert.equal(latest.header.prevHash, prev.header.hash);
      assert.equal(latest.parentCommit?.blockHash, prev.header.hash);
    });

    it('answers 404 for a missing height or hash and 400 for a malformed one', async () => {
      await rejects(api.block(0), 404, 'not-found');
      await rejects(api.block(1_000_000), 404, 'not-found', 'height');
      await rejects(api.blockByHash('ab'.repeat(32)), 404, 'not-found');
      await rejects(api.call('getBlockByHeight', { params: { height: '-1' } }), 400, 'schema-violation');
      await rejects(api.call('getBlockByHeight', { params: { height: 'x' } }), 400, 'schema-violation');
    });

    it('pages through blocks newest first with a cursor', async () => {
      const tip = (await api.status()).height;
      const seen: number[] = [];
      let before: number | undefined;
      for (;;) {
        const page = await api.blocks({ limit: 3, ...(before === undefined ? {} : { before }) });
        seen.push(...page.blocks.map((b) => b.height));
        if (page.next === null) break;
        before = page.next;
      }
      assert.deepEqual(
        seen,
        Array.from({ length: tip }, (_, i) => tip - i),
      );
      await rejects(api.blocks({ limit: 0 }), 400, 'schema-violation');
      const capped = await api.blocks({ limit: 1000 });
      assert.ok(capped.blocks.length <= 100);
    });
  });

  describe('accounts', () => {
    it('returns balance, nonce and next nonce', async () => {
      const a = await api.account(addr(0));
      // Three committed transfers from account 0 so far: 10, 7 and 2.
      assert.equal(a.nonce, '3');
      assert.equal(a.nextNonce, '4');
      assert.equal(BigInt(a.balance), 1_000_000_000n - 10n - 7n - 2n);
      const fresh = await api.account('ee'.repeat(32));
      assert.deepEqual([fresh.balance, fresh.nonce], ['0', '0']);
      await rejects(api.account('xyz'), 400, 'schema-violation');
    });

    it('lists an account txs newest first across pages', async () => {
      const all: string[] = [];
      let cursor: string | undefined;
      for (;;) {
        const page = await api.accountTxs(addr(0), { limit: 2, ...(cursor === undefined ? {} : { cursor }) });
        all.push(...page.txs.map((t) => `${t.height}:${t.index}`));
        if (page.next === null) break;
        cursor = page.next;
      }
      assert.equal(all.length, 3);
      const sorted = [...all].sort((x, y) => {
        const [hx, ix] = x.split(':').map(Number) as [number, number];
        const [hy, iy] = y.split(':').map(Number) as [number, number];
        return hy - hx || iy - ix;
      });
      assert.deepEqual(all, sorted);
      await rejects(
        api.accountTxs(addr(0), { cursor: 'nope' }),
        400,
        'schema-violation',
        'querystring.cursor',
      );
    });
  });

  describe('key-value', () => {
    it('returns a value with version, its history, and keys by prefix', async () => {
      const key = hex(enc('cfg/a'));
      const v = await api.kv(key);
      assert.equal(v.valueUtf8, '1');
      assert.equal(v.version, '1');
      assert.equal(v.lastModifiedBy, addr(2));
      await api.submitTx(
        node.signedTx(2, { type: 'kv.cas', key: enc('cfg/a'), expectedVersion: 1n, value: enc('one') }),
      );
      await node.produceBlock();
      const v2 = await api.kv(key);
      assert.deepEqual([v2.valueUtf8, v2.version], ['one', '2']);
      const hist = await api.kvHistory(key);
      assert.deepEqual(
        hist.entries.map((e) => [e.version, e.valueUtf8]),
        [
          ['2', 'one'],
          ['1', '1'],
        ],
      );
      const list = await api.kvList({ prefix: hex(enc('cfg/')), limit: 1 });
      assert.equal(list.entries[0]?.keyUtf8, 'cfg/a');
      assert.ok(list.next);
      const page2 = await api.kvList({ prefix: hex(enc('cfg/')), after: list.next, limit: 1 });
      assert.equal(page2.entries[0]?.keyUtf8, 'cfg/b');
    });

    it('answers 404 for a missing key and 400 for a malformed one', async () => {
      await rejects(api.kv(hex(enc('nope'))), 404, 'not-found', 'key');
      await rejects(api.kv('xyz'), 400, 'schema-violation');
      await rejects(api.kvList({ prefix: 'q' }), 400, 'schema-violation');
    });
  });

  describe('node', () => {
    it('reports status, health, readiness, validators and genesis', async () => {
      const st = await api.status();
      assert.equal(st.chainId, node.chainId);
      assert.equal(st.height, Number(node.port.store.latestHeight()));
      assert.equal(st.latestBlockHash, (await api.latestBlock()).header.hash);
      assert.equal(st.leaderName, 'v0');
      assert.equal(st.validatorCount, 3);
      assert.deepEqual(await api.health(), { ok: true });
      assert.deepEqual(await api.ready(), { ready: true });
      const vs = await api.validators();
      assert.deepEqual(
        vs.validators.map((v) => [v.name, v.connected]),
        [
          ['v0', null],
          ['v1', true],
          ['v2', true],
        ],
      );
      assert.deepEqual(await api.genesis(), node.port.genesis.document);
    });

    it('serves Prometheus metrics, the OpenAPI document, the docs UI and the explorer page', async () => {
      const metrics = await (await fetch(`${url}/metrics`)).text();
      assert.match(metrics, /api_request_duration_seconds_bucket\{.*route="\/v1\/status"/);
      const doc = (await (await fetch(`${url}/openapi.json`)).json()) as { paths: Record<string, unknown> };
      for (const p of ['/v1/txs', '/v1/blocks/{height}', '/v1/accounts/{address}/txs', '/v1/stream/blocks']) {
        assert.ok(p in doc.paths, `${p} documented`);
      }
      const docs = await fetch(`${url}/docs`, { redirect: 'follow' });
      assert.equal(docs.status, 200);
      assert.match(await docs.text(), /swagger/i);
      const page = await fetch(`${url}/`);
      assert.equal(page.status, 200);
      assert.match(page.headers.get('content-type') ?? '', /text\/html/);
    });

    it('answers unknown routes with a typed 404', async () => {
      const res = await fetch(`${url}/v1/nothing`);
      assert.equal(res.status, 404);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'not-found');
    });
  });

  describe('GET /v1/stream/blocks', () => {
    it('streams new blocks and, with ?account, that account txs', async () => {
      const ac = new AbortController();
      const blocks: number[] = [];
      const txs: string[] = [];
      const done = api.streamBlocks({
        signal: ac.signal,
        account: addr(5),
        onBlock: (b) => blocks.push(b.height),
        onTx: (t) => txs.push(t.hash),
      });
      await sleep(100);
      const tx = node.signedTx(0, { type: 'transfer', to: node.accountKeys[5]!.publicKey, amount: 1n });
      await api.submitTx(tx);
      const b1 = await node.produceBlock();
      const b2 = await node.produceBlock();
      for (let i = 0; i < 50 && blocks.length < 2; i++) await sleep(20);
      ac.abort();
      await done;
      assert.deepEqual(blocks, [Number(b1.header.height), Number(b2.header.height)]);
      assert.deepEqual(txs, [hex(txHash(tx))]);
    });
  });
});

describe('REST API limits', function () {
  this.timeout(30_000);
  let node: SingleNode;
  let app: FastifyInstance;
  let url: string;

  before(async () => {
    node = await startSingleNode();
    app = await createApiServer({
      node: node.port,
      rateLimit: { max: 3, windowMs: 60_000 },
      limits: { streamsMax: 1 },
    });
    url = await listen(app);
  });
  after(async () => {
    await app.close();
    await node.close();
  });

  it('answers 429 rate-limited with Retry-After once a client exceeds its budget', async () => {
    const api = new ApiClient(url);
    for (let i = 0; i < 3; i++) await api.health();
    const e = await rejects(api.health(), 429, 'rate-limited');
    assert.ok((e.retryAfterMs ?? 0) > 0);
  });
});

describe('REST API streams limit', function () {
  this.timeout(30_000);
  it('refuses a live stream beyond streamsMax with 503 too-many-streams', async () => {
    const node = await startSingleNode();
    const app = await createApiServer({ node: node.port, rateLimit: false, limits: { streamsMax: 1 } });
    try {
      const url = await listen(app);
      const api = new ApiClient(url);
      const ac = new AbortController();
      const first = api.streamBlocks({ signal: ac.signal, onBlock: () => undefined });
      await sleep(100);
      await rejects(
        api.streamBlocks({ signal: ac.signal, onBlock: () => undefined }),
        503,
        'too-many-streams',
      );
      ac.abort();
      await first;
    } finally {
      await app.close();
      await node.close();
    }
  });
});
