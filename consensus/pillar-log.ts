// The message log of one pillar inside the window: accepted prepares with who certified
// them, prepares that arrived ahead of their turn, and commits that arrived before their
// prepare. Everything here is bounded by the window and pruned at the low watermark.
import { bytesEqual } from '../ledger/codec/binary.js';
import type { Commit, Prepare } from './messages.js';

export interface Entry {
  prepare: Prepare;
  digest: Uint8Array;
  /** Validators with a certified message for (prepare.view, order): the leader's prepare, followers' commits. */
  certifiers: Set<number>;
  myCommit: Commit | null;
  committed: boolean;
}

export class PillarLog {
  readonly entries = new Map<bigint, Entry>();
  /** Follower: prepares above the next order to accept, taken once the gap closes. */
  readonly buffered = new Map<bigint, Prepare>();
  private readonly pendingCommits = new Map<string, Map<number, Uint8Array>>();
  private pendingCommitCount = 0;

  constructor(
    /** Prepares buffered at most (the per-pillar window). */
    private readonly bufferedMax: number,
    /** Commits waiting for their prepare at most. */
    private readonly pendingMax: number,
  ) {}

  get(order: bigint): Entry | undefined {
    return this.entries.get(order);
  }

  /** Puts an entry and credits the commits that were waiting for it. */
  put(entry: Entry): void {
    const o = entry.prepare.order;
    this.entries.set(o, entry);
    const key = `${entry.prepare.view}:${o}`;
    const pending = this.pendingCommits.get(key);
    if (pending !== undefined) {
      this.pendingCommits.delete(key);
      this.pendingCommitCount -= pending.size;
      for (const [v, d] of pending) if (bytesEqual(d, entry.digest)) entry.certifiers.add(v);
    }
  }

  buffer(p: Prepare): void {
    if (this.buffered.size < this.bufferedMax) this.buffered.set(p.order, p);
  }

  /** Keeps a verified commit whose prepare has not arrived yet (first per validator counts). */
  holdCommit(view: bigint, order: bigint, from: number, batchDigest: Uint8Array): void {
    if (this.pendingCommitCount >= this.pendingMax) return;
    const key = `${view}:${order}`;
    let set = this.pendingCommits.get(key);
    if (set === undefined) {
      set = new Map();
      this.pendingCommits.set(key, set);
    }
    if (!set.has(from)) {
      set.set(from, batchDigest);
      this.pendingCommitCount++;
    }
  }

  pruneBelow(lw: bigint): void {
    for (const o of this.entries.keys()) if (o < lw) this.entries.delete(o);
    for (const o of this.buffered.keys()) if (o < lw) this.buffered.delete(o);
    for (const [k, set] of this.pendingCommits) {
      if (BigInt(k.slice(k.indexOf(':') + 1)) < lw) {
        this.pendingCommits.delete(k);
        this.pendingCommitCount -= set.size;
      }
    }
  }
}
