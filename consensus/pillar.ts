// One Hybster ordering instance (a pillar) at one validator: a pure state machine.
// `step(event)` returns actions; it never does I/O, reads a clock or draws randomness.
// This file holds the state and its transitions; certificate checks live in verify.ts,
// view-change construction and checking in view-change.ts, the log in pillar-log.ts and
// checkpoint votes in checkpoints.ts.
//
// TrInX ORDER counter values used here (see docs/consensus.md):
//   (v, o + 2)  prepare (leader) or commit (follower) of order o in view v;
//   (v, 0)      VIEW-CHANGE link to view v;   (v, 1)  NEW-VIEW-ACK link entering view v.
// The TOP counter holds (view, top): the last view this replica certified in and one past the
// highest order it certified there (at least that view's NEW-VIEW top). It is raised before
// every prepare or commit of a new order, and a VIEW-CHANGE proves its current value.
import { bytesEqual, toHex } from '../ledger/codec/binary.js';
import { CheckpointVotes } from './checkpoints.js';
import { type ConsensusConfig, faults, leaderOf } from './config.js';
import {
  burnDigest,
  checkpointDigest,
  commitDigest,
  linkDigest,
  prepareDigest,
  topDigest,
} from './digest.js';
import type { Action, Event, PersistedEntry, PillarSnapshot } from './events.js';
import {
  type Accept,
  type Checkpoint,
  type Commit,
  decodeMessage,
  encodeMessage,
  type Message,
  type NewView,
  type NewViewAck,
  type Prepare,
  type StableProof,
  type ViewChange,
  type ViewProof,
} from './messages.js';
import { type Entry, PillarLog } from './pillar-log.js';
import { Counter, type CounterCert, type CounterValue, compareCounter, type Trinx } from './trinx.js';
import { PillarVerifier } from './verify.js';
import {
  buildViewChange,
  checkNewView,
  newViewValid,
  type RecomputedNewView,
  recomputeNewView,
  type ViewContent,
  viewChangeProblem,
  viewContentOf,
} from './view-change.js';

const maxOf = (a: bigint, b: bigint): bigint => (a > b ? a : b);

export interface PillarOptions {
  readonly config: ConsensusConfig;
  readonly validator: number;
  readonly pillar: number;
  readonly trinx: Trinx;
  /** Restart: the folded persisted state and the next order the node will execute. */
  readonly snapshot?: PillarSnapshot;
  readonly executedNext?: bigint;
  /**
   * Mark a leader's persist of nothing but its own new prepares `ahead`: the node may send
   * them before the write is durable (consensus/ahead-writes.ts). Local, not genesis: a
   * node that sends nothing ahead leaves it off (default false).
   */
  readonly sendAhead?: boolean;
}

export class PillarCore {
  readonly config: ConsensusConfig;
  readonly id: number;
  readonly pillar: number;
  private readonly trinx: Trinx;
  private readonly f: number;
  private readonly v: PillarVerifier;

  private view = 0n;
  private vcTarget: bigint | null = null;
  /** Mirrors the TOP counter's order: one past the highest order certified in its view. */
  private top = 0n;
  /** The latest TOP certificate; it proves TOP covers every order below `top`, so it is reused. */
  private topCert: CounterCert | null = null;
  /** The ORDER link into the view-change target. */
  private vcLink: CounterCert | null = null;
  private stable: StableProof | null = null;
  private lw = 0n;
  private readonly log: PillarLog;
  /** Leader: next order to propose. Follower: next order to accept (prepares are taken strictly in order). */
  private nextOrder: bigint;
  private nextDeliver: bigint;
  private readonly queue: Uint8Array[] = [];
  private readonly checkpoints: CheckpointVotes;
  private myCheckpoint: Checkpoint | null = null;
  private readonly viewChanges = new Map<number, ViewChange>();
  private readonly evidence = new Map<number, bigint>();
  private readonly stuckPeers = new Set<number>();
  private myViewChangeBytes: Uint8Array | null = null;
  private lastNewViewBytes: Uint8Array | null = null;
  /**
   * View proofs held: nothing is certified in a view above 0 before its proof is here, and a
   * proof is kept while the log holds prepares of its view (a VIEW-CHANGE must carry it).
   */
  private readonly proofs = new Map<bigint, ViewProof>();
  /** The latest valid ACCEPT of every validator (this one included) with its content digest. */
  private readonly accepts = new Map<number, { m: Accept; digest: string }>();
  /** Leader: the NEW-VIEW slots, certified as prepares once the view is proven. */
  private pendingSlots: RecomputedNewView['slots'] | null = null;
  private pendingTop = 0n;
  /** Restarted as the leader of an unproven view whose slots were not persisted: leave it. */
  private abandonView = false;
  private readonly sendAhead: boolean;
  /**
   * Restarted from state written while sending ahead (see restore): TOP was raised to this
   * order of view `amnesiaView`, and the log may lack prepares below it. Null otherwise.
   */
  private amnesiaTop: bigint | null = null;
  private amnesiaView = 0n;
  /** When a view-request of each peer was last answered (onViewRequest). */
  private readonly viewRequestAnsweredMs = new Map<number, number>();
  /** The header fields of the last persist delta: a proposal's delta changes none of them. */
  private lastHeader: {
    view: bigint;
    vcTarget: bigint | null;
    stable: StableProof | null;
    proofs: ViewProof[];
    accept: Accept | null;
  } | null = null;

  private nowMs = 0;
  private lastRetransmitMs = 0;
  private retransmitRound = 0;
  private vcDeadlineMs = 0;
  private vcTimeoutMs: number;
  /** The timeout armed for the current view-change target (re-armed when its wait ends). */
  private vcWaitMs: number;
  /** Timed out ahead of everyone else: waiting for other validators to reach or pass the target. */
  private vcAwaiting = false;

  private out: Action[] = [];
  private dirty = false;
  private putEntries = new Map<bigint, Entry>();
  private lastStatus = '';

