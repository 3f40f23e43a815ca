// Deterministic simulator for the Hybster core (in the spirit of TigerBeetle's VOPR):
// many replicas in one process, a seeded PRNG, a virtual clock, a network that drops,
// duplicates, delays, reorders and partitions, crashes and restarts from persisted
// state, up to f Byzantine replicas, and invariant checks after every step.
import { createHash } from 'node:crypto';
import {
  type Action,
  AheadWrites,
  applyPersist,
  type ConsensusConfig,
  type Event,
  faults,
  leaderOf,
  makeConfig,
  type PersistDelta,
  type PillarSnapshot,
  Replica,
  type ReplicaOptions,
  SoftwareTrinx,
  type StableProof,
  type TrinxState,
} from '../../consensus/index.js';
import {
  BEHAVIOURS,
  type BehaviourName,
  ByzantineWrapper,
  type ByzStats,
  emptyByzStats,
  NEVER_LEADS,
} from './byzantine.js';
import { GatedTrinx } from './lower-top.js';
import { Prng } from './prng.js';

const makeSoftwareTrinx = (key: Uint8Array, validator: number, pillar: number, state?: TrinxState) =>
  new SoftwareTrinx(key, { validator, pillar }, state);

export interface SimOptions {
  readonly seed: number;
  readonly n: number;
  readonly pillars: number;
  readonly byzantine: boolean;
  /** Network faults, partitions and crashes before `healMs`. */
  readonly faults: boolean;
  readonly healMs: number;
  /** After healing, every submitted transaction must execute within this much virtual time. */
  readonly livenessMs: number;
  readonly stepsMax: number;
  /** Broken variants for the tests that prove the checks can fail. */
  readonly replicaOptions?: Partial<Pick<ReplicaOptions, 'makeTrinx' | 'makePillar'>>;
  /** Force these Byzantine behaviours (replica i gets behaviours[i]); default: drawn from the seed. */
  readonly behaviours?: readonly BehaviourName[];
  /** Force which replicas are Byzantine (replica byzantineIds[i] gets behaviours[i]). */
  readonly byzantineIds?: readonly number[];
  /** Scripted isolation: every message to or from `node` is lost in [fromMs, untilMs). */
  readonly isolations?: readonly Isolation[];
  /**
   * Scripted crash: the first time from `atMs` on that replica 0 sends ahead of its write, it
   * crashes right after (the write in flight is lost) and is down for `downMs`.
   */
  readonly crashAfterAhead?: { readonly atMs: number; readonly downMs: number };
  /** Leaders send ahead of their writes (consensus/ahead-writes.ts; one pillar only). Default false. */
  readonly sendAhead?: boolean;
}

export interface Isolation {
  readonly node: number;
  readonly fromMs: number;
  readonly untilMs: number;
}

export interface SimResult {
  readonly seed: number;
  readonly n: number;
  readonly pillars: number;
  readonly steps: number;
  readonly committed: number;
  readonly viewChanges: number;
  readonly violations: string[];
  readonly rejects: number;
  readonly byzantine: Record<number, BehaviourName>;
  readonly byzStats: ByzStats;
  readonly txSubmitted: number;
  readonly stateTransfers: number;
  readonly crashes: number;
  /** Groups correct leaders sent ahead of their write (consensus/ahead-writes.ts). */
  readonly aheadSends: number;
  /** Deliveries at correct replicas marked fresh, and those not (NEW-VIEW re-proposals). */
  readonly freshDeliveries: number;
  readonly reproposedDeliveries: number;
}

export const simConfig = (n: number, pillars: number): ConsensusConfig =>
  makeConfig({
    n,
    pillars,
    checkpointInterval: 4,
    window: 16,
    batchBytesMax: 64 * 1024,
    pendingBatchesMax: 8,
    retransmitMs: 60,
    viewTimeoutMs: 300,
    viewTimeoutMsMax: 2400,
    retransmitBurstMax: 8,
  });

const TICK_MS = 20;
const REQUEST_TIMEOUT_MS = 700;
const TX_BYTES = 16;
const BATCH_TXS_MAX = 4;
const CLIENT_KEY = 'sim-client-key';
const TRINX_KEY = new Uint8Array(32).fill(42);

