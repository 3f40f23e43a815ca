// The cross-pillar part of a replica, kept pure and separate from the pillars so each
// pillar can run in its own worker thread: it routes events to pillars, merges their
// committed output strictly by order number, keeps pillar views together (a view change
// in one pillar pulls the others along), fills idle pillars with empty batches at the
// leader so execution never waits on a pillar that had nothing to order, and turns
// pillar-level "behind the checkpoint" signals into one state-transfer request.
import { type ConsensusConfig, firstOrderAtOrAbove } from './config.js';
import { EMPTY_BATCH } from './digest.js';
import type { Action, Event, PillarSnapshot } from './events.js';
import { peekPillar } from './messages.js';
import { PillarCore, type PillarOptions } from './pillar.js';
import { SoftwareTrinx, type Trinx, type TrinxState } from './trinx.js';

type DeliverAction = Extract<Action, { type: 'deliver' }>;
type StatusAction = Extract<Action, { type: 'status' }>;

export interface Routed {
  readonly pillar: number;
  readonly event: Event;
}

export class Coordinator {
  private nextExecute: bigint;
  private readonly buffer = new Map<bigint, DeliverAction>();
  private readonly status: (StatusAction | null)[];
  private transferTarget: bigint | null = null;
  private maxView = 0n;

  constructor(
    readonly config: ConsensusConfig,
    executedNext = 0n,
  ) {
    this.nextExecute = executedNext;
    this.status = Array.from({ length: config.pillars }, () => null);
  }

  get executedNext(): bigint {
    return this.nextExecute;
  }

  /** Which pillars an event goes to; actions the coordinator answers by itself go to `out`. */
  route(ev: Event, out: Action[]): Routed[] {
    const all = (e: Event): Routed[] => this.status.map((_, pillar) => ({ pillar, event: e }));
    switch (ev.type) {
      case 'receive': {
        const p = peekPillar(ev.bytes);
        if (p === null || p >= this.config.pillars) {
          out.push({ type: 'reject', from: ev.from, reason: 'bad-pillar' });
          return [];
        }
        return [{ pillar: p, event: ev }];
      }
      case 'propose': {
        const p = this.choosePillar();
        if (p === null) {
          const leading = this.status.some((s) => s?.leading === true);
          out.push({ type: 'proposal-refused', reason: leading ? 'queue-full' : 'not-leader' });
          return [];
        }
        this.status[p] = { ...this.status[p]!, queued: this.status[p]!.queued + 1 };
        return [{ pillar: p, event: ev }];
      }
      case 'tick':
        return [...all(ev), ...this.fillGaps()];
      case 'state-transfer-done':
        if (ev.upToOrder + 1n > this.nextExecute) this.nextExecute = ev.upToOrder + 1n;
        if (this.transferTarget !== null && ev.upToOrder >= this.transferTarget) this.transferTarget = null;
        this.flush(out);
        return all(ev);
      default:
        return all(ev);
    }
  }

  /** Leader: the pillar whose next order is lowest, so proposals interleave by order number. */
  private choosePillar(): number | null {
    let best: number | null = null;
    let bestNext = 0n;
    const P = BigInt(this.config.pillars);
    this.status.forEach((s, p) => {
      if (s === null || !s.leading || s.queued >= this.config.pendingBatchesMax) return;
      const next = s.nextOrder + BigInt(s.queued) * P;
      if (best === null || next < bestNext) {
        best = p;
        bestNext = next;
      }
    });
    return best;
  }

  private fillGaps(): Routed[] {
    const ss = this.status;
    if (ss.some((s) => s === null || !s.leading)) return [];
    const P = BigInt(this.config.pillars);
    let highest = -1n;
    for (const s of ss) if (s!.nextOrder - P > highest) highest = s!.nextOrder - P;
    const fills: Routed[] = [];
    ss.forEach((s, pillar) => {
      if (s!.queued === 0 && s!.nextOrder < highest)
        fills.push({ pillar, event: { type: 'propose', batch: EMPTY_BATCH } });
    });
    return fills;
  }

