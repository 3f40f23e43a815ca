// Deliberately broken variants of the core, used only by tests that prove the simulator's
// invariants can fail. Nothing here is reachable from consensus/.
import {
  type CounterCert,
  type CounterId,
  type CounterValue,
  faults,
  PillarCore,
  type PillarOptions,
  SoftwareTrinx,
  type TrinxRefusal,
  type TrinxState,
} from '../../consensus/index.js';
import { ok, type Result } from '../../ledger/codec/binary.js';

/** A TrInX whose counters never refuse: a faulty leader can certify two batches for one order. */
export class NonMonotonicTrinx extends SoftwareTrinx {
  override certifyIndependent(
    counter: CounterId,
    value: CounterValue,
    digest: Uint8Array,
  ): Result<CounterCert, TrinxRefusal> {
    return ok(this.issue(counter, null, value, digest));
  }
}

export const makeNonMonotonicTrinx = (
  key: Uint8Array,
  validator: number,
  pillar: number,
  state?: TrinxState,
) => new NonMonotonicTrinx(key, { validator, pillar }, state);

/** Commits with f certified messages instead of f + 1. */
export class QuorumOfFPillar extends PillarCore {
  protected override commitQuorum(): number {
    return Math.max(1, faults(this.config));
  }
}

export const makeQuorumOfFPillar = (o: PillarOptions): PillarCore => new QuorumOfFPillar(o);

/** Trusts the `top` a VIEW-CHANGE claims instead of checking it against the sender's TOP counter. */
export class UncheckedTopPillar extends PillarCore {
  protected override checksTopProof(): boolean {
    return false;
  }
}

export const makeUncheckedTopPillar = (o: PillarOptions): PillarCore => new UncheckedTopPillar(o);

/**
 * Counts prepares of views above 0 in a VIEW-CHANGE without that view's proof (f + 1 ACCEPTs),
 * and so without the last-view rule, which rests on those proofs.
 */
export class UncheckedViewProofPillar extends PillarCore {
  protected override checksViewProofs(): boolean {
    return false;
  }
  protected override checksLastView(): boolean {
    return false;
  }
}

export const makeUncheckedViewProofPillar = (o: PillarOptions): PillarCore => new UncheckedViewProofPillar(o);

/** Counts prepares older than the sender's last certifying view in a VIEW-CHANGE. */
export class UncheckedLastViewPillar extends PillarCore {
  protected override checksLastView(): boolean {
    return false;
  }
}

export const makeUncheckedLastViewPillar = (o: PillarOptions): PillarCore => new UncheckedLastViewPillar(o);

/**
 * Marks every delivery fresh, NEW-VIEW re-proposals included: the node would then count a new
 * leader as voucher for signatures it never checked (docs/consensus.md, "Vouched signatures").
 */
export class AlwaysFreshPillar extends PillarCore {
  protected override freshPrepare(): boolean {
    return true;
  }
}

export const makeAlwaysFreshPillar = (o: PillarOptions): PillarCore => new AlwaysFreshPillar(o);
