// One validator: the wiring of consensus, ledger, mempool, replica network,
// discovery, state transfer and the API. Control flow lives here, in one event loop
// of our own: events go into the consensus core (`Replica.step`), the actions it
// returns are performed in order by `drainActions`, which writes consensus state
// durably before any network action that follows it (the etcd Ready rule), hands
// committed batches to the executor in order, and sends the rest. Blocks are signed
// after they are written; f+1 signatures form a block's commit certificate, and one this
// validator lacks is fetched from its peers (node/cert-repair.ts).
import { performance } from 'node:perf_hooks';
import type { Registry } from 'prom-client';
import type {
  NodePort,
  NodeStatus,
  PeerInfo,
  SubmitOutcome,
  TxLocation,
  TxStatus,
  ValidatorInfo,
} from '../api/node-port.js';
import {
  type Action,
  AheadWrites,
  type ConsensusConfig,
  faults,
  leaderOf,
  messageBytesMax,
  type PersistDelta,
  Replica,
  type StableProof,
} from '../consensus/index.js';
import { encodeBatch } from '../ledger/batch.js';
import {
  type Block,
  blockHash,
  type CommitCertificate,
  type CommitSignature,
  commitSigningBytes,
  decodeBlock,
  decodeCommitCertificate,
  encodeBlock,
  encodeCommitCertificate,
  signCommit,
} from '../ledger/block.js';
import { bytesEqual, fromHex, toHex } from '../ledger/codec/binary.js';
import { type ExecutedBlock, type ExecutionStarted, Executor } from '../ledger/executor.js';
import { verify } from '../ledger/keys.js';
import type { LedgerStore, MetaRecord } from '../ledger/store.js';
import {
  CERT_HEIGHTS_SERVED_PER_SEC,
  CERT_REQUESTS_SERVED_PER_SEC,
  CertRepair,
  type CertRepairOptions,
  CertServeBudget,
  checkRepairedCertificate,
  trimmedCertificate,
} from './cert-repair.js';
import type { ChainSpec } from './chain-spec.js';
import type { Logger } from './logging.js';
import { type IntakeTx, Mempool } from './mempool.js';
import type { NodeMetrics } from './metrics.js';
import { ConsensusPersistence, type EncodedRecords } from './persist.js';
import {
  type PillarRoleView,
  type PillarWorkerError,
  type RefusalReason,
  ThreadedReplica,
} from './pillar-threads.js';
import { decodeProposal, encodeProposal, PROPOSAL_OVERHEAD_BYTES } from './proposal.js';
import type { ReplicaNetwork } from './replicas.js';
import { submitBatch } from './submit-batch.js';
import { checkPrepareTimestamp } from './timestamp-guard.js';
import { highestVouched } from './transfer-vouch.js';
import { VOUCH_DEFAULTS, VouchedTxs } from './vouched-txs.js';
import { decodeWire, encodeWire, GOSSIP_TXS_MAX, type WireLimits, type WireMessage } from './wire.js';

export interface ValidatorOptions {
  spec: ChainSpec;
  selfId: number;
  secretKey: Uint8Array;
  store: LedgerStore;
  network: ReplicaNetwork;
  log: Logger;
  metrics: NodeMetrics;
  mempool: { txCountMax: number; bytesMax: number };
  /**
   * Holding gossip the leader's batch will vouch for (default VOUCH_DEFAULTS; only with f = 1,
   * where a gossiping follower and the leader are the f + 1 = 2 vouchers).
   */
  vouch?: Partial<typeof VOUCH_DEFAULTS>;
  batch: {
    delayMs: number;
    inflightMax: number;
  };
  blocksPerRequest: number;
  /** Block requests served at once for one peer (a Byzantine peer cannot queue unbounded reads). */
  servingPerPeerMax?: number;
  /** Tick period of the consensus core's timers, ms (default: a quarter of retransmitMs, 1-25 ms). */
  tickMs?: number;
  /**
   * Called once when the validator stops itself on an error it cannot continue past (a
   * failed write, a worker crash, a diverged state). `hybster start` exits with code 1, so a
   * supervisor restarts it: a full disk is then retried from the durable state.
   */
  onFatal?: (reason: string) => void;
  /** auto (default): pillars in worker threads when P > 1; off: all in this thread. */
  pillarThreads?: 'auto' | 'off';
  /**
   * Largest proposal (bytes) whose block a follower executes before its COMMIT leaves, to
   * write its consensus state in the block's batch (default FUSED_BATCH_BYTES_MAX; 0: never).
   */
  fusedWriteBatchBytesMax?: number;
  /**
   * A leader's PREPARE may leave before its write is durable (consensus/ahead-writes.ts; one
   * pillar in this thread only). Default false (config batch.sendAhead).
   */
  sendAhead?: boolean;
  /** Bounds of the repair of missing commit certificates (default CERT_REPAIR_DEFAULTS). */
  certRepair?: Partial<CertRepairOptions>;
  /**
   * certs-requests served per peer and second (default CERT_REQUESTS_SERVED_PER_SEC); more
   * are dropped. An honest peer has one outstanding and sends one every 200 ms at most.
   */
  certRequestsServedPerSecMax?: number;
  /**
   * Heights looked up for certs-requests per peer and second (default
   * CERT_HEIGHTS_SERVED_PER_SEC); the rest of a request is left unanswered.
   */
  certHeightsServedPerSecMax?: number;
}

/** What the validator uses of a replica, in-thread or with pillars in workers. */
interface ConsensusReplica {
  readonly pillars: readonly PillarRoleView[];
  step(ev: Parameters<Replica['step']>[0]): Action[];
}

interface Waiter {
  resolve: (loc: TxLocation | null) => void;
  timer: NodeJS.Timeout;
}

interface Transfer {
  toOrder: bigint;
  checkpoint: StableProof | null;
  peerIndex: number;
  requestId: number;
  timer: NodeJS.Timeout | null;
}

const SIG_HEIGHTS_AHEAD_MAX = 1024n;
const LATENCY_SAMPLES_MAX = 8192;
const LATENCY_WINDOW_MS = 10_000;
const REGOSSIP_AGE_MS = 500;
/** A tx waiting this many request timeouts while others commit makes the leader suspect. */
const CENSORSHIP_TIMEOUTS = 5;
const REGOSSIP_MAX = 512;
const TRANSFER_TIMEOUT_MS = 3000;
const GOSSIP_BATCH_MAX = 512;
/**
 * Longest a leader holds its clients' txs back from gossip while its cuts propose them (see
 * gossip): about one consensus round under load. Followers then learn those txs from the
 * PREPARE, or from the flush at the end of the hold, not within the event-loop turn as
 * before: a leader that crashes inside the hold loses the held txs whose PREPARE reached no
 * follower. An async 202 only ever meant "in this validator's mempool" (docs/api.md); a
 * client that needs the tx committed waits for it (commit mode) or resubmits.
 */
const LEADER_GOSSIP_HOLD_MS = 100;
/**
 * A follower forwards a submission to the leader before verifying it (see forward) only while
 * its mempool holds at most this many txs and the submission has at most FORWARD_TXS_MAX:
 * low load, where each tx is its own block and the verification is on its commit's path.
 * Under load txs take the batched gossip as before.
 */
const FORWARD_POOL_MAX = 16;
const FORWARD_TXS_MAX = 8;
/** Size of an encoded ledger batch without txs; a longer one carries txs. */
const EMPTY_LEDGER_BATCH_BYTES = encodeBatch({ timestampMs: 0n, txs: [] }).length;
/**
 * About 50 transfers. The fused write saves a follower one synced write (0.3-2 ms here) but
 * delays its COMMIT, and so the leader's commit, by the block's execution (~20-50 us a tx):
 * worth it for the small batches of low load, not for a burst's large batch.
 */
export const FUSED_BATCH_BYTES_MAX = 8 * 1024;

/**
 * The clock of every interval this process measures against its own earlier readings:
 * commit latencies (a tx's mempool entry to its block), tx ages, the request timer's
 * progress mark and the re-gossip marks. Monotonic with sub-millisecond resolution:
 * latencies near the 2 ms goal were differences of Date.now()'s whole milliseconds, and a
 * wall clock anchored to Date.now() stepped back ~1 ms when it re-anchored. Its readings
 * mean nothing outside this process; wall time (block timestamps, logs) stays Date.now().
 */
export const monotonicMs = (): number => performance.now();

export class Validator implements NodePort {
  readonly chainId: string;
  readonly selfId: number;
  readonly genesis: { document: unknown; hash: Uint8Array };
  readonly validators: readonly ValidatorInfo[];
  readonly f: number;
  readonly store: LedgerStore;
  readonly metrics: Registry;

  private readonly o: ValidatorOptions;
  private readonly config: ConsensusConfig;
  private readonly log: Logger;
  private readonly m: NodeMetrics;
  private readonly net: ReplicaNetwork;
  private readonly pool: Mempool;
  /** Gossiped txs held unverified (node/vouched-txs.ts); null when vouching is off. */
  private readonly vouched: VouchedTxs | null;
  private readonly persistence: ConsensusPersistence;
  private readonly fusedBatchBytesMax: number;
  private readonly wireLimits: WireLimits;
  private replica!: ConsensusReplica;
  /** Set when the pillars run in worker threads. */
  private threaded: ThreadedReplica | null = null;
  /** Threaded: proposals handed to a pillar whose outcome has not arrived, by batch object. */
  private readonly proposing = new Map<Uint8Array, ReturnType<Mempool['takeBatch']>>();
  private executor!: Executor;

  /** Actions waiting to be performed, in the order the core produced them. */
  private actions: Action[] = [];
  private draining = false;
  private drainDone: Promise<void> = Promise.resolve();

  private view = 0n;
  private viewLeader = 0;
  private leading = false;
  /** When a peer's forged gossip was last logged (noteForgedGossip). */
  private readonly forgedGossipLoggedMs = new Map<number, number>();
  private inViewChange = false;
  private inflightBatches = 0;
  private cutTimer: NodeJS.Timeout | NodeJS.Immediate | null = null;
  private tickTimer: NodeJS.Timeout | null = null;
  private housekeepingTimer: NodeJS.Timeout | null = null;
  private readonly startMs = performance.now();

