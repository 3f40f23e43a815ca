// A replica whose pillars run in worker threads (one PillarCore per worker, see
// pillar-worker.ts) while the Coordinator stays on the main thread. It has the surface
// the validator uses from the in-thread `Replica`: step(event), per-pillar role, plus
// `onActions` for the actions that arrive later, once the workers answer.
//
// Ordering: the results of posted events are absorbed into the Coordinator strictly in
// the order the events were posted (a global FIFO), whatever order the workers finish
// in. So each pillar's action list reaches the node whole and in order (persist before
// sends, as the core emits it), deliveries leave the Coordinator strictly by order
// number, and a run whose events are each awaited (`idle()`) produces exactly the
// actions the in-thread Replica produces for the same events.
//
// Load: events waiting for a worker are bounded (`inflightEventsMax`). Beyond it, network
// input and ticks are dropped (the protocol recovers from lost messages by retransmission,
// and the next tick carries the time) and proposals are refused with `queue-full`. A
// tick is also skipped while the previous one is still in the workers.
import { Worker } from 'node:worker_threads';
import { type ConsensusConfig, firstOrderAtOrAbove } from '../consensus/config.js';
import { Coordinator, type Routed } from '../consensus/coordinator.js';
import type { Action, Event, PillarSnapshot } from '../consensus/events.js';
import type { FromPillarWorker, PillarRole, PillarStepResult, ToPillarWorker } from './pillar-worker.js';

export interface ThreadedReplicaOptions {
  readonly config: ConsensusConfig;
  readonly validator: number;
  /** The network-wide TrInX key; copied into each worker, never kept here. */
  readonly trinxKey: Uint8Array;
  readonly snapshots?: readonly (PillarSnapshot | undefined)[];
  readonly executedNext?: bigint;
  /** Events posted to workers and not yet answered, at most (default 8192). */
  readonly inflightEventsMax?: number;
}

/** What the validator reads of a pillar: the same members PillarCore has. */
export interface PillarRoleView {
  isLeading(): boolean;
  readonly currentView: bigint;
  readonly inViewChange: boolean;
}

export type RefusalReason = Extract<Action, { type: 'proposal-refused' }>['reason'];

/** A worker crashed, exited, or reported an exception: the replica is unusable. */
export class PillarWorkerError extends Error {
  override readonly name = 'PillarWorkerError';
  constructor(
    readonly pillar: number,
    message: string,
  ) {
    super(`pillar ${pillar} worker: ${message}`);
  }
}

class PillarMirror implements PillarRoleView {
  view = 0n;
  leading = false;
  vc = false;
  isLeading(): boolean {
    return this.leading;
  }
  get currentView(): bigint {
    return this.view;
  }
  get inViewChange(): boolean {
    return this.vc;
  }
  /** Returns whether the role changed. */
  set(r: PillarRole): boolean {
    const changed = r.view !== this.view || r.leading !== this.leading || r.inViewChange !== this.vc;
    this.view = r.view;
    this.leading = r.leading;
    this.vc = r.inViewChange;
    return changed;
  }
}

interface Job {
  readonly pillar: number;
  readonly event: Event;
  /** A proposal the caller made (not a coordinator fill): its outcome is reported. */
  readonly proposal: Uint8Array | null;
  /** Startup ticks: their actions are learned from, not performed (as in Replica). */
  readonly discard: boolean;
  result: PillarStepResult | null;
}

const INFLIGHT_EVENTS_DEFAULT = 8192;
const WORKER_URL = new URL('./pillar-worker.js', import.meta.url);

export class ThreadedReplica {
  readonly coordinator: Coordinator;
  readonly pillars: readonly PillarRoleView[];
  /** Events dropped under load (receive, tick) since start. */
  dropped = 0;

  private readonly mirrors: PillarMirror[];
  private readonly workers: Worker[] = [];
  /** Per worker: posted messages (one batch of jobs each) not yet answered, in posting order. */
  private readonly waiting: Job[][][];
  /** Per worker: events to post at the next flush. */
  private readonly outbox: Job[][];
  private flushScheduled = false;
  /** All unabsorbed jobs in posting order; `head` is the first. */
  private jobs: Job[] = [];
  private head = 0;
  private ticksInFlight = 0;
  private readonly inflightMax: number;
  private readonly actionListeners: ((actions: Action[]) => void)[] = [];
  private readonly settledListeners: ((batch: Uint8Array, refused: RefusalReason | null) => void)[] = [];
  private readonly errorListeners: ((e: PillarWorkerError) => void)[] = [];
  private idleWaiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  private failure: PillarWorkerError | null = null;
  private closed = false;