/** A simulated client transaction: 8-byte id + 8-byte tag; execution drops a wrong tag (bad signature). */
function makeTx(id: number): Uint8Array {
  const b = Buffer.alloc(TX_BYTES);
  b.writeBigUInt64BE(BigInt(id), 0);
  createHash('sha256').update(CLIENT_KEY).update(b.subarray(0, 8)).digest().copy(b, 8, 0, 8);
  return b;
}

function validTxId(tx: Uint8Array): number | null {
  if (tx.length !== TX_BYTES) return null;
  const b = Buffer.from(tx);
  const tag = createHash('sha256').update(CLIENT_KEY).update(b.subarray(0, 8)).digest().subarray(0, 8);
  return tag.equals(b.subarray(8, 16)) ? Number(b.readBigUInt64BE(0)) : null;
}

interface PendingTx {
  sinceMs: number;
  proposed: boolean;
}

interface SimNode {
  readonly id: number;
  replica: Replica | null;
  disk: (PillarSnapshot | null)[];
  /** Persisted ledger: per order, the batch digest and the state digest after it. */
  ledger: { batch: Uint8Array; digest: string; state: Uint8Array }[];
  executedTx: Set<number>;
  mempool: Map<number, PendingTx>;
  nextRequestTimeoutMs: number;
  byz: ByzantineWrapper | null;
  transfer: { toOrder: bigint; checkpoint: StableProof } | null;
  downUntilMs: number;
  /**
   * Persists a leader sent ahead of (consensus/ahead-writes.ts), oldest first: durable after
   * a short random delay ('disk' events), lost in a crash.
   */
  pendingWrites: PersistDelta[];
  aheadWrites: AheadWrites;
  /** Bumped by every crash: a 'disk' event of an earlier life finds nothing to write. */
  life: number;
}

type SimEvent =
  | { kind: 'msg'; from: number; to: number; bytes: Uint8Array }
  | { kind: 'tick' }
  | { kind: 'submit' }
  | { kind: 'fault' }
  | { kind: 'crash-leader' }
  | { kind: 'disk'; node: number; life: number }
  | { kind: 'crash'; node: number; forMs: number };

class Heap {
  private readonly a: { t: number; seq: number; ev: SimEvent }[] = [];
  private seq = 0;
  get size(): number {
    return this.a.length;
  }
  push(t: number, ev: SimEvent): void {
    const a = this.a;
    a.push({ t, seq: this.seq++, ev });
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (this.less(i, p)) {
        [a[i], a[p]] = [a[p]!, a[i]!];
        i = p;
      } else break;
    }
  }
  pop(): { t: number; ev: SimEvent } | undefined {
    const a = this.a;
    if (a.length === 0) return undefined;
    const top = a[0]!;
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && this.less(l, m)) m = l;
        if (r < a.length && this.less(r, m)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top;
  }
  private less(i: number, j: number): boolean {
    const x = this.a[i]!;
    const y = this.a[j]!;
    return x.t < y.t || (x.t === y.t && x.seq < y.seq);
  }
}

export class Simulation {
  readonly config: ConsensusConfig;
  private readonly rng: Prng;
  private readonly nodes: SimNode[];
  private readonly heap = new Heap();
  private now = 0;
  private steps = 0;
  private readonly violations: string[] = [];
  /** Agreement reference: order -> batch digest as first executed by a correct replica. */
  private readonly agreed = new Map<bigint, string>();
  private readonly submitted = new Map<number, number>();
  private nextTxId = 1;
  private viewChanges = 0;
  private rejects = 0;
  private stateTransfers = 0;
  /** `${view}:${batch digest hex}` of every batch a replica cut and proposed itself, per replica. */
  private readonly cut: Set<string>[];
  private freshDeliveries = 0;
  private reproposedDeliveries = 0;
  private crashes = 0;
  private partition: number[] | null = null;
  private partitionUntil = 0;
  private readonly byzIds = new Map<number, BehaviourName>();
  private readonly byzStats = emptyByzStats();
  private crashLeaderAtMs = -1;
  /** Groups that went ahead of their write, at correct replicas. */
  private aheadSends = 0;
  private crashedAfterAhead = false;