  private readonly waiters = new Map<string, Set<Waiter>>();
  private readonly blockListeners = new Set<(b: Block) => void>();
  /** height -> validator -> verified signature of our own block hash, for certificates not complete yet. */
  private readonly sigs = new Map<bigint, Map<number, Uint8Array>>();
  /** height -> validator -> a peer's block signature not verified yet: it came before our own block (see onBlockSig). */
  private readonly pendingSigs = new Map<bigint, Map<number, { hash: Uint8Array; signature: Uint8Array }>>();
  private readonly ownHashes = new Map<bigint, Uint8Array>();
  /**
   * height -> peers whose block signature there was refused (another hash, or not verifying).
   * An honest validator signs a height once, so later ones from that peer are dropped
   * unverified and unlogged: a faulty peer cannot buy a verification or a log line per message.
   */
  private readonly refusedSigs = new Map<bigint, Set<number>>();
  private readonly certified = new Set<bigint>();
  /** Commit latencies of this validator's own txs over the last LATENCY_WINDOW_MS (status summary). */
  private readonly latencies: { atMs: number; ms: number }[] = [];
  private gossipQueue: Uint8Array[] = [];
  /** Txs forwarded unverified (their bytes) -> the leader they went to; their gossip skips it. */
  private forwardedTo = new WeakMap<Uint8Array, number>();
  /** Whether any tx was forwarded since the last gossip flush (else the flush looks none up). */
  private forwardedSinceFlush = false;
  /**
   * The peer that last sent us txs (forward or gossip). A leader sends it its broadcasts
   * first: at low load the batch a PREPARE carries is that follower's client's tx, and the
   * other follower's clients wait for nothing in it (traced: on two cores the second
   * recipient ran 0.3-0.5 ms later).
   */
  private lastTxsFrom: number | undefined = undefined;
  private gossipScheduled = false;
  /** Set while a leader holds its gossip for its cuts (see gossip). */
  private gossipTimer: NodeJS.Timeout | null = null;
  /** Leader: txs (the held bytes objects) proposed while its gossip was held; not gossiped. */
  private proposedUngossiped = new Set<Uint8Array>();
  private transfer: Transfer | null = null;
  private nextRequestId = 1;
  private readonly peerHeights = new Map<number, bigint>();
  private readonly servingBlocks = new Map<number, number>();
  private readonly peerViews = new Map<number, bigint>();
  /** Consecutive housekeeping rounds in which a peer reported a higher view (see housekeeping). */
  private behindViewRounds = 0;
  /** When the last block with transactions was written (the request timer's progress mark; monotonicMs). */
  private lastProgressMs = monotonicMs();
  /** When the newest tx of this mempool that a written block contained had entered it (0: none yet). */
  private orderedEnteredMs = 0;
  /** When orderedEnteredMs last moved (monotonicMs; never yet: -Infinity): the leader is seen ordering this mempool's txs. */
  private orderedAtMs = Number.NEGATIVE_INFINITY;
  private clockSkewWarnedView: bigint | null = null;
  private stopping = false;
  private failed = false;
  /** Which consensus-state writes in flight allow a leader's PREPARE to leave (see drainActions). */
  private readonly aheadWrites = new AheadWrites();
  /** The consensus-state writes, chained so they land in the order issued. */
  private stateWrites: Promise<void> = Promise.resolve();
  /** The last consensus-state delta written (either way), for the clean header on stop. */
  private lastStateWritten: PersistDelta | null = null;
  private started = false;
  private writing: Promise<unknown> = Promise.resolve();
  /** The blocks-responses being handled, one after another (see the 'blocks-response' case). */
  private receivingBlocks: Promise<void> = Promise.resolve();
  /** Missing commit certificates of our own blocks and the requests for them (set in start). */
  private certRepair!: CertRepair;
  /** The certs-responses being handled, one after another (each reads blocks and verifies). */
  private receivingCerts: Promise<void> = Promise.resolve();
  /** What is left of each peer's certs-request budget in the current second (see serveCerts). */
  private readonly certServeBudget: CertServeBudget;

  constructor(o: ValidatorOptions) {
    this.o = o;
    this.certServeBudget = new CertServeBudget({
      requestsPerWindowMax: o.certRequestsServedPerSecMax ?? CERT_REQUESTS_SERVED_PER_SEC,
      heightsPerWindowMax: o.certHeightsServedPerSecMax ?? CERT_HEIGHTS_SERVED_PER_SEC,
      windowMs: 1000,
    });
    this.chainId = o.spec.chainId;
    this.selfId = o.selfId;
    this.genesis = { document: o.spec.document, hash: o.spec.hash };
    this.validators = o.spec.validators.map((v) => ({
      id: v.id,
      name: v.name,
      publicKey: v.publicKey,
      ...(v.peerId ? { peerId: v.peerId } : {}),
      endpoints: v.endpoints,
    }));
    this.config = o.spec.consensus;
    this.f = faults(this.config);
    this.store = o.store;
    this.metrics = o.metrics.registry;
    this.m = o.metrics;
    this.log = o.log;
    this.net = o.network;
    this.wireLimits = { consensusBytesMax: messageBytesMax(this.config), blockBytesMax: 64 * 1024 * 1024 };
    this.pool = new Mempool(
      this.chainId,
      { txCountMax: o.mempool.txCountMax, bytesMax: o.mempool.bytesMax, nonceAheadMax: 10_000 },
      (hex, from) => this.store.cachedNonce(hex) ?? this.store.getAccount(from).then((a) => a.nonce),
      monotonicMs,
    );
    this.persistence = new ConsensusPersistence(o.store, this.config);
    const vouch = { ...VOUCH_DEFAULTS, ...o.vouch };
    // Two vouchers besides this validator must include a correct one: f + 1 = 2, so f = 1.
    this.vouched = vouch.enabled && this.f === 1 ? new VouchedTxs(this.selfId, vouch) : null;
    this.fusedBatchBytesMax = o.fusedWriteBatchBytesMax ?? FUSED_BATCH_BYTES_MAX;
  }

  /** Restores consensus state, starts timers. The network must already be listening. */
  async start(): Promise<void> {
    const snapshots = await this.persistence.load();
    if (snapshots.some((s) => s?.sentAhead === true))
      this.log.warn(
        'restarted from consensus state written while sending ahead (batch.sendAhead): leaving the view; ' +
          'this validator cannot help form a view change until it has certified in a later one',
      );
    const executedNext = this.store.latestHeight();
    const replicaOptions = {
      config: this.config,
      validator: this.selfId,
      trinxKey: this.o.spec.trinxKey,
      snapshots,
      executedNext,
      // Per pillar, the latest durable header decides (AheadWrites): one pillar, one chain.
      sendAhead: (this.o.sendAhead ?? false) && this.config.pillars === 1,
    };
    // One pillar gains nothing from a worker (the coordinator would wait on it anyway).
    if (this.config.pillars > 1 && (this.o.pillarThreads ?? 'auto') === 'auto') {
      const t = await ThreadedReplica.start(replicaOptions);
      t.onActions((actions) => this.enqueueActions(actions));
      t.onProposalSettled((batch, refused) => this.onProposalSettled(batch, refused));
      t.onError((e) => this.onPillarWorkerFailed(e));
      this.threaded = t;
      this.replica = t;
    } else {
      this.replica = new Replica(replicaOptions);
    }
    this.m.pillarThreads.set(this.threaded?.threads ?? 0);
    this.executor = new Executor({
      store: this.store,
      chainId: this.chainId,
      batchLimits: { txsMax: this.o.spec.batchTxsMax, bytesMax: this.config.batchBytesMax },
      // The mempool verified every tx it admitted; execution verifies only the others, but
      // for a held gossiped tx that the batch's leader vouches for as well.
      signatureVerified: (hashHex, vouchedBy) => this.signatureKnown(hashHex, vouchedBy),
    });
    const tip = this.store.latestTip();
    this.m.height.set(Number(tip.height));
    this.certRepair = new CertRepair(tip.height, monotonicMs(), this.o.certRepair, (h) => {
      this.m.certificatesUnrepairable.inc();
      this.log.warn({ height: Number(h) }, 'certificate repair: no peer gave the certificate; given up');
    });
    const restoredView = snapshots.reduce((v, s) => (s && s.view > v ? s.view : v), 0n);
    this.setView(restoredView);
    this.started = true;
    this.refreshRole();
    // The core's shortest timer is the retransmit period (100 ms by default); a quarter of it
    // keeps timeouts within 25% while each validator wakes 40 times a second, not 200
    // (a 5 ms tick measured ~1% of a core per idle validator, a fifth of its idle CPU).
    const tickMs = this.o.tickMs ?? Math.max(1, Math.min(25, Math.floor(this.config.retransmitMs / 4)));
    this.tickTimer = setInterval(
      () => this.step({ type: 'tick', nowMs: performance.now() - this.startMs }),
      tickMs,
    );
    this.housekeepingTimer = setInterval(() => this.housekeeping(), 100);
    this.step({ type: 'tick', nowMs: performance.now() - this.startMs });
    this.log.info(
      {
        height: Number(tip.height),
        view: Number(restoredView),
        pillars: this.config.pillars,
        n: this.config.n,
      },
      'consensus started',
    );
  }

  // ------------------------------------------------------------------ the core loop

  /** Feeds one event to the core; returns the actions (already queued for performing). */
  private step(ev: Parameters<Replica['step']>[0]): readonly Action[] {
    if (!this.started || this.stopping) return [];
    const out = this.replica.step(ev);
    this.enqueueActions(out);
    return out;
  }

  /** Queues coordinated actions for performing: those step returns, and (threaded) those that arrive later. */
  private enqueueActions(out: readonly Action[]): void {
    if (!this.started || this.stopping) return;
    this.refreshRole();
    if (out.length === 0) return;
    for (const a of out) this.actions.push(a);
    this.kick();
  }

