// Committed blocks and txs are answered with a strong ETag and Cache-Control: immutable,
// and a request that names the ETag in If-None-Match gets a bodiless 304. Answers that can
// still change (a pending tx, the latest block, errors) carry neither. Real server, real
// socket, real ledger.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { IMMUTABLE_CACHE_CONTROL, immutableAnswer, matchesIfNoneMatch } from '../../api/immutable.js';
import { createApiServer } from '../../api/server.js';
import { toHex } from '../../ledger/codec/binary.js';
import { txHash } from '../../ledger/tx.js';
import { type SingleNode, startSingleNode } from './fixtures/single-node.js';

describe('matchesIfNoneMatch', () => {
  const etag = immutableAnswer('{"a":1}').etag;

  it('matches the ETag alone, in a list, weak on either side, and *', () => {
    assert.equal(matchesIfNoneMatch(etag, etag), true);
    assert.equal(matchesIfNoneMatch(`"x", ${etag}`, etag), true);
    assert.equal(matchesIfNoneMatch(`W/${etag}`, etag), true);
    assert.equal(matchesIfNoneMatch(etag, `W/${etag}`), true);
    assert.equal(matchesIfNoneMatch('*', etag), true);
  });

  it('does not match an absent header, another tag or the tag without quotes', () => {
    assert.equal(matchesIfNoneMatch(undefined, etag), false);
    assert.equal(matchesIfNoneMatch('"other"', etag), false);
    assert.equal(matchesIfNoneMatch(etag.slice(1, -1), etag), false);
  });

  it('derives the ETag from the bytes: equal bodies agree, different ones do not', () => {
    assert.equal(immutableAnswer('{"a":1}').etag, etag);
    assert.notEqual(immutableAnswer('{"a":2}').etag, etag);
    assert.match(etag, /^"[A-Za-z0-9_-]{22}"$/);
  });
});