  constructor(o: PillarOptions) {
    this.config = o.config;
    this.id = o.validator;
    this.pillar = o.pillar;
    this.trinx = o.trinx;
    this.f = faults(o.config);
    this.v = new PillarVerifier(
      o.config,
      o.pillar,
      o.trinx,
      this.checksTopProof(),
      this.checksViewProofs(),
      this.checksLastView(),
    );
    const perPillar = o.config.window / o.config.pillars;
    this.log = new PillarLog(perPillar, perPillar * o.config.n * 2);
    this.checkpoints = new CheckpointVotes(this.f);
    this.vcTimeoutMs = o.config.viewTimeoutMs;
    this.vcWaitMs = o.config.viewTimeoutMs;
    this.nextOrder = BigInt(o.pillar);
    this.nextDeliver = BigInt(o.pillar);
    this.sendAhead = o.sendAhead ?? false;
    if (o.snapshot !== undefined) this.restore(o.snapshot, o.executedNext ?? 0n);
  }

  private restore(s: PillarSnapshot, executedNext: bigint): void {
    this.view = s.view;
    for (const vp of s.viewProofs ?? []) this.proofs.set(vp.view, vp);
    // Our ACCEPT of the current view, so a restart before its proof can still ask for the others'.
    if (s.accept !== undefined && s.accept !== null && s.accept.view === s.view) {
      this.accepts.set(this.id, { m: s.accept, digest: toHex(this.v.viewContentDigestOf(s.accept)) });
    }
    this.top = this.trinx.current(Counter.TOP).order;
    // State written before the TOP counter existed: raise TOP to the persisted top once.
    if (s.top > this.top) this.topCertFor(s.top - 1n, this.trinx.current(Counter.TOP).view);
    this.stable = s.stable;
    this.lw = s.stable === null ? 0n : s.stable.order + 1n;
    for (const [o, e] of s.entries) {
      if (o < this.lw) continue;
      const certifiers = new Set<number>([leaderOf(this.config, e.prepare.view)]);
      if (e.myCommit !== null) certifiers.add(this.id);
      this.log.entries.set(o, {
        prepare: e.prepare,
        digest: this.v.digestOf(e.prepare.batch),
        certifiers,
        myCommit: e.myCommit,
        committed: false,
      });
    }
    this.nextOrder = this.v.at(maxOf(this.top, this.lw));
    const proof = this.proofs.get(s.view);
    if (proof !== undefined && this.trinx.current(Counter.TOP).view !== s.view) {
      // Proven but nothing certified here yet: `top` is an older view's; start at the NEW-VIEW.
      this.nextOrder = this.v.at(maxOf(proof.firstOrder, this.lw));
    }
    this.nextDeliver = this.v.at(maxOf(executedNext, this.lw));
    this.abandonView =
      s.viewChangeTarget === null && leaderOf(this.config, s.view) === this.id && !this.viewProven();
    // Before the view change below: an amnesic replica must not rebuild its VIEW-CHANGE. The
    // view it may have sent ahead in is its last certifying view (TOP's), which a replica
    // still amnesic after entering a later view without certifying there has not left.
    if (s.sentAhead === true) {
      const last = this.trinx.current(Counter.TOP).view;
      this.forgetAhead(last, s.viewChangeTarget === null && s.view === last);
    }
    if (s.viewChangeTarget !== null) {
      this.vcTarget = s.viewChangeTarget;
      // The counter is still at the link (nothing is certified during a view change): re-issue it.
      this.vcLink = this.certifyLink({ view: s.viewChangeTarget, order: 0n });
      if (this.vcLink !== null && !this.amnesic()) {
        this.myViewChangeBytes = encodeMessage(this.buildViewChange(s.viewChangeTarget));
      }
    }
  }

  /**
   * Restarted from state written while sending ahead: this replica, the leader of `view`, may
   * have certified and sent prepares of `view` whose writes were lost, so what it certified
   * there is unknown up to the window's end (the core proposes nothing beyond it; the low
   * watermark only moves through writes that are awaited). ORDER and TOP move past all of it:
   * no value is certified twice, so no prepare can be equivocated. Its log may lack some
   * of those prepares, so its VIEW-CHANGEs could not cover its TOP proof: it sends none, and
   * counts none of its own, until it certified in a later view or a checkpoint passed the
   * gap (amnesic). The f + 1 others change the view; a committed order lost here was certified
   * by one of them too, whose VIEW-CHANGE carries it. It leaves `view` at once (`leave`;
   * a replica restarted inside a view change has left it already). The flag stays in the
   * headers it writes while amnesic, so a second restart forgets the same way.
   */
  private forgetAhead(view: bigint, leave: boolean): void {
    const guard = this.windowEnd();
    if (this.top < guard && this.topCertFor(guard - 1n, view) === null)
      throw new Error(`assertion: TOP could not move to (${view}, ${guard}) on restart`);
    const burn: CounterValue = { view, order: guard + 1n };
    if (compareCounter(this.trinx.current(Counter.ORDER), burn) < 0) {
      const c = this.trinx.certifyIndependent(Counter.ORDER, burn, burnDigest(this.pillar));
      if (!c.ok) throw new Error(`assertion: ORDER could not move to (${view}, ${guard + 1n}) on restart`);
    }
    this.amnesiaTop = this.top;
    this.amnesiaView = view;
    this.dirty = true;
    if (leave && leaderOf(this.config, view) === this.id) this.abandonView = true;
  }

  /** Whether this replica's log may lack prepares its TOP proof covers (see forgetAhead). */
  private amnesic(): boolean {
    return (
      this.amnesiaTop !== null &&
      this.trinx.current(Counter.TOP).view === this.amnesiaView &&
      this.lw < this.amnesiaTop
    );
  }

  /**
   * Whether the persist this step emits records nothing but this leader's own new prepares
   * of its settled view (counters, top and the entries): then its messages may leave before it
   * is durable. Anything else (a view, a view change, a checkpoint, a proof, an ACCEPT, a
   * commit) is written first as always.
   */
  private aheadEligible(): boolean {
    const h = this.lastHeader;
    if (!this.sendAhead || h === null || !this.isLeading() || this.vcTarget !== null) return false;
    if (this.amnesic() || h.view !== this.view || h.vcTarget !== null) return false;
    if (h.stable !== this.stable || h.accept !== (this.accepts.get(this.id)?.m ?? null)) return false;
    if (h.proofs.length !== this.proofs.size) return false;
    let i = 0;
    for (const p of this.proofs.values()) if (h.proofs[i++] !== p) return false;
    for (const e of this.putEntries.values())
      if (e.prepare.view !== this.view || e.myCommit !== null) return false;
    return this.putEntries.size > 0;
  }