  constructor(readonly o: SimOptions) {
    this.config = simConfig(o.n, o.pillars);
    this.rng = new Prng(o.seed);
    const f = faults(this.config);
    if (o.byzantine && f > 0 && o.byzantineIds !== undefined) {
      o.byzantineIds.forEach((id, i) => {
        this.byzIds.set(id, o.behaviours?.[i] ?? this.rng.pick(BEHAVIOURS));
      });
    } else if (o.byzantine && f > 0) {
      // The first Byzantine behaviour cycles with the seed so every kind is exercised; the
      // equivocator leads view 0, the NEW-VIEW forger leads view 1 (view 0's leader is crashed early).
      const first = o.behaviours?.[0] ?? BEHAVIOURS[o.seed % BEHAVIOURS.length]!;
      const firstId = first === 'equivocate' ? 0 : first === 'bad-new-view' ? 1 : this.rng.int(0, o.n - 1);
      this.byzIds.set(firstId, first);
      const rest = this.rng.shuffle([...Array(o.n).keys()].filter((v) => v !== firstId && v !== 0));
      for (let i = 1; i < f; i++)
        this.byzIds.set(rest[i - 1]!, o.behaviours?.[i] ?? this.rng.pick(BEHAVIOURS));
      if (first === 'bad-new-view') this.crashLeaderAtMs = 150;
    }
    this.cut = Array.from({ length: o.n }, () => new Set<string>());
    this.nodes = Array.from({ length: o.n }, (_, id) => {
      const node: SimNode = {
        id,
        replica: null,
        disk: Array.from({ length: o.pillars }, () => null),
        ledger: [],
        executedTx: new Set(),
        mempool: new Map(),
        nextRequestTimeoutMs: REQUEST_TIMEOUT_MS,
        byz: null,
        transfer: null,
        downUntilMs: 0,
        pendingWrites: [],
        aheadWrites: new AheadWrites(),
        life: 0,
      };
      const behaviour = this.byzIds.get(id);
      if (behaviour !== undefined) {
        node.byz = new ByzantineWrapper(
          behaviour,
          id,
          this.config,
          () => node.replica?.trinxes ?? [],
          new Prng(o.seed * 31 + id),
          this.byzStats,
        );
      }
      return node;
    });
    for (const node of this.nodes) this.boot(node);
    this.heap.push(1, { kind: 'tick' });
    this.heap.push(5, { kind: 'submit' });
    if (o.faults) this.heap.push(this.rng.int(50, 300), { kind: 'fault' });
    if (this.crashLeaderAtMs >= 0) this.heap.push(this.crashLeaderAtMs, { kind: 'crash-leader' });
  }

  private boot(node: SimNode): void {
    const snapshots = node.disk.map((d) => d ?? undefined);
    const makeTrinx = this.o.replicaOptions?.makeTrinx ?? makeSoftwareTrinx;
    const byz = node.byz;
    node.replica = new Replica({
      config: this.config,
      validator: node.id,
      trinxKey: TRINX_KEY,
      snapshots,
      executedNext: BigInt(node.ledger.length),
      // As the node (batch.sendAhead): only with one pillar in the thread.
      sendAhead: this.o.sendAhead === true && this.o.pillars === 1,
      ...this.o.replicaOptions,
      // A Byzantine replica decides what its core may ask of its TrInX.
      ...(byz === null
        ? {}
        : {
            makeTrinx: (key: Uint8Array, v: number, p: number, s?: TrinxState) =>
              new GatedTrinx(makeTrinx(key, v, p, s), this.o.n, NEVER_LEADS.has(byz.behaviour)),
          }),
    });
  }

  private correct(id: number): boolean {
    return !this.byzIds.has(id);
  }

  private violation(what: string): void {
    if (this.violations.length < 20) this.violations.push(`t=${this.now} ${what}`);
  }

