// The `lower-top` attack on view-change completeness. The Byzantine replica lets its correct
// core commit as usual, then replaces each of its VIEW-CHANGEs with one that claims a lower
// `top` (one past the highest order it certified) and a history cut to match, hoping a new
// leader builds its NEW-VIEW from this and one replica that missed the commits: a committed
// batch would not be re-proposed and the new leader would order a different one there.
//
// Against the old proof of top (a chain of ORDER links, checked one view deep) this worked
// by burning two views with a certificate at order 0 each (see docs/consensus.md). With the
// TOP counter the replica's TrInX can only prove the real top; the forger still tries:
// a fresh proof of the current TOP value next to the lower claim, or a proof whose values it
// edits to match (which breaks the MAC).
import { batchDigest, linkDigest } from '../../consensus/digest.js';
import {
  type ConsensusConfig,
  Counter,
  type CounterCert,
  type CounterId,
  type CounterValue,
  encodeMessage,
  firstOrderAtOrAbove,
  type Issuer,
  type PlainCert,
  type Trinx,
  type TrinxRefusal,
  type TrinxState,
  type ViewChange,
} from '../../consensus/index.js';
import { viewChangeDigest } from '../../consensus/messages.js';
import { err, type Result } from '../../ledger/codec/binary.js';

/**
 * The Byzantine replica's own TrInX as its (correct) core sees it: the replica decides what
 * its core may certify. Once it attacks, its core may no longer lead (certify prepares or a
 * NEW-VIEW), so the view changes it cannot win are left to the others.
 */
export class GatedTrinx implements Trinx {
  private noLeading = false;

  constructor(
    readonly raw: Trinx,
    private readonly n: number,
    closed = false,
  ) {
    this.noLeading = closed;
  }

  close(): void {
    this.noLeading = true;
  }

  get issuer(): Issuer {
    return this.raw.issuer;
  }
  private gated(counter: CounterId, value: CounterValue): boolean {
    if (!this.noLeading) return false;
    if (counter === Counter.NEWVIEW) return true;
    const leads = Number(value.view % BigInt(this.n)) === this.issuer.validator;
    return counter === Counter.ORDER && leads && value.order >= 2n;
  }
  certifyIndependent(c: CounterId, v: CounterValue, d: Uint8Array): Result<CounterCert, TrinxRefusal> {
    return this.gated(c, v) ? err('counter-not-monotonic') : this.raw.certifyIndependent(c, v, d);
  }
  certifyContinuing(c: CounterId, v: CounterValue, d: Uint8Array): Result<CounterCert, TrinxRefusal> {
    return this.gated(c, v) ? err('counter-not-monotonic') : this.raw.certifyContinuing(c, v, d);
  }
  certifyPlain(d: Uint8Array): PlainCert {
    return this.raw.certifyPlain(d);
  }
  verifyIndependent(c: CounterCert, d: Uint8Array): boolean {
    return this.raw.verifyIndependent(c, d);
  }
  verifyContinuing(c: CounterCert, d: Uint8Array): boolean {
    return this.raw.verifyContinuing(c, d);
  }
  verifyPlain(c: PlainCert, d: Uint8Array): boolean {
    return this.raw.verifyPlain(c, d);
  }
  current(c: CounterId): CounterValue {
    return this.raw.current(c);
  }
  exportState(): TrinxState {
    return this.raw.exportState();
  }
}

const rawOf = (t: Trinx): Trinx => (t instanceof GatedTrinx ? t.raw : t);

export class LowerTopForger {
  private attempts = 0;

  constructor(
    private readonly config: ConsensusConfig,
    private readonly trinxes: () => readonly Trinx[],
  ) {}

  /**
   * The forged replacement for the core's own VIEW-CHANGE, or null when it has nothing to
   * hide (its top is already at the first order above the checkpoint).
   */
  forge(vc: ViewChange): Uint8Array | null {
    const gated = this.trinxes()[vc.pillar];
    if (gated === undefined) return null;
    const trinx = rawOf(gated);
    const lw = vc.stable === null ? 0n : vc.stable.order + 1n;
    const first = firstOrderAtOrAbove(this.config, vc.pillar, lw);
    // Keep one order when there is one to keep, so the claim looks like a short history.
    const low = vc.history.length > 1 ? first + BigInt(this.config.pillars) : first;
    if (vc.top <= low) return null;
    if (gated instanceof GatedTrinx) gated.close();
    // Re-issue the link (same counter value) binding the lower top.
    const link = trinx.certifyContinuing(
      Counter.ORDER,
      vc.link.value,
      linkDigest(vc.pillar, vc.link.value, low),
    );
    if (!link.ok) return null;
    const history = vc.history.filter((p) => p.order < low);
    const unsigned = { ...vc, top: low, history, link: link.value };
    const d = viewChangeDigest(
      unsigned,
      history.map((p) => batchDigest(p.batch)),
    );
    const proof = trinx.certifyContinuing(Counter.TOP, trinx.current(Counter.TOP), d);
    if (!proof.ok) return null;
    const claimed = { view: 0n, order: low };
    const edited = { ...proof.value, prev: claimed, value: claimed };
    this.attempts++;
    return encodeMessage({ ...unsigned, proof: this.attempts % 2 === 0 ? edited : proof.value });
  }
}

/**
 * A doctored VIEW-CHANGE with a fresh TOP proof over its new content: a faulty replica's own
 * TrInX signs whatever it is given at the counter's current value (null if it refuses).
 */
export function reproveViewChange(trinx: Trinx, vc: ViewChange): ViewChange | null {
  const proof = trinx.certifyContinuing(
    Counter.TOP,
    trinx.current(Counter.TOP),
    viewChangeDigest(
      vc,
      vc.history.map((p) => batchDigest(p.batch)),
    ),
  );
  return proof.ok ? { ...vc, proof: proof.value } : null;
}
