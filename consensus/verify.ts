// Certificate checks for the messages of one pillar. Pure: they read the configuration and
// ask TrInX to verify, never change state. Shared by the normal case, checkpoints and the
// view change, and by anyone validating a VIEW-CHANGE or NEW-VIEW from outside the core.
import { type ConsensusConfig, faults, firstOrderAtOrAbove, leaderOf } from './config.js';
import {
  batchDigest,
  checkpointDigest,
  commitDigest,
  linkDigest,
  prepareDigest,
  topDigest,
  viewContentDigest,
} from './digest.js';
import type { Accept, Commit, NewViewAck, Prepare, StableProof, ViewProof } from './messages.js';
import { Counter, type CounterCert, counterEqual, type Trinx } from './trinx.js';

export class PillarVerifier {
  readonly f: number;
  /** Batches are immutable once handed to the core, so each is hashed once per pillar. */
  private readonly digests = new WeakMap<Uint8Array, Uint8Array>();

  constructor(
    readonly config: ConsensusConfig,
    readonly pillar: number,
    readonly trinx: Trinx,
    /** Only the broken-variant tests turn this off, to show what an unproven `top` allows. */
    readonly checksTopProof = true,
    /** Only the broken-variant tests turn this off, to show what unproven views allow. */
    readonly checksViewProofs = true,
    /** Only the broken-variant tests turn this off, to show what older-view reports allow. */
    readonly checksLastView = true,
  ) {
    this.f = faults(config);
  }

  digestOf(batch: Uint8Array): Uint8Array {
    let d = this.digests.get(batch);
    if (d === undefined) {
      d = batchDigest(batch);
      this.digests.set(batch, d);
    }
    return d;
  }

  /** The smallest order >= o owned by this pillar. */
  at(o: bigint): bigint {
    return firstOrderAtOrAbove(this.config, this.pillar, o);
  }

  ownsOrder(o: bigint): boolean {
    return o % BigInt(this.config.pillars) === BigInt(this.pillar);
  }

  /** An ORDER certificate of `validator` for this pillar. */
  issuerIs(c: CounterCert, validator: number): boolean {
    return c.issuer.validator === validator && c.issuer.pillar === this.pillar && c.counter === Counter.ORDER;
  }

  /**
   * A TOP certificate of `validator` showing its TOP counter is at (view, > order): it was
   * raised into the message's view (its last certifying view) and covers the order. The
   * prepare or commit it travels with is certified over its MAC, so it was issued before.
   */
  topCertValid(c: CounterCert, validator: number, view: bigint, order: bigint): boolean {
    return (
      c.issuer.validator === validator &&
      c.issuer.pillar === this.pillar &&
      c.counter === Counter.TOP &&
      c.prev !== null &&
      c.value.view === view &&
      c.value.order > order &&
      this.trinx.verifyContinuing(c, topDigest(this.pillar))
    );
  }

  /** A prepare's certificates: from the leader of its view, on (view, order + 2), over its content. */
  prepareValid(p: Prepare): boolean {
    const leader = leaderOf(this.config, p.view);
    return (
      this.ownsOrder(p.order) &&
      p.batch.length <= this.config.batchBytesMax &&
      this.issuerIs(p.cert, leader) &&
      p.cert.prev === null &&
      counterEqual(p.cert.value, { view: p.view, order: p.order + 2n }) &&
      this.topCertValid(p.topCert, leader, p.view, p.order) &&
      this.trinx.verifyIndependent(
        p.cert,
        prepareDigest(this.pillar, p.view, p.order, this.digestOf(p.batch), p.topCert.mac),
      )
    );
  }

  /** A commit's certificates: from a follower of its view, on (view, order + 2), over its content. */
  commitValid(from: number, m: Commit): boolean {
    return (
      from !== leaderOf(this.config, m.view) &&
      this.ownsOrder(m.order) &&
      this.issuerIs(m.cert, from) &&
      m.cert.prev === null &&
      counterEqual(m.cert.value, { view: m.view, order: m.order + 2n }) &&
      this.topCertValid(m.topCert, from, m.view, m.order) &&
      this.trinx.verifyIndependent(
        m.cert,
        commitDigest(this.pillar, m.view, m.order, m.batchDigest, m.topCert.mac),
      )
    );
  }

  ackValid(from: number, m: NewViewAck): boolean {
    const c = m.cert;
    return (
      this.issuerIs(c, from) &&
      c.prev !== null &&
      counterEqual(c.value, { view: m.view, order: 1n }) &&
      this.trinx.verifyContinuing(c, linkDigest(this.pillar, c.value, m.top))
    );
  }

  /** The pillar orders in [first, top): how many slots a NEW-VIEW with that range re-proposes. */
  slotCount(first: bigint, top: bigint): number {
    if (top <= first) return 0;
    const p = BigInt(this.config.pillars);
    return Number((top - first + p - 1n) / p);
  }

  /** What an ACCEPT or a view proof certifies. */
  viewContentDigestOf(
    m: Pick<ViewProof, 'view' | 'vcsDigest' | 'firstOrder' | 'top' | 'slotDigests'>,
  ): Uint8Array {
    return viewContentDigest(this.pillar, m.view, m.vcsDigest, m.firstOrder, m.top, m.slotDigests);
  }

  /** Shape of a NEW-VIEW content: view above 0, first order owned by the pillar, one digest per slot. */
  viewContentWellFormed(m: Pick<ViewProof, 'view' | 'firstOrder' | 'top' | 'slotDigests'>): boolean {
    return (
      m.view > 0n &&
      this.ownsOrder(m.firstOrder) &&
      m.slotDigests.length === this.slotCount(m.firstOrder, m.top)
    );
  }

  acceptValid(from: number, m: Accept): boolean {
    return (
      m.cert.issuer.validator === from &&
      m.cert.issuer.pillar === this.pillar &&
      this.viewContentWellFormed(m) &&
      this.trinx.verifyPlain(m.cert, this.viewContentDigestOf(m))
    );
  }

  /** f + 1 ACCEPT certificates from distinct validators of this pillar over the same content. */
  viewProofValid(vp: ViewProof): boolean {
    if (!this.viewContentWellFormed(vp)) return false;
    const d = this.viewContentDigestOf(vp);
    const seen = new Set<number>();
    for (const c of vp.certs) {
      if (c.issuer.pillar !== this.pillar || seen.has(c.issuer.validator)) return false;
      if (!this.trinx.verifyPlain(c, d)) return false;
      seen.add(c.issuer.validator);
    }
    return seen.size >= this.f + 1;
  }

  /** The batch digest the proven NEW-VIEW decided for `order`, or undefined outside its range. */
  slotDigest(vp: ViewProof, order: bigint): Uint8Array | undefined {
    if (order < vp.firstOrder || order >= vp.top) return undefined;
    return vp.slotDigests[Number((order - vp.firstOrder) / BigInt(this.config.pillars))];
  }

  /** f + 1 checkpoint certificates from distinct validators of this pillar over the same content. */
  stableValid(s: StableProof): boolean {
    const seen = new Set<number>();
    const d = checkpointDigest(s.order, s.stateDigest, s.blockHash);
    for (const c of s.certs) {
      if (c.issuer.pillar !== this.pillar || seen.has(c.issuer.validator)) return false;
      if (!this.trinx.verifyPlain(c, d)) return false;
      seen.add(c.issuer.validator);
    }
    return seen.size >= this.f + 1;
  }
}
