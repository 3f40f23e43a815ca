// Events the driver feeds into the core and actions the core returns (etcd raft's Step/Ready shape).
import type { Accept, Commit, Prepare, StableProof, ViewProof } from './messages.js';
import type { CounterCert, TrinxState } from './trinx.js';

export type Event =
  | { readonly type: 'receive'; readonly from: number; readonly bytes: Uint8Array }
  | { readonly type: 'propose'; readonly batch: Uint8Array }
  | { readonly type: 'tick'; readonly nowMs: number }
  | {
      readonly type: 'executed';
      readonly order: bigint;
      readonly stateDigest: Uint8Array;
      readonly blockHash: Uint8Array;
    }
  | { readonly type: 'request-timeout' }
  | { readonly type: 'state-transfer-done'; readonly upToOrder: bigint }
  /** Coordinator-internal: another pillar moved on; follow it to at least this view. */
  | { readonly type: 'sync-view'; readonly view: bigint };

/** One accepted prepare as persisted, with this replica's own commit certificate when it is a follower. */
export interface PersistedEntry {
  readonly prepare: Prepare;
  readonly myCommit: Commit | null;
}

/** The pillar state written whole on every persist: counters, view, top, checkpoint. */
export interface PillarDurableFields {
  readonly trinx: TrinxState;
  readonly view: bigint;
  readonly viewChangeTarget: bigint | null;
  /** One past the highest order certified; equals the TOP counter in `trinx`. */
  readonly top: bigint;
  readonly stable: StableProof | null;
  /**
   * The view proofs a VIEW-CHANGE may need (see docs/consensus.md). Optional: state written
   * before view proofs existed has none (its prepares are then from view 0 or unprovable).
   */
  readonly viewProofs?: readonly ViewProof[];
  /** This replica's ACCEPT of the NEW-VIEW of its current view (optional like viewProofs). */
  readonly accept?: Accept | null;
  /**
   * Legacy link chains from before the TOP counter proved `top`: no longer written or read.
   * Optional so state and callers from that time still type-check.
   */
  readonly chain?: readonly CounterCert[];
  readonly entryTop?: bigint;
  readonly entryChain?: readonly CounterCert[];
  /**
   * This replica may have sent messages that depend on state newer than this (a leader's
   * prepares sent ahead of their write, see the persist action's `ahead`). A restart from
   * such state cannot know what it certified after it: see PillarCore.restore. Optional:
   * absent reads as false.
   */
  readonly sentAhead?: boolean;
}

/**
 * Durable pillar state. The node must write it before performing any send/broadcast that
 * follows it in the same action list: TrInX counters must never be reused after a restart,
 * and a view change must be able to show every prepare the counter proves was accepted.
 */
export interface PersistDelta extends PillarDurableFields {
  readonly pillar: number;
  /** Entries to put (replacing any entry at the same order). */
  readonly putEntries: readonly PersistedEntry[];
  /** Entries below this order may be deleted. */
  readonly pruneBelow: bigint;
}

/** What a restarted pillar is rebuilt from: the last delta folded over the previous state. */
export interface PillarSnapshot extends PillarDurableFields {
  readonly entries: ReadonlyMap<bigint, PersistedEntry>;
}

export function applyPersist(prev: PillarSnapshot | null, d: PersistDelta): PillarSnapshot {
  const entries = new Map(prev?.entries ?? []);
  for (const [o] of entries) if (o < d.pruneBelow) entries.delete(o);
  for (const e of d.putEntries) entries.set(e.prepare.order, e);
  return {
    trinx: d.trinx,
    view: d.view,
    viewChangeTarget: d.viewChangeTarget,
    top: d.top,
    stable: d.stable,
    viewProofs: d.viewProofs ?? [],
    accept: d.accept ?? null,
    sentAhead: d.sentAhead ?? false,
    entries,
  };
}

export type RejectReason = string;

export type Action =
  | { readonly type: 'send'; readonly to: number; readonly bytes: Uint8Array }
  | { readonly type: 'broadcast'; readonly bytes: Uint8Array }
  | {
      readonly type: 'deliver';
      readonly pillar: number;
      readonly order: bigint;
      readonly view: bigint;
      readonly batch: Uint8Array;
      /** SHA-256 of the batch, so the executor need not hash it again. */
      readonly batchDigest: Uint8Array;
      /**
       * The batch was cut by the leader of `view` for this order in that view (a normal-case
       * PREPARE), not carried into the view by a NEW-VIEW slot: a correct leader then took
       * every tx from its own mempool, whose signatures it knows to be good. The node counts
       * that leader as one voucher for the batch's signatures (docs/consensus.md, "Vouched
       * signatures"); a re-proposed slot vouches for nothing, whatever its bytes claim.
       */
      readonly fresh: boolean;
    }
  | {
      readonly type: 'persist';
      readonly delta: PersistDelta;
      /**
       * The node may perform the network actions after this persist before it is durable
       * (consensus/ahead-writes.ts says when): set only on a leader's delta that records
       * nothing but its own new prepares, written with `sentAhead` so a restart knows.
       */
      readonly ahead?: boolean;
    }
  | { readonly type: 'view-changed'; readonly pillar: number; readonly view: bigint; readonly leader: number }
  | { readonly type: 'view-change-started'; readonly pillar: number; readonly toView: bigint }
  | {
      readonly type: 'need-state-transfer';
      readonly fromOrder: bigint;
      readonly toOrder: bigint;
      readonly checkpoint: StableProof;
    }
  | { readonly type: 'reject'; readonly from: number; readonly reason: RejectReason }
  | { readonly type: 'proposal-refused'; readonly reason: 'not-leader' | 'queue-full' | 'oversized' }
  | {
      readonly type: 'status';
      readonly pillar: number;
      readonly view: bigint;
      readonly leading: boolean;
      readonly nextOrder: bigint;
      readonly queued: number;
    };
