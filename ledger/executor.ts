// The executor turns committed batches into persisted blocks, strictly in order.
//
// Pipelining: executeBatch starts the stateless, CPU-bound part when called (batch and tx
// decoding and hashing on the spot; Ed25519 verification of txs the caller did not verify
// already on libuv's thread pool, off the event loop); applying a block waits only for
// the previous block to be applied (its state is staged in the store's cache), not written.
// The store chains the LevelDB writes, one atomic batch per block, in order, so a crash
// leaves a prefix of blocks. A caller that submits block n+1 before block n resolved thus
// overlaps n+1's signature checks and execution with n's disk write.
import { BATCH_LIMITS_DEFAULT, type Batch, type BatchLimits, decodeBatch } from './batch.js';
import { type Block, type BlockHeader, blockHash, checkBlockBody, resultsHash } from './block.js';
import { bytesEqual, toHex } from './codec/binary.js';
import { merkleRoot } from './merkle.js';
import { applyTxs, type PrecheckedTx, startPrecheck, touchedKeys } from './state.js';
import type { LedgerStore, MetaRecord } from './store.js';

export interface ExecutorOptions {
  store: LedgerStore;
  chainId: string;
  /** Limits used to decode batches; a batch over them executes as an empty block. */
  batchLimits?: BatchLimits;
  /**
   * Re-check each assembled block body against its header before writing (default false: the
   * executor computed both from the same data, so it doubles the hashing for little; tests enable it).
   */
  checkBeforeWrite?: boolean;
  /**
   * Whether the tx with this hash (hex) already passed signature verification with this
   * chain id at this node (its mempool verified it on entry). Such txs are decoded but not
   * verified again: the hash covers every byte, signature included. Without it every tx
   * is verified here. `vouchedBy` is the batch's ExecuteInput.vouchedBy: the node may also
   * answer yes for a tx that validator and another one (not this node) both vouched for.
   */
  signatureVerified?: (hashHex: string, vouchedBy: number | undefined) => boolean;
}

export interface ExecuteInput {
  order: bigint;
  view: bigint;
  proposer: number;
  batch: Uint8Array;
  /**
   * A validator vouching for the signatures of every tx in the batch: the leader that cut it
   * in its own view (a fresh delivery). Handed to signatureVerified; absent for re-proposed
   * and transferred batches.
   */
  vouchedBy?: number;
  /**
   * Metadata records to write in the block's own atomic, synced batch (LedgerStore
   * BlockWrite.meta): the node's consensus state, durable exactly when the block is.
   */
  meta?: readonly MetaRecord[];
}

/**
 * A block as executeBatchDetailed hands it back, with what the executor computed on the way
 * that its caller needs too (the node removes the txs from its mempool and signs the hash):
 * computing them again per tx was a measurable share of a validator's CPU.
 */
export interface ExecutedBlock {
  block: Block;
  hash: Uint8Array;
  /** Hex of each tx's hash, in block order. */
  txHashesHex: string[];
  /** Hex of the sender of every tx that decoded (whatever its result). */
  sendersHex: Set<string>;
}

/** A batch handed to the executor: its tx hashes at once, the block when it is durable. */
export interface ExecutionStarted {
  /** Hex of each tx's hash, in block order (empty when the call was refused). */
  txHashesHex: readonly string[];
  executed: Promise<ExecutedBlock>;
}

const NO_ACCOUNTS: readonly Uint8Array[] = Object.freeze([]);

export class ExecutorError extends Error {
  override readonly name = 'ExecutorError';
}

export class Executor {
  private readonly store: LedgerStore;
  private readonly chainId: string;
  private readonly limits: BatchLimits;
  private readonly checkBeforeWrite: boolean;
  private readonly signatureVerified: ExecutorOptions['signatureVerified'];
  /** Settles when the last accepted batch is applied (its state staged in the store). */
  private applyTail: Promise<unknown> = Promise.resolve();
  /** Next order number this executor accepts (calls must come in order). */
  private nextOrder: bigint;
  /** Batches accepted whose block is not durable yet (nor failed). */
  private inflight = 0;

  constructor(opts: ExecutorOptions) {
    this.store = opts.store;
    this.chainId = opts.chainId;
    this.limits = opts.batchLimits ?? BATCH_LIMITS_DEFAULT;
    this.checkBeforeWrite = opts.checkBeforeWrite ?? false;
    this.signatureVerified = opts.signatureVerified;
    this.nextOrder = opts.store.latestHeight(); // height h holds order h - 1
  }

  /**
   * Executes the batch committed at `order` and persists it as block order + 1 in one atomic
   * write. Invalid txs are recorded as failed; an undecodable batch becomes an empty block.
   * Rejects with ExecutorError on an out-of-order call or when a previous write failed.
   */
  executeBatch(input: ExecuteInput): Promise<Block> {
    return this.executeBatchDetailed(input).executed.then((e) => e.block);
  }

