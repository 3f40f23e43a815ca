// VIEW-CHANGE and NEW-VIEW of one pillar: building a view change from the replica's log,
// checking one from a peer, and the deterministic NEW-VIEW content that the new leader
// proposes and every follower recomputes. Pure: no state beyond what the caller passes.
import { bytesEqual, toHex } from '../ledger/codec/binary.js';
import { leaderOf } from './config.js';
import { EMPTY_BATCH, linkDigest, sha256 } from './digest.js';
import {
  type NewView,
  type Prepare,
  type StableProof,
  type ViewChange,
  type ViewProof,
  viewChangeDigest,
} from './messages.js';
import { Counter, type CounterCert, counterEqual } from './trinx.js';
import type { PillarVerifier } from './verify.js';

/** What a NEW-VIEW for a view must re-propose, computed from its f + 1 view changes. */
export interface RecomputedNewView {
  stable: StableProof | null;
  top: bigint;
  slots: { order: bigint; batch: Uint8Array; digest: Uint8Array }[];
}

/** The replica state a VIEW-CHANGE reports. */
export interface ViewChangeSource {
  readonly lw: bigint;
  /** The TOP counter (view, top): the last view this replica certified in and one past the highest order it certified there. */
  readonly topView: bigint;
  readonly top: bigint;
  readonly stable: StableProof | null;
  /** The ORDER certificate on (toView, 0). */
  readonly link: CounterCert;
  /** The accepted prepare at an order below top. */
  prepareAt(order: bigint): Prepare | undefined;
  /** The view proof this replica holds for a view above 0. */
  proofOf(view: bigint): ViewProof | undefined;
}

/** What a NEW-VIEW decides: the content its NEWVIEW certificate and every ACCEPT cover. */
export interface ViewContent {
  readonly view: bigint;
  readonly vcsDigest: Uint8Array;
  readonly firstOrder: bigint;
  readonly top: bigint;
  readonly slotDigests: readonly Uint8Array[];
}

/**
 * The history is gap-free below top for a correct replica: prepares are taken strictly in
 * order and TOP only moves right before a prepare or commit is certified. If TrInX refused
 * that certificate after TOP moved (a faulty core), the history stops at the gap and the
 * view change is invalid at every receiver, which is the right outcome for a faulty replica.
 */
export function buildViewChange(v: PillarVerifier, toView: bigint, s: ViewChangeSource): ViewChange {
  const history: Prepare[] = [];
  const proofs = new Map<bigint, ViewProof>();
  if (s.topView > 0n) {
    // The proof of the last certifying view: its NEW-VIEW range is part of what must be covered.
    const vp = s.proofOf(s.topView);
    if (vp !== undefined) proofs.set(s.topView, vp);
  }
  for (let o = v.at(s.lw); o < s.top; o += BigInt(v.config.pillars)) {
    const p = s.prepareAt(o);
    if (p === undefined) break;
    if (p.view > 0n && !proofs.has(p.view)) {
      // A correct replica certifies in a view only once it holds the view's proof and keeps it
      // while it has prepares of that view; a missing one makes the view change invalid.
      const vp = s.proofOf(p.view);
      if (vp === undefined) break;
      proofs.set(p.view, vp);
    }
    history.push(p);
  }
  const unsigned = {
    type: 'view-change' as const,
    pillar: v.pillar,
    toView,
    top: s.top,
    stable: s.stable,
    history,
    proofs: [...proofs.values()].sort((a, b) => (a.view < b.view ? -1 : 1)),
    link: s.link,
  };
  const digest = viewChangeDigest(
    unsigned,
    history.map((p) => v.digestOf(p.batch)),
  );
  // Re-certifying the current TOP value proves it at this moment, after the link.
  const current = v.trinx.current(Counter.TOP);
  const proof = v.trinx.certifyContinuing(Counter.TOP, current, digest);
  if (!proof.ok) throw new Error(`assertion: TrInX refused to re-certify TOP: ${proof.error}`);
  return { ...unsigned, proof: proof.value };
}

