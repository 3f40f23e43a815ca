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
} from './digest.js';
import type { Commit, NewViewAck, Prepare, StableProof } from './messages.js';
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
   * A TOP certificate of `validator` showing its TOP counter covers `order`. The prepare or
   * commit it travels with is certified over its MAC, so it was issued before that message.
   */
  topCertValid(c: CounterCert, validator: number, order: bigint): boolean {
    return (
      c.issuer.validator === validator &&
      c.issuer.pillar === this.pillar &&
      c.counter === Counter.TOP &&
      c.prev !== null &&
      c.value.view === 0n &&
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
      this.topCertValid(p.topCert, leader, p.order) &&
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
      this.topCertValid(m.topCert, from, m.order) &&
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