  /** Threaded: a pillar took or refused a proposal after cut() handed it over. */
  private onProposalSettled(batch: Uint8Array, refused: RefusalReason | null): void {
    const entries = this.proposing.get(batch);
    this.proposing.delete(batch);
    if (refused === null || entries === undefined) return;
    // Only this batch's txs go back; others are in proposals the core accepted.
    this.inflightBatches = Math.max(0, this.inflightBatches - 1);
    this.pool.release(entries);
    // No PREPARE carries them now: a held gossip flush must send them after all.
    for (const e of entries) this.proposedUngossiped.delete(e.bytes);
    this.log.debug({ reason: refused, txs: entries.length }, 'proposal refused');
  }

  /** A pillar worker died: its state is gone with it, so the node must not go on. */
  private onPillarWorkerFailed(e: PillarWorkerError): void {
    this.fail('pillar worker failed', { pillar: e.pillar, err: e.message });
  }

  /**
   * Stops consensus for good and tells the owner. Persisted state is crash-safe (the etcd
   * Ready rule), so exiting is always safe; sitting there with consensus stopped while the
   * API answers is not useful to anyone.
   */
  private fail(what: string, detail: Record<string, unknown>): void {
    if (this.failed) return;
    this.failed = true;
    this.log.fatal(detail, `${what}; stopping`);
    this.stopping = true;
    process.exitCode = 1;
    this.o.onFatal?.(what);
  }

  private kick(): void {
    if (this.draining) return;
    this.draining = true;
    this.drainDone = this.drainActions().finally(() => {
      this.draining = false;
      if (this.actions.length > 0 && !this.stopping) this.kick();
    });
  }

  /**
   * Performs queued actions in order. All persists among the queued actions are written
   * (folded, durably) before any of them runs: writing state earlier than needed is
   * always safe, sending before it is written never is. At low load a group that also
   * delivers writes that state in its block's batch instead (drainFused).
   */
  private async drainActions(): Promise<void> {
    while (this.actions.length > 0) {
      const batch = this.actions;
      this.actions = [];
      const deltas: PersistDelta[] = [];
      for (const a of batch) if (a.type === 'persist') deltas.push(a.delta);
      const fused = deltas.length > 0 ? this.fusedDelivery(batch) : null;
      if (fused !== null) {
        if (!(await this.drainFused(batch, deltas, fused))) return;
        continue;
      }
      if (deltas.length > 0) {
        const ahead = batch.every((a) => a.type !== 'persist' || a.ahead === true);
        const goAhead = this.aheadWrites.mayGoAhead(ahead);
        const write = this.writeConsensusState(deltas);
        if (goAhead) this.m.preparesSentAhead.inc();
        else {
          // Without durable counters no message may leave: writeConsensusState stops the node
          // loudly on a failure rather than risk reuse.
          if (!(await write)) return;
        }
      }
      // Messages go out before a block is executed: the leader waits for a follower's COMMIT,
      // and the block's synchronous work would otherwise hold it until the end of the turn
      // (traced at 50 tx/s: 0.3-1 ms on the loaded machine, on both transports).
      let unflushed = false;
      for (const a of batch) {
        if (a.type === 'deliver' && unflushed) {
          this.net.flush();
          unflushed = false;
        }
        if (a.type === 'send' || a.type === 'broadcast') unflushed = true;
        this.perform(a);
      }
    }
  }

  /**
   * Issues a synced write of these deltas after every earlier one (writes land in order, which
   * AheadWrites relies on) and resolves true once it is durable, false (the node failed) if it
   * failed.
   */
  private writeConsensusState(deltas: readonly PersistDelta[]): Promise<boolean> {
    const sentAhead = (deltas[deltas.length - 1] as PersistDelta).sentAhead === true;
    this.aheadWrites.issued(sentAhead);
    const done = this.stateWrites.then(async () => {
      try {
        await this.persistence.write(deltas);
      } catch (e) {
        this.fail('consensus state write failed', { err: (e as Error).message });
        return false;
      }
      this.aheadWrites.durable(sentAhead);
      this.lastStateWritten = deltas[deltas.length - 1] as PersistDelta;
      return true;
    });
    // A failed write fails the node; later writes still run in order (and fail or not).
    this.stateWrites = done.then(() => undefined);
    return done;
  }

  /**
   * On a clean stop: every write is durable and nothing was sent since, so the last header
   * is rewritten without `sentAhead` and the restart needs no forgetting (PillarCore.restore).
   */
  private async settleStateWrites(): Promise<void> {
    await this.stateWrites;
    const last = this.lastStateWritten;
    if (last === null || last.sentAhead !== true || this.failed) return;
    await this.persistence.write([{ ...last, putEntries: [], sentAhead: false }]);
  }

  /**
   * The deliver action of a group whose consensus state may be written in its block's batch,
   * or null. Only at low load: the executor is idle and the batch small, so waiting for this
   * one block delays the group's messages by a short execution alone (under load they would
   * wait behind a backlog, and the leader waits for them). Only the plain case: one pillar in
   * this thread, one delivery, no view change or state transfer in flight or in the group.
   */
  private fusedDelivery(batch: readonly Action[]): Extract<Action, { type: 'deliver' }> | null {
    if (this.threaded !== null || this.config.pillars !== 1 || this.transfer !== null) return null;
    // A leader's group may hold its next PREPARE, which must not wait for a block; during a
    // view change its messages must not either.
    if (this.leading || this.inViewChange) return null;
    if (!this.executor.idle()) return null;
    let deliver: Extract<Action, { type: 'deliver' }> | null = null;
    for (const a of batch) {
      switch (a.type) {
        case 'deliver':
          if (deliver !== null) return null;
          deliver = a;
          break;
        case 'persist':
        case 'send':
        case 'broadcast':
        case 'reject':
        case 'status':
          break;
        default:
          return null;
      }
    }
    // Every such block, not only those holding this follower's own clients' txs: fusing only
    // those made the leader's node latency ~10% lower but every client's answer later
    // (traced A/B, docs/node.md): a commit-mode answer waits for the certificate, and a
    // fused follower's block signature leaves right after its COMMIT, not a second fsync later.
    if (deliver === null || deliver.batch.length > this.fusedBatchBytesMax) return null;
    return deliver;
  }

  /**
   * Performs a group whose one delivery's block carries the group's consensus records in its
   * own atomic synced batch: on a follower at low load, the PREPARE's entry and the block
   * cost one fsync instead of two in sequence. The group's messages (the COMMIT) leave once
   * that batch is durable, as they would after the consensus write alone; a crash before
   * leaves neither record nor block, and nothing was sent that depends on them. Returns
   * false when the node failed.
   */
  private async drainFused(
    batch: readonly Action[],
    deltas: readonly PersistDelta[],
    d: Extract<Action, { type: 'deliver' }>,
  ): Promise<boolean> {
    let executed: ExecutedBlock;
    let writtenMs: number;
    let encoded: EncodedRecords | null = null;
    try {
      encoded = this.persistence.encode(deltas);
      const run = this.startDelivery(d.order, d.view, d.batch, d.fresh, encoded.records);
      this.writing = run.executed.catch(() => undefined);
      executed = await run.executed;
      writtenMs = monotonicMs();
    } catch (e) {
      // Consensus state and block are written together or not at all: without them no
      // message of the group may leave.
      this.fail('consensus state and block write failed', {
        order: Number(d.order),
        err: (e as Error).message,
      });
      return false;
    } finally {
      encoded?.done();
    }
    this.lastStateWritten = deltas[deltas.length - 1] ?? null;
    // The COMMIT first: the leader waits for it, and afterBlock signs the block. The block's
    // commit time is when it became durable, as afterBlock would have seen it at once.
    for (const a of batch) if (a.type !== 'deliver') this.perform(a);
    this.net.flush();
    this.afterBlock(executed, { writtenMs });
    return true;
  }

  private perform(a: Action): void {
    switch (a.type) {
      case 'persist':
        return;
      case 'send':
        this.net.send(a.to, encodeWire({ type: 'consensus', bytes: a.bytes }));
        return;
      case 'broadcast':
        this.net.broadcast(
          encodeWire({ type: 'consensus', bytes: a.bytes }),
          this.leading ? this.lastTxsFrom : undefined,
        );
        return;
      case 'deliver':
        this.deliver(a.order, a.view, a.batch, a.fresh);
        return;
      case 'view-changed':
        if (a.pillar === 0) this.onViewChanged(a.view, a.leader);
        return;
      case 'view-change-started':
        this.log.warn({ toView: Number(a.toView), pillar: a.pillar }, 'view change started');
        return;
      case 'need-state-transfer':
        this.startTransfer(a.toOrder, a.checkpoint);
        return;
      case 'reject':
        this.log.debug({ from: a.from, reason: a.reason }, 'consensus message rejected');
        return;
      case 'proposal-refused':
        // Handled where the proposal is made (cut), which knows the batch's txs.
        return;
      case 'status':
        return;
    }
  }

  /** The coordinator keeps pillar status to itself; read the role from the pillars. */
  private refreshRole(): void {
    const p0 = this.replica.pillars[0];
    if (!p0) return;
    const leading = this.replica.pillars.every((p) => p.isLeading());
    if (p0.currentView !== this.view) {
      this.setView(p0.currentView);
      // A new view gets a full request timeout before anyone is suspected again.
      this.pool.resetAges();
      this.lastProgressMs = monotonicMs();
    }
    this.inViewChange = this.replica.pillars.some((p) => p.inViewChange);
    if (leading !== this.leading) {
      this.leading = leading;
      if (leading) this.log.info({ view: Number(this.view) }, 'leading this view');
    }
    // A leader proposes from its mempool, and a view change may make this validator one:
    // what it holds unverified goes there now.
    if ((this.leading || this.inViewChange) && this.vouched !== null && this.vouched.size > 0)
      this.releaseVouched(true);
    if (this.leading) this.scheduleCut();
  }

  private setView(view: bigint): void {
    this.view = view;
    this.viewLeader = leaderOf(this.config, view);
    this.m.view.set(Number(view));
  }

