// Remembers misbehaving peers so the node can refuse their reconnects for a while.
// Each offense doubles the penalty (up to a cap); offenses are forgotten after a
// quiet period. Only authenticated identities should be penalized: an id claimed in
// a handshake that then failed is unproven, and penalizing it would let anyone get an
// honest validator locked out.

export interface PenaltyBoxOptions {
  penaltyMsMin: number;
  penaltyMsMax: number;
  /** Offenses older than this no longer count towards doubling. */
  forgetAfterMs: number;
  /** Peers remembered at once; the oldest entries go first. */
  entriesMax: number;
}

export const PENALTY_BOX_DEFAULT: PenaltyBoxOptions = {
  penaltyMsMin: 1_000,
  penaltyMsMax: 5 * 60_000,
  forgetAfterMs: 10 * 60_000,
  entriesMax: 1_024,
};

interface Entry {
  offenses: number;
  untilMs: number;
  lastOffenseMs: number;
  reason: string;
}

export class PeerPenaltyBox<K extends string | number = number> {
  private readonly options: PenaltyBoxOptions;
  private readonly entries = new Map<K, Entry>();

  constructor(
    options: Partial<PenaltyBoxOptions> = {},
    private readonly now: () => number = Date.now,
  ) {
    this.options = { ...PENALTY_BOX_DEFAULT, ...options };
  }

  /** Records an offense; returns how long the peer is now refused, ms. */
  penalize(peer: K, reason: string): number {
    const nowMs = this.now();
    const previous = this.entries.get(peer);
    const offenses =
      previous && nowMs - previous.lastOffenseMs < this.options.forgetAfterMs ? previous.offenses + 1 : 1;
    const penaltyMs = Math.min(
      this.options.penaltyMsMax,
      this.options.penaltyMsMin * 2 ** Math.min(offenses - 1, 40),
    );
    this.entries.delete(peer); // re-inserted last: Map order is our age order
    this.entries.set(peer, { offenses, untilMs: nowMs + penaltyMs, lastOffenseMs: nowMs, reason });
    this.evict(nowMs);
    return penaltyMs;
  }

  /** Milliseconds until the peer may connect again; 0 when it may now. */
  remainingMs(peer: K): number {
    const e = this.entries.get(peer);
    return e ? Math.max(0, e.untilMs - this.now()) : 0;
  }

  isPenalized(peer: K): boolean {
    return this.remainingMs(peer) > 0;
  }

  /** Why the peer was last penalized (for logs). */
  reason(peer: K): string | undefined {
    return this.entries.get(peer)?.reason;
  }

  get size(): number {
    return this.entries.size;
  }

  private evict(nowMs: number): void {
    if (this.entries.size <= this.options.entriesMax) return;
    for (const [peer, e] of this.entries) {
      if (nowMs - e.lastOffenseMs >= this.options.forgetAfterMs && e.untilMs <= nowMs)
        this.entries.delete(peer);
    }
    for (const peer of this.entries.keys()) {
      if (this.entries.size <= this.options.entriesMax) break;
      this.entries.delete(peer);
    }
  }
}
