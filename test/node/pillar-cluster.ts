// An in-memory n-validator cluster whose replicas are either the in-thread Replica or a
// ThreadedReplica (pillars in worker threads), driven through one event queue. In
// lockstep mode every event is answered completely (ThreadedReplica.idle) before the
// next one, so both kinds must produce identical actions; in pipelined mode events
// flow while workers are busy (the throughput benchmark).
import { createHash } from 'node:crypto';
import { type Action, type ConsensusConfig, type Event, Replica } from '../../consensus/index.js';
import { toTagged } from '../../node/persist.js';
import { ThreadedReplica } from '../../node/pillar-threads.js';
import { TEST_TRINX_KEY } from '../sim/cluster.js';

export type ReplicaKind = 'in-thread' | 'threaded';

interface Driver {
  step(ev: Event): Action[];
  idle(): Promise<void>;
  leading(): boolean;
  close(): Promise<void>;
}

export interface Delivered {
  readonly order: bigint;
  readonly view: bigint;
  readonly batchHex: string;
}

export class PillarCluster {
  /** Per validator: every action it returned, as tagged JSON, in the order it was returned. */
  readonly trace: string[][];
  readonly delivered: Delivered[][];
  readonly isolated = new Set<number>();
  tracing = true;
  messages = 0;
  private readonly queue: { v: number; ev: Event }[] = [];
  private head = 0;
  private readonly stateDigest: Uint8Array[];

  private constructor(
    readonly config: ConsensusConfig,
    private readonly drivers: Driver[],
  ) {
    this.trace = drivers.map(() => []);
    this.delivered = drivers.map(() => []);
    this.stateDigest = drivers.map(() => new Uint8Array(32));
  }

  static async create(config: ConsensusConfig, kind: ReplicaKind): Promise<PillarCluster> {
    const drivers: Driver[] = [];
    const sinks: ((v: number, a: Action[]) => void)[] = [];
    for (let v = 0; v < config.n; v++) {
      if (kind === 'in-thread') {
        const r = new Replica({ config, validator: v, trinxKey: TEST_TRINX_KEY });
        drivers.push({
          step: (ev) => r.step(ev),
          idle: () => Promise.resolve(),
          leading: () => r.pillars.every((p) => p.isLeading()),
          close: () => Promise.resolve(),
        });
      } else {
        const t = await ThreadedReplica.start({ config, validator: v, trinxKey: TEST_TRINX_KEY });
        const vv = v;
        t.onActions((a) => sinks[0]?.(vv, a));
        drivers.push({
          step: (ev) => t.step(ev),
          idle: () => t.idle(),
          leading: () => t.pillars.every((p) => p.isLeading()),
          close: () => t.close(),
        });
      }
    }
    const c = new PillarCluster(config, drivers);
    sinks.push((v, a) => c.perform(v, a));
    return c;
  }

  /** Queues an event for validator `v` (run() feeds it). */
  push(v: number, ev: Event): void {
    this.queue.push({ v, ev });
  }

  /** Steps one event right away (outside the queue); returns the actions returned at once. */
  async stepNow(v: number, ev: Event, lockstep = true): Promise<Action[]> {
    const out = this.drivers[v]!.step(ev);
    this.perform(v, out);
    if (lockstep) await this.drivers[v]!.idle();
    return out;
  }

  /** Runs queued events (and those they cause) until nothing is left anywhere. */
  async run(lockstep: boolean): Promise<void> {
    for (;;) {
      while (this.head < this.queue.length) {
        const { v, ev } = this.queue[this.head++]!;
        if (ev.type === 'receive') {
          this.messages++;
          if (this.isolated.has(v) || this.isolated.has(ev.from)) continue;
        }
        const out = this.drivers[v]!.step(ev);
        this.perform(v, out);
        if (lockstep) await this.drivers[v]!.idle();
        else if ((this.head & 255) === 0) await new Promise((r) => setImmediate(r));
      }
      this.queue.length = 0;
      this.head = 0;
      await Promise.all(this.drivers.map((d) => d.idle()));
      if (this.queue.length === 0) return;
    }
  }

  /** Advances virtual time on every reachable validator and runs to quiescence. */
  async tick(nowMs: number, lockstep = true): Promise<void> {
    for (let v = 0; v < this.drivers.length; v++) {
      if (!this.isolated.has(v)) this.push(v, { type: 'tick', nowMs });
    }
    await this.run(lockstep);
  }

  /** Whether every pillar of validator `v` leads its current view. */
  leads(v: number): boolean {
    return this.drivers[v]!.leading();
  }

  async close(): Promise<void> {
    await Promise.all(this.drivers.map((d) => d.close()));
  }

  private perform(v: number, actions: readonly Action[]): void {
    for (const a of actions) {
      if (this.tracing) this.trace[v]!.push(JSON.stringify(toTagged(a)));
      switch (a.type) {
        case 'send':
          this.push(a.to, { type: 'receive', from: v, bytes: a.bytes });
          break;
        case 'broadcast':
          for (let to = 0; to < this.config.n; to++)
            if (to !== v) this.push(to, { type: 'receive', from: v, bytes: a.bytes });
          break;
        case 'deliver': {
          this.delivered[v]!.push({
            order: a.order,
            view: a.view,
            batchHex: Buffer.from(a.batch).toString('hex'),
          });
          const h = createHash('sha256').update(this.stateDigest[v]!).update(a.batchDigest).digest();
          this.stateDigest[v] = new Uint8Array(h);
          const blockHash = new Uint8Array(createHash('sha256').update(h).digest());
          this.push(v, { type: 'executed', order: a.order, stateDigest: this.stateDigest[v]!, blockHash });
          break;
        }
        default:
          break;
      }
    }
  }
}
