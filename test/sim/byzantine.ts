// Byzantine replicas for the simulator. Each behaviour wraps a correct replica and
// mutates, forges, replays or hides what it sends. It holds the replica's real TrInX
// (the trusted part cannot be subverted, only asked), so every attempt to equivocate
// goes through TrInX and is either refused there or produces a certificate that
// does not verify at the receivers.

import { batchDigest, linkDigest, prepareDigest } from '../../consensus/digest.js';
import {
  type ConsensusConfig,
  Counter,
  type CounterCert,
  decodeMessage,
  encodeMessage,
  type Message,
  type Prepare,
  type Trinx,
  type ViewChange,
} from '../../consensus/index.js';
import { PrepareFabricator } from './fabricate.js';
import { LowerTopForger, reproveViewChange } from './lower-top.js';
import type { Prng } from './prng.js';
import { StalePrepareReporter } from './stale-prepare.js';

export type BehaviourName =
  | 'equivocate'
  | 'replay-forge'
  | 'silent'
  | 'hide-history'
  | 'bad-new-view'
  | 'garbage'
  | 'lower-top'
  | 'fabricate-prepare'
  | 'stale-prepare';
/** The random rotation: every behaviour. */
export const BEHAVIOURS: readonly BehaviourName[] = [
  'equivocate',
  'replay-forge',
  'silent',
  'hide-history',
  'stale-prepare',
  'bad-new-view',
  'garbage',
  'lower-top',
  'fabricate-prepare',
];

/**
 * Behaviours whose core never leads (its TrInX refuses prepares and NEW-VIEWs in views it
 * leads): their attack needs a view change the replica cannot win. Closing only when the
 * attack starts is too late: a core whose view change already has f + 1 votes certifies
 * its NEW-VIEW in the same step, before the wrapper sees the VIEW-CHANGE it rewrites.
 */
export const NEVER_LEADS: ReadonlySet<BehaviourName> = new Set(['lower-top', 'fabricate-prepare']);

export interface Outgoing {
  readonly to: number;
  readonly bytes: Uint8Array;
}

export interface ByzStats {
  equivocationAttempts: number;
  equivocationRefusedByTrinx: number;
  forgedSent: number;
  replayed: number;
  hiddenHistories: number;
  badNewViews: number;
  garbageSent: number;
  /** Forged VIEW-CHANGEs that claim a lower `top` than the replica certified. */
  lowerTopSent: number;
  /** VIEW-CHANGEs carrying prepares fabricated without a NEW-VIEW. */
  fabricatedSent: number;
  /** VIEW-CHANGEs reporting older-view prepares in place of the replica's later ones. */
  staleSent: number;
}

export const emptyByzStats = (): ByzStats => ({
  equivocationAttempts: 0,
  equivocationRefusedByTrinx: 0,
  forgedSent: 0,
  replayed: 0,
  hiddenHistories: 0,
  badNewViews: 0,
  garbageSent: 0,
  lowerTopSent: 0,
  fabricatedSent: 0,
  staleSent: 0,
});

export class ByzantineWrapper {
  private readonly seen: Uint8Array[] = [];
  private readonly equivocated = new Set<string>();
  private readonly lowerTop: LowerTopForger;
  private readonly fabricator: PrepareFabricator;
  private readonly stale: StalePrepareReporter;

  constructor(
    readonly behaviour: BehaviourName,
    readonly id: number,
    private readonly config: ConsensusConfig,
    private readonly trinxes: () => readonly Trinx[],
    private readonly rng: Prng,
    readonly stats: ByzStats,
  ) {
    this.lowerTop = new LowerTopForger(config, trinxes);
    this.fabricator = new PrepareFabricator(config, id, trinxes);
    this.stale = new StalePrepareReporter(config, trinxes);
  }

  /** The virtual time, for behaviours that act on a schedule. */
  setNow(nowMs: number): void {
    this.stale.setNow(nowMs);
  }