  run(): SimResult {
    const endMs = this.o.healMs + this.o.livenessMs;
    let tickTurn = 0;
    while (this.steps < this.o.stepsMax) {
      const next = this.heap.pop();
      if (next === undefined || next.t > endMs) break;
      this.now = next.t;
      this.steps++;
      const ev = next.ev;
      switch (ev.kind) {
        case 'msg':
          this.onMessage(ev.from, ev.to, ev.bytes);
          break;
        case 'tick': {
          const id = tickTurn++ % this.o.n;
          this.onTick(this.nodes[id]!);
          this.heap.push(this.now + Math.ceil(TICK_MS / this.o.n), { kind: 'tick' });
          break;
        }
        case 'submit':
          this.onSubmit();
          break;
        case 'fault':
          this.onFault();
          break;
        case 'crash-leader':
          this.crash(this.nodes[0]!, 1000);
          break;
        case 'disk': {
          const node = this.nodes[ev.node]!;
          if (ev.life === node.life) this.writeOldest(node);
          break;
        }
        case 'crash':
          this.crash(this.nodes[ev.node]!, ev.forMs);
          break;
      }
      this.checkStep();
      if (this.violations.length > 0) break;
    }
    if (this.violations.length === 0 && this.steps < this.o.stepsMax) this.checkLiveness(endMs);
    const executedMin = Math.min(...this.nodes.filter((n) => this.correct(n.id)).map((n) => n.ledger.length));
    return {
      seed: this.o.seed,
      n: this.o.n,
      pillars: this.o.pillars,
      steps: this.steps,
      committed: executedMin,
      viewChanges: this.viewChanges,
      violations: this.violations,
      rejects: this.rejects,
      byzantine: Object.fromEntries(this.byzIds),
      byzStats: this.byzStats,
      txSubmitted: this.submitted.size,
      stateTransfers: this.stateTransfers,
      crashes: this.crashes,
      aheadSends: this.aheadSends,
      freshDeliveries: this.freshDeliveries,
      reproposedDeliveries: this.reproposedDeliveries,
    };
  }

  // ---------------------------------------------------------------- events

  private up(node: SimNode): boolean {
    return node.replica !== null;
  }

  private step(node: SimNode, ev: Event): void {
    if (node.replica === null) return;
    this.perform(node, node.replica.step(ev));
  }

  private onMessage(from: number, to: number, bytes: Uint8Array): void {
    const node = this.nodes[to]!;
    if (!this.up(node)) return;
    node.byz?.setNow(this.now);
    if (node.byz !== null && !node.byz.incoming(bytes)) return;
    this.step(node, { type: 'receive', from, bytes });
  }

  private onTick(node: SimNode): void {
    if (!this.up(node)) {
      if (this.now >= node.downUntilMs) {
        this.boot(node);
        this.step(node, { type: 'tick', nowMs: this.now });
      }
      return;
    }
    node.byz?.setNow(this.now);
    this.step(node, { type: 'tick', nowMs: this.now });
    this.retryTransfer(node);
    this.proposeFromMempool(node);
    const oldest = Math.min(...[...node.mempool.values()].map((p) => p.sinceMs));
    if (
      Number.isFinite(oldest) &&
      this.now - oldest > REQUEST_TIMEOUT_MS &&
      this.now >= node.nextRequestTimeoutMs
    ) {
      node.nextRequestTimeoutMs = this.now + REQUEST_TIMEOUT_MS;
      this.step(node, { type: 'request-timeout' });
    }
  }

  /** The node's mempool: the leader cuts batches of pending transactions. */
  private proposeFromMempool(node: SimNode): void {
    const r = node.replica;
    if (r === null || !r.pillars.some((p) => p.isLeading())) return;
    for (let round = 0; round < 4; round++) {
      const txs: number[] = [];
      for (const [id, p] of node.mempool) {
        if (p.proposed) continue;
        txs.push(id);
        if (txs.length >= BATCH_TXS_MAX) break;
      }
      if (txs.length === 0) return;
      for (const id of txs) node.mempool.get(id)!.proposed = true;
      const batch = Buffer.concat(txs.map(makeTx));
      const digest = createHash('sha256').update(batch).digest('hex');
      for (const p of r.pillars) if (p.isLeading()) this.cut[node.id]!.add(`${p.currentView}:${digest}`);
      const actions = r.step({ type: 'propose', batch });
      if (actions.some((a) => a.type === 'proposal-refused')) {
        for (const id of txs) node.mempool.get(id)!.proposed = false;
      }
      this.perform(node, actions);
    }
  }