  // ---------------------------------------------------------------- step

  step(ev: Event): Action[] {
    this.out = [];
    switch (ev.type) {
      case 'receive':
        this.onReceive(ev.from, ev.bytes);
        break;
      case 'propose':
        this.onPropose(ev.batch);
        break;
      case 'tick':
        this.onTick(ev.nowMs);
        break;
      case 'executed':
        this.onExecuted(ev.order, ev.stateDigest, ev.blockHash);
        break;
      case 'request-timeout':
        if (this.vcTarget === null) this.startViewChange(this.view + 1n);
        break;
      case 'state-transfer-done':
        break;
      case 'sync-view':
        if (ev.view > this.view && (this.vcTarget === null || ev.view > this.vcTarget)) {
          this.startViewChange(ev.view);
        }
        break;
    }
    return this.finish();
  }

  /** Puts the persist action before the first network action (the etcd Ready rule). */
  private finish(): Action[] {
    const status = `${this.view}|${this.isLeading()}|${this.nextOrder}|${this.queue.length}`;
    if (status !== this.lastStatus) {
      this.lastStatus = status;
      this.out.push({
        type: 'status',
        pillar: this.pillar,
        view: this.view,
        leading: this.isLeading(),
        nextOrder: this.nextOrder,
        queued: this.queue.length,
      });
    }
    if (!this.dirty) return this.out;
    this.dirty = false;
    const ahead = this.aheadEligible();
    const accept = this.accepts.get(this.id)?.m ?? null;
    const proofs = [...this.proofs.values()];
    this.lastHeader = { view: this.view, vcTarget: this.vcTarget, stable: this.stable, proofs, accept };
    const delta: Action = {
      type: 'persist',
      ...(ahead ? { ahead } : {}),
      delta: {
        pillar: this.pillar,
        trinx: this.trinx.exportState(),
        view: this.view,
        viewChangeTarget: this.vcTarget,
        top: this.top,
        stable: this.stable,
        viewProofs: proofs,
        accept,
        putEntries: [...this.putEntries.values()].map(
          (e): PersistedEntry => ({ prepare: e.prepare, myCommit: e.myCommit }),
        ),
        pruneBelow: this.lw,
        sentAhead: ahead || this.amnesic(),
      },
    };
    this.putEntries = new Map();
    const firstNet = this.out.findIndex((a) => a.type === 'send' || a.type === 'broadcast');
    if (firstNet < 0) this.out.push(delta);
    else this.out.splice(firstNet, 0, delta);
    return this.out;
  }

  // ---------------------------------------------------------------- queries (tests, coordinator)

  get currentView(): bigint {
    return this.view;
  }
  get inViewChange(): boolean {
    return this.vcTarget !== null;
  }
  get lowWatermark(): bigint {
    return this.lw;
  }
  /** A one-line summary for simulator diagnostics. */
  describe(): string {
    const pending = [...this.log.entries.values()]
      .filter((e) => !e.committed)
      .map((e) => `${e.prepare.order}@${e.prepare.view}:${[...e.certifiers].join('')}`);
    return `p${this.pillar} v${this.view}${this.vcTarget === null ? '' : `->${this.vcTarget}`} lw${this.lw} next${this.nextOrder} deliver${this.nextDeliver} top${this.top} buffered${this.log.buffered.size} uncommitted[${pending.join(',')}]`;
  }

  isLeading(): boolean {
    return this.vcTarget === null && leaderOf(this.config, this.view) === this.id;
  }

  /** The broken-variant tests override this to show the simulator catches a too-small quorum. */
  protected commitQuorum(): number {
    return this.f + 1;
  }

  /** The broken-variant tests override this to show what a VIEW-CHANGE with an unproven top allows. */
  protected checksTopProof(): boolean {
    return true;
  }

  /** The broken-variant tests override this to show what prepares of unproven views allow. */
  protected checksViewProofs(): boolean {
    return true;
  }

  /** The broken-variant tests override this to show what older-view reports in a VIEW-CHANGE allow. */
  protected checksLastView(): boolean {
    return true;
  }

  /** Full check of a VIEW-CHANGE: content certificate, stable proof, proof of top, gap-free history. */
  viewChangeValid(vc: ViewChange, issuer: number): boolean {
    return this.viewChangeProblem(vc, issuer) === null;
  }

  /** Why a VIEW-CHANGE is invalid, or null when it is valid. */
  viewChangeProblem(vc: ViewChange, issuer: number): string | null {
    return viewChangeProblem(this.v, vc, issuer);
  }

  /** Recomputes the prepare set from the included view changes and compares it with what the leader sent. */
  newViewValid(nv: NewView): boolean {
    return newViewValid(this.v, nv);
  }

  // ---------------------------------------------------------------- helpers

  private windowEnd(): bigint {
    return this.lw + BigInt(this.config.window);
  }
  private reject(from: number, reason: string): void {
    this.out.push({ type: 'reject', from, reason });
  }
  private broadcast(m: Message): Uint8Array {
    const bytes = encodeMessage(m);
    this.out.push({ type: 'broadcast', bytes });
    return bytes;
  }
  private send(to: number, m: Message | Uint8Array): void {
    this.out.push({ type: 'send', to, bytes: m instanceof Uint8Array ? m : encodeMessage(m) });
  }
  /**
   * A TOP certificate at (view, > order), raising the TOP counter first when needed. The
   * prepare or commit is then certified over its MAC, so TOP provably moved before it. The
   * first raise into a view above 0 goes at least to its NEW-VIEW's top: a VIEW-CHANGE must
   * then cover that whole range with entries of this view (see slotsReady).
   */
  private topCertFor(order: bigint, view = this.view): CounterCert | null {
    const held = this.topCert;
    if (held !== null && held.value.view === view && held.value.order > order) return held;
    const current = this.trinx.current(Counter.TOP);
    let floor = current.view === view ? maxOf(current.order, order + 1n) : order + 1n;
    const vp = view > 0n ? this.proofs.get(view) : undefined;
    if (vp !== undefined) floor = maxOf(floor, vp.top);
    const value = { view, order: floor };
    const c = this.trinx.certifyContinuing(Counter.TOP, value, topDigest(this.pillar));
    if (!c.ok) return null;
    this.topCert = c.value;
    this.top = value.order;
    this.dirty = true;
    return c.value;
  }