  private onViewChanged(view: bigint, leader: number): void {
    this.setView(view);
    this.m.viewChanges.inc();
    this.inflightBatches = 0;
    const released = this.pool.releaseInflight();
    this.pool.resetAges();
    this.lastProgressMs = monotonicMs();
    this.log.warn({ view: Number(view), leader, released }, 'entered new view');
    // Followers hand the new leader what they hold, in case its gossip was lost.
    if (leader !== this.selfId) this.regossip(leader, 0);
    this.scheduleCut();
  }

  // ------------------------------------------------------------------ leader: cutting batches

  /**
   * Whether the leader should propose now. Full batches go at once, pipelined up to
   * inflightMax. A partial batch goes only when nothing is in flight: at low load a tx then
   * waits one consensus round, and under load it waits for the next delivery while its batch
   * grows. Every batch costs each replica the same synced writes whatever its size, so
   * fewer, fuller batches carry more txs per fsync (tiny pipelined batches measured several
   * times slower here: the fsyncs, not the CPU, were the limit).
   */
  private cutReady(): boolean {
    const pending = this.pool.pendingCount;
    if (pending === 0 || this.inflightBatches >= this.o.batch.inflightMax) return false;
    return pending >= this.o.spec.batchTxsMax || this.inflightBatches === 0;
  }

  private scheduleCut(): void {
    if (!this.leading || this.cutTimer !== null || this.stopping) return;
    if (!this.cutReady()) return;
    const full = this.pool.pendingCount >= this.o.spec.batchTxsMax;
    const delay = full ? 0 : this.o.batch.delayMs;
    const run = (): void => {
      this.cutTimer = null;
      this.cut();
    };
    // No delay: still after the current I/O callbacks, so txs that arrived together share a batch.
    this.cutTimer = delay > 0 ? setTimeout(run, delay) : setImmediate(run);
  }

  private cancelCut(): void {
    const t = this.cutTimer;
    this.cutTimer = null;
    if (t === null) return;
    if ('hasRef' in t && 'refresh' in t) clearTimeout(t);
    else clearImmediate(t as NodeJS.Immediate);
  }

  private cut(): void {
    if (!this.leading || this.stopping) return;
    while (this.cutReady()) {
      const entries = this.pool.takeBatch(
        this.o.spec.batchTxsMax,
        this.config.batchBytesMax - PROPOSAL_OVERHEAD_BYTES - 64,
      );
      if (entries.length === 0) break;
      const batch = encodeProposal({
        view: this.view,
        proposer: this.selfId,
        batch: encodeBatch({ timestampMs: BigInt(Date.now()), txs: entries.map((e) => e.bytes) }),
      });
      const out = this.step({ type: 'propose', batch });
      const refused = out.find((a) => a.type === 'proposal-refused');
      if (refused) {
        // Only this batch's txs go back; others are in proposals the core accepted.
        this.pool.release(entries);
        this.log.debug({ reason: refused.reason, txs: entries.length }, 'proposal refused');
        break;
      }
      this.inflightBatches++;
      // Threaded: the pillar's answer comes later; a refusal then releases these txs.
      if (this.threaded !== null) this.proposing.set(batch, entries);
      if (this.gossipTimer !== null)
        for (const e of entries) if (e.local) this.proposedUngossiped.add(e.bytes);
      if (!this.leading) break;
    }
    // Every held tx is in a PREPARE now: nothing is left to gossip (others wait for the hold's end).
    const held = this.gossipTimer !== null;
    if (held && this.gossipQueue.every((tx) => this.proposedUngossiped.has(tx))) this.flushGossip();
  }

  // ------------------------------------------------------------------ execution

  private deliver(order: bigint, view: bigint, batch: Uint8Array, fresh: boolean): void {
    const run = this.startDelivery(order, view, batch, fresh);
    this.writing = run.executed.then(
      (executed) => this.afterBlock(executed),
      (e: unknown) => {
        this.fail('block execution failed', { order: Number(order), err: (e as Error).message });
      },
    );
  }

  /**
   * Hands a committed batch to the executor (with `meta`: records to write in its block's
   * batch) and does the bookkeeping of a delivery; the caller runs afterBlock once the
   * block is durable.
   */
  private startDelivery(
    order: bigint,
    view: bigint,
    batch: Uint8Array,
    fresh: boolean,
    meta?: readonly MetaRecord[],
  ): ExecutionStarted {
    if (leaderOf(this.config, view) === this.selfId) {
      this.inflightBatches = Math.max(0, this.inflightBatches - 1);
    }
    // View and proposer come from the proposal bytes, not from the view this replica
    // committed them in: every validator must build the same header.
    const p = decodeProposal(batch);
    // The request timer watches the leader: a committed batch with txs is its progress,
    // whatever this validator's disk then takes to write the block (under I/O contention a
    // large block took seconds here, and counting only written blocks made honest leaders
    // suspect).
    if (p.batch.length > EMPTY_LEDGER_BATCH_BYTES) this.lastProgressMs = monotonicMs();
    const run = this.executor.executeBatchDetailed({
      order,
      view: p.view,
      proposer: p.proposer,
      batch: p.batch,
      // The leader that certified the PREPARE cut this batch in its view: it vouches for the
      // signatures (whatever proposer the bytes name: only the core's certificate counts).
      ...(fresh ? { vouchedBy: leaderOf(this.config, view) } : {}),
      ...(meta !== undefined ? { meta } : {}),
    });
    // Committed: until afterBlock removes them, these txs must not go to the leader again by
    // re-gossip nor into a new leader's proposal (under load a follower re-sent such txs).
    this.pool.markOrdered(run.txHashesHex);
    // The executor asked about each tx synchronously: the held ones are decided.
    if (this.vouched !== null && this.vouched.forget(run.txHashesHex) > 0)
      this.m.vouchedHeld.set(this.vouched.size);
    this.scheduleCut();
    return run;
  }

  /** `writtenMs`: when the block became durable (monotonicMs), if that was not just now. */
  private afterBlock(
    executed: ExecutedBlock,
    opts: { transferred?: boolean; writtenMs?: number } = {},
  ): void {
    const { block, hash, txHashesHex: hashesHex } = executed;
    const h = block.header;
    this.m.height.set(Number(h.height));
    this.m.batchesCommitted.inc();
    this.m.txsCommitted.inc(block.txs.length);
    const nowMs = opts.writtenMs ?? monotonicMs();
    if (block.txs.length > 0) this.lastProgressMs = nowMs;
    const removed = this.pool.removeCommitted(hashesHex);
    for (const e of removed) {
      if (e.enteredMs > this.orderedEnteredMs) {
        this.orderedEnteredMs = e.enteredMs;
        this.orderedAtMs = nowMs;
      }
    }
    // Pending txs of these senders whose nonce is now used can never run (another tx with
    // that nonce won): drop them, or their request timer would suspect an honest leader.
    // Every removed tx's sender is among the block's senders (its bytes are in the block).
    void this.pruneStale(executed.sendersHex);
    for (const e of removed) {
      if (!e.local) continue;
      const ms = nowMs - e.enteredMs;
      this.m.commitLatency.observe(ms / 1000);
      this.recordLatency(ms);
    }
    for (let i = 0; i < hashesHex.length; i++) {
      const hex = hashesHex[i] as string;
      const result = block.results[i];
      const ws = this.waiters.get(hex);
      if (ws && result) {
        this.waiters.delete(hex);
        const loc: TxLocation = { height: h.height, index: i, result };
        for (const w of ws) {
          clearTimeout(w.timer);
          w.resolve(loc);
        }
      }
    }
    if (!opts.transferred) {
      // Tell the core (checkpoints) and sign the block for its commit certificate.
      this.step({ type: 'executed', order: h.order, stateDigest: h.stateDigest, blockHash: hash });
      this.ownHashes.set(h.height, hash);
      const sig = signCommit(h.height, hash, this.selfId, this.o.secretKey);
      this.net.broadcast(encodeWire({ type: 'block-sig', height: h.height, hash, signature: sig.signature }));
      this.addSignature(h.height, hash, this.selfId, sig.signature);
      this.verifyPendingSigs(h.height, hash);
    } else if (!this.certified.has(h.height)) {
      // A transferred block is ours too once re-executed to the vouched hash; its peers'
      // signatures (waiting, or still to come) can then form the certificate it came without.
      this.ownHashes.set(h.height, hash);
      this.verifyPendingSigs(h.height, hash);
    }
    for (const l of this.blockListeners) {
      try {
        l(block);
      } catch (e) {
        this.log.warn({ err: (e as Error).message }, 'block listener failed');
      }
    }
  }

  private async pruneStale(senders: Set<string>): Promise<void> {
    for (const hex of senders) {
      if (!this.pool.hasSender(hex)) continue;
      const nonce = this.store.cachedNonce(hex) ?? (await this.store.getAccount(fromHex(hex))).nonce;
      this.pool.pruneStale(hex, nonce);
    }
  }

  /** Adds a verified signature of our own block at `height` (hash `own`); f+1 form its certificate. */
  private addSignature(height: bigint, own: Uint8Array, validator: number, signature: Uint8Array): void {
    if (this.certified.has(height)) return;
    let m = this.sigs.get(height);
    if (!m) {
      m = new Map();
      this.sigs.set(height, m);
    }
    // Copied: a peer's signature is a view into its received frame (or an 8 KiB pool slab),
    // and the certificate it joins stays in the store's caches (see trimmedCertificate).
    m.set(validator, new Uint8Array(signature));
    if (m.size < this.f + 1) return;
    const signatures: CommitSignature[] = [...m.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([v, s]) => ({ validator: v, signature: s }));
    const cert: CommitCertificate = { height, blockHash: own, signatures };
    this.certified.add(height);
    this.sigs.delete(height);
    this.pendingSigs.delete(height);
    this.ownHashes.delete(height);
    // Verified: our own signature and peers' ones acceptSignature checked (the API trusts it).
    void this.store.putCommitCertificate(cert, { verified: true }).catch((e: Error) => {
      this.log.warn({ height: Number(height), err: e.message }, 'storing commit certificate failed');
    });
    // Bound the bookkeeping: far-behind heights can no longer matter.
    if (this.certified.size > 4096) {
      const min = height - 2048n;
      for (const h of this.certified) if (h < min) this.certified.delete(h);
    }
  }

