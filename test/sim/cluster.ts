// A small fault-free in-memory cluster: n replicas, a FIFO message queue, execution by
// hashing. Used by unit tests and by bench/consensus.ts; the adversarial simulator is sim.ts.
import { createHash } from 'node:crypto';
import {
  type Action,
  type ConsensusConfig,
  type Event,
  Replica,
  type ReplicaOptions,
} from '../../consensus/index.js';

export interface Executed {
  readonly order: bigint;
  readonly view: bigint;
  readonly batch: Uint8Array;
  /** The deliver action's fresh flag: cut by the view's leader, not a NEW-VIEW re-proposal. */
  readonly fresh: boolean;
}

export const TEST_TRINX_KEY = new Uint8Array(32).fill(7);

export class LocalCluster {
  readonly replicas: Replica[];
  readonly executed: Executed[][];
  readonly rejects: { at: number; from: number; reason: string }[] = [];
  /** Messages addressed to a replica are dropped while it is listed here. */
  readonly isolated = new Set<number>();
  private readonly inbox: { from: number; to: number; bytes: Uint8Array }[] = [];
  private head = 0;
  private readonly stateDigest: Uint8Array[];
  nowMs = 0;
  messages = 0;

  constructor(
    readonly config: ConsensusConfig,
    extra: Partial<ReplicaOptions> = {},
  ) {
    this.replicas = Array.from(
      { length: config.n },
      (_, v) => new Replica({ config, validator: v, trinxKey: TEST_TRINX_KEY, ...extra }),
    );
    this.executed = this.replicas.map(() => []);
    this.stateDigest = this.replicas.map(() => new Uint8Array(32));
  }

  /** Feeds one event to replica `v` and performs its actions (sends are queued, deliveries executed). */
  step(v: number, ev: Event): Action[] {
    const actions = this.replicas[v]!.step(ev);
    this.perform(v, actions);
    return actions;
  }

  /** Every action any replica returned, when tracing is on (tests only). */
  readonly trace: { v: number; a: Action }[] = [];
  tracing = false;

  private perform(v: number, actions: readonly Action[]): void {
    for (const a of actions) {
      if (this.tracing) this.trace.push({ v, a });
      switch (a.type) {
        case 'send':
          this.inbox.push({ from: v, to: a.to, bytes: a.bytes });
          break;
        case 'broadcast':
          for (let to = 0; to < this.config.n; to++)
            if (to !== v) this.inbox.push({ from: v, to, bytes: a.bytes });
          break;
        case 'deliver': {
          this.executed[v]!.push({ order: a.order, view: a.view, batch: a.batch, fresh: a.fresh });
          const h = createHash('sha256').update(this.stateDigest[v]!).update(a.batchDigest).digest();
          this.stateDigest[v] = new Uint8Array(h);
          const blockHash = new Uint8Array(createHash('sha256').update(h).digest());
          this.perform(
            v,
            this.replicas[v]!.step({
              type: 'executed',
              order: a.order,
              stateDigest: this.stateDigest[v]!,
              blockHash,
            }),
          );
          break;
        }
        case 'reject':
          this.rejects.push({ at: v, from: a.from, reason: a.reason });
          break;
        default:
          break;
      }
    }
  }

  /** Delivers queued messages until the network is quiet (or `max` deliveries). */
  drain(max = 1_000_000): number {
    let n = 0;
    while (this.head < this.inbox.length && n < max) {
      const m = this.inbox[this.head++]!;
      n++;
      this.messages++;
      if (this.isolated.has(m.to) || this.isolated.has(m.from)) continue;
      this.step(m.to, { type: 'receive', from: m.from, bytes: m.bytes });
    }
    if (this.head === this.inbox.length) {
      this.inbox.length = 0;
      this.head = 0;
    }
    return n;
  }

  /** Advances virtual time for every replica and drains. */
  tick(ms: number): void {
    this.nowMs += ms;
    for (let v = 0; v < this.config.n; v++) {
      if (!this.isolated.has(v)) this.step(v, { type: 'tick', nowMs: this.nowMs });
    }
    this.drain();
  }

  leader(): number {
    return this.replicas.findIndex((r) => r.pillars.every((p) => p.isLeading()));
  }
}