  /** Whether TrInX would certify this ORDER value; checked before TOP moves for it. */
  private orderFree(view: bigint, order: bigint): boolean {
    return compareCounter(this.trinx.current(Counter.ORDER), { view, order: order + 2n }) < 0;
  }

  private certifyLink(value: CounterValue): CounterCert | null {
    const c = this.trinx.certifyContinuing(Counter.ORDER, value, linkDigest(this.pillar, value, this.top));
    return c.ok ? c.value : null;
  }

  // ---------------------------------------------------------------- receive

  private onReceive(from: number, bytes: Uint8Array): void {
    if (!Number.isInteger(from) || from < 0 || from >= this.config.n || from === this.id) {
      this.reject(from, 'bad-sender');
      return;
    }
    const r = decodeMessage(bytes, this.config);
    if (!r.ok) {
      this.reject(from, `decode:${r.error.code}:${r.error.message}`);
      return;
    }
    const m = r.value;
    if (m.pillar !== this.pillar) {
      this.reject(from, 'wrong-pillar');
      return;
    }
    switch (m.type) {
      case 'prepare':
        this.onPrepare(from, m);
        break;
      case 'commit':
        this.onCommit(from, m);
        break;
      case 'checkpoint':
        this.onCheckpoint(from, m);
        break;
      case 'view-change':
        this.onViewChange(from, m);
        break;
      case 'new-view':
        this.onNewView(from, m);
        break;
      case 'new-view-ack':
        this.onAck(from, m);
        break;
      case 'view-request':
        this.onViewRequest(from, m.view);
        break;
      case 'accept':
        this.onAccept(from, m);
        break;
    }
  }

  // ---------------------------------------------------------------- normal case

  private onPrepare(from: number, p: Prepare): void {
    if (from !== leaderOf(this.config, p.view) || !this.v.prepareValid(p)) {
      this.reject(from, 'prepare-invalid');
      return;
    }
    this.noteEvidence(from, p.view);
    if (this.vcTarget !== null) {
      if (p.view < this.vcTarget) this.learnPrepare(p);
      return;
    }
    if (p.view !== this.view || this.isLeading()) return;
    if (!this.viewProven()) {
      // Nothing is certified in a view before its proof: keep it until f + 1 ACCEPTs arrive.
      if (p.order < this.windowEnd()) this.log.buffer(p);
      return;
    }
    if (p.order < this.nextOrder) {
      // A retransmission: the leader has not seen our commit yet.
      const e = this.log.get(p.order);
      if (e?.myCommit && e.prepare.view === p.view) this.send(from, e.myCommit);
      return;
    }
    if (p.order >= this.windowEnd()) return;
    if (p.order > this.nextOrder || !this.slotsReady(p)) {
      this.log.buffer(p);
      this.acceptBuffered();
      return;
    }
    this.acceptPrepare(p);
    this.acceptBuffered();
  }

  private acceptBuffered(): void {
    const buffered = this.log.buffered;
    for (let next = buffered.get(this.nextOrder); next !== undefined; next = buffered.get(this.nextOrder)) {
      if (next.view === this.view && !this.slotsReady(next)) break;
      buffered.delete(this.nextOrder);
      if (next.view !== this.view || this.nextOrder >= this.windowEnd()) break;
      this.acceptPrepare(next);
    }
  }

  /**
   * Before its first certificate in a view above 0, a follower holds the leader's prepares for
   * every NEW-VIEW slot from `p` on (each with the slot's batch) and takes them in one step:
   * TOP jumps to the NEW-VIEW's top, and the log covers that range with this view's prepares
   * at once, as a VIEW-CHANGE reporting this view must (docs/consensus.md).
   */
  private slotsReady(p: Prepare): boolean {
    if (p.view === 0n || this.trinx.current(Counter.TOP).view === p.view) return true;
    const vp = this.proofs.get(p.view);
    if (vp === undefined) return true;
    // The first certificate in the view is at the NEW-VIEW's first order (or the low watermark).
    if (p.order > this.v.at(maxOf(vp.firstOrder, this.lw))) return false;
    for (let o = p.order; o < vp.top; o += BigInt(this.config.pillars)) {
      const q = o === p.order ? p : this.log.buffered.get(o);
      if (q === undefined || q.view !== p.view) return false;
      const slot = this.v.slotDigest(vp, o);
      if (slot !== undefined && !bytesEqual(slot, this.v.digestOf(q.batch))) return false;
    }
    return true;
  }

  /** Whether the current view may be certified in: view 0, or a view whose proof is held. */
  private viewProven(): boolean {
    return this.view === 0n || this.proofs.has(this.view);
  }

  /**
   * A replica whose view change nobody joined cannot certify in the old view any more, but
   * it can still learn what the others decide there: a prepare plus f matching commits is
   * committed no matter who observes it. This keeps it executing until the others move on.
   */
  private learnPrepare(p: Prepare): void {
    if (p.order < this.nextDeliver || p.order >= this.windowEnd()) return;
    // Only prepares a VIEW-CHANGE can report enter the log: their view must be proven here.
    if (p.view > 0n && !this.proofs.has(p.view)) return;
    const have = this.log.get(p.order);
    if (have !== undefined && have.prepare.view >= p.view) return;
    const entry: Entry = {
      prepare: p,
      digest: this.v.digestOf(p.batch),
      certifiers: new Set([leaderOf(this.config, p.view)]),
      myCommit: null,
      committed: false,
    };
    this.putEntry(entry);
    this.checkCommitted(entry);
  }