  /**
   * A peer's block signature. One that comes before our own block at its height waits,
   * unverified, until that block is durable (verifyPendingSigs): only then can it join a
   * certificate, and only f of the n-1 peers' signatures are needed. At low load a leader
   * received both followers' signatures while its own block was being written and verified
   * both at once (an Ed25519 verification each, 120-220 us run cold), taking a core the
   * write's thread and the other validators wanted; the second was never used.
   */
  private onBlockSig(from: number, height: bigint, hash: Uint8Array, signature: Uint8Array): void {
    const tip = this.store.latestHeight();
    if (height + SIG_HEIGHTS_AHEAD_MAX < tip || height > tip + SIG_HEIGHTS_AHEAD_MAX) return;
    if (this.certified.has(height) || this.o.spec.validators[from] === undefined) return;
    if (this.refusedSigs.get(height)?.has(from)) return;
    const own = this.ownHashes.get(height);
    if (own !== undefined) {
      this.acceptSignature(height, own, from, hash, signature);
      return;
    }
    let pending = this.pendingSigs.get(height);
    if (!pending) {
      pending = new Map();
      this.pendingSigs.set(height, pending);
    }
    // One per validator and height (a repeat replaces it), so the map stays within n per height.
    pending.set(from, { hash, signature });
  }

  private refuseSig(height: bigint, from: number): void {
    let peers = this.refusedSigs.get(height);
    if (!peers) {
      peers = new Set();
      this.refusedSigs.set(height, peers);
    }
    peers.add(from);
  }

  /** Our own block at `height` is durable and signed: verifies waiting signatures until its certificate forms. */
  private verifyPendingSigs(height: bigint, own: Uint8Array): void {
    const pending = this.pendingSigs.get(height);
    if (pending === undefined) return;
    this.pendingSigs.delete(height);
    for (const [from, s] of pending) {
      if (this.certified.has(height)) return;
      this.acceptSignature(height, own, from, s.hash, s.signature);
    }
  }

  /** Verifies a peer's signature of the block at `height` and adds it if it signs our own hash `own`. */
  private acceptSignature(
    height: bigint,
    own: Uint8Array,
    from: number,
    hash: Uint8Array,
    signature: Uint8Array,
  ): void {
    // The replica channel authenticates `from`; a signature of another hash cannot join our
    // certificate whether it verifies or not, so it is not verified.
    if (!bytesEqual(own, hash)) {
      this.refuseSig(height, from);
      this.log.error({ height: Number(height), validator: from }, 'validator signed a different block hash');
      return;
    }
    // `from` is a genesis validator (onBlockSig checked it).
    const pk = this.o.spec.validators[from]!.publicKey;
    this.m.blockSignaturesVerified.inc();
    if (!verify(signature, commitSigningBytes(height, hash), pk)) {
      this.refuseSig(height, from);
      this.log.warn({ from, height: Number(height) }, 'bad block signature');
      return;
    }
    this.addSignature(height, own, from, signature);
  }

  // ------------------------------------------------------------------ replica messages

  /** Entry point for the replica network. */
  onReplicaMessages(from: number, batch: Uint8Array[]): void {
    for (const bytes of batch) {
      const d = decodeWire(bytes, this.wireLimits);
      if (!d.ok) {
        this.log.warn({ from, err: d.error.message }, 'malformed replica message');
        continue;
      }
      this.onWire(from, d.value);
    }
  }

  private onWire(from: number, m: WireMessage): void {
    switch (m.type) {
      case 'consensus': {
        const clock = checkPrepareTimestamp(
          m.bytes,
          this.config,
          Date.now(),
          this.o.spec.timestampDriftMsMax,
        );
        if (!clock.ok) {
          this.noteClockSkew(from, clock.aheadMs);
          return;
        }
        this.step({ type: 'receive', from, bytes: m.bytes });
        return;
      }
      case 'txs':
        this.lastTxsFrom = from;
        void this.onGossip(from, m.txs);
        return;
      case 'forward':
        this.lastTxsFrom = from;
        void this.onForward(m.txs);
        return;
      case 'block-sig':
        this.onBlockSig(from, m.height, m.hash, m.signature);
        return;
      case 'blocks-request':
        this.serveBlocksBounded(from, m.requestId, m.fromHeight, m.count);
        return;
      case 'blocks-response':
        // One response at a time: two answers to one request (a retry's, a slow peer's) would
        // otherwise both read the same tip and execute the same heights, and the second's
        // out-of-order write would reject unhandled. Queued, the later one finds the request
        // already moved on.
        this.receivingBlocks = this.receivingBlocks
          .then(() => this.onBlocks(from, m))
          .catch((e: unknown) => {
            this.fail('state transfer failed', { from, err: (e as Error).message });
          });
        return;
      case 'status':
        this.peerHeights.set(from, m.height);
        this.peerViews.set(from, m.view);
        return;
      case 'certs-request':
        this.serveCerts(from, m.requestId, m.heights).catch((e: unknown) => {
          this.log.warn(
            { to: from, err: (e as Error).message },
            'certificate repair: serving a request failed',
          );
        });
        return;
      case 'certs-response': {
        // Matched here, synchronously: a response nobody asked for (or a second answer to
        // one request) is dropped before it is queued, so at most one response per peer (its
        // one outstanding request) waits in the chain with its frame.
        if (this.stopping || !this.started) return;
        const asked = this.certRepair.takeResponse(from, m.requestId);
        if (asked === null) {
          this.m.transportErrors.inc({ code: 'certs-response-unrequested' });
          this.log.debug(
            { from, requestId: m.requestId },
            'certificate repair: unrequested response dropped',
          );
          return;
        }
        this.receivingCerts = this.receivingCerts
          .then(() => this.onCerts(from, asked, m.certs))
          .catch((e: unknown) => {
            // A store that fails here fails the block path too; repair itself just stops trying.
            this.log.warn({ from, err: (e as Error).message }, 'certificate repair: response not handled');
          });
        return;
      }
    }
  }

  /** One warning per view: a leader with a runaway clock would otherwise flood the log. */
  private noteClockSkew(from: number, aheadMs: bigint): void {
    this.m.proposalsWithheld.inc();
    if (this.clockSkewWarnedView === this.view) return;
    this.clockSkewWarnedView = this.view;
    this.log.warn(
      { from, aheadMs: Number(aheadMs), view: Number(this.view) },
      "withholding commit: the leader's batch timestamp is ahead of this clock beyond the allowed drift",
    );
  }

  private async onGossip(from: number, txs: Uint8Array[]): Promise<void> {
    if (this.stopping) return;
    // Verified here too: a Byzantine validator could otherwise gossip a forged tx that takes
    // an honest account's next nonce in our mempool and blocks the real one. The signatures
    // are checked in parallel off the event loop first; the adds then keep the gossip order.
    // Each tx is hashed once and decoded once; one already held (re-gossip) costs only the hash.
    // A follower holds the other follower's gossip unverified, out of the mempool: the
    // leader's batch will most likely vouch for it too (node/vouched-txs.ts).
    const hold = this.vouched !== null && this.holdsGossipFrom(from);
    const nowMs = hold ? monotonicMs() : 0;
    const ready: IntakeTx[] = [];
    for (const tx of txs) {
      const p = this.pool.prepare(tx);
      if (p.kind !== 'ready') continue;
      if (hold && this.vouched?.hold(p.tx.hashHex, p.tx.bytes, from, nowMs)) continue;
      ready.push(p.tx);
    }
    if (hold) this.m.vouchedHeld.set(this.vouched?.size ?? 0);
    if (ready.length === 0) return;
    await this.admitGossip(ready, from);
  }

  /**
   * A follower's clients' txs it has not verified yet (see forward): verified here and never
   * held, whatever our role by now (nobody vouched for them); a bad signature is the client's,
   * not evidence against the follower.
   */
  private async onForward(txs: Uint8Array[]): Promise<void> {
    if (this.stopping) return;
    const ready: IntakeTx[] = [];
    for (const tx of txs) {
      const p = this.pool.prepare(tx);
      if (p.kind === 'ready') ready.push(p.tx);
    }
    if (ready.length > 0) await this.admitGossip(ready, null);
  }

  /**
   * Verifies gossiped txs (together, off the event loop) and adds them in their order. `from`:
   * the peer that gossiped them, or each one's; null for forwarded txs (they vouch for nothing).
   */
  private async admitGossip(ready: IntakeTx[], from: number | readonly number[] | null): Promise<void> {
    await this.pool.verifyAhead(ready);
    for (let i = 0; i < ready.length; i++) {
      if (this.stopping) return;
      const r = await this.pool.addPrepared(ready[i] as IntakeTx, { verifySignature: true, local: false });
      if (r.kind === 'rejected' && r.code === 'bad-signature' && from !== null)
        this.noteForgedGossip(typeof from === 'number' ? from : (from[i] as number));
    }
    this.updateMempoolGauges();
    this.scheduleCut();
  }

  /**
   * Whether gossip from `from` may be held unverified: this validator follows in a settled
   * view and the gossip is not the leader's (the leader is the batch's voucher, and one
   * validator cannot be both).
   */
  private holdsGossipFrom(from: number): boolean {
    // During state transfer blocks come without a PREPARE: nothing would vouch. (Our own
    // id is VouchedTxs's to refuse.)
    return !this.leading && !this.inViewChange && this.transfer === null && from !== this.viewLeader;
  }

  /** The executor's question: a tx this validator verified, or one two others vouch for. */
  private signatureKnown(hashHex: string, vouchedBy: number | undefined): boolean {
    if (this.pool.signatureVerified(hashHex)) return true;
    if (vouchedBy === undefined || this.vouched === null || !this.vouched.vouches(hashHex, vouchedBy))
      return false;
    this.m.vouchedTxs.inc({ outcome: 'executed' });
    return true;
  }