/**
 * Why a VIEW-CHANGE is invalid, or null when it is valid.
 *
 * Completeness: every prepare or commit that counts anywhere carries a TOP certificate of its
 * sender with a value above its order, and is ORDER-certified over that certificate's MAC, so
 * TOP was raised first. Every such certificate in a view below toView came before the link
 * to (toView, 0) (the ORDER counter only grows), and the proof came after the link (it covers
 * the link's MAC). TOP only grows, so the proven top is above every order the sender
 * certified in an older view, however many views it went through: `top` cannot be lowered.
 */
export function viewChangeProblem(v: PillarVerifier, vc: ViewChange, issuer: number): string | null {
  const proof = vc.proof;
  if (vc.pillar !== v.pillar || proof.issuer.validator !== issuer || proof.issuer.pillar !== v.pillar) {
    return 'issuer';
  }
  if (vc.history.some((p) => !v.prepareValid(p) || p.view >= vc.toView)) return 'history-prepare';
  const link = vc.link;
  const linkOk =
    v.issuerIs(link, issuer) &&
    link.prev !== null &&
    counterEqual(link.value, { view: vc.toView, order: 0n }) &&
    v.trinx.verifyContinuing(link, linkDigest(v.pillar, link.value, vc.top));
  if (!linkOk) return 'link';
  const digests = vc.history.map((p) => v.digestOf(p.batch));
  const top = { view: proof.value.view, order: vc.top };
  const proofOk =
    proof.counter === Counter.TOP &&
    proof.prev !== null &&
    (!v.checksTopProof ||
      (top.view < vc.toView && counterEqual(proof.prev, top) && counterEqual(proof.value, top))) &&
    v.trinx.verifyContinuing(proof, viewChangeDigest(vc, digests));
  if (!proofOk) return 'top-proof';
  if (vc.stable !== null && !v.stableValid(vc.stable)) return 'stable-proof';
  const lw = vc.stable === null ? 0n : vc.stable.order + 1n;
  if (v.checksViewProofs) {
    const problem = historyProofProblem(v, vc, lw);
    if (problem !== null) return problem;
  }
  // Only entries of the last certifying view or later: that view's NEW-VIEW already decided
  // everything decided before it, and an older prepare must not stand in for a newer one.
  if (v.checksLastView && vc.history.some((p) => p.view < top.view)) return 'history-below-last-view';
  let expect = v.at(lw);
  for (const p of vc.history) {
    if (p.order !== expect) return 'history-gap';
    expect += BigInt(v.config.pillars);
  }
  return expect >= vc.top ? null : 'history-short';
}

/**
 * Every history prepare of a view above 0 must come with that view's proof (f + 1 ACCEPTs, so
 * a correct replica checked its NEW-VIEW) and, inside the NEW-VIEW's range, carry the batch
 * that NEW-VIEW decided. A leader that certifies prepares without a NEW-VIEW, or other
 * batches than its NEW-VIEW's, cannot make them count.
 */
function historyProofProblem(v: PillarVerifier, vc: ViewChange, lw: bigint): string | null {
  const byView = new Map<bigint, ViewProof>();
  let last = 0n;
  for (const vp of vc.proofs) {
    if (vp.view <= last || vp.view >= vc.toView) return 'view-proof-order';
    if (!v.viewProofValid(vp)) return 'view-proof';
    byView.set(vp.view, vp);
    last = vp.view;
  }
  const used = new Set<bigint>();
  // The last certifying view (the TOP proof's view): its proof must come along, and the
  // sender's top and low watermark must cover its NEW-VIEW's range (a correct replica raises
  // TOP to at least that top and takes that stable checkpoint when it enters the view).
  const lastView = vc.proof.value.view;
  if (lastView > 0n) {
    const vp = byView.get(lastView);
    if (vp === undefined) return 'last-view-unproven';
    if (vc.top < vp.top) return 'top-below-last-view';
    if (v.at(lw) < vp.firstOrder) return 'stable-below-last-view';
    used.add(lastView);
  }
  for (const p of vc.history) {
    if (p.view === 0n) continue;
    const vp = byView.get(p.view);
    if (vp === undefined) return 'history-unproven-view';
    const slot = v.slotDigest(vp, p.order);
    if (slot !== undefined && !bytesEqual(slot, v.digestOf(p.batch))) return 'history-not-new-view-slot';
    used.add(p.view);
  }
  return used.size === byView.size ? null : 'view-proof-unused';
}

