// Intake of many client txs in one call (NodePort.submitTxs, POST /v1/txs/batch). The
// validator hands in the few hooks it has (its mempool, its store, its gossip); this
// module keeps the batch rules in one place so a single tx is just a batch of one.
import type { SubmitOutcome, TxLocation } from '../api/node-port.js';
import type { AddOutcome, IntakeTx, Prepared, StatelessOutcome } from './mempool.js';

export interface BatchIntakeHooks {
  /** False while the node starts or stops: every tx is answered `unavailable`. */
  accepting(): boolean;
  /** Txs the mempool can still take (by count): only these are verified ahead. */
  room(): number;
  /** Hashes and decodes one tx, once; answers at once what needs no state (Mempool.prepare). */
  prepare(encoded: Uint8Array): Prepared;
  /**
   * Called with the txs about to be verified, before verifying them: a follower at low load
   * sends them on to the leader at once (Validator.forward). Optional.
   */
  forward?(txs: readonly IntakeTx[]): void;
  /** Verifies signatures in parallel off the event loop and remembers them (Mempool.verifyAhead). */
  verifyAhead(txs: readonly IntakeTx[]): Promise<void>;
  /**
   * Checks and adds one prepared client tx (signature verified, marked local). A plain outcome
   * is taken as it is (no await); the validator's Mempool.addPrepared answers with a promise.
   */
  add(tx: IntakeTx): AddOutcome | Promise<AddOutcome>;
  /** Where a committed tx sits, or null; asked only for txs the mempool calls stale. */
  committed(hash: Uint8Array): Promise<TxLocation | null>;
  /** Once per call, with the txs that entered the mempool, in order: gossip, gauges, batch cut. */
  accepted(encoded: readonly Uint8Array[]): void;
}

/** What the client is told to wait before retrying a tx refused because the mempool is full. */
export const MEMPOOL_FULL_RETRY_MS = 500;
/** The same for a node that is starting or shutting down. */
export const UNAVAILABLE_RETRY_MS = 1000;

/**
 * One outcome per tx, in order. Txs are checked one after another, so of two txs with the
 * same sender and nonce the first one wins and the second is a duplicate nonce.
 * Once the mempool answers full, the rest of the batch is answered full without being
 * checked: a full mempool means the node is overloaded, and verifying signatures of txs
 * it cannot take would only deepen that (the client retries them after Retry-After).
 */
export async function submitBatch(
  hooks: BatchIntakeHooks,
  encoded: readonly Uint8Array[],
): Promise<SubmitOutcome[]> {
  if (!hooks.accepting()) {
    return encoded.map(() => ({
      kind: 'rejected',
      code: 'unavailable',
      message: 'node is not accepting txs (starting or shutting down)',
      retryAfterMs: UNAVAILABLE_RETRY_MS,
    }));
  }
  // Each tx is hashed and decoded once, here. Signatures next, all at once on the thread pool
  // (the other core works too); the adds below then keep the batch's order and find them
  // verified. Txs beyond the mempool's room would only be refused, so they are not verified;
  // the room is counted in txs that can enter (not in ones already refused here).
  const prepared: Prepared[] = new Array(encoded.length);
  const ahead: IntakeTx[] = [];
  const room = hooks.room();
  for (let i = 0; i < encoded.length; i++) {
    const p = hooks.prepare(encoded[i] as Uint8Array);
    prepared[i] = p;
    if (p.kind === 'ready' && ahead.length < room) ahead.push(p.tx);
  }
  if (ahead.length > 0) {
    hooks.forward?.(ahead);
    await hooks.verifyAhead(ahead);
  }
  const out: SubmitOutcome[] = new Array(encoded.length);
  const entered: Uint8Array[] = [];
  let full = false;
  for (let i = 0; i < prepared.length; i++) {
    const p = prepared[i] as Prepared;
    if (full) {
      out[i] = mempoolFull('mempool is full, retry later');
      continue;
    }
    if (p.kind === 'done') {
      out[i] = answer(p.outcome);
      continue;
    }
    const added = hooks.add(p.tx);
    const r: AddOutcome = added instanceof Promise ? await added : added;
    if (r.kind === 'accepted') {
      entered.push(encoded[i] as Uint8Array);
      out[i] = { kind: 'accepted', hash: r.hash };
      continue;
    }
    if (r.kind === 'rejected' && r.code === 'mempool-full') {
      full = true;
      out[i] = mempoolFull(r.message);
      continue;
    }
    // A committed tx's nonce is used, so the mempool refuses it as stale; only then is the
    // ledger asked, which makes a resubmitted committed tx answer where it sits.
    if (r.kind === 'rejected' && r.code === 'stale-nonce') {
      const location = await hooks.committed(p.tx.hash);
      if (location !== null) {
        out[i] = { kind: 'known', hash: p.tx.hash, status: { state: 'committed', location } };
        continue;
      }
    }
    out[i] = answer(r);
  }
  if (entered.length > 0) hooks.accepted(entered);
  return out;
}

/** A held tx (pending) or a refusal, as the client is told. */
function answer(r: StatelessOutcome): SubmitOutcome {
  if (r.kind === 'known') return { kind: 'known', hash: r.hash, status: { state: 'pending' } };
  return {
    kind: 'rejected',
    code: r.code,
    message: r.message,
    ...(r.field === undefined ? {} : { field: r.field }),
  };
}

function mempoolFull(message: string): SubmitOutcome {
  return { kind: 'rejected', code: 'mempool-full', message, retryAfterMs: MEMPOOL_FULL_RETRY_MS };
}