  /**
   * Held txs past their hold (all of them with `all`) are verified and enter the mempool, as
   * gossip did before vouching: a tx no batch ordered must not be lost if the leader fails.
   */
  private releaseVouched(all: boolean): void {
    if (this.vouched === null || this.stopping) return;
    const due = this.vouched.takeDue(monotonicMs(), all);
    this.m.vouchedHeld.set(this.vouched.size);
    if (due.length === 0) return;
    const ready: IntakeTx[] = [];
    const peerOf: number[] = [];
    let stale = 0;
    for (const h of due) {
      const p = this.pool.prepare(h.bytes);
      if (p.kind !== 'ready') continue; // ordered or held meanwhile
      // Gossip slower than the block that ordered it arrives after the block is written and
      // is held for nothing: its nonce is used, and the mempool would refuse it after
      // verifying it. Refused before, at no verification.
      const used = this.store.cachedNonce(toHex(p.tx.tx.from));
      if (used !== undefined && p.tx.tx.nonce <= used) {
        stale++;
        continue;
      }
      ready.push(p.tx);
      peerOf.push(h.from);
    }
    if (stale > 0) this.m.vouchedTxs.inc({ outcome: 'stale' }, stale);
    this.m.vouchedTxs.inc({ outcome: 'released' }, ready.length);
    if (ready.length === 0) return;
    this.admitReleased(ready, peerOf).catch((e: unknown) => {
      this.log.warn({ err: (e as Error).message }, 'held gossip: admitting released txs failed');
    });
  }

  /**
   * Admits released txs a gossip frame's worth at a time, yielding between: a whole hold
   * (up to vouch.txCountMax) in one go would keep the event loop for seconds.
   */
  private async admitReleased(ready: IntakeTx[], peerOf: number[]): Promise<void> {
    for (let i = 0; i < ready.length && !this.stopping; i += GOSSIP_TXS_MAX) {
      if (i > 0) await new Promise<void>((resolve) => setImmediate(resolve));
      await this.admitGossip(ready.slice(i, i + GOSSIP_TXS_MAX), peerOf.slice(i, i + GOSSIP_TXS_MAX));
    }
  }

  /**
   * A correct validator gossips only txs it verified: a bad signature in gossip is evidence
   * against the peer. Counted; logged once a minute per peer at most (a faulty peer must not
   * buy log lines).
   */
  private noteForgedGossip(peer: number): void {
    this.m.gossipForged.inc();
    const now = monotonicMs();
    if (now - (this.forgedGossipLoggedMs.get(peer) ?? Number.NEGATIVE_INFINITY) < 60_000) return;
    this.forgedGossipLoggedMs.set(peer, now);
    this.log.warn({ peer }, 'a peer gossiped a tx whose signature does not verify (a faulty validator)');
  }

  /**
   * Queues a client's tx for gossip. A leader under load (a batch in flight, so no cut at once)
   * holds its queue for LEADER_GOSSIP_HOLD_MS, less when its cuts propose all of it: the txs
   * it proposes meanwhile reach the followers in the PREPARE, and gossiping them as well cost
   * every follower a third of all txs twice (receive, MAC, hash, decode, a mempool entry and
   * its removal). The rest go out then. An idle leader gossips at once, as followers do: the
   * gossip reaches them during its PREPARE's write, so they verify the tx before the PREPARE
   * comes, not on the way to their COMMIT.
   */
  private gossip(tx: Uint8Array): void {
    this.gossipQueue.push(tx);
    if (this.gossipQueue.length >= GOSSIP_BATCH_MAX) {
      this.flushGossip();
      return;
    }
    if (this.gossipScheduled) return;
    this.gossipScheduled = true;
    if (this.leading && this.inflightBatches > 0)
      this.gossipTimer = setTimeout(() => this.flushGossip(), LEADER_GOSSIP_HOLD_MS);
    else setImmediate(() => this.flushGossip());
  }

  private flushGossip(): void {
    this.gossipScheduled = false;
    if (this.gossipTimer !== null) {
      clearTimeout(this.gossipTimer);
      this.gossipTimer = null;
    }
    const proposed = this.proposedUngossiped;
    if (proposed.size > 0) this.proposedUngossiped = new Set();
    if (this.gossipQueue.length === 0) return;
    let txs = proposed.size === 0 ? this.gossipQueue : this.gossipQueue.filter((tx) => !proposed.has(tx));
    this.gossipQueue = [];
    if (this.forwardedSinceFlush) {
      this.forwardedSinceFlush = false;
      txs = this.gossipPastForwards(txs);
    }
    if (txs.length > 0) this.net.broadcast(encodeWire({ type: 'txs', txs }));
  }

  /**
   * Sends the forwarded txs among `txs` to every peer but the leader that has them, and
   * returns the rest (to be broadcast). The forward target still gets nothing twice when
   * the view changed meanwhile: the new leader is handed what followers hold (regossip).
   */
  private gossipPastForwards(txs: Uint8Array[]): Uint8Array[] {
    const rest: Uint8Array[] = [];
    const byTarget = new Map<number, Uint8Array[]>();
    for (const tx of txs) {
      const to = this.forwardedTo.get(tx);
      if (to === undefined) {
        rest.push(tx);
        continue;
      }
      const list = byTarget.get(to);
      if (list === undefined) byTarget.set(to, [tx]);
      else list.push(tx);
    }
    for (const [skip, list] of byTarget) {
      const bytes = encodeWire({ type: 'txs', txs: list });
      for (let peer = 0; peer < this.config.n; peer++)
        if (peer !== this.selfId && peer !== skip) this.net.send(peer, bytes);
    }
    return rest;
  }

  /**
   * At low load a follower sends its clients' txs to the leader before verifying them. The
   * leader verifies every tx a follower sends it anyway (it is one of a batch's vouchers), so
   * its verification and cut then overlap ours instead of following them and the gossip
   * flush: traced at about 0.25 ms of a 2.5 ms low-load commit. The verified gossip that
   * follows skips that leader. A client's bad signature then costs the leader one
   * verification more, as any peer's garbage does; under load (a fuller mempool, bigger
   * submissions) txs take the batched gossip alone.
   */
  private forward(txs: readonly IntakeTx[]): void {
    if (txs.length === 0 || txs.length > FORWARD_TXS_MAX || this.pool.size > FORWARD_POOL_MAX) return;
    if (this.leading || this.inViewChange || this.transfer !== null || this.stopping || !this.started) return;
    const leader = this.viewLeader;
    if (!this.net.send(leader, encodeWire({ type: 'forward', txs: txs.map((t) => t.bytes) }))) return;
    this.net.flush();
    for (const t of txs) this.forwardedTo.set(t.bytes, leader);
    this.forwardedSinceFlush = true;
  }

  private regossip(to: number, ageMs: number, enteredBeforeMs = Number.POSITIVE_INFINITY): void {
    const old = this.pool.takeForRegossip(ageMs, REGOSSIP_MAX, enteredBeforeMs);
    if (old.length === 0) return;
    this.net.send(to, encodeWire({ type: 'txs', txs: old.map((e) => e.bytes) }));
  }

  // ------------------------------------------------------------------ state transfer

  private startTransfer(toOrder: bigint, checkpoint: StableProof | null): void {
    if (this.transfer && this.transfer.toOrder >= toOrder) return;
    if (this.transfer?.timer) clearTimeout(this.transfer.timer);
    this.transfer = { toOrder, checkpoint, peerIndex: 0, requestId: 0, timer: null };
    this.log.warn(
      { from: Number(this.store.latestHeight()), to: Number(toOrder + 1n) },
      'behind the network: fetching blocks by state transfer',
    );
    // Blocks already handed to the executor must be written before we compare tips.
    void this.writing.then(() => this.requestBlocks());
  }

  private requestBlocks(): void {
    const t = this.transfer;
    if (!t || this.stopping) return;
    const peers = this.net.connectedPeers();
    if (peers.length === 0) {
      t.timer = setTimeout(() => this.requestBlocks(), 200);
      return;
    }
    const peer = peers[t.peerIndex % peers.length] as number;
    t.requestId = this.nextRequestId++;
    const fromHeight = this.store.latestHeight() + 1n;
    const want = t.toOrder + 1n - fromHeight + 1n;
    const count = Number(want < BigInt(this.o.blocksPerRequest) ? want : BigInt(this.o.blocksPerRequest));
    if (count <= 0) {
      this.finishTransfer();
      return;
    }
    this.net.send(peer, encodeWire({ type: 'blocks-request', requestId: t.requestId, fromHeight, count }));
    if (t.timer) clearTimeout(t.timer);
    t.timer = setTimeout(() => {
      // No (useful) answer: ask the next peer.
      t.peerIndex++;
      this.requestBlocks();
    }, TRANSFER_TIMEOUT_MS);
  }

  private serveBlocksBounded(to: number, requestId: number, fromHeight: bigint, count: number): void {
    const serving = this.servingBlocks.get(to) ?? 0;
    if (serving >= (this.o.servingPerPeerMax ?? 2)) {
      this.o.metrics.transportErrors.inc({ code: 'block-requests-dropped' });
      return;
    }
    this.servingBlocks.set(to, serving + 1);
    void this.serveBlocks(to, requestId, fromHeight, count).finally(() => {
      const left = (this.servingBlocks.get(to) ?? 1) - 1;
      if (left > 0) this.servingBlocks.set(to, left);
      else this.servingBlocks.delete(to);
    });
  }

  private async serveBlocks(to: number, requestId: number, fromHeight: bigint, count: number): Promise<void> {
    const tip = this.store.latestHeight();
    const blocks: { block: Uint8Array; cert: Uint8Array | null }[] = [];
    let bytes = 0;
    const budget = Math.floor(this.o.network.payloadBytesMax / 2);
    for (let h = fromHeight; h <= tip && blocks.length < count; h++) {
      const b = await this.store.getBlock(h);
      if (!b) break;
      const c = await this.store.getCommitCertificate(h);
      const encoded = encodeBlock(b);
      const cert = c ? encodeCommitCertificate(c) : null;
      bytes += encoded.length + (cert?.length ?? 0) + 16;
      if (blocks.length > 0 && bytes > budget) break;
      blocks.push({ block: encoded, cert });
    }
    this.net.send(to, encodeWire({ type: 'blocks-response', requestId, tipHeight: tip, blocks }));
  }