  private constructor(o: ThreadedReplicaOptions) {
    const P = o.config.pillars;
    this.coordinator = new Coordinator(o.config, o.executedNext ?? 0n);
    this.mirrors = Array.from({ length: P }, () => new PillarMirror());
    this.pillars = this.mirrors;
    this.waiting = Array.from({ length: P }, () => []);
    this.outbox = Array.from({ length: P }, () => []);
    this.inflightMax = o.inflightEventsMax ?? INFLIGHT_EVENTS_DEFAULT;
  }

  /** Starts one worker per pillar and waits until each has its core and initial status. */
  static async start(o: ThreadedReplicaOptions): Promise<ThreadedReplica> {
    const r = new ThreadedReplica(o);
    try {
      await r.spawn(o);
    } catch (e) {
      await r.close();
      throw e;
    }
    return r;
  }

  private async spawn(o: ThreadedReplicaOptions): Promise<void> {
    const ready: Promise<void>[] = [];
    for (let p = 0; p < o.config.pillars; p++) {
      const w = new Worker(WORKER_URL);
      this.workers.push(w);
      ready.push(
        new Promise<void>((resolve, reject) => {
          const onFirst = (m: FromPillarWorker): void => {
            if (m.type === 'ready') {
              this.mirrors[p]!.set(m.role);
              w.on('message', (x: FromPillarWorker) => this.onWorkerMessage(p, x));
              resolve();
            } else reject(new PillarWorkerError(p, m.type === 'failed' ? m.message : 'unexpected message'));
          };
          w.once('message', onFirst);
          w.once('error', (e) => reject(new PillarWorkerError(p, e.message)));
          w.once('exit', (code) =>
            reject(new PillarWorkerError(p, `exited with code ${code} while starting`)),
          );
        }),
      );
      w.on('error', (e) => this.fail(new PillarWorkerError(p, e.message)));
      w.on('messageerror', (e) => this.fail(new PillarWorkerError(p, `undecodable message: ${e.message}`)));
      w.on('exit', (code) => {
        if (!this.closed) this.fail(new PillarWorkerError(p, `exited with code ${code}`));
      });
      const snap = o.snapshots?.[p];
      const key = o.trinxKey.slice();
      const init: ToPillarWorker = {
        type: 'init',
        config: o.config,
        validator: o.validator,
        pillar: p,
        trinxKey: key,
        ...(snap === undefined ? {} : { snapshot: snap }),
        executedNext: firstOrderAtOrAbove(o.config, p, o.executedNext ?? 0n),
      };
      w.postMessage(init, [key.buffer]);
    }
    await Promise.all(ready);
    // Learn every pillar's initial status so proposals can be routed before the first tick.
    for (let p = 0; p < this.workers.length; p++) this.enqueue(p, { type: 'tick', nowMs: 0 }, null, true);
    await this.idle();
  }

  /** Pillars running in worker threads. */
  get threads(): number {
    return this.workers.length;
  }

  /** Events posted to workers and not yet absorbed. */
  get inflight(): number {
    return this.jobs.length - this.head;
  }

  /**
   * Feeds one event. Returns the actions the Coordinator answers at once (rejects,
   * refusals, deliveries released by `state-transfer-done`); what the pillars produce
   * arrives through `onActions`, in order.
   */
  step(ev: Event): Action[] {
    if (this.failure !== null) throw this.failure;
    if (this.closed) return [];
    const full = this.inflight >= this.inflightMax;
    if (ev.type === 'receive' && full) {
      this.dropped++;
      return [];
    }
    if (ev.type === 'tick' && (full || this.ticksInFlight > 0)) {
      this.dropped++;
      return [];
    }
    if (ev.type === 'propose' && full) return [{ type: 'proposal-refused', reason: 'queue-full' }];
    const out: Action[] = [];
    const routed = this.coordinator.route(ev, out);
    for (const r of routed) {
      const own = ev.type === 'propose' && r.event === ev;
      this.enqueue(r.pillar, r.event, own ? ev.batch : null, false);
    }
    return out;
  }

  /**
   * Coordinated actions produced by the workers, in order; called once per absorbed run
   * that produced actions or changed a pillar's role (then possibly with no actions).
   */
  onActions(listener: (actions: Action[]) => void): void {
    this.actionListeners.push(listener);
  }

  /**
   * Outcome of each proposal handed to a pillar (`refused` null when the pillar took it),
   * with the caller's own batch object. Refusals by the Coordinator itself come back from
   * `step` instead and are not reported here.
   */
  onProposalSettled(listener: (batch: Uint8Array, refused: RefusalReason | null) => void): void {
    this.settledListeners.push(listener);
  }

