// One Hybster ordering instance (a pillar) at one validator: a pure state machine.
// `step(event)` returns actions; it never does I/O, reads a clock or draws randomness.
//
// TrInX ORDER counter values used here (see docs/consensus.md):
//   (v, o + 2)  prepare (leader) or commit (follower) of order o in view v;
//   (v, 0)      VIEW-CHANGE link to view v;   (v, 1)  NEW-VIEW-ACK link entering view v.
// A chain of links ending at a real value proves `top`, one past the highest order certified.
import { bytesEqual, toHex } from '../ledger/codec/binary.js';
import { type ConsensusConfig, faults, firstOrderAtOrAbove, leaderOf } from './config.js';
import {
  batchDigest,
  checkpointDigest,
  commitDigest,
  EMPTY_BATCH,
  linkDigest,
  prepareDigest,
} from './digest.js';
import type { Action, Event, PersistedEntry, PillarSnapshot } from './events.js';
import {
  type Checkpoint,
  type Commit,
  decodeMessage,
  encodeMessage,
  type Message,
  type NewView,
  type NewViewAck,
  newViewDigest,
  type Prepare,
  type StableProof,
  type ViewChange,
  viewChangeDigest,
} from './messages.js';
import {
  Counter,
  type CounterCert,
  type CounterValue,
  compareCounter,
  counterEqual,
  type Trinx,
} from './trinx.js';

interface Entry {
  prepare: Prepare;
  digest: Uint8Array;
  /** Validators with a certified message for (prepare.view, order): the leader's prepare, followers' commits. */
  certifiers: Set<number>;
  myCommit: Commit | null;
  committed: boolean;
}

interface RecomputedNewView {
  stable: StableProof | null;
  top: bigint;
  slots: { order: bigint; batch: Uint8Array; digest: Uint8Array }[];
}

const CHECKPOINTS_KEPT_PER_VALIDATOR = 4;
const maxOf = (a: bigint, b: bigint): bigint => (a > b ? a : b);

export interface PillarOptions {
  readonly config: ConsensusConfig;
  readonly validator: number;
  readonly pillar: number;
  readonly trinx: Trinx;
  /** Restart: the folded persisted state and the next order the node will execute. */
  readonly snapshot?: PillarSnapshot;
  readonly executedNext?: bigint;
}

export class PillarCore {
  readonly config: ConsensusConfig;
  readonly id: number;
  readonly pillar: number;
  private readonly trinx: Trinx;
  private readonly f: number;

  private view = 0n;
  private vcTarget: bigint | null = null;
  private top = 0n;
  private chain: CounterCert[] = [];
  /** The links that entered the current view and the top they bound (empty in view 0). */
  private entryChain: CounterCert[] = [];
  private entryTop = 0n;
  private stable: StableProof | null = null;
  private lw = 0n;
  private readonly log = new Map<bigint, Entry>();
  /** Leader: next order to propose. Follower: next order to accept (prepares are taken strictly in order). */
  private nextOrder: bigint;
  private nextDeliver: bigint;
  private readonly queue: Uint8Array[] = [];
  private readonly buffered = new Map<bigint, Prepare>();
  private readonly pendingCommits = new Map<string, Map<number, Uint8Array>>();
  private pendingCommitCount = 0;
  private readonly checkpoints = new Map<number, Checkpoint[]>();
  private myCheckpoint: Checkpoint | null = null;
  private readonly viewChanges = new Map<number, ViewChange>();
  private readonly evidence = new Map<number, bigint>();
  private readonly stuckPeers = new Set<number>();
  private myViewChangeBytes: Uint8Array | null = null;
  private lastNewViewBytes: Uint8Array | null = null;

