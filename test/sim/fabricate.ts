// The `fabricate-prepare` attack, a known limit (docs/consensus.md): a faulty replica that
// leads view w certifies its own prepares in w for orders it committed earlier, with other
// batches and without any NEW-VIEW for w, and reports them in its later VIEW-CHANGEs. The
// highest-view rule of the NEW-VIEW then prefers them over the batches committed in view 0.
// Not in the random rotation: it still breaks agreement when the scenario meets it.
import { batchDigest, prepareDigest, topDigest } from '../../consensus/digest.js';
import {
  type ConsensusConfig,
  Counter,
  encodeMessage,
  leaderOf,
  type Prepare,
  type Trinx,
  type ViewChange,
} from '../../consensus/index.js';
import { GatedTrinx, reproveViewChange } from './lower-top.js';

export class PrepareFabricator {
  private readonly fabricated = new Map<number, Map<bigint, Prepare>>();

  constructor(
    private readonly config: ConsensusConfig,
    private readonly id: number,
    private readonly trinxes: () => readonly Trinx[],
  ) {}

  /** Rewrites the core's own VIEW-CHANGE; fabricates once, at the first view it would lead. */
  rewrite(vc: ViewChange): Uint8Array | null {
    const gated = this.trinxes()[vc.pillar];
    if (gated === undefined) return null;
    const trinx = gated instanceof GatedTrinx ? gated.raw : gated;
    let mine = this.fabricated.get(vc.pillar);
    if (mine === undefined && leaderOf(this.config, vc.toView) === this.id && vc.history.length > 0) {
      if (gated instanceof GatedTrinx) gated.close();
      mine = new Map();
      // A prepare's TOP certificate must show the prepare's view: raise TOP into it.
      const top = { view: vc.toView, order: trinx.current(Counter.TOP).order };
      const topCert = trinx.certifyContinuing(Counter.TOP, top, topDigest(vc.pillar));
      if (!topCert.ok) return null;
      for (const p of vc.history) {
        const batch = new Uint8Array([...p.batch, 0xfa, 0xb0]);
        const c = trinx.certifyIndependent(
          Counter.ORDER,
          { view: vc.toView, order: p.order + 2n },
          prepareDigest(vc.pillar, vc.toView, p.order, batchDigest(batch), topCert.value.mac),
        );
        if (!c.ok) break;
        mine.set(p.order, { ...p, view: vc.toView, batch, cert: c.value, topCert: topCert.value });
      }
      this.fabricated.set(vc.pillar, mine);
      return null;
    }
    if (mine === undefined || mine.size === 0) return null;
    const history = vc.history.map((p) => {
      const f = mine.get(p.order);
      return f !== undefined && f.view < vc.toView && f.view > p.view ? f : p;
    });
    const reproved = reproveViewChange(trinx, { ...vc, history });
    return reproved ? encodeMessage(reproved) : null;
  }
}