/** Deterministic NEW-VIEW content from f + 1 view changes; followers run the same function. */
export function recomputeNewView(v: PillarVerifier, vcs: readonly ViewChange[]): RecomputedNewView {
  let stable: StableProof | null = null;
  let top = 0n;
  for (const vc of vcs) {
    if (vc.stable !== null && (stable === null || vc.stable.order > stable.order)) stable = vc.stable;
    if (vc.top > top) top = vc.top;
  }
  const lw = stable === null ? 0n : stable.order + 1n;
  const slots: RecomputedNewView['slots'] = [];
  for (let o = v.at(lw); o < top; o += BigInt(v.config.pillars)) {
    let best: Prepare | null = null;
    let bestDigest = v.digestOf(EMPTY_BATCH);
    for (const vc of vcs) {
      for (const p of vc.history) {
        if (p.order !== o) continue;
        const d = v.digestOf(p.batch);
        // Highest view wins; a tie between different batches can only come from a broken TrInX.
        if (best === null || p.view > best.view || (p.view === best.view && toHex(d) < toHex(bestDigest))) {
          best = p;
          bestDigest = d;
        }
      }
    }
    slots.push({ order: o, batch: best?.batch ?? EMPTY_BATCH, digest: bestDigest });
  }
  return { stable, top, slots };
}

/** What the NEWVIEW certificate and every ACCEPT cover: the view changes' contents and the slots. */
export function viewContentOf(
  v: PillarVerifier,
  view: bigint,
  vcs: readonly ViewChange[],
  plan: RecomputedNewView,
): ViewContent {
  const vcDigests = vcs.map((vc) =>
    viewChangeDigest(
      vc,
      vc.history.map((p) => v.digestOf(p.batch)),
    ),
  );
  const lw = plan.stable === null ? 0n : plan.stable.order + 1n;
  return {
    view,
    vcsDigest: sha256(...vcDigests),
    firstOrder: v.at(lw),
    top: plan.top,
    slotDigests: plan.slots.map((s) => s.digest),
  };
}

/**
 * Recomputes the slots from the included view changes and compares them with what the leader
 * sent; returns the recomputed plan and the certified content, or null when invalid.
 */
export function checkNewView(
  v: PillarVerifier,
  nv: NewView,
): { plan: RecomputedNewView; content: ViewContent } | null {
  const leader = leaderOf(v.config, nv.view);
  if (nv.cert.issuer.validator !== leader || nv.cert.issuer.pillar !== v.pillar) return null;
  if (nv.cert.counter !== Counter.NEWVIEW || nv.cert.prev !== null) return null;
  if (!counterEqual(nv.cert.value, { view: nv.view, order: 0n })) return null;
  const issuers = new Set<number>();
  for (const vc of nv.viewChanges) {
    const who = vc.proof.issuer.validator;
    if (issuers.has(who) || vc.toView !== nv.view || viewChangeProblem(v, vc, who) !== null) return null;
    issuers.add(who);
  }
  if (issuers.size < v.f + 1) return null;
  const plan = recomputeNewView(v, nv.viewChanges);
  if (plan.slots.length !== nv.batches.length) return null;
  for (let i = 0; i < plan.slots.length; i++) {
    if (!bytesEqual(v.digestOf(nv.batches[i]!), plan.slots[i]!.digest)) return null;
  }
  const content = viewContentOf(v, nv.view, nv.viewChanges, plan);
  if (!v.trinx.verifyIndependent(nv.cert, v.viewContentDigestOf(content))) return null;
  return { plan, content };
}

/** Whether a NEW-VIEW is valid: see checkNewView. */
export function newViewValid(v: PillarVerifier, nv: NewView): boolean {
  return checkNewView(v, nv) !== null;
}
