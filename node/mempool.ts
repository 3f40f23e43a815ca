// The mempool: transactions waiting to be ordered. Bounded by count and bytes (it
// answers "full" instead of growing), deduplicated by hash and by (sender, nonce),
// and checked on entry: format, chain id and signature (for txs from clients) and the
// nonce against committed state. The leader takes batches from it; every validator
// removes what a written block contains. Txs handed to a proposal stay here, marked
// in flight, so a view change can hand them to the next leader again.
import { toHex } from '../ledger/codec/binary.js';
import {
  decodeTx,
  hashOfHex,
  type SignedTx,
  signedBodyOfEncoded,
  TX_BYTES_MAX,
  TX_SIGNING_DOMAIN,
  txHashHex,
  verifyEncodedTx,
} from '../ledger/tx.js';
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

/** Checks signatures in bulk, one verdict per check in order (the verify pool's verifyMany). */
export type BatchVerifier = (checks: readonly SignatureCheck[]) => Promise<boolean[]>;

/** A held tx: the entry callers see, and what the pool itself keeps with it. */
interface Held extends MempoolEntry {
  /** In a delivered batch whose block is not written yet (so also in flight). */
  ordered: boolean;
  /**
   * Sequence number under which its hash entered the verified FIFO when it was added (-1:
   * not then, or not known; signatureVerified then asks the FIFO itself).
   */
  verifiedSeq: number;
}

/**
 * An IntakeTx from prepare; verifyAhead notes when its hash entered which pool's verified
 * FIFO, or which pool found its signature bad (addPrepared then refuses it without verifying
 * it again: a forged tx costs one verification, on the pool's threads, not a second inline).
 */
interface Intake extends IntakeTx {
  verifiedSeq: number;
  verifiedIn: Mempool | null;
  refusedIn: Mempool | null;
}

const INTAKE_DECODE = { views: true } as const;

/**
 * The bytes an entry keeps: `bytes` itself when it is (nearly) all of its buffer, as the
 * API's per-tx arrays are, else a copy. A gossiped tx is a view into its whole frame's copy,
 * and an entry that stays (a tx waiting for an earlier nonce) would keep that frame alive:
 * a peer could pin a 16 MB frame of junk with one valid tx in it, again and again, while
 * the pool counts 200 bytes.
 */
export function ownBytes(bytes: Uint8Array): Uint8Array {
  // new Uint8Array(view) copies; a Buffer's slice() would only make another view.
  return bytes.buffer.byteLength > 4 * bytes.byteLength ? new Uint8Array(bytes) : bytes;
}

/** The value `live` holds for the hash of a delivered tx this pool does not hold. */
const ORDERED_NOT_HELD = 0;
type Live = Held | typeof ORDERED_NOT_HELD;

/**
 * A sender's pending txs: the entry itself while it has one, a nonce map from the second. One
 * pending tx per sender is the common case, and a Map for it was ~150 of the ~700 bytes a
 * validator allocated per tx in addPrepared under load (heap sampling).
 */
type SenderTxs = Held | Map<bigint, Held>;

function senderHas(s: SenderTxs | undefined, nonce: bigint): boolean {
  if (s === undefined) return false;
  return s instanceof Map ? s.has(nonce) : s.nonce === nonce;
}

/**
 * Puts txs[from, to) (one sender's txs of a batch: a few, mostly in order already) in nonce
 * order, by insertion: the nonces are distinct, so any order-keeping sort gives the same.
 */
function sortByNonce(txs: Held[], from: number, to: number): void {
  for (let i = from + 1; i < to; i++) {
    const e = txs[i] as Held;
    let j = i - 1;
    for (; j >= from && (txs[j] as Held).nonce > e.nonce; j--) txs[j + 1] = txs[j] as Held;
    txs[j + 1] = e;
  }
}