  /** Follower: accept the prepare at nextOrder and send a certified COMMIT. */
  private acceptPrepare(p: Prepare): void {
    const digest = this.v.digestOf(p.batch);
    const vp = this.proofs.get(p.view);
    const slot = vp === undefined ? undefined : this.v.slotDigest(vp, p.order);
    if (slot !== undefined && !bytesEqual(slot, digest)) {
      // The leader re-proposes something other than its own proven NEW-VIEW decided.
      this.reject(leaderOf(this.config, p.view), 'prepare-not-new-view-slot');
      return;
    }
    if (!this.orderFree(p.view, p.order)) return;
    const topCert = this.topCertFor(p.order);
    if (topCert === null) return;
    const c = this.trinx.certifyIndependent(
      Counter.ORDER,
      { view: p.view, order: p.order + 2n },
      commitDigest(this.pillar, p.view, p.order, digest, topCert.mac),
    );
    if (!c.ok) return;
    this.dirty = true;
    const commit: Commit = {
      type: 'commit',
      pillar: this.pillar,
      view: p.view,
      order: p.order,
      batchDigest: digest,
      cert: c.value,
      topCert,
      needReply: false,
    };
    const entry: Entry = {
      prepare: p,
      digest,
      certifiers: new Set([leaderOf(this.config, p.view), this.id]),
      myCommit: commit,
      committed: false,
    };
    this.putEntry(entry);
    this.nextOrder = p.order + BigInt(this.config.pillars);
    this.broadcast(commit);
    this.checkCommitted(entry);
  }

  private putEntry(entry: Entry): void {
    this.log.put(entry);
    this.putEntries.set(entry.prepare.order, entry);
    this.dirty = true;
  }

  private onCommit(from: number, m: Commit): void {
    if (!this.v.commitValid(from, m)) {
      this.reject(from, 'commit-invalid');
      return;
    }
    this.noteEvidence(from, m.view);
    if (m.order < this.lw) return;
    const e = this.log.get(m.order);
    if (e !== undefined && e.prepare.view === m.view) {
      if (!bytesEqual(e.digest, m.batchDigest)) {
        this.reject(from, 'commit-digest-mismatch');
        return;
      }
      e.certifiers.add(from);
      if (m.needReply && e.committed) {
        // Answer once per retransmission; our answer never asks for a reply, so this cannot loop.
        if (e.myCommit !== null) this.send(from, e.myCommit);
        else if (leaderOf(this.config, e.prepare.view) === this.id) this.send(from, e.prepare);
      }
      this.checkCommitted(e);
      return;
    }
    if (m.view < this.view || m.order >= this.windowEnd()) return;
    this.log.holdCommit(m.view, m.order, from, m.batchDigest);
  }

  private checkCommitted(e: Entry): void {
    if (e.committed || e.certifiers.size < this.commitQuorum()) return;
    e.committed = true;
    if (e.prepare.view === this.view && this.vcTarget === null) this.vcTimeoutMs = this.config.viewTimeoutMs;
    this.deliverReady();
  }

  private deliverReady(): void {
    for (let e = this.log.get(this.nextDeliver); e?.committed; e = this.log.get(this.nextDeliver)) {
      this.out.push({
        type: 'deliver',
        pillar: this.pillar,
        order: e.prepare.order,
        view: e.prepare.view,
        batch: e.prepare.batch,
        batchDigest: e.digest,
        fresh: this.freshPrepare(e.prepare),
      });
      this.nextDeliver += BigInt(this.config.pillars);
    }
  }

  /**
   * Whether `p` is a normal-case proposal of its view's leader: view 0 has no NEW-VIEW, and
   * (the node executes such a batch's gossiped txs on two vouchers, docs/consensus.md; that
   * rests on every logged prepare having come over its view leader's own channel, onPrepare,
   * and on view proofs built only from channel-authenticated ACCEPTs: a path that relays
   * prepares or takes proofs from VIEW-CHANGEs would make it rest on TrInX instead)
   * in a later view the leader's own proposals start at the NEW-VIEW's top (every order
   * below re-proposes what the view change decided, or lies under the low watermark). Without
   * the view's proof at hand it cannot tell, so it says no (pruneProofs keeps the proof of
   * every view the log holds prepares of).
   */
  protected freshPrepare(p: Prepare): boolean {
    if (p.view === 0n) return true;
    const vp = this.proofs.get(p.view);
    return vp !== undefined && p.order >= vp.top;
  }

  // ---------------------------------------------------------------- leader

  private onPropose(batch: Uint8Array): void {
    if (batch.length > this.config.batchBytesMax) {
      this.out.push({ type: 'proposal-refused', reason: 'oversized' });
      return;
    }
    if (!this.isLeading()) {
      this.out.push({ type: 'proposal-refused', reason: 'not-leader' });
      return;
    }
    if (this.queue.length >= this.config.pendingBatchesMax) {
      this.out.push({ type: 'proposal-refused', reason: 'queue-full' });
      return;
    }
    this.queue.push(batch);
    this.proposeQueued();
  }

  private proposeQueued(): void {
    if (!this.viewProven() || this.pendingSlots !== null || this.abandonView) return;
    while (this.queue.length > 0 && this.isLeading() && this.nextOrder < this.windowEnd()) {
      this.proposeOne(this.queue.shift()!);
    }
  }

  private proposeOne(batch: Uint8Array): void {
    const o = this.nextOrder;
    const digest = this.v.digestOf(batch);
    if (!this.orderFree(this.view, o)) return;
    const topCert = this.topCertFor(o);
    if (topCert === null) return;
    const c = this.trinx.certifyIndependent(
      Counter.ORDER,
      { view: this.view, order: o + 2n },
      prepareDigest(this.pillar, this.view, o, digest, topCert.mac),
    );
    if (!c.ok) return;
    this.dirty = true;
    const prepare: Prepare = {
      type: 'prepare',
      pillar: this.pillar,
      view: this.view,
      order: o,
      batch,
      cert: c.value,
      topCert,
    };
    const entry: Entry = {
      prepare,
      digest,
      certifiers: new Set([this.id]),
      myCommit: null,
      committed: false,
    };
    this.putEntry(entry);
    this.nextOrder = o + BigInt(this.config.pillars);
    this.broadcast(prepare);
    this.checkCommitted(entry);
  }

