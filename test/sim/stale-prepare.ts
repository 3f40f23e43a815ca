// The `stale-prepare` attack on the reporter's choice among its own prepares
// (docs/consensus.md, "Last certifying view"). A faulty replica keeps view-0 prepares of the
// view-0 leader that it hid from its own core (so its core never certified them and its top
// stays below them), lets its core certify other batches at those orders in a later view u
// (which a correct replica commits), and then reports the hidden view-0 prepares instead of
// its view-u ones in its VIEW-CHANGEs. A leader that builds its NEW-VIEW from this and the
// view-0 leader's view change (both reporting view 0 at those orders) re-proposes the old
// batches where the correct replica already executed the view-u ones.
//
// The replica's host also hides checkpoints from its core and withholds its own (so the low
// watermark stays below the attacked orders) and, once it attacks, stops its core from leading.
import { batchDigest } from '../../consensus/digest.js';
import {
  type ConsensusConfig,
  Counter,
  decodeMessage,
  encodeMessage,
  type Message,
  type Prepare,
  type Trinx,
  type ViewChange,
  type ViewProof,
} from '../../consensus/index.js';
import { viewChangeDigest } from '../../consensus/messages.js';
import { bytesEqual } from '../../ledger/codec/binary.js';
import { GatedTrinx } from './lower-top.js';

/** Virtual time from which the replica hides view-0 prepares from its core. */
export const STALE_FREEZE_MS = 1300;

export class StalePrepareReporter {
  private readonly stash = new Map<number, Map<bigint, Prepare>>();
  private nowMs = 0;

  constructor(
    private readonly config: ConsensusConfig,
    private readonly trinxes: () => readonly Trinx[],
    private readonly freezeMs = STALE_FREEZE_MS,
  ) {}

  setNow(nowMs: number): void {
    this.nowMs = nowMs;
  }

  private frozen(): boolean {
    return this.nowMs >= this.freezeMs;
  }

  /** Whether the core may see these bytes; view-0 prepares after the freeze are kept back. */
  incoming(m: Message | null): boolean {
    if (m === null || !this.frozen()) return true;
    if (m.type === 'checkpoint') return false;
    if (m.type !== 'prepare' || m.view !== 0n) return true;
    let mine = this.stash.get(m.pillar);
    if (mine === undefined) {
      mine = new Map();
      this.stash.set(m.pillar, mine);
    }
    if (!mine.has(m.order)) mine.set(m.order, m);
    return false;
  }

  /** Whether the wrapped replica's message is sent: its checkpoints are withheld after the freeze. */
  keeps(m: Message | null): boolean {
    if (m === null || !this.frozen()) return true;
    return m.type !== 'checkpoint';
  }

  /** The core's VIEW-CHANGE with hidden view-0 prepares in place of its later ones, or null. */
  rewrite(vc: ViewChange): Uint8Array | null {
    const stash = this.stash.get(vc.pillar);
    const gated = this.trinxes()[vc.pillar];
    if (stash === undefined || gated === undefined) return null;
    let swapped = 0;
    const history = vc.history.map((p) => {
      const old = stash.get(p.order);
      if (old === undefined || p.view === 0n || bytesEqual(old.batch, p.batch)) return p;
      swapped++;
      return old;
    });
    if (swapped === 0) return null;
    if (gated instanceof GatedTrinx) gated.close();
    // Proofs of the views still reported, and of the last certifying view the TOP proof shows.
    const used = new Set([...history.map((p) => p.view), vc.proof.value.view]);
    const proofs: ViewProof[] = vc.proofs.filter((vp) => used.has(vp.view));
    const unsigned = { ...vc, history, proofs };
    const trinx = gated instanceof GatedTrinx ? gated.raw : gated;
    const proof = trinx.certifyContinuing(
      Counter.TOP,
      trinx.current(Counter.TOP),
      viewChangeDigest(
        unsigned,
        history.map((p) => batchDigest(p.batch)),
      ),
    );
    return proof.ok ? encodeMessage({ ...unsigned, proof: proof.value }) : null;
  }

  decode(bytes: Uint8Array): Message | null {
    const r = decodeMessage(bytes, this.config);
    return r.ok ? r.value : null;
  }
}