// Why the bookkeeping looks like this (bench/mempool.ts measures it): every tx passes through
// prepare, verifyAhead, addPrepared, the executor's signatureVerified, markOrdered and
// removeCommitted, each keyed by the 64-char hex hash. One lookup in a Map of a few thousand
// keys costs tens of ns; one in the verified FIFO, hundreds of thousands of keys at its
// bound, costs hundreds (cache misses). So held txs and delivered hashes share one small
// Map (`live`: one lookup answers "known", "held" and "ordered"), and the FIFO is touched
// to remember a verification and to answer for a tx not held: a held entry and an IntakeTx
// carry the sequence number under which their hash entered the FIFO, and it is still there
// exactly while fewer than verifiedMax later hashes have entered. The FIFO evicts in ring
// order: taking its oldest from the Set's iterator (as before) walks every deleted slot at
// the front of the Set's table, 25-100 us per tx once the FIFO is at its bound.
export class Mempool {
  /**
   * Held txs (in entry order: the order of batches, re-gossip and ages) and hashes of the txs
   * of delivered batches whose blocks are not written yet, held here or not: such a tx
   * arriving late (gossip slower than the PREPARE) is known, not pending. Bounded by
   * txCountMax plus the txs of the blocks in the executor's pipeline (removeCommitted clears
   * each block's).
   */
  private readonly live = new Map<string, Live>();
  private heldCount = 0;
  /** sender hex -> its pending txs (see SenderTxs) */
  private readonly bySender = new Map<string, SenderTxs>();
  private bytesTotal = 0;
  /** Entries marked in flight (kept so pendingCount, asked on every intake, is O(1)). */
  private inflightCount = 0;
  /**
   * Hashes of txs whose exact bytes passed signature verification here: a FIFO of at most
   * verifiedMax, evicted in ring order (verifiedRing).
   */
  private readonly verified = new Set<string>();
  /**
   * verifiedRing[seq % verifiedMax] is the hash that entered under seq (the last verifiedMax).
   * Grown by doubling up to verifiedMax slots (4 bytes each), not by push (see growRing).
   */
  private verifiedRing: string[] = [];
  /** Hashes ever entered into the FIFO: the next sequence number. */
  private verifiedSeqNext = 0;
  private readonly verifiedMax: number;
  private readonly nonceAheadMax: bigint;

  constructor(
    private readonly chainId: string,
    private readonly limits: MempoolLimits,
    private readonly committedNonce: NonceReader,
    private readonly now: () => number = Date.now,
    /** Checks signatures in bulk for verifyAhead (the verify pool; a benchmark may pass its own). */
    private readonly verifyBatch: BatchVerifier = verifyMany,
  ) {
    this.nonceAheadMax = BigInt(limits.nonceAheadMax);
    this.verifiedMax = Math.max(0, Math.floor(limits.verifiedMax ?? 4 * limits.txCountMax));
  }

  get size(): number {
    return this.heldCount;
  }
  get bytes(): number {
    return this.bytesTotal;
  }
  /** Txs not yet handed to a proposal. */
  get pendingCount(): number {
    return this.heldCount - this.inflightCount;
  }

  /**
   * Whether the tx with this hash passed signature verification here. The hash covers
   * every byte of the encoded tx, signature included, so equal hashes mean the same
   * signed bytes and the verification holds for them.
   */
  signatureVerified(hashHex: string): boolean {
    const v = this.live.get(hashHex);
    if (v !== undefined && v !== ORDERED_NOT_HELD && this.stillVerified(v.verifiedSeq)) return true;
    return this.verified.has(hashHex);
  }

  /** Whether the hash that entered the FIFO under `seq` is still in it (false for -1). */
  private stillVerified(seq: number): boolean {
    return seq >= 0 && seq >= this.verifiedSeqNext - this.verifiedMax;
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
    const hashHex = txHashHex(bytes);
    // A held tx decoded with this chain id when it entered, and the hash covers every byte.
    // Its entry has the hash's bytes already: a known tx (re-gossip, a retry) costs no array.
    const live = this.live.get(hashHex);
    if (live !== undefined) {
      const hash = live === ORDERED_NOT_HELD ? hashOfHex(hashHex) : live.hash;
      return { kind: 'done', outcome: { kind: 'known', hash, hashHex } };
    }
    const hash = hashOfHex(hashHex);
    // Views into `bytes` (DecodeTxOptions.views): the decoded tx lives only through intake,
    // beside `bytes`, which an entry keeps anyway; and the pool already relies on nobody
    // changing `bytes` after handing them in (an entry's hash covers them). Every source hands
    // in bytes of their own: the API a fresh array per tx (base64 or JSON), gossip a view into
    // the secure channel's private copy of its frame (node/transport/secure-channel.ts).
    const d = decodeTx(bytes, INTAKE_DECODE);
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
    const t: Intake = { bytes, hash, hashHex, tx, verifiedSeq: -1, verifiedIn: null, refusedIn: null };
    return { kind: 'ready', tx: t };
  }

