// Checkpoint votes of one pillar: the latest few CHECKPOINTs per validator, and the moment
// f + 1 of them match (then everything up to that order is stable).
import { bytesEqual } from '../ledger/codec/binary.js';
import type { Checkpoint, StableProof } from './messages.js';

/** A faulty validator can spray checkpoints for many orders; only the newest few are kept. */
const CHECKPOINTS_KEPT_PER_VALIDATOR = 4;

export class CheckpointVotes {
  private readonly byValidator = new Map<number, Checkpoint[]>();

  constructor(private readonly f: number) {}

  /** Records a verified checkpoint; returns the stable proof when f + 1 now match it. */
  record(from: number, m: Checkpoint): StableProof | null {
    const list = this.byValidator.get(from) ?? [];
    if (list.some((c) => c.order === m.order)) return null;
    list.push(m);
    list.sort((a, b) => (a.order < b.order ? -1 : a.order > b.order ? 1 : 0));
    if (list.length > CHECKPOINTS_KEPT_PER_VALIDATOR) list.shift();
    this.byValidator.set(from, list);
    const certs = [];
    for (const cs of this.byValidator.values()) {
      const match = cs.find(
        (c) =>
          c.order === m.order &&
          bytesEqual(c.stateDigest, m.stateDigest) &&
          bytesEqual(c.blockHash, m.blockHash),
      );
      if (match) certs.push(match.cert);
    }
    if (certs.length < this.f + 1) return null;
    return { order: m.order, stateDigest: m.stateDigest, blockHash: m.blockHash, certs };
  }

  /** Forgets votes below a newly stable checkpoint (the stable one itself may still be resent). */
  pruneBelow(stableOrder: bigint): void {
    for (const [v, list] of this.byValidator) {
      const kept = list.filter((c) => c.order >= stableOrder);
      if (kept.length === 0) this.byValidator.delete(v);
      else this.byValidator.set(v, kept);
    }
  }
}