  // ---------------------------------------------------------------- checkpoints

  private onExecuted(order: bigint, stateDigest: Uint8Array, blockHash: Uint8Array): void {
    if ((order + 1n) % BigInt(this.config.checkpointInterval) !== 0n || order < this.lw) return;
    const cert = this.trinx.certifyPlain(checkpointDigest(order, stateDigest, blockHash));
    const m: Checkpoint = { type: 'checkpoint', pillar: this.pillar, order, stateDigest, blockHash, cert };
    this.myCheckpoint = m;
    this.recordCheckpoint(this.id, m);
    this.broadcast(m);
  }

  private onCheckpoint(from: number, m: Checkpoint): void {
    const ok =
      m.cert.issuer.validator === from &&
      m.cert.issuer.pillar === this.pillar &&
      this.trinx.verifyPlain(m.cert, checkpointDigest(m.order, m.stateDigest, m.blockHash));
    if (!ok) {
      this.reject(from, 'checkpoint-invalid');
      return;
    }
    if (m.order < this.lw) return;
    this.recordCheckpoint(from, m);
  }

  private recordCheckpoint(from: number, m: Checkpoint): void {
    const stable = this.checkpoints.record(from, m);
    if (stable !== null) this.makeStable(stable);
  }

  /** Moves the low watermark; a pillar that has not delivered up to the checkpoint asks for state transfer. */
  private makeStable(s: StableProof): void {
    if (s.order < this.lw) return;
    this.stable = s;
    this.lw = s.order + 1n;
    this.dirty = true;
    this.log.pruneBelow(this.lw);
    this.checkpoints.pruneBelow(s.order);
    this.pruneProofs();
    const first = this.v.at(this.lw);
    if (this.nextOrder < first) this.nextOrder = first;
    if (this.nextDeliver < first) {
      this.out.push({
        type: 'need-state-transfer',
        fromOrder: this.nextDeliver,
        toOrder: s.order,
        checkpoint: s,
      });
      this.nextDeliver = first;
    }
    this.deliverReady();
    this.proposeQueued();
  }

  // ---------------------------------------------------------------- timers and retransmission

  private onTick(nowMs: number): void {
    if (nowMs < this.nowMs) return;
    this.nowMs = nowMs;
    if (this.abandonView && this.vcTarget === null) this.startViewChange(this.view + 1n);
    if (this.vcTarget !== null && !this.vcAwaiting && nowMs >= this.vcDeadlineMs) this.onViewChangeTimeout();
    if (nowMs - this.lastRetransmitMs < this.config.retransmitMs) return;
    this.lastRetransmitMs = nowMs;
    this.retransmitRound++;
    // Until our checkpoint is stable others may need it; afterwards only laggards do, so repeat it rarely.
    const cp = this.myCheckpoint;
    if (
      cp !== null &&
      (cp.order >= this.lw || (cp.order + 1n === this.lw && this.retransmitRound % 8 === 0))
    ) {
      this.out.push({ type: 'broadcast', bytes: encodeMessage(cp) });
    }
    if (this.vcTarget !== null) {
      if (this.myViewChangeBytes !== null)
        this.out.push({ type: 'broadcast', bytes: this.myViewChangeBytes });
      else if (this.amnesic())
        this.out.push({
          type: 'broadcast',
          bytes: encodeMessage({ type: 'view-request', pillar: this.pillar, view: this.vcTarget }),
        });
      return;
    }
    if (!this.viewProven()) {
      const mine = this.accepts.get(this.id)?.m;
      if (mine?.view === this.view)
        this.out.push({ type: 'broadcast', bytes: encodeMessage({ ...mine, needReply: true }) });
      return;
    }
    // Replicas stuck in a view change nobody joined learn decisions of this view only once
    // they hold its proof, so they get our ACCEPT with the prepares or commits.
    const mine = this.accepts.get(this.id)?.m;
    if (mine?.view === this.view) for (const j of this.stuckPeers) this.send(j, mine);
    if (this.isLeading()) this.retransmitPrepares();
    else this.retransmitCommits();
  }

  private retransmitPrepares(): void {
    const byOrder = [...this.log.entries.values()]
      .filter((e) => e.prepare.view === this.view)
      .sort((a, b) => (a.prepare.order < b.prepare.order ? -1 : 1));
    for (let j = 0; j < this.config.n; j++) {
      if (j === this.id) continue;
      let sent = 0;
      for (const e of byOrder) {
        if (sent >= this.config.retransmitBurstMax) break;
        if (e.certifiers.has(j)) continue;
        this.send(j, e.prepare);
        sent++;
      }
    }
  }

  private retransmitCommits(): void {
    const current = [...this.log.entries.values()]
      .filter((e) => e.myCommit !== null && e.prepare.view === this.view)
      .sort((a, b) => (a.prepare.order < b.prepare.order ? -1 : 1));
    for (const e of current) {
      if (!e.committed)
        this.out.push({ type: 'broadcast', bytes: encodeMessage({ ...e.myCommit!, needReply: true }) });
    }
    // Replicas stuck in a view change nobody joined learn decisions from our commits.
    for (const j of this.stuckPeers) {
      let sent = 0;
      for (const e of current) {
        if (sent >= this.config.retransmitBurstMax) break;
        if (e.certifiers.has(j)) continue;
        this.send(j, e.myCommit!);
        sent++;
      }
    }
  }

  // ---------------------------------------------------------------- view change

  private noteEvidence(from: number, view: bigint): void {
    if ((this.evidence.get(from) ?? -1n) >= view) return;
    this.evidence.set(from, view);
    // f + 1 validators show a higher view: at least one correct replica is there, so join it.
    const current = this.vcTarget ?? this.view;
    const views = [...this.evidence.entries()]
      .filter(([v]) => v !== this.id)
      .map(([, w]) => w)
      .concat([current])
      .sort((a, b) => (a > b ? -1 : a < b ? 1 : 0));
    const joinable = views[this.f];
    if (joinable !== undefined && joinable > current) this.startViewChange(joinable);
    else if (this.vcAwaiting && this.vcTarget !== null && !this.aheadAlone(this.vcTarget)) {
      // Others caught up with (or passed) our target: give its view change a full timeout.
      this.vcAwaiting = false;
      this.vcDeadlineMs = this.nowMs + this.vcWaitMs;
    }
  }