  /** Records what others send, for replays (bounded); false hides the bytes from the core. */
  incoming(bytes: Uint8Array): boolean {
    if (this.seen.length < 256) this.seen.push(bytes);
    else this.seen[this.rng.int(0, 255)] = bytes;
    if (this.behaviour === 'stale-prepare') return this.stale.incoming(this.stale.decode(bytes));
    return true;
  }

  /** Rewrites one broadcast (to = -1) or send of the wrapped correct replica. */
  outgoing(to: number, bytes: Uint8Array): Outgoing[] {
    const others = [...Array(this.config.n).keys()].filter((v) => v !== this.id);
    const fanOut = (b: Uint8Array): Outgoing[] =>
      to < 0 ? others.map((t) => ({ to: t, bytes: b })) : [{ to, bytes: b }];
    const decoded = decodeMessage(bytes, this.config);
    const m: Message | null = decoded.ok ? decoded.value : null;
    switch (this.behaviour) {
      case 'silent':
        return [];
      case 'equivocate':
        if (m?.type === 'prepare' && to < 0) return this.equivocate(m, others);
        return fanOut(bytes);
      case 'hide-history':
        if (m?.type === 'view-change') return fanOut(this.hideHistory(m));
        return fanOut(bytes);
      case 'bad-new-view':
        if (m?.type === 'new-view') {
          this.stats.badNewViews++;
          return fanOut(this.corruptNewView(m));
        }
        return fanOut(bytes);
      case 'replay-forge': {
        const out = fanOut(bytes);
        if (this.seen.length > 0 && this.rng.chance(0.3)) {
          const old = this.rng.pick(this.seen);
          this.stats.replayed++;
          out.push({ to: this.rng.pick(others), bytes: old });
          const forged = this.forgeIssuer(old);
          if (forged !== null) {
            this.stats.forgedSent++;
            out.push({ to: this.rng.pick(others), bytes: forged });
          }
        }
        return out;
      }
      case 'lower-top':
        if (m?.type === 'view-change') {
          const forged = this.lowerTop.forge(m);
          if (forged === null) return fanOut(bytes);
          this.stats.lowerTopSent++;
          return fanOut(forged);
        }
        return fanOut(bytes);
      case 'fabricate-prepare':
        if (m?.type === 'view-change') {
          const rewritten = this.fabricator.rewrite(m);
          if (rewritten !== null) this.stats.fabricatedSent++;
          return fanOut(rewritten ?? bytes);
        }
        return fanOut(bytes);
      case 'stale-prepare': {
        let out = bytes;
        if (m?.type === 'view-change') {
          const rewritten = this.stale.rewrite(m);
          if (rewritten !== null) {
            this.stats.staleSent++;
            out = rewritten;
          }
        }
        return this.stale.keeps(m) ? fanOut(out) : [];
      }
      case 'garbage': {
        const out = fanOut(bytes);
        if (this.rng.chance(0.3)) {
          this.stats.garbageSent++;
          const kind = this.rng.int(0, 3);
          let junk: Uint8Array;
          if (kind === 0) junk = this.rng.bytes(this.rng.int(0, 200));
          else if (kind === 1) junk = bytes.slice(0, this.rng.int(0, bytes.length - 1));
          else if (kind === 2) {
            junk = bytes.slice();
            const i = this.rng.int(0, junk.length - 1);
            junk[i] = junk[i]! ^ (1 << this.rng.int(0, 7));
          } else {
            // A huge length prefix: the decoder must refuse it before allocating.
            junk = new Uint8Array([1, 0, 0, ...new Array(16).fill(0), 0xff, 0xff, 0xff, 0xf0]);
          }
          out.push({ to: this.rng.pick(others), bytes: junk });
        }
        return out;
      }
    }
  }