  /**
   * Verifies the signatures of prepared txs not held or verified yet, together on the verify
   * pool (off the event loop), and remembers the good ones, so adding them one by one
   * afterwards (in their order) costs no verification.
   */
  async verifyAhead(txs: readonly IntakeTx[]): Promise<void> {
    const todo: IntakeTx[] = [];
    const checks: SignatureCheck[] = [];
    const seen = new Set<string>();
    for (const t of txs) {
      const hashHex = t.hashHex;
      if (seen.has(hashHex) || this.live.has(hashHex) || this.verified.has(hashHex)) continue;
      seen.add(hashHex);
      todo.push(t);
      // In two parts, so the verify pool packs the signed bytes straight from the tx.
      checks.push({
        signature: t.tx.signature,
        messagePrefix: TX_SIGNING_DOMAIN,
        messageBody: signedBodyOfEncoded(t.bytes),
        publicKey: t.tx.from,
      });
    }
    if (checks.length === 0) return;
    const seqBefore = this.verifiedSeqNext;
    const ok = await this.verifyBatch(checks);
    // Nothing entered the FIFO meanwhile: none of these can be in it (checked above).
    const absent = this.verifiedSeqNext === seqBefore;
    for (let i = 0; i < todo.length; i++) {
      if (ok[i] !== true) {
        const t = todo[i] as IntakeTx;
        if ('refusedIn' in t) (t as Intake).refusedIn = this;
        continue;
      }
      const t = todo[i] as IntakeTx;
      const seq = this.rememberVerified(t.hashHex, absent);
      if ('verifiedSeq' in t) {
        (t as Intake).verifiedSeq = seq;
        (t as Intake).verifiedIn = this;
      }
    }
  }

  /**
   * Enters a verified hash into the FIFO and returns its sequence number; -1 when it was
   * there already (its place stays) or the FIFO holds nothing (verifiedMax 0).
   */
  private rememberVerified(hashHex: string, knownAbsent: boolean): number {
    const max = this.verifiedMax;
    if (max === 0) return -1;
    const sizeBefore = this.verified.size;
    this.verified.add(hashHex);
    if (!knownAbsent && this.verified.size === sizeBefore) return -1;
    const seq = this.verifiedSeqNext++;
    let ring = this.verifiedRing;
    if (seq < max) {
      if (seq === ring.length) ring = this.growRing(max);
      ring[seq] = hashHex;
      return seq;
    }
    const slot = seq % max;
    // The oldest: it entered under seq - max, and nothing re-enters while it is in the FIFO.
    this.verified.delete(ring[slot] as string);
    ring[slot] = hashHex;
    return seq;
  }

  /**
   * Doubles the ring (at most to `max` slots), filled so its elements stay packed. Pushing
   * one hash at a time measured 1-2 us a tx more in verifyAhead at 50,000 hashes (noisy).
   */
  private growRing(max: number): string[] {
    const old = this.verifiedRing;
    const ring = new Array<string>(Math.min(max, Math.max(1024, 2 * old.length))).fill('');
    for (let i = 0; i < old.length; i++) ring[i] = old[i] as string;
    this.verifiedRing = ring;
    return ring;
  }

  hasSender(fromHex: string): boolean {
    return this.bySender.has(fromHex);
  }

  has(hashHex: string): boolean {
    const v = this.live.get(hashHex);
    return v !== undefined && v !== ORDERED_NOT_HELD;
  }