  private onSubmit(): void {
    const id = this.nextTxId++;
    this.submitted.set(id, this.now);
    // The REST layer gossips a submission to every validator's mempool.
    for (const node of this.nodes) {
      if (!node.executedTx.has(id)) node.mempool.set(id, { sinceMs: this.now, proposed: false });
    }
    const lastSubmitMs = this.o.healMs + this.o.livenessMs / 3;
    const t = this.now + this.rng.int(20, 80);
    if (t < lastSubmitMs) this.heap.push(t, { kind: 'submit' });
  }

  private onFault(): void {
    if (this.now >= this.o.healMs) {
      this.partition = null;
      return;
    }
    const f = faults(this.config);
    const roll = this.rng.int(0, 2);
    if (roll === 0 && this.now >= this.partitionUntil) {
      const groups = this.nodes.map(() => this.rng.int(0, 1));
      this.partition = groups;
      this.partitionUntil = this.now + this.rng.int(100, 600);
    } else if (roll === 1 && f > 0) {
      const down = this.nodes.filter((n) => !this.up(n)).length;
      const candidates = this.nodes.filter((n) => this.up(n) && this.correct(n.id));
      if (down === 0 && candidates.length > 0) {
        this.crash(this.rng.pick(candidates), this.rng.int(100, 800));
      }
    }
    if (this.now >= this.partitionUntil) this.partition = null;
    this.heap.push(this.now + this.rng.int(50, 400), { kind: 'fault' });
  }

  /** Loses everything in memory; the disk (persisted pillar state, ledger) survives. */
  private crash(victim: SimNode, forMs: number): void {
    if (victim.replica === null) return;
    victim.replica = null;
    victim.transfer = null;
    // Writes still in flight never reach the disk.
    victim.pendingWrites = [];
    victim.aheadWrites = new AheadWrites();
    victim.life++;
    victim.downUntilMs = Math.min(this.o.healMs, this.now + forMs);
    this.crashes++;
  }

  // ---------------------------------------------------------------- actions

  private perform(node: SimNode, actions: readonly Action[]): void {
    for (const a of actions) {
      switch (a.type) {
        case 'persist': {
          const sentAhead = a.delta.sentAhead === true;
          if (node.aheadWrites.mayGoAhead(a.ahead === true)) {
            // The node's leader: the messages after it leave now, the write lands later.
            if (this.correct(node.id)) this.aheadSends++;
            const c = this.o.crashAfterAhead;
            if (c !== undefined && node.id === 0 && this.now >= c.atMs && !this.crashedAfterAhead) {
              this.crashedAfterAhead = true;
              this.heap.push(this.now, { kind: 'crash', node: 0, forMs: c.downMs });
            }
            node.pendingWrites.push(a.delta);
            node.aheadWrites.issued(sentAhead);
            this.heap.push(this.now + this.rng.int(0, 4), { kind: 'disk', node: node.id, life: node.life });
            break;
          }
          // Written, after every write before it, before anything after it in this list is
          // sent (the Ready rule).
          while (node.pendingWrites.length > 0) this.writeOldest(node);
          node.aheadWrites.issued(sentAhead);
          node.disk[a.delta.pillar] = applyPersist(node.disk[a.delta.pillar] ?? null, a.delta);
          node.aheadWrites.durable(sentAhead);
          break;
        }
        case 'send':
          this.transmit(node, a.to, a.bytes);
          break;
        case 'broadcast':
          this.transmit(node, -1, a.bytes);
          break;
        case 'deliver':
          this.checkFresh(node, a);
          this.execute(node, a.order, a.view, a.batch);
          break;
        case 'view-changed':
          if (a.pillar === 0 && this.correct(node.id)) this.viewChanges++;
          for (const p of node.mempool.values()) {
            p.proposed = false;
            p.sinceMs = this.now;
          }
          break;
        case 'need-state-transfer':
          node.transfer = { toOrder: a.toOrder, checkpoint: a.checkpoint };
          this.retryTransfer(node);
          break;
        case 'reject':
          this.rejects++;
          if (this.correct(a.from) && this.correct(node.id) && !a.reason.startsWith('bad-sender')) {
            this.violation(
              `correct replica ${node.id} rejected a message from correct replica ${a.from}: ${a.reason}`,
            );
          }
          break;
        default:
          break;
      }
    }
  }

