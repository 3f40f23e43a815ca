// What the leader hands consensus to order: the ledger batch wrapped with the view and
// the validator that cut it. A block header records view and proposer, and those must
// be the same at every validator; the view in which a batch is finally committed is not
// (a view change re-proposes the same bytes in a later view, and a replica may commit
// either), so the header takes them from these bytes, which never change.
import { decodeWith, Writer } from '../ledger/codec/binary.js';

export const PROPOSAL_VERSION = 1;
const HEADER_BYTES = 1 + 2 + 8;

export interface Proposal {
  view: bigint;
  proposer: number;
  /** The encoded ledger batch (ledger/batch.ts). */
  batch: Uint8Array;
}

export function encodeProposal(p: Proposal): Uint8Array {
  return new Writer(HEADER_BYTES + p.batch.length)
    .u8(PROPOSAL_VERSION)
    .u16(p.proposer)
    .u64(p.view)
    .raw(p.batch)
    .finish();
}

/**
 * Never throws. Bytes that are not a proposal (the core's empty fill batches, or garbage
 * from a faulty leader) yield view 0, proposer 0 and the bytes as the batch, which the
 * executor turns into an empty block the same way everywhere.
 */
export function decodeProposal(bytes: Uint8Array): Proposal {
  if (bytes.length < HEADER_BYTES || bytes[0] !== PROPOSAL_VERSION)
    return { view: 0n, proposer: 0, batch: bytes };
  const r = decodeWith(bytes, bytes.length, (rd) => {
    rd.u8('version');
    const proposer = rd.u16('proposer');
    const view = rd.u64('view');
    return { view, proposer, batch: rd.raw(rd.remaining, 'batch') };
  });
  return r.ok ? r.value : { view: 0n, proposer: 0, batch: bytes };
}

export const PROPOSAL_OVERHEAD_BYTES = HEADER_BYTES;