  /** Consumes one pillar's actions; returns follow-up events for other pillars. */
  absorb(pillar: number, actions: readonly Action[], out: Action[]): Routed[] {
    const follow: Routed[] = [];
    for (const a of actions) {
      switch (a.type) {
        case 'status':
          this.status[pillar] = a;
          break;
        case 'deliver':
          if (
            a.order >= this.nextExecute &&
            (this.transferTarget === null || a.order > this.transferTarget)
          ) {
            this.buffer.set(a.order, a);
            this.flush(out);
          }
          break;
        case 'view-change-started':
        case 'view-changed': {
          const v = a.type === 'view-changed' ? a.view : a.toView;
          if (v > this.maxView) {
            this.maxView = v;
            for (let p = 0; p < this.config.pillars; p++) {
              if (p !== pillar) follow.push({ pillar: p, event: { type: 'sync-view', view: v } });
            }
          }
          out.push(a);
          break;
        }
        case 'need-state-transfer':
          if (
            a.toOrder >= this.nextExecute &&
            (this.transferTarget === null || a.toOrder > this.transferTarget)
          ) {
            this.transferTarget = a.toOrder;
            for (const o of this.buffer.keys()) if (o <= a.toOrder) this.buffer.delete(o);
            out.push({ ...a, fromOrder: this.nextExecute });
          }
          break;
        default:
          out.push(a);
      }
    }
    return follow;
  }

  private flush(out: Action[]): void {
    if (this.transferTarget !== null) return;
    for (const o of this.buffer.keys()) if (o < this.nextExecute) this.buffer.delete(o);
    for (let d = this.buffer.get(this.nextExecute); d !== undefined; d = this.buffer.get(this.nextExecute)) {
      this.buffer.delete(this.nextExecute);
      out.push(d);
      this.nextExecute++;
    }
  }
}

export interface ReplicaOptions {
  readonly config: ConsensusConfig;
  readonly validator: number;
  /** The network-wide TrInX key (the node derives it from genesis/config). */
  readonly trinxKey: Uint8Array;
  /** Restart: one folded snapshot per pillar, and the next order the ledger will execute. */
  readonly snapshots?: readonly (PillarSnapshot | undefined)[];
  readonly executedNext?: bigint;
  /** Tests swap in broken TrInX or pillar variants here. */
  readonly makeTrinx?: (key: Uint8Array, validator: number, pillar: number, state?: TrinxState) => Trinx;
  readonly makePillar?: (o: PillarOptions) => PillarCore;
  /** PillarOptions.sendAhead for every pillar (default false). */
  readonly sendAhead?: boolean;
}

/**
 * All pillars of one validator plus the coordinator, in one thread. The node may instead
 * run each PillarCore in a worker and a Coordinator in the main thread; this class is the
 * reference wiring of that loop.
 */
export class Replica {
  readonly pillars: PillarCore[];
  readonly trinxes: Trinx[];
  readonly coordinator: Coordinator;

  constructor(o: ReplicaOptions) {
    const makeTrinx =
      o.makeTrinx ??
      ((key: Uint8Array, validator: number, pillar: number, state?: TrinxState) =>
        new SoftwareTrinx(key, { validator, pillar }, state));
    const makePillar = o.makePillar ?? ((po: PillarOptions) => new PillarCore(po));
    this.trinxes = [];
    this.pillars = [];
    for (let p = 0; p < o.config.pillars; p++) {
      const snap = o.snapshots?.[p];
      const trinx = makeTrinx(o.trinxKey, o.validator, p, snap?.trinx);
      this.trinxes.push(trinx);
      const po: PillarOptions = {
        config: o.config,
        validator: o.validator,
        pillar: p,
        trinx,
        ...(snap === undefined ? {} : { snapshot: snap }),
        executedNext: firstOrderAtOrAbove(o.config, p, o.executedNext ?? 0n),
        sendAhead: o.sendAhead ?? false,
      };
      this.pillars.push(makePillar(po));
    }
    this.coordinator = new Coordinator(o.config, o.executedNext ?? 0n);
    // Learn every pillar's initial status so proposals can be routed before the first tick.
    const sink: Action[] = [];
    for (let p = 0; p < this.pillars.length; p++) {
      this.coordinator.absorb(p, this.pillars[p]!.step({ type: 'tick', nowMs: 0 }), sink);
    }
  }

  step(ev: Event): Action[] {
    const out: Action[] = [];
    const queue = this.coordinator.route(ev, out);
    // Follow-up events are bounded: sync-view only fires when the highest view grows.
    for (let i = 0; i < queue.length; i++) {
      const r = queue[i]!;
      const actions = this.pillars[r.pillar]!.step(r.event);
      queue.push(...this.coordinator.absorb(r.pillar, actions, out));
    }
    return out;
  }
}