  /**
   * Verifies a peer's blocks before anything is written: they must extend our tip as a
   * hash chain, and the chain must end in a hash vouched for by f+1 validators (the
   * stable checkpoint's TrInX certificates, or a commit certificate). Then each block
   * is re-executed and must reproduce the same hash; a peer cannot make us write a
   * block the network did not commit.
   */
  private async onBlocks(from: number, m: Extract<WireMessage, { type: 'blocks-response' }>): Promise<void> {
    const t = this.transfer;
    if (!t || m.requestId !== t.requestId) return;
    await this.writing;
    const blocks: Block[] = [];
    const certs: (CommitCertificate | null)[] = [];
    for (const raw of m.blocks) {
      const b = decodeBlock(raw.block);
      if (!b.ok) return this.badPeer(from, `undecodable block: ${b.error.message}`);
      blocks.push(b.value);
      if (raw.cert === null) certs.push(null);
      else {
        const c = decodeCommitCertificate(raw.cert);
        certs.push(c.ok ? c.value : null);
      }
    }
    if (blocks.length === 0) return this.badPeer(from, 'no blocks');
    const tip = this.store.latestTip();
    let prev = tip.hash;
    let height = tip.height;
    const hashes: Uint8Array[] = [];
    for (const b of blocks) {
      if (b.header.height !== height + 1n || !bytesEqual(b.header.prevHash, prev)) {
        return this.badPeer(from, `block ${b.header.height} does not extend ${height}`);
      }
      const hash = blockHash(b.header);
      hashes.push(hash);
      prev = hash;
      height = b.header.height;
    }
    // Only the chain up to the highest block f+1 validators vouch for is used.
    const keys = this.o.spec.validators.map((v) => v.publicKey);
    const vouched = highestVouched({
      blocks,
      hashes,
      certs,
      checkpoint: t.checkpoint,
      validatorPublicKeys: keys,
      f: this.f,
    });
    if (vouched < 0) {
      // Nothing certified yet in this range; retry soon (certificates follow blocks closely).
      if (t.timer) clearTimeout(t.timer);
      t.timer = setTimeout(() => this.requestBlocks(), 200);
      return;
    }
    for (let i = 0; i <= vouched; i++) {
      const b = blocks[i] as Block;
      const expected = hashes[i] as Uint8Array;
      const batch = encodeBatch({ timestampMs: b.header.timestampMs, txs: b.txs });
      const written = await this.executor.executeBatchDetailed({
        order: b.header.order,
        view: b.header.view,
        proposer: b.header.proposer,
        batch,
      }).executed;
      const got = written.hash;
      if (!bytesEqual(got, expected)) {
        // Our own re-execution disagrees with a hash f+1 validators signed: this replica's
        // state is not what the network's is. Stop rather than build on it.
        this.fail('state transfer: re-executed block hash differs', { height: Number(b.header.height) });
        return;
      }
      this.m.stateTransferBlocks.inc();
      // Trimmed to f+1 verified signatures in fresh arrays: the decoded one holds views into
      // the blocks-response frame, and whatever else the peer put in it (see trimmedCertificate).
      const c = certs[i];
      const kept = c ? trimmedCertificate(c, b.header.height, expected, keys, this.f) : null;
      if (kept !== null) {
        this.certified.add(kept.height);
        await this.store.putCommitCertificate(kept, { verified: true }); // trimmedCertificate checked it
      }
      this.afterBlock(written, { transferred: true });
    }
    if (t.timer) clearTimeout(t.timer);
    t.timer = null;
    if (this.store.latestHeight() >= t.toOrder + 1n) this.finishTransfer();
    else this.requestBlocks();
  }

  private badPeer(from: number, why: string): void {
    this.log.warn({ from, why }, 'state transfer: peer sent unusable blocks');
    const t = this.transfer;
    if (!t) return;
    t.peerIndex++;
    if (t.timer) clearTimeout(t.timer);
    t.timer = setTimeout(() => this.requestBlocks(), 100);
  }

  private finishTransfer(): void {
    const t = this.transfer;
    if (!t) return;
    if (t.timer) clearTimeout(t.timer);
    this.transfer = null;
    const upToOrder = this.store.latestHeight() - 1n;
    this.log.info({ height: Number(this.store.latestHeight()) }, 'state transfer done');
    this.step({ type: 'state-transfer-done', upToOrder });
  }

  // ------------------------------------------------------------------ certificate repair

  /** Whether the certificate of our block at `height` is stored (memory, or one point read). */
  private hasCertificate(height: bigint): boolean {
    return this.certified.has(height) || this.store.commitCertificateSync(height) !== null;
  }

  /**
   * One housekeeping round of certificate repair: move the low-water mark behind the tip and
   * send at most one certs-request (node/cert-repair.ts holds the bounds). Not during state
   * transfer: the blocks it fetches bring their certificates when peers have them.
   */
  private repairCertificates(): void {
    if (this.transfer !== null) return;
    const now = monotonicMs();
    const has = (h: bigint): boolean => this.hasCertificate(h);
    try {
      this.certRepair.scan(this.store.latestHeight(), now, has);
      const req = this.certRepair.nextRequest(now, this.net.connectedPeers(), has, this.peerHeights);
      if (req === null) return;
      this.log.debug(
        { peer: req.peer, heights: req.heights.length, from: Number(req.heights[0]) },
        'certificate repair: asking a peer for missing commit certificates',
      );
      this.net.send(
        req.peer,
        encodeWire({ type: 'certs-request', requestId: req.requestId, heights: req.heights }),
      );
    } catch (e) {
      // A certificate record that does not decode (LedgerStoreError 'corrupt'): the API reports
      // it too; repair must not take housekeeping down with it.
      this.log.warn({ err: (e as Error).message }, 'certificate repair: round failed');
    }
  }

  /**
   * A peer's certs-request. Reads are synchronous point reads or memory, so a count of
   * requests in flight (blocks-request's limit) would not bound anything: each peer gets a
   * budget of requests and heights per second instead (CertServeBudget), and at most
   * payloadBytesMax/2 of certificates per response. Heights past the budget go unanswered;
   * the asker tries them again later or elsewhere.
   */
  private async serveCerts(to: number, requestId: number, heights: readonly bigint[]): Promise<void> {
    const allowed = this.certServeBudget.take(to, heights.length, monotonicMs());
    if (allowed === 0) {
      this.m.transportErrors.inc({ code: 'cert-requests-dropped' });
      return;
    }
    const tip = this.store.latestHeight();
    const budget = Math.floor(this.o.network.payloadBytesMax / 2);
    const certs: Uint8Array[] = [];
    const seen = new Set<bigint>();
    let bytes = 0;
    for (const h of heights.slice(0, allowed)) {
      if (h > tip || h === 0n || seen.has(h)) continue;
      seen.add(h);
      let c: CommitCertificate | null;
      try {
        c = await this.store.getCommitCertificate(h);
      } catch {
        continue; // a corrupt record is nothing to hand a peer
      }
      if (c === null) continue;
      const encoded = encodeCommitCertificate(c);
      if (bytes + encoded.length + 4 > budget) break;
      bytes += encoded.length + 4;
      certs.push(encoded);
    }
    if (this.stopping) return;
    this.net.send(to, encodeWire({ type: 'certs-response', requestId, certs }));
  }

  /**
   * A peer's answer to our certs-request. Each certificate is stored only if it certifies our
   * OWN block at its height (f+1 distinct genesis validators' valid signatures of that hash);
   * anything else is dropped and counted, with one log line per response, and the height is
   * asked of another peer after a backoff. No penalty beyond that: a faulty peer gains
   * nothing by sending garbage, and an honest one that lags is not punished.
   */
  private async onCerts(from: number, asked: readonly bigint[], raws: readonly Uint8Array[]): Promise<void> {
    if (this.stopping || !this.started) return;
    const requested = new Set(asked);
    const keys = this.o.spec.validators.map((v) => v.publicKey);
    // The block is read once per missing height, not once per certificate a peer sends for it.
    const ownHash = async (h: bigint): Promise<Uint8Array | null> => {
      const known = this.certRepair.ownHash(h);
      if (known !== null) return known;
      const b = await this.store.getBlock(h);
      if (b === null) return null;
      const hash = blockHash(b.header);
      this.certRepair.noteOwnHash(h, hash);
      return hash;
    };
    const refused: { height: number | null; reason: string }[] = [];
    let repaired = 0;
    // At most one certificate per height asked: a longer answer's extra ones are not read.
    for (const raw of raws.slice(0, asked.length)) {
      const r = await checkRepairedCertificate(raw, requested, ownHash, keys, this.f);
      if (this.stopping) return;
      if (!r.ok) {
        this.m.certificatesRefused.inc();
        refused.push({ height: r.height === null ? null : Number(r.height), reason: r.reason });
        continue;
      }
      const h = r.cert.height;
      requested.delete(h); // a second certificate of the same height is not read
      this.certRepair.resolved(h);
      if (this.hasCertificate(h)) continue; // formed or transferred meanwhile
      this.certified.add(h);
      this.sigs.delete(h);
      this.pendingSigs.delete(h);
      this.ownHashes.delete(h);
      await this.store.putCommitCertificate(r.cert, { verified: true }); // trimmed to f+1 verified
      this.m.certificatesRepaired.inc();
      repaired++;
    }
    const now = monotonicMs();
    for (const h of requested) this.certRepair.failed(h, now);
    if (refused.length > 0) {
      this.log.warn(
        { from, refused: refused.length, first: refused.slice(0, 4) },
        'certificate repair: peer sent certificates that do not certify our blocks; dropped',
      );
    }
    if (repaired > 0) {
      this.log.info(
        { from, repaired, stillMissing: this.certRepair.missingCount },
        'certificate repair: stored missing commit certificates',
      );
    }
  }

  // ------------------------------------------------------------------ housekeeping