  /** The oldest write in flight lands on the disk. */
  private writeOldest(node: SimNode): void {
    const d = node.pendingWrites.shift();
    if (d === undefined) return;
    node.disk[d.pillar] = applyPersist(node.disk[d.pillar] ?? null, d);
    node.aheadWrites.durable(d.sentAhead === true);
  }

  private transmit(node: SimNode, to: number, bytes: Uint8Array): void {
    const outs = node.byz !== null ? node.byz.outgoing(to, bytes) : null;
    const list =
      outs ??
      (to < 0
        ? this.nodes.filter((n) => n.id !== node.id).map((n) => ({ to: n.id, bytes }))
        : [{ to, bytes }]);
    for (const m of list) this.send(node.id, m.to, m.bytes);
  }

  /** One message onto the network: scripted isolation, then (before healing) drops, duplicates, delays. */
  private send(from: number, to: number, bytes: Uint8Array): void {
    const cut = this.o.isolations?.some(
      (i) => (i.node === from || i.node === to) && this.now >= i.fromMs && this.now < i.untilMs,
    );
    if (cut) return;
    const faulty = this.o.faults && this.now < this.o.healMs;
    if (faulty) {
      if (this.partition !== null && this.partition[from] !== this.partition[to]) return;
      if (this.rng.chance(0.05)) return;
      if (this.rng.chance(0.03))
        this.heap.push(this.now + this.rng.int(1, 80), { kind: 'msg', from, to, bytes });
    }
    const delay = faulty ? this.rng.int(1, 40) : this.rng.int(1, 8);
    this.heap.push(this.now + delay, { kind: 'msg', from, to, bytes });
  }

  /**
   * A delivery marked fresh lets the node count the view's leader as having checked the
   * batch's signatures (docs/consensus.md, "Vouched signatures"). So at a correct replica,
   * a fresh delivery whose view has a correct leader must carry a batch that leader cut and
   * proposed itself in that view, never one it only re-proposed from a view change.
   */
  private checkFresh(node: SimNode, a: Extract<Action, { type: 'deliver' }>): void {
    if (!this.correct(node.id)) return;
    if (!a.fresh) {
      this.reproposedDeliveries++;
      return;
    }
    this.freshDeliveries++;
    const leader = leaderOf(this.config, a.view);
    // The coordinator's fills for idle pillars are the leader's own proposals too, and an
    // empty batch holds no signature anyone could vouch for.
    if (!this.correct(leader) || a.batch.length === 0) return;
    const digest = createHash('sha256').update(a.batch).digest('hex');
    if (!this.cut[leader]!.has(`${a.view}:${digest}`))
      this.violation(
        `freshness: replica ${node.id} delivered order ${a.order} as fresh in view ${a.view}, but leader ${leader} never cut that batch in that view`,
      );
  }

  private execute(node: SimNode, order: bigint, _view: bigint, batch: Uint8Array): void {
    if (order !== BigInt(node.ledger.length)) {
      this.violation(`replica ${node.id} executed order ${order} but its ledger has ${node.ledger.length}`);
      return;
    }
    const digest = createHash('sha256').update(batch).digest('hex');
    if (this.correct(node.id)) {
      const ref = this.agreed.get(order);
      if (ref === undefined) this.agreed.set(order, digest);
      else if (ref !== digest)
        this.violation(
          `agreement: order ${order} executed as ${digest.slice(0, 12)} at replica ${node.id}, ${ref.slice(0, 12)} elsewhere`,
        );
    }
    for (let i = 0; i + TX_BYTES <= batch.length; i += TX_BYTES) {
      const id = validTxId(batch.subarray(i, i + TX_BYTES));
      if (id === null) continue;
      if (!this.submitted.has(id))
        this.violation(`validity: replica ${node.id} executed unsubmitted tx ${id}`);
      node.executedTx.add(id);
      node.mempool.delete(id);
    }
    const prev = node.ledger[node.ledger.length - 1]?.state ?? new Uint8Array(32);
    const state = new Uint8Array(createHash('sha256').update(prev).update(digest).digest());
    node.ledger.push({ batch, digest, state });
    const blockHash = new Uint8Array(createHash('sha256').update('block').update(state).digest());
    this.step(node, { type: 'executed', order, stateDigest: state, blockHash });
  }

