import {
  type ConsensusConfig,
  decodeMessage,
  encodeMessage,
  type Message,
  type Prepare,
  type Trinx,
  type ViewChange,
  type ViewProof,
} from '../../consensus/index.js';
import { bytesEqual } from '../../ledger/codec/binary.js';
import { GatedTrinx, reproveViewChange } from './lower-top.js';

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
    const trinx = gated instanceof GatedTrinx ? gated.raw : gated;
    const reproved = reproveViewChange(trinx, { ...vc, history, proofs });
    return reproved ? encodeMessage(reproved) : null;
  }

  decode(bytes: Uint8Array): Message | null {
    const r = decodeMessage(bytes, this.config);
    return r.ok ? r.value : null;
  }
}