  /**
   * Whether fewer than f + 1 validators (this one included) are at `target` and none shows a
   * higher view. Moving on from there would only run further ahead of the others, who can
   * then never gather at a view together with its leader; the replicas behind move up
   * instead (they see this one above them), and the view forms once they arrive.
   */
  private aheadAlone(target: bigint): boolean {
    let at = 1;
    for (const [v, w] of this.evidence) {
      if (v === this.id) continue;
      if (w > target) return false;
      if (w === target) at++;
    }
    return at < this.f + 1;
  }

  private onViewChangeTimeout(): void {
    // Move to the lowest view that, with our vote, has f + 1 votes; at least the next one.
    const target = this.vcTarget!;
    // An amnesic replica's vote counts nowhere (it sends no VIEW-CHANGE): moving on alone would
    // only link it past the view the others form. It waits, joining what f + 1 others show.
    if (this.aheadAlone(target) || this.amnesic()) {
      this.vcAwaiting = true;
      return;
    }
    const others = [...this.evidence.entries()]
      .filter(([v, w]) => v !== this.id && w > target)
      .map(([, w]) => w)
      .sort((a, b) => (a > b ? -1 : a < b ? 1 : 0));
    const supported = this.f > 0 ? others[this.f - 1] : undefined;
    this.startViewChange(supported !== undefined && supported > target + 1n ? supported : target + 1n);
  }

  /**
   * An amnesic replica asks for the NEW-VIEW of a view we lead (see forgetAhead): resent as a
   * VIEW-CHANGE for it would have, at most once per retransmit interval per peer (a NEW-VIEW
   * can be large, and the request costs the sender nothing).
   */
  private onViewRequest(from: number, view: bigint): void {
    if (view > this.view || this.vcTarget !== null || !this.isLeading() || this.lastNewViewBytes === null)
      return;
    const last = this.viewRequestAnsweredMs.get(from);
    if (last !== undefined && this.nowMs - last < this.config.retransmitMs) return;
    this.viewRequestAnsweredMs.set(from, this.nowMs);
    this.stuckPeers.add(from);
    this.send(from, this.lastNewViewBytes);
  }

  private startViewChange(toView: bigint): void {
    if (toView <= this.view || (this.vcTarget !== null && toView <= this.vcTarget)) return;
    const link = this.certifyLink({ view: toView, order: 0n });
    if (link === null) return;
    this.vcLink = link;
    this.vcTarget = toView;
    this.abandonView = false;
    this.pendingSlots = null;
    this.dirty = true;
    this.vcAwaiting = false;
    this.vcWaitMs = this.vcTimeoutMs;
    this.vcDeadlineMs = this.nowMs + this.vcTimeoutMs;
    this.vcTimeoutMs = Math.min(this.vcTimeoutMs * 2, this.config.viewTimeoutMsMax);
    this.log.buffered.clear();
    this.queue.length = 0;
    // An amnesic log cannot cover its TOP proof: such a VIEW-CHANGE would be invalid (see
    // forgetAhead). The link above still closes the old view; f + 1 others change it.
    if (this.amnesic()) this.myViewChangeBytes = null;
    else {
      const vc = this.buildViewChange(toView);
      this.viewChanges.set(this.id, vc);
      this.myViewChangeBytes = this.broadcast(vc);
    }
    this.out.push({ type: 'view-change-started', pillar: this.pillar, toView });
    this.tryNewView();
  }

  private buildViewChange(toView: bigint): ViewChange {
    return buildViewChange(this.v, toView, {
      lw: this.lw,
      topView: this.trinx.current(Counter.TOP).view,
      top: this.top,
      stable: this.stable,
      link: this.vcLink!,
      prepareAt: (o) => this.log.get(o)?.prepare,
      proofOf: (view) => this.proofs.get(view),
    });
  }

  private onViewChange(from: number, vc: ViewChange): void {
    const problem = this.viewChangeProblem(vc, from);
    if (problem !== null) {
      this.reject(from, `view-change-invalid:${problem}`);
      return;
    }
    if (vc.toView <= this.view) {
      // A replica still changing to a view we are already in: resend the NEW-VIEW that got it here.
      if (this.vcTarget === null && this.isLeading() && this.lastNewViewBytes !== null) {
        this.send(from, this.lastNewViewBytes);
      }
      return;
    }
    if (this.vcTarget === null) this.stuckPeers.add(from);
    const prev = this.viewChanges.get(from);
    if (prev === undefined || prev.toView < vc.toView) this.viewChanges.set(from, vc);
    this.noteEvidence(from, vc.toView);
    this.tryNewView();
  }

  private tryNewView(): void {
    const target = this.vcTarget;
    if (target === null || leaderOf(this.config, target) !== this.id) return;
    const vcs = [...this.viewChanges.values()]
      .filter((vc) => vc.toView === target)
      .sort((a, b) => a.proof.issuer.validator - b.proof.issuer.validator)
      .slice(0, this.f + 1);
    if (vcs.length < this.f + 1) return;
    const plan = recomputeNewView(this.v, vcs);
    const content = viewContentOf(this.v, target, vcs, plan);
    const cert = this.trinx.certifyIndependent(
      Counter.NEWVIEW,
      { view: target, order: 0n },
      this.v.viewContentDigestOf(content),
    );
    if (!cert.ok) return;
    const nv: NewView = {
      type: 'new-view',
      pillar: this.pillar,
      view: target,
      viewChanges: vcs,
      batches: plan.slots.map((sl) => sl.batch),
      cert: cert.value,
    };
    this.lastNewViewBytes = this.broadcast(nv);
    this.enterView(target, plan, content, true);
  }

