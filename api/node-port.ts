// The one interface the REST API needs from a running validator. node/ implements it
// (wiring mempool, consensus and the store); tests implement it with a single-process
// ledger. Queries read the LevelDB store directly; only writes and live state go
// through the node. Keep this small: every method here is something D must provide.
import type { Registry } from 'prom-client';
import type { Block, TxResult } from '../ledger/block.js';
import type { LedgerStore } from '../ledger/store.js';

/** Where a committed transaction sits in the chain. */
export interface TxLocation {
  height: bigint;
  index: number;
  result: TxResult;
}

/** A transaction's status as the node knows it now. */
export type TxStatus =
  | { state: 'pending' }
  | { state: 'committed'; location: TxLocation }
  | { state: 'unknown' };

/** Why the node refused a transaction. Each maps to one HTTP status in api/errors.ts. */
export type SubmitRejectCode =
  | 'malformed' // 400: bytes do not decode as a transaction
  | 'too-large' // 413: encoded tx above TX_BYTES_MAX
  | 'bad-signature' // 422
  | 'wrong-chain' // 422: chain id differs from this network's
  | 'stale-nonce' // 409: nonce <= the account's committed nonce
  | 'duplicate-nonce' // 409: another pending tx from the same account has this nonce
  | 'nonce-gap' // 409: nonce too far ahead of the account's next nonce (if the mempool bounds it)
  | 'mempool-full' // 503 + Retry-After
  | 'unavailable'; // 503 + Retry-After: node not ready (syncing, shutting down)

export type SubmitOutcome =
  /** Checked and accepted into the mempool (and gossiped). */
  | { kind: 'accepted'; hash: Uint8Array }
  /** The same tx (same hash) was seen before: its current status; it is never executed twice. */
  | { kind: 'known'; hash: Uint8Array; status: TxStatus }
  | {
      kind: 'rejected';
      code: SubmitRejectCode;
      message: string;
      /** The failing field, e.g. 'signature', 'chainId', 'nonce'. */
      field?: string;
      /** For 'mempool-full' / 'unavailable': how long the client should wait. */
      retryAfterMs?: number;
    };

export interface PeerInfo {
  id: number;
  name: string;
  connected: boolean;
  /** Transport endpoint currently used, if known (e.g. 'tcp://127.0.0.1:9001'). */
  endpoint?: string;
}

export interface ValidatorInfo {
  id: number;
  name: string;
  publicKey: Uint8Array;
  peerId?: string;
  /** Transport endpoints from genesis, as strings keyed by transport name. */
  endpoints?: Record<string, string | string[]>;
}

export interface LatencySummary {
  /** Milliseconds from batch proposal to local commit, over a recent window. */
  p50Ms: number;
  p99Ms: number;
  count: number;
}

export interface NodeStatus {
  height: bigint;
  /** null at height 0 (no block yet). */
  latestBlockHash: Uint8Array | null;
  latestBlockTimeMs: bigint | null;
  view: bigint;
  leader: number;
  peers: PeerInfo[];
  syncing: boolean;
  mempool: { txs: number; bytes: number };
  commitLatency: LatencySummary | null;
}

export interface NodePort {
  readonly chainId: string;
  /** This validator's index in genesis.validators. */
  readonly selfId: number;
  /** The genesis document exactly as loaded (served verbatim by GET /v1/genesis) and its hash. */
  readonly genesis: { document: unknown; hash: Uint8Array };
  readonly validators: readonly ValidatorInfo[];
  /** Byzantine faults tolerated (n = 2f+1); commit certificates need f+1 signatures. */
  readonly f: number;
  /** Read-only use by the API: blocks, txs, accounts, kv. The node owns and closes it. */
  readonly store: LedgerStore;
  readonly metrics: Registry;

  /**
   * Check and enter an encoded signed tx into the mempool. A tx already committed answers
   * `known` with its location (the API relies on it for idempotency). Never throws for bad input.
   */
  submitTx(encoded: Uint8Array): Promise<SubmitOutcome>;
  /**
   * The same for many txs at once (POST /v1/txs/batch): one outcome per tx, in order,
   * checked in order (so of two txs with the same sender and nonce the first wins). A tx
   * already committed answers `known` with its location, like submitTx. Never throws for
   * bad input. Optional so a node without a batch path still serves the route (the API
   * then calls submitTx once per tx, in order); node/submit-batch.ts implements it.
   */
  submitTxs?(encoded: readonly Uint8Array[]): Promise<SubmitOutcome[]>;
  txStatus(hash: Uint8Array): Promise<TxStatus>;
  /** Resolves when the tx is committed (its location), or null after timeoutMs. */
  waitForTx(hash: Uint8Array, timeoutMs: number): Promise<TxLocation | null>;
  status(): NodeStatus;
  /** Called once per block after it is persisted, in height order. Returns an unsubscribe function. */
  onBlock(listener: (block: Block) => void): () => void;
  /** Ready to serve writes: caught up and connected to a quorum. */
  ready(): boolean;
}
