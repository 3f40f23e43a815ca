// Gossiped txs a follower holds without checking their signatures, because two other
// validators will most likely vouch for them (docs/consensus.md, "Vouched signatures").
//
// With n = 3 (f = 1) a tx that entered at follower A is verified by A (its API) and by the
// leader L (its gossip intake, before it proposes). The third validator B receives it from
// A's gossip and then in L's PREPARE. Every correct validator gossips only txs it verified,
// and a correct leader proposes only txs from its own mempool, which holds only verified
// ones: so A's gossip and L's fresh proposal are two vouchers, at most one of them faulty,
// and B may execute the tx without verifying it. B holds such a tx here instead of its
// mempool. What the batch does not order within the hold is verified after all and enters
// the mempool, as every gossiped tx did before, so nothing held is ever lost.
import { ownBytes } from './mempool.js';

export interface VouchLimits {
  /** How long a held tx waits for a batch to order it before it is verified after all, ms. */
  holdMs: number;
  /** Held txs at most; past it gossip is verified at once, as without vouching. */
  txCountMax: number;
  /** Held bytes at most, likewise. */
  bytesMax: number;
}

export const VOUCH_DEFAULTS: VouchLimits & { enabled: boolean } = {
  enabled: true,
  holdMs: 1000,
  txCountMax: 50_000,
  bytesMax: 16 * 1024 * 1024,
};

/** A held tx: its bytes, the peer that gossiped it, when it came (monotonic ms). */
export interface HeldTx {
  readonly hashHex: string;
  readonly bytes: Uint8Array;
  readonly from: number;
  readonly atMs: number;
}

export class VouchedTxs {
  /** By hash hex, in arrival order (so the oldest are first to fall due). */
  private readonly held = new Map<string, HeldTx>();
  private bytesTotal = 0;

  constructor(
    /** This validator: it never counts as one of the two vouchers. */
    private readonly self: number,
    private readonly limits: VouchLimits,
  ) {}

  get size(): number {
    return this.held.size;
  }
  get bytes(): number {
    return this.bytesTotal;
  }

  /** Age of the oldest held tx, ms (0 when none): the request timer watches these too. */
  oldestAgeMs(nowMs: number): number {
    for (const h of this.held.values()) return nowMs - h.atMs;
    return 0;
  }

  has(hashHex: string): boolean {
    return this.held.has(hashHex);
  }

  /**
   * Holds a tx that peer `from` gossiped. True when it is held (now or already); false when
   * the limits leave no room, and the caller verifies it at once instead.
   */
  hold(hashHex: string, bytes: Uint8Array, from: number, nowMs: number): boolean {
    if (this.held.has(hashHex)) return true;
    if (from === this.self) return false;
    if (this.held.size >= this.limits.txCountMax || this.bytesTotal + bytes.length > this.limits.bytesMax)
      return false;
    // Gossip hands in views into the whole frame: a held copy must not pin it.
    const own = ownBytes(bytes);
    this.held.set(hashHex, { hashHex, bytes: own, from, atMs: nowMs });
    this.bytesTotal += own.length;
    return true;
  }

  /**
   * Whether the held tx with this hash has two vouchers besides this validator: the peer
   * that gossiped it and `vouchedBy` (the leader that cut the batch in its own view). Both
   * must be others, and distinct: a leader gossiping and proposing its own tx is one voucher.
   */
  vouches(hashHex: string, vouchedBy: number): boolean {
    if (vouchedBy === this.self) return false;
    const h = this.held.get(hashHex);
    return h !== undefined && h.from !== vouchedBy;
  }

  /**
   * Lets go of the txs of a delivered batch (executed: nothing is left to decide for them);
   * returns how many were held.
   */
  forget(hashesHex: readonly string[]): number {
    if (this.held.size === 0) return 0;
    let n = 0;
    for (const hashHex of hashesHex) {
      const h = this.held.get(hashHex);
      if (h === undefined) continue;
      this.held.delete(hashHex);
      this.bytesTotal -= h.bytes.length;
      n++;
    }
    return n;
  }

  /**
   * Takes out the txs held longer than holdMs (every one with `all`: this validator leads,
   * or a view change is on), oldest first, for the caller to verify and put in its mempool.
   */
  takeDue(nowMs: number, all: boolean): HeldTx[] {
    const out: HeldTx[] = [];
    const cutoff = nowMs - this.limits.holdMs;
    for (const h of this.held.values()) {
      if (!all && h.atMs > cutoff) break;
      out.push(h);
    }
    for (const h of out) this.held.delete(h.hashHex);
    for (const h of out) this.bytesTotal -= h.bytes.length;
    return out;
  }
}