  get(hashHex: string): MempoolEntry | undefined {
    const v = this.live.get(hashHex);
    return v === ORDERED_NOT_HELD ? undefined : v;
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

  /**
   * The stateful half of intake, for a tx from prepare: signature (unless verified ahead), nonce,
   * room. Not an async function: with the committed nonce at hand (cached, the common case) it
   * answers without suspending, and an async function allocated its suspendable frame anyway.
   */
  addPrepared(t: IntakeTx, opts: { verifySignature: boolean; local: boolean }): Promise<AddOutcome> {
    try {
      const { hash, hashHex, tx } = t;
      // Prepared earlier: the same tx may have entered since (twice in one batch, a retry), or
      // been delivered in a batch ("known" covers both: everything in `live`).
      if (this.live.has(hashHex)) return Promise.resolve({ kind: 'known', hash, hashHex });
      const aheadSeq = (t as Partial<Intake>).verifiedIn === this ? (t as Intake).verifiedSeq : -1;
      let verifiedSeq = this.stillVerified(aheadSeq) ? aheadSeq : -1;
      if (opts.verifySignature && verifiedSeq < 0 && !this.verified.has(hashHex)) {
        // Inline: one verification costs less than handing it to another thread and back.
        // One verifyAhead refused is not verified again (the verdict of the same bytes).
        const refused = (t as Partial<Intake>).refusedIn === this;
        if (refused || !verifyEncodedTx(t.bytes, tx.signature, tx.from)) {
          return Promise.resolve({
            kind: 'rejected',
            code: 'bad-signature',
            message: 'signature does not verify against from',
            field: 'signature',
          });
        }
        verifiedSeq = this.rememberVerified(hashHex, true);
      }
      const fromHex = toHex(tx.from);
      const read = this.committedNonce(fromHex, tx.from);
      if (typeof read === 'bigint') return Promise.resolve(this.admit(t, opts, fromHex, read, verifiedSeq));
      return this.admitAfterRead(t, opts, fromHex, read, verifiedSeq);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  private async admitAfterRead(
    t: IntakeTx,
    opts: { local: boolean },
    fromHex: string,
    read: Promise<bigint>,
    verifiedSeq: number,
  ): Promise<AddOutcome> {
    const committed = await read;
    // Another add of the same tx may have completed during the wait.
    if (this.live.has(t.hashHex)) return { kind: 'known', hash: t.hash, hashHex: t.hashHex };
    return this.admit(t, opts, fromHex, committed, verifiedSeq);
  }

  /** The nonce and room checks of addPrepared, and the entry. */
  private admit(
    t: IntakeTx,
    opts: { local: boolean },
    fromHex: string,
    committed: bigint,
    verifiedSeq: number,
  ): AddOutcome {
    const { bytes, hash, hashHex, tx } = t;
    if (tx.nonce <= committed) {
      return {
        kind: 'rejected',
        code: 'stale-nonce',
        message: `nonce ${tx.nonce} is not above the committed nonce ${committed}`,
        field: 'nonce',
      };
    }
    // (A nonce within nonceAheadMax of 0 is within it of any committed nonce: no BigInt sum.)
    if (tx.nonce > this.nonceAheadMax && tx.nonce > committed + this.nonceAheadMax) {
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
    if (this.heldCount >= this.limits.txCountMax || this.bytesTotal + bytes.length > this.limits.bytesMax) {
      return { kind: 'rejected', code: 'mempool-full', message: 'mempool is full, retry later' };
    }
    const nowMs = this.now();
    const entry: Held = {
      bytes: ownBytes(bytes),
      hash,
      hashHex,
      fromHex,
      nonce: tx.nonce,
      addedMs: nowMs,
      enteredMs: nowMs,
      inflight: false,
      local: opts.local,
      regossipMs: 0,
      ordered: false,
      verifiedSeq,
    };
    this.live.set(hashHex, entry);
    this.heldCount++;
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
    const taken: Held[] = [];
    /** Per tx taken, its sender's rank: the order of the sender's first tx taken. */
    const rankOfTx: number[] = [];
    const rankOfSender = new Map<string, number>();
    let bytes = 0;
    for (const e of this.live.values()) {
      if (e === ORDERED_NOT_HELD || e.inflight) continue;
      if (taken.length >= txsMax || bytes + e.bytes.length + 4 > bytesMax) break;
      e.inflight = true;
      this.inflightCount++;
      bytes += e.bytes.length + 4;
      let rank = rankOfSender.get(e.fromHex);
      if (rank === undefined) {
        rank = rankOfSender.size;
        rankOfSender.set(e.fromHex, rank);
      }
      taken.push(e);
      rankOfTx.push(rank);
    }
    const senders = rankOfSender.size;
    if (senders === taken.length) return taken;
    // A counting sort by rank keeps each sender's txs in entry order; then each sender's run
    // is put in nonce order. No comparator sort: it compared sender hex strings n log n times.
    const runEnd = new Array<number>(senders).fill(0);
    for (const rank of rankOfTx) runEnd[rank] = (runEnd[rank] as number) + 1;
    for (let r = 1; r < senders; r++) runEnd[r] = (runEnd[r] as number) + (runEnd[r - 1] as number);
    const out = new Array<Held>(taken.length);
    for (let i = taken.length - 1; i >= 0; i--) {
      const rank = rankOfTx[i] as number;
      const at = (runEnd[rank] as number) - 1;
      runEnd[rank] = at;
      out[at] = taken[i] as Held;
    }
    // runEnd now holds where each run starts.
    for (let r = 0; r < senders; r++)
      sortByNonce(out, runEnd[r] as number, r + 1 < senders ? (runEnd[r + 1] as number) : out.length);
    return out;
  }

  /** A refused proposal: its txs may be taken again. */
  release(entries: readonly MempoolEntry[]): void {
    for (const e of entries) {
      const held = this.live.get(e.hashHex);
      if (held !== ORDERED_NOT_HELD && held === e && held.inflight && !held.ordered) {
        held.inflight = false;
        this.inflightCount--;
      }
    }
  }

  /** After a view change: whatever was proposed but not ordered goes back to pending. */
  releaseInflight(): number {
    let n = 0;
    for (const e of this.live.values()) {
      if (e !== ORDERED_NOT_HELD && e.inflight && !e.ordered) {
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
      const e = this.live.get(h);
      if (e === undefined) {
        // One arriving before the block is written is "known".
        this.live.set(h, ORDERED_NOT_HELD);
        continue;
      }
      if (e === ORDERED_NOT_HELD || e.ordered) continue;
      e.ordered = true;
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
      const e = this.live.get(h);
      if (e === undefined) continue;
      if (e === ORDERED_NOT_HELD) {
        this.live.delete(h);
        continue;
      }
      e.ordered = false;
      this.drop(e);
      removed.push(e);
    }
    return removed;
  }

  /** Drops txs whose nonce is now at or below the sender's committed nonce (they can never run). */
  pruneStale(fromHex: string, committedNonce: bigint): number {
    const nonces = this.bySender.get(fromHex);
    if (nonces === undefined) return 0;
    if (!(nonces instanceof Map)) {
      if (nonces.nonce > committedNonce) return 0;
      this.drop(nonces);
      return 1;
    }
    const stale: Held[] = [];
    for (const e of nonces.values()) if (e.nonce <= committedNonce) stale.push(e);
    for (const e of stale) this.drop(e);
    return stale.length;
  }

  /** Oldest tx age, ms (0 when empty); the request timer of the view-change trigger. */
  oldestAgeMs(): number {
    for (const e of this.live.values()) if (e !== ORDERED_NOT_HELD) return this.now() - e.addedMs;
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
    for (const e of this.live.values()) {
      if (e === ORDERED_NOT_HELD) continue;
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
    for (const e of this.live.values()) if (e !== ORDERED_NOT_HELD) e.addedMs = t;
  }

  /** Forgets a held tx; one of a delivered batch stays known (ordered) until its block is written. */
  private drop(e: Held): void {
    if (e.ordered) this.live.set(e.hashHex, ORDERED_NOT_HELD);
    else this.live.delete(e.hashHex);
    this.heldCount--;
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