  private onNewView(from: number, nv: NewView): void {
    if (nv.view <= this.view || (this.vcTarget !== null && nv.view < this.vcTarget)) return;
    const checked = from === leaderOf(this.config, nv.view) ? checkNewView(this.v, nv) : null;
    if (checked === null) {
      this.reject(from, 'new-view-invalid');
      return;
    }
    this.enterView(nv.view, checked.plan, checked.content, false);
  }

  /**
   * Enters a view whose NEW-VIEW this replica built or checked, and ACCEPTs it. Nothing is
   * certified in the view until f + 1 ACCEPTs of the same content form its proof (onProven).
   */
  private enterView(view: bigint, plan: RecomputedNewView, content: ViewContent, asLeader: boolean): void {
    const sentOwn = this.vcTarget === view;
    if (!sentOwn && !asLeader) {
      const value: CounterValue = { view, order: 1n };
      if (compareCounter(this.trinx.current(Counter.ORDER), value) > 0) return;
      const ack = this.certifyLink(value);
      if (ack === null) return;
      const m: NewViewAck = {
        type: 'new-view-ack',
        pillar: this.pillar,
        view,
        top: this.top,
        cert: ack,
      };
      this.broadcast(m);
    }
    this.view = view;
    this.vcTarget = null;
    this.vcLink = null;
    this.dirty = true;
    this.myViewChangeBytes = null;
    this.log.buffered.clear();
    this.stuckPeers.clear();
    this.abandonView = false;
    for (const [v, vc] of this.viewChanges) if (vc.toView <= view) this.viewChanges.delete(v);
    if (plan.stable !== null && plan.stable.order >= this.lw) this.makeStable(plan.stable);
    if (!asLeader) this.lastNewViewBytes = null;
    this.pendingSlots = asLeader ? plan.slots : null;
    this.pendingTop = plan.top;
    this.nextOrder = this.v.at(maxOf(asLeader ? plan.top : content.firstOrder, this.lw));
    this.vcDeadlineMs = 0;
    this.vcAwaiting = false;
    this.out.push({ type: 'view-changed', pillar: this.pillar, view, leader: leaderOf(this.config, view) });
    const digest = this.v.viewContentDigestOf(content);
    const accept: Accept = {
      type: 'accept',
      pillar: this.pillar,
      ...content,
      needReply: false,
      cert: this.trinx.certifyPlain(digest),
    };
    this.broadcast(accept);
    // The proof may have formed from ACCEPTs that arrived before the NEW-VIEW.
    const provenEarly = this.proofs.has(view);
    this.recordAccept(this.id, accept, toHex(digest));
    if (provenEarly) this.onProven();
    this.pruneProofs();
    for (const e of this.log.entries.values()) this.checkCommitted(e);
    this.deliverReady();
  }

  private onAccept(from: number, m: Accept): void {
    if (!this.v.acceptValid(from, m)) {
      this.reject(from, 'accept-invalid');
      return;
    }
    this.noteEvidence(from, m.view);
    if (m.needReply) {
      const mine = this.accepts.get(this.id)?.m;
      if (mine?.view === m.view) this.send(from, { ...mine, needReply: false });
    }
    this.recordAccept(from, m, toHex(this.v.viewContentDigestOf(m)));
  }

  /** Keeps the latest ACCEPT per validator; f + 1 matching ones form the view's proof. */
  private recordAccept(from: number, m: Accept, digest: string): void {
    const prev = this.accepts.get(from);
    if (prev !== undefined && prev.m.view > m.view) return;
    this.accepts.set(from, { m, digest });
    if (m.view < this.view || this.proofs.has(m.view)) return;
    const certs = [...this.accepts.values()]
      .filter((a) => a.m.view === m.view && a.digest === digest)
      .map((a) => a.m.cert);
    if (certs.length < this.f + 1) return;
    const { type: _t, pillar: _p, needReply: _n, cert: _c, ...content } = m;
    this.proofs.set(m.view, { ...content, certs });
    this.dirty = true;
    if (m.view === this.view && this.vcTarget === null) this.onProven();
  }

  /** The current view is proven: the leader certifies its NEW-VIEW slots, followers take them. */
  private onProven(): void {
    const proof = this.proofs.get(this.view)!;
    if (!this.isLeading()) {
      this.nextOrder = this.v.at(maxOf(proof.firstOrder, this.lw));
      this.acceptBuffered();
      return;
    }
    const slots = this.pendingSlots;
    if (slots === null) return;
    this.pendingSlots = null;
    for (const sl of slots) {
      if (sl.order < this.lw) continue;
      if (!this.orderFree(this.view, sl.order)) return;
      const topCert = this.topCertFor(sl.order);
      if (topCert === null) return;
      const c = this.trinx.certifyIndependent(
        Counter.ORDER,
        { view: this.view, order: sl.order + 2n },
        prepareDigest(this.pillar, this.view, sl.order, sl.digest, topCert.mac),
      );
      if (!c.ok) return;
      const prepare: Prepare = {
        type: 'prepare',
        pillar: this.pillar,
        view: this.view,
        order: sl.order,
        batch: sl.batch,
        cert: c.value,
        topCert,
      };
      const entry: Entry = {
        prepare,
        digest: sl.digest,
        certifiers: new Set([this.id]),
        myCommit: null,
        committed: false,
      };
      this.putEntry(entry);
      this.broadcast(prepare);
      this.checkCommitted(entry);
    }
    this.nextOrder = this.v.at(maxOf(this.pendingTop, this.lw));
    this.proposeQueued();
  }

  /** Keeps the proofs of the current and later views and of every view the log holds prepares of. */
  private pruneProofs(): void {
    const used = new Set<bigint>();
    for (const e of this.log.entries.values()) used.add(e.prepare.view);
    // A VIEW-CHANGE always carries the proof of the last certifying view.
    used.add(this.trinx.current(Counter.TOP).view);
    for (const v of this.proofs.keys()) if (v < this.view && !used.has(v)) this.proofs.delete(v);
  }

  private onAck(from: number, m: NewViewAck): void {
    if (!this.v.ackValid(from, m)) {
      this.reject(from, 'ack-invalid');
      return;
    }
    this.noteEvidence(from, m.view);
  }
}
