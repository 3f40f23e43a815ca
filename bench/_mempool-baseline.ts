// BASELINE for bench/mempool.ts only (deleted later): node/mempool.ts as it was before the
// hot-path rework, changed in one place only: the constructor takes the batch signature
// verifier (default verifyMany, as before) so the benchmark can skip verification.
// The mempool: transactions waiting to be ordered. Bounded by count and bytes (it
// answers "full" instead of growing), deduplicated by hash and by (sender, nonce),
// and checked on entry: format, chain id and signature (for txs from clients) and the
// nonce against committed state. The leader takes batches from it; every validator
// removes what a written block contains. Txs handed to a proposal stay here, marked
// in flight, so a view change can hand them to the next leader again.
import { toHex } from '../ledger/codec/binary.js';
import { verify } from '../ledger/keys.js';
import { decodeTx, type SignedTx, signingBytesOfEncoded, TX_BYTES_MAX, txHashWithHex } from '../ledger/tx.js';
import { type SignatureCheck, verifyMany } from '../ledger/verify-pool.js';

export interface MempoolLimits {
  txCountMax: number;
  bytesMax: number;
  /** A nonce further than this above the account's next nonce is refused (it could never run soon). */
  nonceAheadMax: number;
  /**
   * Hashes of txs whose signature this mempool verified, remembered (oldest dropped first)
   * so execution need not verify them again. Default 4 x txCountMax: a tx normally
   * executes while it is still in the pool, the margin covers the blocks in flight.
   */
  verifiedMax?: number;
}

export type AddRejectCode =
  | 'malformed'
  | 'too-large'
  | 'bad-signature'
  | 'wrong-chain'
  | 'stale-nonce'
  | 'duplicate-nonce'
  | 'nonce-gap'
  | 'mempool-full';

export type AddOutcome =
  | { kind: 'accepted'; hash: Uint8Array; hashHex: string }
  | { kind: 'known'; hash: Uint8Array; hashHex: string }
  | { kind: 'rejected'; code: AddRejectCode; message: string; field?: string };

/** A client or gossiped tx, hashed and decoded once by Mempool.prepare. */
export interface IntakeTx {
  bytes: Uint8Array;
  hash: Uint8Array;
  hashHex: string;
  tx: SignedTx;
}

/** An answer that needs no state: the tx is held already, or refused as it stands. */
export type StatelessOutcome = Exclude<AddOutcome, { kind: 'accepted' }>;

/** What Mempool.prepare found: a tx to verify and add, or already the answer. */
export type Prepared = { kind: 'ready'; tx: IntakeTx } | { kind: 'done'; outcome: StatelessOutcome };

export interface MempoolEntry {
  bytes: Uint8Array;
  hash: Uint8Array;
  hashHex: string;
  fromHex: string;
  nonce: bigint;
  addedMs: number;
  /** When it entered (addedMs is reset by view changes; this is not): commit latency. */
  enteredMs: number;
  /**
   * Handed to a proposal that has not been written yet, or ordered: in a batch this
   * validator delivered (see orderedUnwritten), which stays in flight after a view change.
   */
  inflight: boolean;
  /** Entered through this validator's API (so this validator is the one that answers for it). */
  local: boolean;
  /** When it was last re-gossiped to a leader (0: never). */
  regossipMs: number;
}

/** Committed nonce of an account (0 for a new account); a plain value when it is at hand (cached). */
export type NonceReader = (fromHex: string, from: Uint8Array) => bigint | Promise<bigint>;

/**
 * A sender's pending txs: the entry itself while it has one, a nonce map from the second. One
 * pending tx per sender is the common case, and a Map for it was ~150 of the ~700 bytes a
 * validator allocated per tx in addPrepared under load (heap sampling).
 */
type SenderTxs = MempoolEntry | Map<bigint, MempoolEntry>;

function senderHas(s: SenderTxs | undefined, nonce: bigint): boolean {
  if (s === undefined) return false;
  return s instanceof Map ? s.has(nonce) : s.nonce === nonce;
}

export class Mempool {
  private readonly byHash = new Map<string, MempoolEntry>();
  /** sender hex -> its pending txs (see SenderTxs) */
  private readonly bySender = new Map<string, SenderTxs>();
  private bytesTotal = 0;
  /** Entries marked in flight (kept so pendingCount, asked on every intake, is O(1)). */
  private inflightCount = 0;
  /** Hex hashes of txs whose exact bytes passed signature verification here (bounded, FIFO). */
  private readonly verified = new Set<string>();
  /**
   * Hex hashes of the txs of delivered batches whose blocks are not written yet, held here or
   * not: such a tx arriving late (gossip slower than the PREPARE) is known, not pending.
   * Bounded by the blocks in the executor's pipeline: removeCommitted clears each block's.
   */
  private readonly orderedUnwritten = new Set<string>();
  private readonly nonceAheadMax: bigint;