  /** Two batches for one (view, order): TrInX must refuse the second certificate. */
  private equivocate(p: Prepare, others: number[]): Outgoing[] {
    const key = `${p.pillar}:${p.view}:${p.order}`;
    const honest = encodeMessage(p);
    if (this.equivocated.has(key)) return others.map((to) => ({ to, bytes: honest }));
    this.equivocated.add(key);
    this.stats.equivocationAttempts++;
    const other = new Uint8Array(p.batch.length + 16);
    other.set(p.batch);
    other.set(this.rng.bytes(16), p.batch.length);
    const trinx = this.trinxes()[p.pillar]!;
    const c = trinx.certifyIndependent(
      Counter.ORDER,
      { view: p.view, order: p.order + 2n },
      prepareDigest(p.pillar, p.view, p.order, batchDigest(other), p.topCert.mac),
    );
    let cert: CounterCert;
    if (c.ok) cert = c.value;
    else {
      this.stats.equivocationRefusedByTrinx++;
      this.stats.forgedSent++;
      // Fall back to a forgery: the honest certificate on the other batch, or random MAC bytes.
      cert = this.rng.chance(0.5) ? p.cert : { ...p.cert, mac: this.rng.bytes(32) };
    }
    const evil = encodeMessage({ ...p, batch: other, cert });
    const half = new Set(this.rng.shuffle([...others]).slice(0, Math.ceil(others.length / 2)));
    return others.map((to) => ({ to, bytes: half.has(to) ? evil : honest }));
  }

  /** Drops history entries (and sometimes lowers `top` to match) but keeps a fresh TOP proof. */
  private hideHistory(vc: ViewChange): Uint8Array {
    if (vc.history.length === 0) return encodeMessage(vc);
    this.stats.hiddenHistories++;
    const trinx = this.trinxes()[vc.pillar]!;
    const history = this.rng.chance(0.5) ? vc.history.slice(0, -1) : vc.history.slice(1);
    let top = vc.top;
    let link = vc.link;
    if (this.rng.chance(0.5) && history.length > 0) {
      top = history[history.length - 1]!.order + 1n;
      // Re-link with the lower top: allowed (same counter value), but TOP still proves the real one.
      const relinked = trinx.certifyContinuing(
        Counter.ORDER,
        link.value,
        linkDigest(vc.pillar, link.value, top),
      );
      if (relinked.ok) link = relinked.value;
    }
    const doctored = { ...vc, history, top, link };
    return encodeMessage(reproveViewChange(trinx, doctored) ?? doctored);
  }

  private corruptNewView(nv: Extract<Message, { type: 'new-view' }>): Uint8Array {
    const kind = this.rng.int(0, 2);
    if (kind === 0 && nv.batches.length > 0) {
      return encodeMessage({ ...nv, batches: nv.batches.slice(0, -1) });
    }
    if (kind === 1 && nv.batches.length > 0) {
      const i = this.rng.int(0, nv.batches.length - 1);
      const batches = nv.batches.map((b, j) => (j === i ? this.rng.bytes(16) : b));
      return encodeMessage({ ...nv, batches });
    }
    return encodeMessage({ ...nv, viewChanges: nv.viewChanges.slice(1) });
  }

  /** Takes someone else's certified message and claims it as its own. */
  private forgeIssuer(bytes: Uint8Array): Uint8Array | null {
    const r = decodeMessage(bytes, this.config);
    if (!r.ok) return null;
    const m = r.value;
    const me = (c: CounterCert): CounterCert => ({ ...c, issuer: { ...c.issuer, validator: this.id } });
    if (m.type === 'commit') return encodeMessage({ ...m, cert: me(m.cert) });
    if (m.type === 'checkpoint')
      return encodeMessage({ ...m, cert: { ...m.cert, issuer: { ...m.cert.issuer, validator: this.id } } });
    if (m.type === 'prepare') return encodeMessage({ ...m, cert: me(m.cert) });
    return null;
  }
}