  private nowMs = 0;
  private lastRetransmitMs = 0;
  private retransmitRound = 0;
  private vcDeadlineMs = 0;
  private vcTimeoutMs: number;

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
    this.vcTimeoutMs = o.config.viewTimeoutMs;
    this.nextOrder = BigInt(o.pillar);
    this.nextDeliver = BigInt(o.pillar);
    if (o.snapshot !== undefined) this.restore(o.snapshot, o.executedNext ?? 0n);
  }

  private restore(s: PillarSnapshot, executedNext: bigint): void {
    this.view = s.view;
    this.top = s.top;
    this.chain = [...s.chain];
    this.entryChain = [...s.entryChain];
    this.entryTop = s.entryTop;
    this.stable = s.stable;
    this.lw = s.stable === null ? 0n : s.stable.order + 1n;
    for (const [o, e] of s.entries) {
      if (o < this.lw) continue;
      const certifiers = new Set<number>([leaderOf(this.config, e.prepare.view)]);
      if (e.myCommit !== null) certifiers.add(this.id);
      this.log.set(o, {
        prepare: e.prepare,
        digest: this.digestOf(e.prepare.batch),
        certifiers,
        myCommit: e.myCommit,
        committed: false,
      });
    }
    this.nextOrder = this.at(maxOf(this.top, this.lw));
    this.nextDeliver = this.at(maxOf(executedNext, this.lw));
    if (s.viewChangeTarget !== null) {
      this.vcTarget = s.viewChangeTarget;
      this.myViewChangeBytes = encodeMessage(this.buildViewChange(s.viewChangeTarget));
    }
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
    const delta: Action = {
      type: 'persist',
      delta: {
        pillar: this.pillar,
        trinx: this.trinx.exportState(),
        view: this.view,
        viewChangeTarget: this.vcTarget,
        top: this.top,
        chain: [...this.chain],
        entryTop: this.entryTop,
        entryChain: [...this.entryChain],
        stable: this.stable,
        putEntries: [...this.putEntries.values()].map(
          (e): PersistedEntry => ({ prepare: e.prepare, myCommit: e.myCommit }),
        ),
        pruneBelow: this.lw,
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
    const pending = [...this.log.values()]
      .filter((e) => !e.committed)
      .map((e) => `${e.prepare.order}@${e.prepare.view}:${[...e.certifiers].join('')}`);
    return `p${this.pillar} v${this.view}${this.vcTarget === null ? '' : `->${this.vcTarget}`} lw${this.lw} next${this.nextOrder} deliver${this.nextDeliver} top${this.top} buffered${this.buffered.size} uncommitted[${pending.join(',')}]`;
  }

  isLeading(): boolean {
    return this.vcTarget === null && leaderOf(this.config, this.view) === this.id;
  }

  /** The broken-variant tests override this to show the simulator catches a too-small quorum. */
  protected commitQuorum(): number {
    return this.f + 1;
  }

  // ---------------------------------------------------------------- helpers

  /** Batches are immutable once handed to the core, so each is hashed once per pillar. */
  private readonly digests = new WeakMap<Uint8Array, Uint8Array>();
  private digestOf(batch: Uint8Array): Uint8Array {
    let d = this.digests.get(batch);
    if (d === undefined) {
      d = batchDigest(batch);
      this.digests.set(batch, d);
    }
    return d;
  }

  private at(o: bigint): bigint {
    return firstOrderAtOrAbove(this.config, this.pillar, o);
  }
  private ownsOrder(o: bigint): boolean {
    return o % BigInt(this.config.pillars) === BigInt(this.pillar);
  }
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
  private certifiedReal(order: bigint): void {
    // A real ORDER certificate resets the link chain: it now proves `top` by itself.
    if (order + 1n > this.top) this.top = order + 1n;
    this.chain = [];
    this.dirty = true;
  }
  private issuerIs(c: CounterCert, validator: number): boolean {
    return c.issuer.validator === validator && c.issuer.pillar === this.pillar && c.counter === Counter.ORDER;
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
    }
  }

  /** Checks a prepare's certificate: from the leader of its view, on (view, order + 2), over its content. */
  private prepareValid(p: Prepare): boolean {
    const leader = leaderOf(this.config, p.view);
    return (
      this.ownsOrder(p.order) &&
      p.batch.length <= this.config.batchBytesMax &&
      this.issuerIs(p.cert, leader) &&
      p.cert.prev === null &&
      counterEqual(p.cert.value, { view: p.view, order: p.order + 2n }) &&
      this.trinx.verifyIndependent(
        p.cert,
        prepareDigest(this.pillar, p.view, p.order, this.digestOf(p.batch)),
      )
    );
  }

  private onPrepare(from: number, p: Prepare): void {
    if (from !== leaderOf(this.config, p.view) || !this.prepareValid(p)) {
      this.reject(from, 'prepare-invalid');
      return;
    }
    this.noteEvidence(from, p.view);
    if (this.vcTarget !== null) {
      if (p.view < this.vcTarget) this.learnPrepare(p);
      return;
    }
    if (p.view !== this.view || this.isLeading()) return;
    if (p.order < this.nextOrder) {
      // A retransmission: the leader has not seen our commit yet.
      const e = this.log.get(p.order);
      if (e?.myCommit && e.prepare.view === p.view) this.send(from, e.myCommit);
      return;
    }
    if (p.order >= this.windowEnd()) return;
    if (p.order > this.nextOrder) {
      if (this.buffered.size < this.config.window / this.config.pillars) this.buffered.set(p.order, p);
      return;
    }
    this.acceptPrepare(p);
    for (
      let next = this.buffered.get(this.nextOrder);
      next !== undefined;
      next = this.buffered.get(this.nextOrder)
    ) {
      this.buffered.delete(this.nextOrder);
      if (next.view !== this.view || this.nextOrder >= this.windowEnd()) break;
      this.acceptPrepare(next);
    }
  }

  /**
   * A replica whose view change nobody joined cannot certify in the old view any more, but
   * it can still learn what the others decide there: a prepare plus f matching commits is
   * committed no matter who observes it. This keeps it executing until the others move on.
   */
  private learnPrepare(p: Prepare): void {
    if (p.order < this.nextDeliver || p.order >= this.windowEnd()) return;
    const have = this.log.get(p.order);
    if (have !== undefined && have.prepare.view >= p.view) return;
    const entry: Entry = {
      prepare: p,
      digest: this.digestOf(p.batch),
      certifiers: new Set([leaderOf(this.config, p.view)]),
      myCommit: null,
      committed: false,
    };
    this.putEntry(entry);
    this.checkCommitted(entry);
  }

  /** Follower: accept the prepare at nextOrder and send a certified COMMIT. */
  private acceptPrepare(p: Prepare): void {
    const digest = this.digestOf(p.batch);
    const c = this.trinx.certifyIndependent(
      Counter.ORDER,
      { view: p.view, order: p.order + 2n },
      commitDigest(this.pillar, p.view, p.order, digest),
    );
    if (!c.ok) return;
    this.certifiedReal(p.order);
    const commit: Commit = {
      type: 'commit',
      pillar: this.pillar,
      view: p.view,
      order: p.order,
      batchDigest: digest,
      cert: c.value,
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
    const o = entry.prepare.order;
    this.log.set(o, entry);
    this.putEntries.set(o, entry);
    this.dirty = true;
    const key = `${entry.prepare.view}:${o}`;
    const pending = this.pendingCommits.get(key);
    if (pending !== undefined) {
      this.pendingCommits.delete(key);
      this.pendingCommitCount -= pending.size;
      for (const [v, d] of pending) if (bytesEqual(d, entry.digest)) entry.certifiers.add(v);
    }
  }

  private onCommit(from: number, m: Commit): void {
    const leader = leaderOf(this.config, m.view);
    const valid =
      from !== leader &&
      this.ownsOrder(m.order) &&
      this.issuerIs(m.cert, from) &&
      m.cert.prev === null &&
      counterEqual(m.cert.value, { view: m.view, order: m.order + 2n }) &&
      this.trinx.verifyIndependent(m.cert, commitDigest(this.pillar, m.view, m.order, m.batchDigest));
    if (!valid) {
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
    const cap = (this.config.window / this.config.pillars) * this.config.n * 2;
    if (this.pendingCommitCount >= cap) return;
    const key = `${m.view}:${m.order}`;
    let set = this.pendingCommits.get(key);
    if (set === undefined) {
      set = new Map();
      this.pendingCommits.set(key, set);
    }
    if (!set.has(from)) {
      set.set(from, m.batchDigest);
      this.pendingCommitCount++;
    }
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
      });
      this.nextDeliver += BigInt(this.config.pillars);
    }
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
    while (this.queue.length > 0 && this.isLeading() && this.nextOrder < this.windowEnd()) {
      this.proposeOne(this.queue.shift()!);
    }
  }

  private proposeOne(batch: Uint8Array): void {
    const o = this.nextOrder;
    const digest = this.digestOf(batch);
    const c = this.trinx.certifyIndependent(
      Counter.ORDER,
      { view: this.view, order: o + 2n },
      prepareDigest(this.pillar, this.view, o, digest),
    );
    if (!c.ok) return;
    this.certifiedReal(o);
    const prepare: Prepare = {
      type: 'prepare',
      pillar: this.pillar,
      view: this.view,
      order: o,
      batch,
      cert: c.value,
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
    const list = this.checkpoints.get(from) ?? [];
    if (list.some((c) => c.order === m.order)) return;
    list.push(m);
    list.sort((a, b) => (a.order < b.order ? -1 : a.order > b.order ? 1 : 0));
    if (list.length > CHECKPOINTS_KEPT_PER_VALIDATOR) list.shift();
    this.checkpoints.set(from, list);
    const certs = [];
    for (const cs of this.checkpoints.values()) {
      const match = cs.find(
        (c) =>
          c.order === m.order &&
          bytesEqual(c.stateDigest, m.stateDigest) &&
          bytesEqual(c.blockHash, m.blockHash),
      );
      if (match) certs.push(match.cert);
    }
    if (certs.length >= this.f + 1) {
      this.makeStable({ order: m.order, stateDigest: m.stateDigest, blockHash: m.blockHash, certs });
    }
  }

  private stableValid(s: StableProof): boolean {
    const seen = new Set<number>();
    const d = checkpointDigest(s.order, s.stateDigest, s.blockHash);
    for (const c of s.certs) {
      if (c.issuer.pillar !== this.pillar || seen.has(c.issuer.validator)) return false;
      if (!this.trinx.verifyPlain(c, d)) return false;
      seen.add(c.issuer.validator);
    }
    return seen.size >= this.f + 1;
  }

  /** Moves the low watermark; a pillar that has not delivered up to the checkpoint asks for state transfer. */
  private makeStable(s: StableProof): void {
    if (s.order < this.lw) return;
    this.stable = s;
    this.lw = s.order + 1n;
    this.dirty = true;
    for (const o of this.log.keys()) if (o < this.lw) this.log.delete(o);
    for (const o of this.buffered.keys()) if (o < this.lw) this.buffered.delete(o);
    for (const [k, set] of this.pendingCommits) {
      if (BigInt(k.slice(k.indexOf(':') + 1)) < this.lw) {
        this.pendingCommits.delete(k);
        this.pendingCommitCount -= set.size;
      }
    }
    for (const [v, list] of this.checkpoints) {
      const kept = list.filter((c) => c.order >= s.order);
      if (kept.length === 0) this.checkpoints.delete(v);
      else this.checkpoints.set(v, kept);
    }
    const first = this.at(this.lw);
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
    if (this.vcTarget !== null && nowMs >= this.vcDeadlineMs) this.onViewChangeTimeout();
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
      return;
    }
    if (this.isLeading()) this.retransmitPrepares();
    else this.retransmitCommits();
  }

  private retransmitPrepares(): void {
    const byOrder = [...this.log.values()]
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
    const current = [...this.log.values()]
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
  }

  private onViewChangeTimeout(): void {
    // Move to the lowest view that, with our vote, has f + 1 votes; at least the next one.
    const target = this.vcTarget!;
    const others = [...this.evidence.entries()]
      .filter(([v, w]) => v !== this.id && w > target)
      .map(([, w]) => w)
      .sort((a, b) => (a > b ? -1 : a < b ? 1 : 0));
    const supported = this.f > 0 ? others[this.f - 1] : undefined;
    this.startViewChange(supported !== undefined && supported > target + 1n ? supported : target + 1n);
  }

  private startViewChange(toView: bigint): void {
    if (toView <= this.view || (this.vcTarget !== null && toView <= this.vcTarget)) return;
    if (this.chain.length >= this.config.chainLinksMax) return;
    const value: CounterValue = { view: toView, order: 0n };
    const link = this.trinx.certifyContinuing(Counter.ORDER, value, linkDigest(this.pillar, value, this.top));
    if (!link.ok) return;
    this.chain.push(link.value);
    this.vcTarget = toView;
    this.dirty = true;
    this.vcDeadlineMs = this.nowMs + this.vcTimeoutMs;
    this.vcTimeoutMs = Math.min(this.vcTimeoutMs * 2, this.config.viewTimeoutMsMax);
    this.buffered.clear();
    this.queue.length = 0;
    const vc = this.buildViewChange(toView);
    this.viewChanges.set(this.id, vc);
    this.myViewChangeBytes = this.broadcast(vc);
    this.out.push({ type: 'view-change-started', pillar: this.pillar, toView });
    this.tryNewView();
  }

  private buildViewChange(toView: bigint): ViewChange {
    const history: Prepare[] = [];
    for (let o = this.at(this.lw); o < this.top; o += BigInt(this.config.pillars)) {
      const e = this.log.get(o);
      // The log is gap-free below top by construction: prepares are taken strictly in order.
      if (e === undefined) throw new Error(`assertion: log gap at ${o} below top ${this.top}`);
      history.push(e.prepare);
    }
    const body = {
      type: 'view-change' as const,
      pillar: this.pillar,
      toView,
      top: this.top,
      stable: this.stable,
    };
    const unsigned = {
      ...body,
      history,
      chain: [...this.chain],
      entryTop: this.entryTop,
      entryChain: [...this.entryChain],
    };
    const digest = viewChangeDigest(
      unsigned,
      history.map((p) => this.digestOf(p.batch)),
    );
    return { ...unsigned, cert: this.trinx.certifyPlain(digest) };
  }

  /** Full check of a VIEW-CHANGE: content certificate, stable proof, link chain proving top, gap-free history. */
  viewChangeValid(vc: ViewChange, issuer: number): boolean {
    return this.viewChangeProblem(vc, issuer) === null;
  }

  /** Why a VIEW-CHANGE is invalid, or null when it is valid. */
  viewChangeProblem(vc: ViewChange, issuer: number): string | null {
    if (
      vc.pillar !== this.pillar ||
      vc.cert.issuer.validator !== issuer ||
      vc.cert.issuer.pillar !== this.pillar
    ) {
      return 'issuer';
    }
    if (vc.history.some((p) => !this.prepareValid(p) || p.view >= vc.toView)) return 'history-prepare';
    const digests = vc.history.map((p) => this.digestOf(p.batch));
    if (!this.trinx.verifyPlain(vc.cert, viewChangeDigest(vc, digests))) return 'content-cert';
    if (vc.stable !== null && !this.stableValid(vc.stable)) return 'stable-proof';
    const last = vc.chain[vc.chain.length - 1];
    if (last === undefined || !counterEqual(last.value, { view: vc.toView, order: 0n })) return 'chain-end';
    const root = this.linksProblem(vc.chain, vc.top, issuer);
    if (typeof root === 'string') return root;
    if (root.order >= 2n) {
      if (vc.top < root.order - 1n) return 'top';
      // The sender certified in view root.view: it must show how it entered that view and what top it had.
      if (root.view > 0n) {
        const entryLast = vc.entryChain[vc.entryChain.length - 1];
        if (entryLast === undefined || entryLast.value.view !== root.view) return 'entry-missing';
        const entryRoot = this.linksProblem(vc.entryChain, vc.entryTop, issuer);
        if (typeof entryRoot === 'string') return `entry-${entryRoot}`;
        if (entryRoot.order >= 2n && vc.entryTop < entryRoot.order - 1n) return 'entry-top';
        if (vc.top < vc.entryTop) return 'top-below-entry';
      }
    } else if (root.view !== 0n || root.order !== 0n) return 'chain-root';
    const lw = vc.stable === null ? 0n : vc.stable.order + 1n;
    let expect = this.at(lw);
    for (const p of vc.history) {
      if (p.order !== expect) return 'history-gap';
      expect += BigInt(this.config.pillars);
    }
    return expect >= vc.top ? null : 'history-short';
  }

  /** Checks a run of consecutive link certificates sharing one `top`; returns the value before the first. */
  private linksProblem(chain: readonly CounterCert[], top: bigint, issuer: number): CounterValue | string {
    for (let i = 0; i < chain.length; i++) {
      const c = chain[i]!;
      if (!this.issuerIs(c, issuer) || c.prev === null || c.value.order > 1n) return 'chain-link';
      if (i > 0 && !counterEqual(c.prev, chain[i - 1]!.value)) return 'chain-gap';
      if (!this.trinx.verifyContinuing(c, linkDigest(this.pillar, c.value, top))) return 'chain-cert';
    }
    const root = chain[0]?.prev;
    if (root === undefined || root === null) return 'chain-empty';
    // A link's predecessor is either a real value or genesis; a marker means links are missing.
    if (root.order < 2n && (root.view !== 0n || root.order !== 0n)) return 'chain-root';
    return root;
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
      .sort((a, b) => a.cert.issuer.validator - b.cert.issuer.validator)
      .slice(0, this.f + 1);
    if (vcs.length < this.f + 1) return;
    const plan = this.recompute(vcs);
    this.entryChain = [...this.chain];
    this.entryTop = this.top;
    const prepares: Prepare[] = [];
    for (const s of plan.slots) {
      const c = this.trinx.certifyIndependent(
        Counter.ORDER,
        { view: target, order: s.order + 2n },
        prepareDigest(this.pillar, target, s.order, s.digest),
      );
      if (!c.ok) return;
      this.certifiedReal(s.order);
      prepares.push({
        type: 'prepare',
        pillar: this.pillar,
        view: target,
        order: s.order,
        batch: s.batch,
        cert: c.value,
      });
    }
    const vcDigests = vcs.map((vc) =>
      viewChangeDigest(
        vc,
        vc.history.map((p) => this.digestOf(p.batch)),
      ),
    );
    const nvDigest = newViewDigest(
      this.pillar,
      target,
      vcDigests,
      prepares.map((p, i) => prepareDigest(this.pillar, target, p.order, plan.slots[i]!.digest)),
    );
    const cert = this.trinx.certifyIndependent(Counter.NEWVIEW, { view: target, order: 0n }, nvDigest);
    if (!cert.ok) return;
    const nv: NewView = {
      type: 'new-view',
      pillar: this.pillar,
      view: target,
      viewChanges: vcs,
      prepares,
      cert: cert.value,
    };
    this.lastNewViewBytes = this.broadcast(nv);
    this.enterView(target, plan, prepares, true);
  }

  /** Deterministic NEW-VIEW content from f + 1 view changes; followers run the same function. */
  private recompute(vcs: readonly ViewChange[]): RecomputedNewView {
    let stable: StableProof | null = null;
    let top = 0n;
    for (const vc of vcs) {
      if (vc.stable !== null && (stable === null || vc.stable.order > stable.order)) stable = vc.stable;
      if (vc.top > top) top = vc.top;
    }
    const lw = stable === null ? 0n : stable.order + 1n;
    const slots: RecomputedNewView['slots'] = [];
    for (let o = this.at(lw); o < top; o += BigInt(this.config.pillars)) {
      let best: Prepare | null = null;
      let bestDigest = this.digestOf(EMPTY_BATCH);
      for (const vc of vcs) {
        for (const p of vc.history) {
          if (p.order !== o) continue;
          const d = this.digestOf(p.batch);
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

  private onNewView(from: number, nv: NewView): void {
    if (nv.view <= this.view || (this.vcTarget !== null && nv.view < this.vcTarget)) return;
    if (from !== leaderOf(this.config, nv.view) || !this.newViewValid(nv)) {
      this.reject(from, 'new-view-invalid');
      return;
    }
    const plan = this.recompute(nv.viewChanges);
    this.enterView(nv.view, plan, nv.prepares, false);
  }

  /** Recomputes the prepare set from the included view changes and compares it with what the leader sent. */
  newViewValid(nv: NewView): boolean {
    const leader = leaderOf(this.config, nv.view);
    if (nv.cert.issuer.validator !== leader || nv.cert.issuer.pillar !== this.pillar) return false;
    if (nv.cert.counter !== Counter.NEWVIEW || nv.cert.prev !== null) return false;
    if (!counterEqual(nv.cert.value, { view: nv.view, order: 0n })) return false;
    const issuers = new Set<number>();
    for (const vc of nv.viewChanges) {
      const who = vc.cert.issuer.validator;
      if (issuers.has(who) || vc.toView !== nv.view || !this.viewChangeValid(vc, who)) return false;
      issuers.add(who);
    }
    if (issuers.size < this.f + 1) return false;
    const plan = this.recompute(nv.viewChanges);
    if (plan.slots.length !== nv.prepares.length) return false;
    for (let i = 0; i < plan.slots.length; i++) {
      const s = plan.slots[i]!;
      const p = nv.prepares[i]!;
      if (p.view !== nv.view || p.order !== s.order || !bytesEqual(this.digestOf(p.batch), s.digest))
        return false;
      if (!this.prepareValid(p)) return false;
    }
    const vcDigests = nv.viewChanges.map((vc) =>
      viewChangeDigest(
        vc,
        vc.history.map((p) => this.digestOf(p.batch)),
      ),
    );
    const d = newViewDigest(
      this.pillar,
      nv.view,
      vcDigests,
      nv.prepares.map((p, i) => prepareDigest(this.pillar, nv.view, p.order, plan.slots[i]!.digest)),
    );
    return this.trinx.verifyIndependent(nv.cert, d);
  }

  private enterView(
    view: bigint,
    plan: RecomputedNewView,
    prepares: readonly Prepare[],
    asLeader: boolean,
  ): void {
    const sentOwn = this.vcTarget === view;
    if (sentOwn && !asLeader) {
      this.entryChain = [...this.chain];
      this.entryTop = this.top;
    }
    if (!sentOwn && !asLeader) {
      const value: CounterValue = { view, order: 1n };
      if (compareCounter(this.trinx.current(Counter.ORDER), value) > 0) return;
      if (this.chain.length >= this.config.chainLinksMax) return;
      const ack = this.trinx.certifyContinuing(
        Counter.ORDER,
        value,
        linkDigest(this.pillar, value, this.top),
      );
      if (!ack.ok) return;
      this.chain.push(ack.value);
      this.entryChain = [...this.chain];
      this.entryTop = this.top;
      const m: NewViewAck = {
        type: 'new-view-ack',
        pillar: this.pillar,
        view,
        top: this.top,
        cert: ack.value,
      };
      this.broadcast(m);
    }
    this.view = view;
    this.vcTarget = null;
    this.dirty = true;
    this.myViewChangeBytes = null;
    this.buffered.clear();
    this.stuckPeers.clear();
    for (const [v, vc] of this.viewChanges) if (vc.toView <= view) this.viewChanges.delete(v);
    if (plan.stable !== null && plan.stable.order >= this.lw) this.makeStable(plan.stable);
    if (!asLeader) this.lastNewViewBytes = null;
    for (const p of prepares) {
      if (p.order < this.lw) continue;
      const digest = this.digestOf(p.batch);
      if (asLeader) {
        this.putEntry({
          prepare: p,
          digest,
          certifiers: new Set([this.id]),
          myCommit: null,
          committed: false,
        });
        continue;
      }
      this.nextOrder = p.order;
      this.acceptPrepare(p);
    }
    this.nextOrder = this.at(maxOf(plan.top, this.lw));
    this.vcDeadlineMs = 0;
    this.out.push({ type: 'view-changed', pillar: this.pillar, view, leader: leaderOf(this.config, view) });
    for (const e of this.log.values()) this.checkCommitted(e);
    this.deliverReady();
  }

  private onAck(from: number, m: NewViewAck): void {
    const c = m.cert;
    const ok =
      this.issuerIs(c, from) &&
      c.prev !== null &&
      counterEqual(c.value, { view: m.view, order: 1n }) &&
      this.trinx.verifyContinuing(c, linkDigest(this.pillar, c.value, m.top));
    if (!ok) {
      this.reject(from, 'ack-invalid');
      return;
    }
    this.noteEvidence(from, m.view);
  }
}