  constructor(
    private readonly chainId: string,
    private readonly limits: MempoolLimits,
    private readonly committedNonce: NonceReader,
    private readonly now: () => number = Date.now,
    private readonly verifyBatch: (checks: readonly SignatureCheck[]) => Promise<boolean[]> = verifyMany,
  ) {
    this.nonceAheadMax = BigInt(limits.nonceAheadMax);
  }

  get size(): number {
    return this.byHash.size;
  }
  get bytes(): number {
    return this.bytesTotal;
  }
  /** Txs not yet handed to a proposal. */
  get pendingCount(): number {
    return this.byHash.size - this.inflightCount;
  }

  /**
   * Whether the tx with this hash passed signature verification here. The hash covers
   * every byte of the encoded tx, signature included, so equal hashes mean the same
   * signed bytes and the verification holds for them.
   */
  signatureVerified(hashHex: string): boolean {
    return this.verified.has(hashHex);
  }

  /**
   * The stateless half of intake: size, hash, already held, format, chain id. Each tx is
   * hashed and decoded once here and the result handed to verifyAhead and addPrepared, so a
   * tx costs one decode and one hash on its way in, and a tx already held (re-gossip, a client
   * retry) costs only the hash.
   */
  prepare(bytes: Uint8Array): Prepared {
    if (bytes.length > TX_BYTES_MAX) {
      return {
        kind: 'done',
        outcome: {
          kind: 'rejected',
          code: 'too-large',
          message: `tx is ${bytes.length} bytes, limit ${TX_BYTES_MAX}`,
        },
      };
    }
    const { hash, hashHex } = txHashWithHex(bytes);
    // A held tx decoded with this chain id when it entered, and the hash covers every byte.
    if (this.isKnown(hashHex)) return { kind: 'done', outcome: { kind: 'known', hash, hashHex } };
    const d = decodeTx(bytes);
    if (!d.ok)
      return { kind: 'done', outcome: { kind: 'rejected', code: 'malformed', message: d.error.message } };
    const tx: SignedTx = d.value;
    if (tx.chainId !== this.chainId) {
      return {
        kind: 'done',
        outcome: {
          kind: 'rejected',
          code: 'wrong-chain',
          message: `chainId "${tx.chainId}" is not "${this.chainId}"`,
          field: 'chainId',
        },
      };
    }
    return { kind: 'ready', tx: { bytes, hash, hashHex, tx } };
  }

  /**
   * Verifies the signatures of prepared txs not held or verified yet, together on the verify
   * pool (off the event loop), and remembers the good ones, so adding them one by one
   * afterwards (in their order) costs no verification.
   */
  async verifyAhead(txs: readonly IntakeTx[]): Promise<void> {
    const hashes: string[] = [];
    const checks: SignatureCheck[] = [];
    const seen = new Set<string>();
    for (const t of txs) {
      const hashHex = t.hashHex;
      if (seen.has(hashHex) || this.byHash.has(hashHex) || this.verified.has(hashHex)) continue;
      seen.add(hashHex);
      hashes.push(hashHex);
      checks.push({
        signature: t.tx.signature,
        message: signingBytesOfEncoded(t.bytes),
        publicKey: t.tx.from,
      });
    }
    if (checks.length === 0) return;
    const ok = await this.verifyBatch(checks);
    hashes.forEach((h, i) => {
      if (ok[i]) this.rememberVerified(h);
    });
  }

  private rememberVerified(hashHex: string): void {
    this.verified.add(hashHex);
    const max = this.limits.verifiedMax ?? 4 * this.limits.txCountMax;
    if (this.verified.size <= max) return;
    const oldest = this.verified.values().next().value;
    if (oldest !== undefined) this.verified.delete(oldest);
  }

  hasSender(fromHex: string): boolean {
    return this.bySender.has(fromHex);
  }

  has(hashHex: string): boolean {
    return this.byHash.has(hashHex);
  }

  /** Held here, or in a delivered batch whose block is not written yet: intake answers "known". */
  private isKnown(hashHex: string): boolean {
    return this.byHash.has(hashHex) || this.orderedUnwritten.has(hashHex);
  }