  /**
   * executeBatch, also handing back the block hash, the tx hashes and the senders; the tx
   * hashes at once, so the caller can tell its mempool which txs are ordered while the block
   * is still being executed and written.
   */
  executeBatchDetailed(input: ExecuteInput): ExecutionStarted {
    if (input.order !== this.nextOrder) {
      const e = new ExecutorError(`order ${input.order} submitted, expected ${this.nextOrder}`);
      return { txHashesHex: [], executed: Promise.reject(e) };
    }
    this.nextOrder += 1n;
    this.inflight++;
    // The txs are views into a copy of the batch that only this block holds (see txViews):
    // the caller's bytes may be a view into a buffer that is reused or changed later.
    const own = input.batch.length <= this.limits.bytesMax ? new Uint8Array(input.batch) : input.batch;
    const dec = decodeBatch(own, this.limits, { txViews: own !== input.batch });
    const batch: Batch = dec.ok ? dec.value : { timestampMs: 0n, txs: [] };
    const known = this.signatureVerified;
    const vouchedBy = input.vouchedBy;
    const prechecked = startPrecheck(
      batch.txs,
      this.chainId,
      known === undefined ? undefined : (hashHex) => known(hashHex, vouchedBy),
    );
    const applied = this.applyTail.then(async () =>
      this.apply(input, batch.timestampMs, await prechecked.txs),
    );
    this.applyTail = applied;
    applied.catch(() => undefined); // failures surface through the returned promise
    const executed = applied.then(async (r) => {
      await r.durable;
      return r.executed;
    });
    // Registered before the caller's reactions: a caller resuming on `executed` sees the count without it.
    const settled = (): void => {
      this.inflight--;
    };
    executed.then(settled, settled);
    return { txHashesHex: prechecked.hashesHex, executed };
  }

  /** Whether nothing is being applied or written: a batch handed over now is the only one. */
  idle(): boolean {
    return this.inflight === 0;
  }

  /** Resolves once every batch submitted so far is applied and durable. */
  async drain(): Promise<void> {
    await this.applyTail;
    await this.store.flush();
  }

  private async apply(
    input: ExecuteInput,
    proposedMs: bigint,
    txs: PrecheckedTx[],
  ): Promise<{ executed: ExecutedBlock; durable: Promise<void> }> {
    const store = this.store;
    const tip = store.latestTip();
    const height = input.order + 1n;
    if (height !== tip.height + 1n) {
      throw new ExecutorError(`block ${height} does not follow stored height ${tip.height}`);
    }
    const touched = touchedKeys(txs);
    store.trimCache();
    await store.prefetch(touched.accounts, touched.kv);
    const out = applyTxs(store.reader, txs, height, tip.stateDigest);
    const txHashes = txs.map((t) => t.hash);
    const header: BlockHeader = {
      chainId: this.chainId,
      height,
      prevHash: tip.hash,
      txRoot: merkleRoot(txHashes),
      resultsHash: resultsHash(out.results),
      stateDigest: out.stateDigest,
      // Bounded against the previous block: time never goes backwards on chain, whatever
      // the leader proposed. (Upper bounds against local clocks are checked at PREPARE time.)
      timestampMs: proposedMs > tip.timestampMs ? proposedMs : tip.timestampMs,
      view: input.view,
      order: input.order,
      proposer: input.proposer,
      txCount: txs.length,
    };
    const block: Block = {
      header,
      txs: txs.map((t) => t.bytes),
      results: out.results,
      // From memory in the normal case (the node puts each certificate it forms or receives);
      // null when the parent's certificate is not complete yet.
      parentCommit: height > 1n ? store.commitCertificateSync(height - 1n) : null,
    };
    if (this.checkBeforeWrite) {
      const chk = checkBlockBody(block);
      if (!chk.ok) throw new ExecutorError(`assembled block ${height} is inconsistent: ${chk.error}`);
    }
    const txAccounts = txs.map((t) => {
      // Only authenticated txs are indexed under an account, so nobody can spam another's history.
      if (t.tx === null || t.rejection !== null) return NO_ACCOUNTS;
      const p = t.tx.payload;
      if (p.type !== 'transfer') return [t.tx.from];
      // The hexes the precheck made say it without comparing bytes.
      const self =
        t.toHex !== undefined && t.fromHex !== undefined
          ? t.toHex === t.fromHex
          : bytesEqual(p.to, t.tx.from);
      return self ? [t.tx.from] : [t.tx.from, p.to];
    });
    const hash = blockHash(header);
    const durable = store.writeBlock({
      block,
      hash,
      txHashes,
      txAccounts,
      accountWrites: out.accountWrites, // keyed by hex: the store need not make it again
      kvLog: out.kvLog,
      ...(input.meta !== undefined ? { meta: input.meta } : {}),
    });
    durable.catch(() => undefined); // awaited by executeBatch's caller
    const sendersHex = new Set<string>();
    for (const t of txs) if (t.tx !== null) sendersHex.add(t.fromHex ?? toHex(t.tx.from));
    const txHashesHex = txs.map((t) => t.hashHex);
    return { executed: { block, hash, txHashesHex, sendersHex }, durable };
  }
}

/**
 * Helper for nodes: is a leader's proposed timestamp acceptable against the local clock?
 * Execution only enforces monotonicity; this bounds how far ahead a leader can push chain time.
 */
export function proposedTimestampAcceptable(proposedMs: bigint, nowMs: bigint, driftMsMax: bigint): boolean {
  return proposedMs <= nowMs + driftMsMax;
}