  /** Fetches blocks from a peer whose state digest matches the f+1-certified checkpoint. */
  private retryTransfer(node: SimNode): void {
    const t = node.transfer;
    if (t === null || node.replica === null) return;
    const to = Number(t.toOrder);
    if (node.ledger.length > to) {
      node.transfer = null;
      this.step(node, { type: 'state-transfer-done', upToOrder: t.toOrder });
      return;
    }
    for (const peer of this.nodes) {
      const entry = peer.ledger[to];
      if (peer === node || entry === undefined) continue;
      if (!Buffer.from(entry.state).equals(Buffer.from(t.checkpoint.stateDigest))) continue;
      for (let o = node.ledger.length; o <= to; o++) {
        const e = peer.ledger[o]!;
        const ref = this.agreed.get(BigInt(o));
        if (this.correct(node.id) && ref !== undefined && ref !== e.digest) {
          this.violation(`state transfer brought a different batch at ${o}`);
        }
        node.ledger.push(e);
        for (let i = 0; i + TX_BYTES <= e.batch.length; i += TX_BYTES) {
          const id = validTxId(e.batch.subarray(i, i + TX_BYTES));
          if (id !== null) {
            node.executedTx.add(id);
            node.mempool.delete(id);
          }
        }
      }
      this.stateTransfers++;
      node.transfer = null;
      this.step(node, { type: 'state-transfer-done', upToOrder: t.toOrder });
      return;
    }
  }

  // ---------------------------------------------------------------- invariants

  /** Checked after every step; agreement and validity are also checked at each execution. */
  private checkStep(): void {
    for (const node of this.nodes) {
      if (!this.correct(node.id) || node.replica === null) continue;
      const expect = BigInt(node.ledger.length);
      const got = node.replica.coordinator.executedNext;
      if (node.transfer === null && got !== expect) {
        this.violation(`replica ${node.id}: core will execute ${got} next but ledger has ${expect}`);
      }
    }
  }

  private checkLiveness(endMs: number): void {
    const deadline = endMs - (this.o.livenessMs * 2) / 3;
    for (const node of this.nodes) {
      if (!this.correct(node.id)) continue;
      let missing = 0;
      let example = -1;
      for (const [id, at] of this.submitted) {
        if (at <= deadline && !node.executedTx.has(id)) {
          missing++;
          example = id;
        }
      }
      if (missing > 0 && process.env['SIM_DEBUG']) {
        for (const nd of this.nodes) {
          console.error(
            `  node ${nd.id} ledger ${nd.ledger.length} exec ${nd.replica?.coordinator.executedNext} transfer ${nd.transfer?.toOrder}`,
          );
          for (const p of nd.replica?.pillars ?? []) console.error(`    ${p.describe()}`);
        }
      }
      if (missing > 0) {
        this.violation(
          `liveness: replica ${node.id} has not executed ${missing} txs (e.g. ${example}) by t=${endMs}; view ${node.replica?.pillars[0]?.currentView}`,
        );
      }
    }
  }
}

export function runSeed(o: SimOptions): SimResult {
  return new Simulation(o).run();
}

/** The seed grid CI runs: cycles n over 3, 5, 7 and P over 1, 2, 4. */
export function gridCase(seed: number): { n: number; pillars: number } {
  const ns = [3, 5, 7];
  const ps = [1, 2, 4];
  return { n: ns[seed % 3]!, pillars: ps[Math.floor(seed / 3) % 3]! };
}

export function replayCommand(r: { seed: number; n: number; pillars: number }, byzantine: boolean): string {
  return `npm run sim -- --seeds 1 --seed ${r.seed} --n ${r.n} --pillars ${r.pillars}${byzantine ? ' --byzantine' : ''}`;
}