  get(hashHex: string): MempoolEntry | undefined {
    return this.byHash.get(hashHex);
  }

  /**
   * Checks and adds one encoded tx. The validator verifies signatures for local and
   * gossiped txs alike (a forged gossiped tx would hold an account's nonce); tests and
   * bulk loads that already checked a tx may skip it.
   */
  async add(bytes: Uint8Array, opts: { verifySignature: boolean; local: boolean }): Promise<AddOutcome> {
    const p = this.prepare(bytes);
    return p.kind === 'done' ? p.outcome : this.addPrepared(p.tx, opts);
  }

  /** The stateful half of intake, for a tx from prepare: signature (unless verified ahead), nonce, room. */
  async addPrepared(t: IntakeTx, opts: { verifySignature: boolean; local: boolean }): Promise<AddOutcome> {
    const { bytes, hash, hashHex, tx } = t;
    // Prepared earlier: the same tx may have entered since (twice in one batch, a retry), or
    // been delivered in a batch.
    if (this.isKnown(hashHex)) return { kind: 'known', hash, hashHex };
    if (opts.verifySignature && !this.verified.has(hashHex)) {
      // Inline: one verification costs less than handing it to another thread and back.
      if (!verify(tx.signature, signingBytesOfEncoded(bytes), tx.from)) {
        return {
          kind: 'rejected',
          code: 'bad-signature',
          message: 'signature does not verify against from',
          field: 'signature',
        };
      }
      this.rememberVerified(hashHex);
    }
    const fromHex = toHex(tx.from);
    const read = this.committedNonce(fromHex, tx.from);
    const committed = typeof read === 'bigint' ? read : await read;
    // Re-check after a possible await: another add of the same tx may have completed meanwhile.
    if (this.isKnown(hashHex)) return { kind: 'known', hash, hashHex };
    if (tx.nonce <= committed) {
      return {
        kind: 'rejected',
        code: 'stale-nonce',
        message: `nonce ${tx.nonce} is not above the committed nonce ${committed}`,
        field: 'nonce',
      };
    }
    if (tx.nonce > committed + this.nonceAheadMax) {
      return {
        kind: 'rejected',
        code: 'nonce-gap',
        message: `nonce ${tx.nonce} is more than ${this.limits.nonceAheadMax} ahead of ${committed + 1n}`,
        field: 'nonce',
      };
    }
    const nonces = this.bySender.get(fromHex);
    if (senderHas(nonces, tx.nonce)) {
      return {
        kind: 'rejected',
        code: 'duplicate-nonce',
        message: `another pending tx from this account has nonce ${tx.nonce}`,
        field: 'nonce',
      };
    }
    if (this.byHash.size >= this.limits.txCountMax || this.bytesTotal + bytes.length > this.limits.bytesMax) {
      return { kind: 'rejected', code: 'mempool-full', message: 'mempool is full, retry later' };
    }
    const nowMs = this.now();
    const entry: MempoolEntry = {
      bytes,
      hash,
      hashHex,
      fromHex,
      nonce: tx.nonce,
      addedMs: nowMs,
      enteredMs: nowMs,
      inflight: false,
      local: opts.local,
      regossipMs: 0,
    };
    this.byHash.set(hashHex, entry);
    if (nonces === undefined) this.bySender.set(fromHex, entry);
    else if (nonces instanceof Map) nonces.set(tx.nonce, entry);
    else
      this.bySender.set(
        fromHex,
        new Map([
          [nonces.nonce, nonces],
          [tx.nonce, entry],
        ]),
      );
    this.bytesTotal += bytes.length;
    return { kind: 'accepted', hash, hashHex };
  }

  /**
   * Takes up to the limits of txs not yet in flight, oldest first, marks them in flight
   * and returns them ordered so each sender's txs are in nonce order (a later nonce
   * that arrived first would otherwise fail at execution).
   */
  takeBatch(txsMax: number, bytesMax: number): MempoolEntry[] {
    const out: MempoolEntry[] = [];
    let bytes = 0;
    for (const e of this.byHash.values()) {
      if (e.inflight) continue;
      if (out.length >= txsMax || bytes + e.bytes.length + 4 > bytesMax) break;
      e.inflight = true;
      this.inflightCount++;
      out.push(e);
      bytes += e.bytes.length + 4;
    }
    const firstIndex = new Map<string, number>();
    out.forEach((e, i) => {
      if (!firstIndex.has(e.fromHex)) firstIndex.set(e.fromHex, i);
    });
    return out.sort((a, b) => {
      if (a.fromHex === b.fromHex) return a.nonce < b.nonce ? -1 : a.nonce > b.nonce ? 1 : 0;
      return (firstIndex.get(a.fromHex) ?? 0) - (firstIndex.get(b.fromHex) ?? 0);
    });
  }

