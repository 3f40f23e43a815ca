// node/submit-batch.ts over the real mempool: the rules the validator's
// NodePort.submitTxs follows (order, committed txs, a full mempool, a stopping node).
import assert from 'node:assert/strict';
import type { TxLocation } from '../../api/node-port.js';
import { toHex } from '../../ledger/codec/binary.js';
import { generateKeyPair, type KeyPair } from '../../ledger/keys.js';
import { encodeTx, signTx, txHash } from '../../ledger/tx.js';
import { Mempool } from '../../node/mempool.js';
import { type BatchIntakeHooks, MEMPOOL_FULL_RETRY_MS, submitBatch } from '../../node/submit-batch.js';

const chainId = 'test-chain';
const alice = generateKeyPair();
const bob = generateKeyPair();

function tx(nonce: bigint, from: KeyPair = alice, amount = 1n): Uint8Array {
  return encodeTx(
    signTx(
      { chainId, from: from.publicKey, nonce, payload: { type: 'transfer', to: bob.publicKey, amount } },
      from.secretKey,
    ),
  );
}

/** A real mempool (committed nonce 2 for alice, i.e. nonces 1 and 2 are in blocks) and the hooks around it. */
function intake(txCountMax = 100) {
  const committed = new Map<string, TxLocation>();
  const pool = new Mempool(chainId, { txCountMax, bytesMax: 1 << 20, nonceAheadMax: 100 }, async (hex) =>
    hex === toHex(alice.publicKey) ? 2n : 0n,
  );
  const gossiped: Uint8Array[][] = [];
  let accepting = true;
  let adds = 0;
  const verifiedAhead: number[] = [];
  const hooks: BatchIntakeHooks = {
    accepting: () => accepting,
    room: () => txCountMax - pool.size,
    prepare: (e) => pool.prepare(e),
    verifyAhead: (txs) => {
      verifiedAhead.push(txs.length);
      return pool.verifyAhead(txs);
    },
    add: (e) => {
      adds++;
      return pool.addPrepared(e, { verifySignature: true, local: true });
    },
    committed: async (hash) => committed.get(toHex(hash)) ?? null,
    accepted: (txs) => gossiped.push([...txs]),
  };
  return {
    hooks,
    pool,
    committed,
    gossiped,
    stop: () => {
      accepting = false;
    },
    adds: () => adds,
    verifiedAhead,
  };
}

describe('node/submit-batch', () => {
  it('answers every tx in order and hands the accepted ones on in one call', async () => {
    const t = intake();
    const a = tx(3n);
    const b = tx(1n, bob);
    const twin = tx(3n, alice, 5n);
    const forged = Uint8Array.from(tx(4n));
    forged[forged.length - 1] = (forged[forged.length - 1] as number) ^ 1;
    const out = await submitBatch(t.hooks, [a, b, a, twin, forged, tx(2n)]);
    assert.deepEqual(
      out.map((o) => (o.kind === 'rejected' ? o.code : o.kind)),
      ['accepted', 'accepted', 'known', 'duplicate-nonce', 'bad-signature', 'stale-nonce'],
    );
    assert.deepEqual(t.gossiped, [[a, b]]);
    assert.equal(t.pool.size, 2);
    assert.deepEqual(t.verifiedAhead, [6]);
    for (const good of [a, b]) assert.ok(t.pool.signatureVerified(toHex(txHash(good))));
  });

  it('answers a committed tx with its location instead of a stale nonce', async () => {
    const t = intake();
    const old = tx(2n);
    const location: TxLocation = { height: 7n, index: 1, result: { ok: true } };
    t.committed.set(toHex(txHash(old)), location);
    const [o] = await submitBatch(t.hooks, [old]);
    assert.deepEqual(o, { kind: 'known', hash: txHash(old), status: { state: 'committed', location } });
    assert.deepEqual(t.gossiped, [], 'nothing entered, nothing gossiped');
  });

  it('once the mempool is full answers the rest full without checking them', async () => {
    const t = intake(2);
    const out = await submitBatch(t.hooks, [tx(3n), tx(4n), tx(5n), tx(6n), tx(1n, bob)]);
    assert.deepEqual(
      out.map((o) => (o.kind === 'rejected' ? o.code : o.kind)),
      ['accepted', 'accepted', 'mempool-full', 'mempool-full', 'mempool-full'],
    );
    assert.equal(t.adds(), 3, 'the txs after the first refusal never reach the mempool');
    assert.deepEqual(t.verifiedAhead, [2], 'only as many txs as the mempool has room for are verified');
    for (const o of out.slice(2))
      assert.equal(o.kind === 'rejected' && o.retryAfterMs, MEMPOOL_FULL_RETRY_MS);
  });

  it('counts the room it verifies ahead in txs that can enter, not in ones refused on sight', async () => {
    const t = intake(2);
    const otherChain = encodeTx(
      signTx(
        {
          chainId: 'other',
          from: bob.publicKey,
          nonce: 1n,
          payload: { type: 'transfer', to: bob.publicKey, amount: 1n },
        },
        bob.secretKey,
      ),
    );
    const out = await submitBatch(t.hooks, [Uint8Array.of(1, 2, 3), otherChain, tx(3n), tx(4n)]);
    assert.deepEqual(
      out.map((o) => (o.kind === 'rejected' ? o.code : o.kind)),
      ['malformed', 'wrong-chain', 'accepted', 'accepted'],
    );
    assert.deepEqual(t.verifiedAhead, [2], 'both txs that can enter were verified together, off the loop');
  });

  it('refuses every tx as unavailable while the node is not accepting', async () => {
    const t = intake();
    t.stop();
    const out = await submitBatch(t.hooks, [tx(3n), tx(1n, bob)]);
    assert.deepEqual(
      out.map((o) => o.kind === 'rejected' && o.code),
      ['unavailable', 'unavailable'],
    );
    assert.equal(t.adds(), 0);
    assert.deepEqual(t.verifiedAhead, []);
    assert.equal(t.pool.size, 0);
  });
});