  /** A worker failed; the replica refuses further events. Called once. */
  onError(listener: (e: PillarWorkerError) => void): void {
    this.errorListeners.push(listener);
  }

  /** Resolves once every posted event has been absorbed (tests, shutdown). */
  idle(): Promise<void> {
    if (this.failure !== null) return Promise.reject(this.failure);
    if (this.inflight === 0) return Promise.resolve();
    return new Promise((resolve, reject) => this.idleWaiters.push({ resolve, reject }));
  }

  /** The worker threads (diagnostics and crash tests). */
  get threadHandles(): readonly Worker[] {
    return this.workers;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w.resolve();
  }

  // ------------------------------------------------------------------ internals

  private enqueue(pillar: number, event: Event, proposal: Uint8Array | null, discard: boolean): void {
    const job: Job = { pillar, event, proposal, discard, result: null };
    this.jobs.push(job);
    this.outbox[pillar]!.push(job);
    if (event.type === 'tick') this.ticksInFlight++;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      // Events of one synchronous run go to each worker as one message.
      queueMicrotask(() => this.flush());
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.closed || this.failure !== null) return;
    for (let p = 0; p < this.outbox.length; p++) {
      const batch = this.outbox[p]!;
      if (batch.length === 0) continue;
      this.outbox[p] = [];
      const transfer: ArrayBuffer[] = [];
      const events = batch.map((j) => toWorker(j.event, transfer));
      this.waiting[p]!.push(batch);
      const m: ToPillarWorker = { type: 'step', events };
      this.workers[p]!.postMessage(m, transfer);
    }
  }

  private onWorkerMessage(pillar: number, m: FromPillarWorker): void {
    if (this.closed || this.failure !== null) return;
    if (m.type === 'failed') {
      this.fail(new PillarWorkerError(pillar, m.message));
      return;
    }
    if (m.type !== 'stepped') {
      this.fail(new PillarWorkerError(pillar, `unexpected '${m.type}' message`));
      return;
    }
    // A worker answers each message whole and in order.
    const batch = this.waiting[pillar]!.shift();
    if (batch === undefined || batch.length !== m.results.length) {
      this.fail(new PillarWorkerError(pillar, 'answer does not match the events it was sent'));
      return;
    }
    for (let i = 0; i < batch.length; i++) batch[i]!.result = m.results[i]!;
    this.absorbReady();
  }

  private absorbReady(): void {
    const out: Action[] = [];
    const settled: { batch: Uint8Array; refused: RefusalReason | null }[] = [];
    let roleChanged = false;
    for (let job = this.jobs[this.head]; job?.result != null; job = this.jobs[this.head]) {
      this.head++;
      const { actions, role } = job.result;
      if (job.event.type === 'tick') this.ticksInFlight--;
      if (this.mirrors[job.pillar]!.set(role) && !job.discard) roleChanged = true;
      const follow: Routed[] = this.coordinator.absorb(job.pillar, actions, job.discard ? [] : out);
      // Replica drops the startup ticks' follow-ups too (nothing else has happened yet).
      if (!job.discard) for (const f of follow) this.enqueue(f.pillar, f.event, null, false);
      if (job.proposal !== null) {
        const refusal = actions.find((a) => a.type === 'proposal-refused');
        settled.push({ batch: job.proposal, refused: refusal?.reason ?? null });
      }
    }
    if (this.head > 1024 && this.head * 2 > this.jobs.length) {
      this.jobs = this.jobs.slice(this.head);
      this.head = 0;
    }
    if (out.length > 0 || roleChanged) for (const l of this.actionListeners) l(out);
    for (const s of settled) for (const l of this.settledListeners) l(s.batch, s.refused);
    if (this.inflight === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w.resolve();
    }
  }

  private fail(e: PillarWorkerError): void {
    if (this.failure !== null || this.closed) return;
    this.failure = e;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w.reject(e);
    for (const l of this.errorListeners) l(e);
    // The other workers have nothing left to do; end them so the process can exit.
    for (const w of this.workers) void w.terminate();
  }
}

/**
 * An event as posted: byte payloads get an exact copy whose buffer is transferred (the
 * caller keeps its own bytes, which may be a view into a larger network buffer that
 * structured clone would copy whole).
 */
function toWorker(ev: Event, transfer: ArrayBuffer[]): Event {
  const own = (b: Uint8Array): Uint8Array => {
    const c = b.slice();
    transfer.push(c.buffer);
    return c;
  };
  switch (ev.type) {
    case 'receive':
      return { ...ev, bytes: own(ev.bytes) };
    case 'propose':
      return { ...ev, batch: own(ev.batch) };
    default:
      return ev;
  }
}
