// A follower's check of the leader's clock. Execution only keeps chain time monotonic
// (ledger/executor.ts clamps to the previous block), so a faulty leader could otherwise
// push block time arbitrarily far into the future, and every later block would inherit
// it. A follower therefore withholds its COMMIT for a PREPARE whose batch claims a time
// further ahead of its own clock than the allowed drift. Withholding is all it does:
// without f + 1 commits the batch stays pending, the request timer fires, and the view
// change replaces the leader. Safety never depends on clocks; only this liveness policy does.

import type { ConsensusConfig } from '../consensus/config.js';
import { decodeMessage, MessageTag } from '../consensus/messages.js';
import { peekBatchTimestamp } from '../ledger/batch.js';
import { proposedTimestampAcceptable } from '../ledger/executor.js';
import { decodeProposal } from './proposal.js';

export type TimestampVerdict =
  | { readonly ok: true }
  | { readonly ok: false; readonly proposedMs: bigint; readonly aheadMs: bigint };

const OK: TimestampVerdict = { ok: true };

/**
 * Verdict on raw consensus bytes from a peer. Anything that is not a well-formed PREPARE
 * carrying a proposal passes: the core rejects malformed messages itself, and fill
 * batches and re-proposals in a NEW-VIEW carry no fresh leader time.
 */
export function checkPrepareTimestamp(
  bytes: Uint8Array,
  config: ConsensusConfig,
  nowMs: number,
  driftMsMax: number,
): TimestampVerdict {
  if (bytes[0] !== MessageTag.PREPARE) return OK;
  const m = decodeMessage(bytes, config);
  if (!m.ok || m.value.type !== 'prepare') return OK;
  const proposedMs = peekBatchTimestamp(decodeProposal(m.value.batch).batch);
  if (proposedMs === null) return OK;
  const now = BigInt(Math.floor(nowMs));
  if (proposedTimestampAcceptable(proposedMs, now, BigInt(driftMsMax))) return OK;
  return { ok: false, proposedMs, aheadMs: proposedMs - now };
}