  private housekeeping(): void {
    if (this.stopping || !this.started) return;
    this.releaseVouched(this.leading || this.inViewChange);
    this.updateMempoolGauges();
    // The request timer: a tx this replica holds that is not committed in time means the
    // leader is not making progress; the core starts a view change (f+1 needed to join).
    // The leader runs the timer too: if its own proposals do not commit (its followers
    // moved on, or cannot hear it), it must join a view change rather than wait forever.
    // As in PBFT, the timer restarts whenever a block with transactions is written: under a
    // backlog the oldest tx waits behind others without the leader being at fault. A tx
    // left out for several timeouts while others commit is suspected anyway (censorship).
    // Held gossip counts too: a leader that stops while this follower holds the other
    // follower's txs must be suspected here as well, or the other's view change waits alone.
    const timeoutMs = this.o.spec.requestTimeoutMs;
    const heldMs = this.vouched?.oldestAgeMs(monotonicMs()) ?? 0;
    const oldestMs = Math.max(this.pool.oldestAgeMs(), heldMs);
    const stalled = monotonicMs() - this.lastProgressMs > timeoutMs;
    if ((this.pool.size > 0 || heldMs > 0) && !this.inViewChange) {
      if ((oldestMs > timeoutMs && stalled) || oldestMs > CENSORSHIP_TIMEOUTS * timeoutMs) {
        this.log.warn(
          { oldestMs, leader: this.viewLeader, view: Number(this.view) },
          'request timeout: suspecting the leader',
        );
        this.pool.resetAges();
        this.lastProgressMs = monotonicMs();
        this.step({ type: 'request-timeout' });
      } else if (!this.leading && this.pool.oldestAgeMs() > REGOSSIP_AGE_MS) {
        // Re-gossip is for txs the leader missed. A leader that orders txs takes them oldest
        // first, so while it orders this mempool's txs, a tx is taken as missed only once the
        // leader has ordered one that entered here REGOSSIP_AGE_MS after it; until then it is
        // waiting its turn in the backlog, and sending it again only costs the leader decoding
        // (measured under saturation: the leader received 2-6 gossiped txs per tx it
        // committed, 0.67 of them new; with this rule 0.7-2). Whatever the leader orders, a
        // tx pending for a whole request timeout is re-sent, and if no tx of this mempool was
        // ordered for half a request timeout every old tx is: the leader may be ordering only
        // txs this mempool never held (ours full, or the leader's clients ahead of gossip).
        const now = monotonicMs();
        const ordering = now - this.orderedAtMs <= timeoutMs / 2;
        const enteredBeforeMs = ordering
          ? Math.max(this.orderedEnteredMs - REGOSSIP_AGE_MS, now - timeoutMs)
          : Number.POSITIVE_INFINITY;
        this.regossip(this.viewLeader, REGOSSIP_AGE_MS, enteredBeforeMs);
      }
    }
    // A validator that restarted (or was cut off) can sit in an old view, even believing
    // it leads it, while the others moved on: nothing it proposes or accepts counts. When
    // a peer's heartbeat shows a higher view for a while, ask the core to change view; it
    // then learns the current view from the NEW-VIEW that peers resend to a laggard.
    const higher = [...this.peerViews.values()].some((v) => v > this.view);
    this.behindViewRounds = higher && !this.inViewChange ? this.behindViewRounds + 1 : 0;
    if (this.behindViewRounds >= 10) {
      this.behindViewRounds = 0;
      this.log.warn({ view: Number(this.view) }, 'peers are in a higher view: joining them');
      this.step({ type: 'request-timeout' });
    }
    const status = encodeWire({ type: 'status', height: this.store.latestHeight(), view: this.view });
    this.net.broadcast(status);
    this.scheduleCut();
    this.repairCertificates();
    // Bound signature bookkeeping for heights that will never certify.
    const tip = this.store.latestHeight();
    for (const byHeight of [this.sigs, this.pendingSigs, this.ownHashes, this.refusedSigs])
      for (const h of byHeight.keys()) if (h + SIG_HEIGHTS_AHEAD_MAX < tip) byHeight.delete(h);
  }

  private updateMempoolGauges(): void {
    this.m.mempoolSize.set(this.pool.size);
    this.m.mempoolBytes.set(this.pool.bytes);
  }

  // ------------------------------------------------------------------ NodePort

  /** NodePort.submitTx (POST /v1/txs): a batch of one, so both routes share one set of rules. */
  async submitTx(encoded: Uint8Array): Promise<SubmitOutcome> {
    const [outcome] = await this.submitTxs([encoded]);
    return outcome as SubmitOutcome;
  }

  /** NodePort.submitTxs (POST /v1/txs/batch): one call for the whole batch; rules in node/submit-batch.ts. */
  submitTxs(encoded: readonly Uint8Array[]): Promise<SubmitOutcome[]> {
    return submitBatch(
      {
        accepting: () => !this.stopping && this.started,
        room: () => this.o.mempool.txCountMax - this.pool.size,
        prepare: (tx) => this.pool.prepare(tx),
        forward: (txs) => this.forward(txs),
        verifyAhead: (txs) => this.pool.verifyAhead(txs),
        add: (tx) => this.pool.addPrepared(tx, { verifySignature: true, local: true }),
        committed: async (hash) => {
          const stored = await this.store.getTx(hash);
          return stored && { height: stored.height, index: stored.index, result: stored.result };
        },
        accepted: (txs) => {
          // The leader's cut is queued ahead of the gossip flush: its PREPARE write then starts
          // first, and the gossip (which its followers do not wait for) goes out during it.
          this.scheduleCut();
          for (const tx of txs) this.gossip(tx);
          this.updateMempoolGauges();
        },
      },
      encoded,
    );
  }

  async txStatus(hash: Uint8Array): Promise<TxStatus> {
    const loc = await this.store.getTx(hash);
    if (loc)
      return { state: 'committed', location: { height: loc.height, index: loc.index, result: loc.result } };
    if (this.pool.has(toHex(hash))) return { state: 'pending' };
    return { state: 'unknown' };
  }

  async waitForTx(hash: Uint8Array, timeoutMs: number): Promise<TxLocation | null> {
    const hex = toHex(hash);
    return new Promise<TxLocation | null>((resolve) => {
      let set = this.waiters.get(hex);
      if (!set) {
        set = new Set();
        this.waiters.set(hex, set);
      }
      const s = set;
      const w: Waiter = {
        resolve,
        timer: setTimeout(() => {
          s.delete(w);
          if (s.size === 0) this.waiters.delete(hex);
          resolve(null);
        }, timeoutMs),
      };
      s.add(w);
      // It may have been written between the caller's check and now.
      void this.store.getTx(hash).then((loc) => {
        if (!loc || !s.has(w)) return;
        s.delete(w);
        if (s.size === 0) this.waiters.delete(hex);
        clearTimeout(w.timer);
        resolve({ height: loc.height, index: loc.index, result: loc.result });
      });
    });
  }

  status(): NodeStatus {
    const tip = this.store.latestDurableTip();
    const peers: PeerInfo[] = this.o.spec.validators
      .filter((v) => v.id !== this.selfId)
      .map((v) => {
        const endpoint = this.net.peerEndpoint(v.id);
        return {
          id: v.id,
          name: v.name,
          connected: this.net.isConnected(v.id),
          ...(endpoint ? { endpoint } : {}),
        };
      });
    return {
      height: tip.height,
      latestBlockHash: tip.height > 0n ? tip.hash : null,
      latestBlockTimeMs: tip.height > 0n ? tip.timestampMs : null,
      view: this.view,
      leader: this.viewLeader,
      peers,
      syncing: this.transfer !== null,
      mempool: { txs: this.pool.size, bytes: this.pool.bytes },
      commitLatency: this.latencySummary(),
    };
  }

  private latencySummary(): NodeStatus['commitLatency'] {
    const cutoff = monotonicMs() - LATENCY_WINDOW_MS;
    while (this.latencies.length > 0 && (this.latencies[0] as { atMs: number }).atMs < cutoff)
      this.latencies.shift();
    const l = this.latencies;
    if (l.length === 0) return null;
    const s = l.map((x) => x.ms).sort((a, b) => a - b);
    // Microseconds are as fine as the samples mean anything.
    const q = (p: number): number =>
      Math.round((s[Math.min(s.length - 1, Math.floor(p * s.length))] as number) * 1000) / 1000;
    return { p50Ms: q(0.5), p99Ms: q(0.99), count: s.length };
  }

  onBlock(listener: (block: Block) => void): () => void {
    this.blockListeners.add(listener);
    return () => this.blockListeners.delete(listener);
  }

  ready(): boolean {
    return (
      this.started && !this.stopping && this.transfer === null && this.net.connectedPeers().length >= this.f
    );
  }

  /** Peers' last reported heights (from their heartbeats). */
  peerHeightsSnapshot(): Map<number, bigint> {
    return new Map(this.peerHeights);
  }

  /** Stops taking work, lets the block being written finish, and stops the timers. */
  async stop(graceMs: number): Promise<void> {
    if (this.stopping && !this.started) return;
    this.stopping = true;
    if (this.tickTimer) clearInterval(this.tickTimer);
    if (this.housekeepingTimer) clearInterval(this.housekeepingTimer);
    if (this.gossipTimer !== null) clearTimeout(this.gossipTimer);
    this.cancelCut();
    if (this.transfer?.timer) clearTimeout(this.transfer.timer);
    for (const ws of this.waiters.values()) {
      for (const w of ws) {
        clearTimeout(w.timer);
        w.resolve(null);
      }
    }
    this.waiters.clear();
    const settle = Promise.allSettled([this.drainDone, this.writing, this.executor?.drain()]).then(() =>
      this.settleStateWrites().catch((e: unknown) => {
        this.log.warn({ err: (e as Error).message }, 'clean consensus header not written');
      }),
    );
    await Promise.race([settle, new Promise((r) => setTimeout(r, graceMs).unref())]);
    await this.threaded?.close();
    this.started = false;
  }

  /** Records a latency sample (ms) for the status summary. */
  private recordLatency(ms: number): void {
    this.latencies.push({ atMs: monotonicMs(), ms });
    if (this.latencies.length > LATENCY_SAMPLES_MAX) this.latencies.shift();
  }
}
