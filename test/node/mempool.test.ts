import assert from 'node:assert/strict';
import { toHex } from '../../ledger/codec/binary.js';
import { generateKeyPair } from '../../ledger/keys.js';
import { encodeTx, signTx } from '../../ledger/tx.js';
import { type SignatureCheck, verifyCheck } from '../../ledger/verify-pool.js';
import { type IntakeTx, Mempool, type MempoolLimits } from '../../node/mempool.js';

const chainId = 'test-chain';
const alice = generateKeyPair();
const bob = generateKeyPair();

function tx(nonce: bigint, amount = 1n, from = alice, chain = chainId): Uint8Array {
  return encodeTx(
    signTx(
      {
        chainId: chain,
        from: from.publicKey,
        nonce,
        payload: { type: 'transfer', to: bob.publicKey, amount },
      },
      from.secretKey,
    ),
  );
}

function pool(
  committed = 0n,
  limits: MempoolLimits = { txCountMax: 100, bytesMax: 1 << 20, nonceAheadMax: 100 },
  clock?: () => number,
): Mempool {
  return new Mempool(chainId, limits, async () => committed, clock);
}

describe('node/mempool', () => {
  it('accepts a valid tx once and reports the duplicate as known', async () => {
    const p = pool();
    const t = tx(1n);
    assert.equal((await p.add(t, { verifySignature: true, local: true })).kind, 'accepted');
    assert.equal((await p.add(t, { verifySignature: true, local: true })).kind, 'known');
    assert.equal(p.size, 1);
  });

  it('rejects a bad signature, a wrong chain and garbage with typed codes', async () => {
    const p = pool();
    const t = tx(1n);
    const forged = Uint8Array.from(t);
    forged[forged.length - 1] = (forged[forged.length - 1] as number) ^ 1;
    const r1 = await p.add(forged, { verifySignature: true, local: true });
    assert.equal(r1.kind === 'rejected' && r1.code, 'bad-signature');
    const r2 = await p.add(tx(1n, 1n, alice, 'other-chain'), { verifySignature: true, local: true });
    assert.equal(r2.kind === 'rejected' && r2.code, 'wrong-chain');
    const r3 = await p.add(new Uint8Array([1, 2, 3]), { verifySignature: true, local: true });
    assert.equal(r3.kind === 'rejected' && r3.code, 'malformed');
    assert.equal(p.size, 0);
  });

  it('checks nonces against committed state and pending txs', async () => {
    const p = pool(5n);
    const stale = await p.add(tx(5n), { verifySignature: true, local: true });
    assert.equal(stale.kind === 'rejected' && stale.code, 'stale-nonce');
    assert.equal((await p.add(tx(6n, 1n), { verifySignature: true, local: true })).kind, 'accepted');
    const dup = await p.add(tx(6n, 2n), { verifySignature: true, local: true });
    assert.equal(dup.kind === 'rejected' && dup.code, 'duplicate-nonce');
    const gap = await p.add(tx(500n), { verifySignature: true, local: true });
    assert.equal(gap.kind === 'rejected' && gap.code, 'nonce-gap');
  });

  it('answers full at its count and byte bounds instead of growing', async () => {
    const p = pool(0n, { txCountMax: 2, bytesMax: 1 << 20, nonceAheadMax: 100 });
    await p.add(tx(1n), { verifySignature: true, local: true });
    await p.add(tx(2n), { verifySignature: true, local: true });
    const r = await p.add(tx(3n), { verifySignature: true, local: true });
    assert.equal(r.kind === 'rejected' && r.code, 'mempool-full');
    const small = pool(0n, { txCountMax: 100, bytesMax: tx(1n).length + 10, nonceAheadMax: 100 });
    await small.add(tx(1n), { verifySignature: true, local: true });
    const r2 = await small.add(tx(2n), { verifySignature: true, local: true });
    assert.equal(r2.kind === 'rejected' && r2.code, 'mempool-full');
    assert.equal(small.bytes, tx(1n).length);
  });

  it('hands out batches in nonce order per sender and takes nothing twice', async () => {
    const p = pool();
    for (const n of [3n, 1n, 2n]) await p.add(tx(n), { verifySignature: true, local: true });
    const b1 = p.takeBatch(10, 1 << 20);
    assert.deepEqual(
      b1.map((e) => e.nonce),
      [1n, 2n, 3n],
    );
    assert.equal(p.takeBatch(10, 1 << 20).length, 0);
    assert.equal(p.releaseInflight(), 3);
    assert.equal(p.takeBatch(2, 1 << 20).length, 2);
  });

  it('forgets committed txs and frees their bytes', async () => {
    const p = pool();
    const r = await p.add(tx(1n), { verifySignature: true, local: true });
    assert.equal(r.kind, 'accepted');
    if (r.kind !== 'accepted') return;
    assert.equal(p.removeCommitted([r.hashHex]).length, 1);
    assert.equal(p.size, 0);
    assert.equal(p.bytes, 0);
    assert.equal((await p.add(tx(1n, 3n), { verifySignature: true, local: true })).kind, 'accepted');
  });

  it('remembers which txs it verified, bounded, so execution can skip them', async () => {
    const p = pool(0n, { txCountMax: 100, bytesMax: 1 << 20, nonceAheadMax: 100, verifiedMax: 2 });
    const hashes: string[] = [];
    for (const n of [1n, 2n, 3n]) {
      const r = await p.add(tx(n), { verifySignature: true, local: true });
      assert.equal(r.kind, 'accepted');
      if (r.kind === 'accepted') hashes.push(r.hashHex);
    }
    assert.equal(p.signatureVerified(hashes[0] as string), false, 'the oldest was dropped at the bound');
    assert.equal(p.signatureVerified(hashes[1] as string), true);
    assert.equal(p.signatureVerified(hashes[2] as string), true);
    const unchecked = await p.add(tx(4n), { verifySignature: false, local: false });
    assert.equal(unchecked.kind, 'accepted');
    if (unchecked.kind === 'accepted') assert.equal(p.signatureVerified(unchecked.hashHex), false);
  });

  it('refuses a forged copy of a held tx as bad, not as known', async () => {
    const p = pool();
    const t = tx(1n);
    assert.equal((await p.add(t, { verifySignature: true, local: true })).kind, 'accepted');
    const forged = Uint8Array.from(t);
    forged[forged.length - 1] = (forged[forged.length - 1] as number) ^ 1;
    const r = await p.add(forged, { verifySignature: true, local: false });
    assert.equal(r.kind === 'rejected' && r.code, 'bad-signature');
  });

  it('counts pending txs through taking, releasing, view changes and commits', async () => {
    const p = pool();
    const added: string[] = [];
    for (const n of [1n, 2n, 3n, 4n]) {
      const r = await p.add(tx(n), { verifySignature: true, local: true });
      if (r.kind === 'accepted') added.push(r.hashHex);
    }
    assert.equal(p.pendingCount, 4);
    const b = p.takeBatch(3, 1 << 20);
    assert.equal(p.pendingCount, 1);
    p.release(b.slice(0, 1));
    assert.equal(p.pendingCount, 2);
    p.removeCommitted([b[1]?.hashHex as string]);
    assert.equal(p.pendingCount, 2, 'a committed in-flight tx leaves without touching pending');
    assert.equal(p.size, 3);
    p.releaseInflight();
    assert.equal(p.pendingCount, 3);
    p.takeBatch(10, 1 << 20);
    assert.equal(p.pendingCount, 0);
  });

  it('re-gossips an old tx at most once per interval and never one in flight', async () => {
    let now = 1_000;
    const p = pool(0n, undefined, () => now);
    await p.add(tx(1n), { verifySignature: true, local: true });
    await p.add(tx(2n), { verifySignature: true, local: true });
    assert.equal(p.takeForRegossip(500, 10).length, 0, 'too young');
    now += 600;
    assert.equal(p.takeForRegossip(500, 1).length, 1, 'bounded by max');
    assert.equal(p.takeForRegossip(500, 10).length, 1, 'only the one not just sent');
    assert.equal(p.takeForRegossip(500, 10).length, 0);
    now += 600;
    p.takeBatch(1, 1 << 20);
    assert.equal(p.takeForRegossip(500, 10).length, 1, 'the in-flight one stays');
  });

  it('re-gossips only txs that entered before the given time, oldest first', async () => {
    let now = 1_000;
    const p = pool(0n, undefined, () => now);
    const first = await p.add(tx(1n), { verifySignature: true, local: true });
    now += 100;
    await p.add(tx(2n), { verifySignature: true, local: false });
    now += 1_000;
    assert.equal(p.takeForRegossip(500, 10, 1_000).length, 0, 'nothing entered before 1000');
    const taken = p.takeForRegossip(500, 10, 1_050);
    assert.deepEqual(
      taken.map((e) => e.hashHex),
      [first.kind === 'accepted' ? first.hashHex : ''],
      'only the one that entered at 1000',
    );
    assert.equal(p.takeForRegossip(500, 10).length, 1, 'without a bound, the other one too');
  });

  it('neither re-gossips nor proposes a tx of a delivered batch, also after a view change', async () => {
    let now = 1_000;
    const p = pool(0n, undefined, () => now);
    const hashes: string[] = [];
    for (const n of [1n, 2n, 3n]) {
      const r = await p.add(tx(n), { verifySignature: true, local: false });
      if (r.kind === 'accepted') hashes.push(r.hashHex);
    }
    // A follower delivered a batch holding txs 1 and 2 (and one it never held).
    assert.equal(p.markOrdered([hashes[0]!, hashes[1]!, 'ab'.repeat(32)]), 2);
    assert.equal(p.pendingCount, 1);
    now += 600;
    assert.deepEqual(
      p.takeForRegossip(500, 10).map((e) => e.hashHex),
      [hashes[2]],
      'only the tx the leader has not ordered is re-sent',
    );
    assert.equal(p.releaseInflight(), 0, 'a view change does not hand ordered txs out again');
    assert.equal(p.pendingCount, 1);
    assert.deepEqual(
      p.takeBatch(10, 1 << 20).map((e) => e.hashHex),
      [hashes[2]],
    );
    // Their block is written: they leave, and the counts stay right.
    p.removeCommitted(hashes.slice(0, 2));
    assert.equal(p.size, 1);
    assert.equal(p.pendingCount, 0);
    assert.equal(p.releaseInflight(), 1);
    assert.equal(p.pendingCount, 1);
  });

  it('takes a tx that arrives after its batch was delivered as known until the block is written', async () => {
    const p = pool();
    const late = tx(1n);
    const other = tx(2n);
    const prepared = p.prepare(other);
    assert.equal(prepared.kind, 'ready');
    const hashOf = (b: Uint8Array): string => {
      const r = p.prepare(b);
      assert.equal(r.kind, 'ready');
      return r.kind === 'ready' ? r.tx.hashHex : '';
    };
    const lateHex = hashOf(late);
    const otherHex = hashOf(other);
    // Delivered while the pool held neither: one gossiped before, one prepared during the wait.
    p.markOrdered([lateHex, otherHex]);
    assert.equal((await p.add(late, { verifySignature: true, local: false })).kind, 'known');
    if (prepared.kind === 'ready') {
      assert.equal((await p.addPrepared(prepared.tx, { verifySignature: true, local: false })).kind, 'known');
    }
    assert.equal(p.size, 0);
    // Once the block is written the nonce check answers for them (here: nothing committed yet).
    p.removeCommitted([lateHex, otherHex]);
    assert.equal((await p.add(late, { verifySignature: true, local: false })).kind, 'accepted');
  });

  it('keeps a proposed tx in flight once its batch is delivered, whatever is released', async () => {
    const p = pool();
    await p.add(tx(1n), { verifySignature: true, local: true });
    await p.add(tx(2n), { verifySignature: true, local: true });
    const b = p.takeBatch(2, 1 << 20);
    assert.equal(p.markOrdered(b.map((e) => e.hashHex)), 2);
    p.release(b);
    p.releaseInflight();
    assert.equal(p.pendingCount, 0);
    assert.equal(p.takeBatch(10, 1 << 20).length, 0);
  });

  it('answers a tx it already holds from its hash alone, before decoding or verifying it', async () => {
    const p = new Mempool(
      chainId,
      { txCountMax: 100, bytesMax: 1 << 20, nonceAheadMax: 100 },
      async () => 0n,
    );
    const bytes = tx(1n);
    const added = await p.add(bytes, { verifySignature: true, local: true });
    assert.equal(added.kind, 'accepted');
    const again = p.prepare(bytes);
    assert.equal(again.kind, 'done');
    if (again.kind === 'done') assert.equal(again.outcome.kind, 'known');
    const other = p.prepare(tx(2n));
    assert.equal(other.kind, 'ready', 'a new tx is handed on decoded');
    if (other.kind === 'ready') assert.equal(other.tx.tx.nonce, 2n);
  });

  it('verifies ahead on the real verify pool: good txs enter without another check, forged ones are refused', async () => {
    const p = pool();
    const good = Array.from({ length: 20 }, (_, i) => tx(BigInt(i + 1)));
    const forged = [tx(21n), tx(22n)].map((t) => {
      const f = new Uint8Array(t);
      f[f.length - 5]! ^= 1; // in the signature
      return f;
    });
    const wrongBody = new Uint8Array(tx(23n));
    wrongBody[wrongBody.length - 80]! ^= 1; // in the signed body (the amount)
    const ready = [...good, ...forged, wrongBody].map((b) => {
      const r = p.prepare(b);
      assert.equal(r.kind, 'ready');
      return (r as { kind: 'ready'; tx: IntakeTx }).tx;
    });
    // 23 checks: more than are checked inline, so they go to the pool's workers in split form.
    await p.verifyAhead(ready);
    assert.deepEqual(
      ready.map((t) => p.signatureVerified(t.hashHex)),
      [...good.map(() => true), false, false, false],
    );
    for (const t of ready.slice(0, 20))
      assert.equal((await p.addPrepared(t, { verifySignature: true, local: true })).kind, 'accepted');
    for (const t of ready.slice(20)) {
      const out = await p.addPrepared(t, { verifySignature: true, local: true });
      assert.equal(out.kind === 'rejected' && out.code, 'bad-signature');
    }
    assert.equal(p.size, 20);
  });

  it('takes the verdict of verifyAhead on a bad signature and does not verify that tx again on add', async () => {
    // A verifier that refuses everything, even a good tx: only reusing its verdict refuses it.
    const verified: number[] = [];
    const p = new Mempool(
      chainId,
      { txCountMax: 100, bytesMax: 1 << 20, nonceAheadMax: 100 },
      async () => 0n,
      undefined,
      async (checks) => {
        verified.push(checks.length);
        return checks.map(() => false);
      },
    );
    const r = p.prepare(tx(1n));
    assert.equal(r.kind, 'ready');
    if (r.kind !== 'ready') return;
    await p.verifyAhead([r.tx]);
    assert.deepEqual(verified, [1]);
    const out = await p.addPrepared(r.tx, { verifySignature: true, local: false });
    assert.equal(out.kind === 'rejected' && out.code, 'bad-signature');
    // Prepared again (a new intake), the tx is verified as usual, inline, and is good.
    const again = p.prepare(tx(1n));
    assert.equal(again.kind, 'ready');
    if (again.kind !== 'ready') return;
    assert.equal((await p.addPrepared(again.tx, { verifySignature: true, local: false })).kind, 'accepted');
  });

  it('keeps an entry right after the decoded intake tx is dropped: the entry holds the bytes, not the views', async () => {
    const p = pool();
    const bytes = tx(1n, 42n);
    const r = p.prepare(bytes);
    assert.equal(r.kind, 'ready');
    const t = (r as { kind: 'ready'; tx: IntakeTx }).tx;
    // The decoded fields are views into the tx's own bytes (no copies per field).
    assert.equal(t.tx.from.buffer, bytes.buffer);
    assert.equal(t.tx.signature.buffer, bytes.buffer);
    const added = await p.addPrepared(t, { verifySignature: true, local: true });
    assert.equal(added.kind, 'accepted');
    const entry = p.get(t.hashHex);
    assert.ok(entry !== undefined);
    assert.equal(entry.bytes, bytes);
    assert.equal(entry.fromHex, toHex(alice.publicKey));
    assert.equal(entry.nonce, 1n);
    assert.equal(Object.values(entry).includes(t.tx), false, 'no decoded tx kept per entry');
  });

  it('copies a tx that is a view into a much larger buffer (a gossip frame) instead of keeping the frame alive', async () => {
    const p = pool();
    const own = tx(1n);
    // A gossip frame's copy holding one tx among junk, as Buffer views deliver it.
    const frame = Buffer.alloc(64 * 1024, 0xee);
    const sent = tx(2n);
    frame.set(sent, 1000);
    const view = frame.subarray(1000, 1000 + sent.length);
    const first = await p.add(own, { verifySignature: true, local: false });
    assert.equal(first.kind, 'accepted');
    const r = await p.add(view, { verifySignature: true, local: false });
    assert.equal(r.kind, 'accepted');
    const kept = p.get((r as { hashHex: string }).hashHex);
    assert.ok(kept !== undefined);
    assert.notEqual(kept.bytes.buffer, frame.buffer, 'the entry must not pin the frame');
    assert.equal(kept.bytes.buffer.byteLength, sent.length);
    assert.deepEqual(Uint8Array.from(kept.bytes), sent);
    frame.fill(0);
    assert.deepEqual(Uint8Array.from(kept.bytes), sent, 'the entry is unaffected by the frame being reused');
    // A tx that is its whole buffer (the API's per-tx arrays) is kept as it is.
    assert.equal(p.get((first as { hashHex: string }).hashHex)?.bytes, own);
  });

  it("tracks each sender's nonces from its first pending tx through several and back to none", async () => {
    let committed = 0n;
    const p = new Mempool(
      chainId,
      { txCountMax: 100, bytesMax: 1 << 20, nonceAheadMax: 100 },
      async () => committed,
    );
    const add = async (t: Uint8Array) => p.add(t, { verifySignature: true, local: true });
    const first = await add(tx(1n));
    assert.equal(first.kind, 'accepted');
    const dup1 = await add(tx(1n, 9n));
    assert.equal(
      dup1.kind === 'rejected' && dup1.code,
      'duplicate-nonce',
      'one pending tx already holds its nonce',
    );
    assert.equal((await add(tx(2n))).kind, 'accepted');
    assert.equal((await add(tx(3n))).kind, 'accepted');
    assert.equal((await add(tx(1n, 1n, bob))).kind, 'accepted', "another sender's nonces are its own");
    const dup3 = await add(tx(3n, 9n));
    assert.equal(dup3.kind === 'rejected' && dup3.code, 'duplicate-nonce');
    assert.equal(p.size, 4);
    // The first one commits; then nonces up to 2 are used: tx 2 goes as stale, tx 3 stays.
    if (first.kind === 'accepted') p.removeCommitted([first.hashHex]);
    committed = 2n;
    assert.equal(p.pruneStale(toHex(alice.publicKey), 2n), 1);
    assert.equal(p.size, 2);
    assert.equal(p.hasSender(toHex(alice.publicKey)), true);
    const dup3Again = await add(tx(3n, 8n));
    assert.equal(dup3Again.kind === 'rejected' && dup3Again.code, 'duplicate-nonce');
    assert.equal(p.pruneStale(toHex(alice.publicKey), 3n), 1);
    assert.equal(p.hasSender(toHex(alice.publicKey)), false, 'a sender with nothing pending is forgotten');
    assert.equal(p.pruneStale(toHex(bob.publicKey), 0n), 0, 'nothing of bob is stale at 0');
    committed = 3n;
    assert.equal((await add(tx(4n))).kind, 'accepted', 'a forgotten sender starts again');
    assert.deepEqual(
      p.takeBatch(10, 1 << 20).map((e) => [e.fromHex === toHex(alice.publicKey), e.nonce]),
      [
        [false, 1n],
        [true, 4n],
      ],
    );
  });

  describe('bookkeeping', () => {
    const prepared = (p: Mempool, bytes: Uint8Array): IntakeTx => {
      const r = p.prepare(bytes);
      assert.equal(r.kind, 'ready');
      if (r.kind !== 'ready') throw new Error('not ready');
      return r.tx;
    };
    const limits = (verifiedMax: number): MempoolLimits => ({
      txCountMax: 100,
      bytesMax: 1 << 20,
      nonceAheadMax: 100,
      verifiedMax,
    });

    it('keeps exactly the last verifiedMax verified hashes while verifications keep coming', async () => {
      const p = pool(0n, limits(3));
      const txs = [1n, 2n, 3n, 4n, 5n, 6n, 7n, 8n].map((n) => prepared(p, tx(n)));
      for (const t of txs) await p.verifyAhead([t]);
      assert.deepEqual(
        txs.map((t) => p.signatureVerified(t.hashHex)),
        [false, false, false, false, false, true, true, true],
      );
    });

    it('keeps the verified FIFO exact while its ring grows and then wraps', async () => {
      // Real signatures, checked inline instead of on the verify pool's workers.
      const inline = async (checks: readonly SignatureCheck[]) => checks.map(verifyCheck);
      const p = new Mempool(chainId, limits(1030), async () => 0n, Date.now, inline);
      const txs = Array.from({ length: 1100 }, (_, i) => prepared(p, tx(BigInt(i + 1))));
      for (let i = 0; i < txs.length; i += 64) await p.verifyAhead(txs.slice(i, i + 64));
      const verified = txs.map((t) => p.signatureVerified(t.hashHex));
      assert.equal(verified.indexOf(true), 70, 'the 70 oldest left');
      assert.equal(verified.slice(70).every(Boolean), true, 'the newest 1030 stay');
    });

    it('enters a tx verified by two calls at once into the verified FIFO once', async () => {
      const p = pool(0n, limits(2));
      const [a, b, c] = [1n, 2n, 3n].map((n) => prepared(p, tx(n))) as [IntakeTx, IntakeTx, IntakeTx];
      // Both calls find it unverified before either has its answer.
      await Promise.all([p.verifyAhead([a]), p.verifyAhead([a])]);
      await p.verifyAhead([b]);
      assert.equal(
        p.signatureVerified(a.hashHex),
        true,
        'a second entry of a would have pushed the first out',
      );
      assert.equal(p.signatureVerified(b.hashHex), true);
      await p.verifyAhead([c]);
      assert.deepEqual(
        [a, b, c].map((t) => p.signatureVerified(t.hashHex)),
        [false, true, true],
      );
    });

    it('verifies a tx again on add when its hash left the verified FIFO after verifyAhead', async () => {
      const p = pool(0n, limits(1));
      const a = prepared(p, tx(1n));
      const b = prepared(p, tx(2n));
      await p.verifyAhead([a]);
      await p.verifyAhead([b]);
      assert.equal(p.signatureVerified(a.hashHex), false);
      assert.equal((await p.addPrepared(a, { verifySignature: true, local: true })).kind, 'accepted');
      // Verified inline, so it entered again and pushed b out.
      assert.equal(p.signatureVerified(a.hashHex), true);
      assert.equal(p.signatureVerified(b.hashHex), false);
    });

    it('answers a held tx verified ahead as verified, also asked with another copy of its hash', async () => {
      const p = pool(0n, limits(10));
      const a = prepared(p, tx(1n));
      await p.verifyAhead([a]);
      assert.equal((await p.addPrepared(a, { verifySignature: true, local: false })).kind, 'accepted');
      // The executor hashes the batch itself: an equal string, not the same one.
      assert.equal(p.signatureVerified(Buffer.from(a.hash).toString('hex')), true);
      const unverified = prepared(p, tx(2n));
      assert.equal(
        (await p.addPrepared(unverified, { verifySignature: false, local: false })).kind,
        'accepted',
      );
      assert.equal(p.signatureVerified(unverified.hashHex), false);
    });

    it('keeps a delivered tx known when it is dropped as stale, until its block is written', async () => {
      let committed = 0n;
      const p = new Mempool(chainId, limits(10), async () => committed);
      const bytes = tx(1n);
      const added = await p.add(bytes, { verifySignature: true, local: true });
      assert.equal(added.kind, 'accepted');
      if (added.kind !== 'accepted') return;
      assert.equal(p.markOrdered([added.hashHex]), 1);
      assert.equal(p.pruneStale(toHex(alice.publicKey), 1n), 1);
      assert.equal(p.size, 0);
      assert.equal(p.pendingCount, 0);
      assert.equal(p.has(added.hashHex), false);
      assert.equal(p.get(added.hashHex), undefined);
      assert.equal(p.oldestAgeMs(), 0, 'a delivered hash alone is no tx waiting');
      assert.equal(p.takeBatch(10, 1 << 20).length, 0);
      assert.equal((await p.add(bytes, { verifySignature: true, local: true })).kind, 'known');
      assert.equal(p.removeCommitted([added.hashHex]).length, 0, 'nothing held left to remove');
      committed = 0n;
      assert.equal((await p.add(bytes, { verifySignature: true, local: true })).kind, 'accepted');
      assert.equal(p.size, 1);
    });

    it("cuts a batch with each sender's txs together, senders in order of their first tx", async () => {
      const carol = generateKeyPair();
      const p = pool();
      const arrivals: [bigint, typeof alice][] = [
        [2n, alice],
        [1n, bob],
        [3n, alice],
        [1n, carol],
        [1n, alice],
        [2n, bob],
      ];
      for (const [n, from] of arrivals) {
        assert.equal((await p.add(tx(n, 1n, from), { verifySignature: true, local: true })).kind, 'accepted');
      }
      const name = new Map(
        [alice, bob, carol].map((k, i) => [toHex(k.publicKey), ['alice', 'bob', 'carol'][i]]),
      );
      assert.deepEqual(
        p.takeBatch(10, 1 << 20).map((e) => `${name.get(e.fromHex)}${e.nonce}`),
        ['alice1', 'alice2', 'alice3', 'bob1', 'bob2', 'carol1'],
      );
    });

    it('cuts batches in entry order around hashes of txs it never held', async () => {
      let now = 1_000;
      const p = pool(0n, undefined, () => now);
      p.markOrdered(['cd'.repeat(32)]);
      const first = await p.add(tx(2n, 1n, bob), { verifySignature: true, local: false });
      now += 10;
      await p.add(tx(1n), { verifySignature: true, local: false });
      now += 10;
      assert.equal(p.oldestAgeMs(), 20);
      const batch = p.takeBatch(10, 1 << 20);
      assert.deepEqual(
        batch.map((e) => e.nonce),
        [2n, 1n],
      );
      assert.equal(batch[0]?.hashHex, first.kind === 'accepted' ? first.hashHex : '');
      assert.equal(p.pendingCount, 0);
      assert.equal(p.releaseInflight(), 2);
    });
  });
});