describe('REST API conditional GET', function () {
  this.timeout(30_000);
  let node: SingleNode;
  let app: FastifyInstance;
  let url: string;
  let committed: string;
  let pending: string;

  before(async () => {
    node = await startSingleNode({ accounts: 3 });
    const to = node.accountKeys[2]!.publicKey;
    const tx = node.signedTx(0, { type: 'transfer', to, amount: 1n });
    await node.appendBlock([tx, node.signedTx(1, { type: 'transfer', to, amount: 2n })]);
    await node.appendBlock([node.signedTx(0, { type: 'transfer', to, amount: 3n })]);
    committed = toHex(txHash(tx));
    const later = node.signedTx(1, { type: 'transfer', to, amount: 4n });
    await node.port.submitTx(later);
    pending = toHex(txHash(later));
    app = await createApiServer({ node: node.port, rateLimit: false, explorer: false });
    await app.listen({ host: '127.0.0.1', port: 0 });
    url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await app.close();
    await node.close();
  });

  const get = async (path: string, headers: Record<string, string> = {}) => {
    const res = await fetch(`${url}${path}`, { headers });
    return { status: res.status, headers: res.headers, body: await res.text() };
  };

  // A block's ETag is the digest of its bytes; a tx's is weak, from where it committed.
  const txEtagOf = (body: string): string => {
    const a = JSON.parse(body) as { location: { blockHash: string; index: number } };
    return `W/"${a.location.blockHash.slice(0, 32)}.${a.location.index}"`;
  };
  for (const [what, path, etagFor] of [
    ['a committed tx', () => `/v1/txs/${committed}`, txEtagOf],
    ['a block by height', () => '/v1/blocks/1', (body: string) => immutableAnswer(body).etag],
  ] as const) {
    it(`answers ${what} with the same bytes and ETag on a miss and on a hit, and 304 to If-None-Match`, async () => {
      const first = await get(path());
      const second = await get(path());
      assert.equal(first.status, 200);
      assert.equal(second.body, first.body);
      const etag = first.headers.get('etag');
      assert.ok(etag !== null, 'an ETag is sent');
      assert.equal(second.headers.get('etag'), etag);
      assert.equal(first.headers.get('cache-control'), IMMUTABLE_CACHE_CONTROL);
      assert.equal(first.headers.get('content-type'), 'application/json; charset=utf-8');
      assert.equal(etag, etagFor(first.body));

      const bare = etag.replace(/^W\//, '');
      for (const inm of [etag, `W/${bare}`, bare, `"stale", ${etag}`]) {
        const again = await get(path(), { 'if-none-match': inm });
        assert.equal(again.status, 304, inm);
        assert.equal(again.body, '');
        assert.equal(again.headers.get('etag'), etag);
        assert.equal(again.headers.get('cache-control'), IMMUTABLE_CACHE_CONTROL);
      }
      const other = await get(path(), { 'if-none-match': '"stale"' });
      assert.equal(other.status, 200);
      assert.equal(other.body, first.body);
    });
  }

  it('answers a tx hash given in upper case or with 0x from the same cached answer', async () => {
    const plain = await get(`/v1/txs/${committed}`);
    for (const form of [committed.toUpperCase(), `0x${committed}`]) {
      const r = await get(`/v1/txs/${form}`);
      assert.equal(r.body, plain.body);
      assert.equal(r.headers.get('etag'), plain.headers.get('etag'));
    }
  });

  it('tells txs of one block apart by ETag', async () => {
    const block = JSON.parse((await get('/v1/blocks/1')).body) as { txs: { hash: string }[] };
    const tags = await Promise.all(
      block.txs.map(async (t) => (await get(`/v1/txs/${t.hash}`)).headers.get('etag')),
    );
    assert.equal(new Set(tags).size, block.txs.length);
  });

  it('gives a block the same ETag by height and by hash', async () => {
    const byHeight = await get('/v1/blocks/1');
    const hash = (JSON.parse(byHeight.body) as { header: { hash: string } }).header.hash;
    const byHash = await get(`/v1/blocks/by-hash/${hash}`);
    assert.equal(byHash.body, byHeight.body);
    assert.equal(byHash.headers.get('etag'), byHeight.headers.get('etag'));
    assert.equal(byHash.headers.get('cache-control'), IMMUTABLE_CACHE_CONTROL);
  });

  it('sends no ETag or immutable for answers that can still change', async () => {
    const latest = await get('/v1/blocks/latest');
    // Block 2 has its certificate, but no block after it has made that certificate durable.
    const unsettled = await get('/v1/blocks/2');
    assert.ok((JSON.parse(unsettled.body) as { commit: unknown }).commit, 'block 2 is certified');
    const pendingTx = await get(`/v1/txs/${pending}`);
    const unknown = await get(`/v1/txs/${'ab'.repeat(32)}`);
    const missing = await get('/v1/blocks/99');
    const pastSafe = await get('/v1/blocks/9999999999999999');
    assert.equal(pastSafe.status, 404, 'a height past 2^53 is simply not there');
    assert.equal(latest.status, 200);
    assert.equal((JSON.parse(pendingTx.body) as { status: string }).status, 'pending');
    assert.equal((JSON.parse(unknown.body) as { status: string }).status, 'unknown');
    assert.equal(missing.status, 404);
    for (const r of [latest, unsettled, pendingTx, unknown, missing, pastSafe]) {
      assert.equal(r.headers.get('etag'), null);
      assert.equal(r.headers.get('cache-control'), null);
    }
  });

  it('answers a tx that commits after a pending lookup as committed, with its ETag, and makes the block before final', async () => {
    await node.produceBlock();
    const r = await get(`/v1/txs/${pending}`);
    assert.equal((JSON.parse(r.body) as { status: string }).status, 'committed');
    assert.ok(r.headers.get('etag'));
    // Block 3's write carried block 2's certificate to disk: block 2 is final now.
    assert.equal((await get('/v1/blocks/2')).headers.get('cache-control'), IMMUTABLE_CACHE_CONTROL);
  });
});