  /** A refused proposal: its txs may be taken again. */
  release(entries: readonly MempoolEntry[]): void {
    for (const e of entries) {
      if (this.byHash.get(e.hashHex) === e && e.inflight && !this.orderedUnwritten.has(e.hashHex)) {
        e.inflight = false;
        this.inflightCount--;
      }
    }
  }

  /** After a view change: whatever was proposed but not ordered goes back to pending. */
  releaseInflight(): number {
    let n = 0;
    for (const e of this.byHash.values()) {
      if (e.inflight && !this.orderedUnwritten.has(e.hashHex)) {
        e.inflight = false;
        this.inflightCount--;
        n++;
      }
    }
    return n;
  }

  /**
   * Marks the txs of a delivered batch ordered: they leave the pool only when their block is
   * written, and until then the leader need not get them again (a follower's re-gossip picked
   * them under load) nor a new leader propose them again. Returns how many were held here.
   */
  markOrdered(hashesHex: Iterable<string>): number {
    let n = 0;
    for (const h of hashesHex) {
      // A held tx is in the set exactly while it is ordered (one arriving after is "known").
      if (this.orderedUnwritten.has(h)) continue;
      this.orderedUnwritten.add(h);
      const e = this.byHash.get(h);
      if (!e) continue;
      if (!e.inflight) {
        e.inflight = true;
        this.inflightCount++;
      }
      n++;
    }
    return n;
  }

  /** Removes the txs a written block contains; returns the removed entries. */
  removeCommitted(hashesHex: Iterable<string>): MempoolEntry[] {
    const removed: MempoolEntry[] = [];
    for (const h of hashesHex) {
      this.orderedUnwritten.delete(h);
      const e = this.byHash.get(h);
      if (!e) continue;
      this.drop(e);
      removed.push(e);
    }
    return removed;
  }

  /** Drops txs whose nonce is now at or below the sender's committed nonce (they can never run). */
  pruneStale(fromHex: string, committedNonce: bigint): number {
    const nonces = this.bySender.get(fromHex);
    if (nonces === undefined) return 0;
    const stale: MempoolEntry[] = [];
    if (nonces instanceof Map) {
      for (const e of nonces.values()) if (e.nonce <= committedNonce) stale.push(e);
    } else if (nonces.nonce <= committedNonce) stale.push(nonces);
    for (const e of stale) this.drop(e);
    return stale.length;
  }

  /** Oldest tx age, ms (0 when empty); the request timer of the view-change trigger. */
  oldestAgeMs(): number {
    for (const e of this.byHash.values()) return this.now() - e.addedMs;
    return 0;
  }

  /**
   * Txs older than `ageMs`, oldest first, at most `max`, for re-gossip to the leader; skips
   * txs re-gossiped less than `ageMs` ago and marks those it returns: under a backlog every
   * pending tx is old, and sending the same ones to the leader every round would cost it
   * decoding and bandwidth for nothing. Only txs that entered before `enteredBeforeMs` are
   * taken (entries are in entry order, so the scan stops at the first later one).
   */
  takeForRegossip(ageMs: number, max: number, enteredBeforeMs = Number.POSITIVE_INFINITY): MempoolEntry[] {
    const out: MempoolEntry[] = [];
    const now = this.now();
    const cutoff = now - ageMs;
    for (const e of this.byHash.values()) {
      if (out.length >= max || e.addedMs > cutoff || e.enteredMs >= enteredBeforeMs) break;
      if (e.inflight || e.regossipMs > cutoff) continue;
      e.regossipMs = now;
      out.push(e);
    }
    return out;
  }

  /** Restarts the age of every tx (after a view change, the new leader gets a full timeout). */
  resetAges(): void {
    const t = this.now();
    for (const e of this.byHash.values()) e.addedMs = t;
  }

  private drop(e: MempoolEntry): void {
    this.byHash.delete(e.hashHex);
    if (e.inflight) this.inflightCount--;
    this.bytesTotal -= e.bytes.length;
    const nonces = this.bySender.get(e.fromHex);
    if (nonces === e) this.bySender.delete(e.fromHex);
    else if (nonces instanceof Map && nonces.get(e.nonce) === e) {
      nonces.delete(e.nonce);
      if (nonces.size === 0) this.bySender.delete(e.fromHex);
    }
  }
}
