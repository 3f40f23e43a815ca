// Messages between validators over the authenticated replica channel. Consensus
// messages travel as opaque bytes (consensus/ has its own codec); the node adds tx
// gossip (and, at low load, a follower's unverified forward to the leader), block
// signatures (for commit certificates), state-transfer requests, the
// repair of missing commit certificates and a small status heartbeat. One tag byte selects the type; every length is bounded.

import { COMMIT_SIGNATURES_MAX } from '../ledger/block.js';
import { DecodeError, decodeWith, type Reader, type Result, Writer } from '../ledger/codec/binary.js';
import { TX_BYTES_MAX } from '../ledger/tx.js';

export const WireTag = {
  CONSENSUS: 1,
  TXS: 2,
  BLOCK_SIG: 3,
  BLOCKS_REQUEST: 4,
  BLOCKS_RESPONSE: 5,
  STATUS: 6,
  CERTS_REQUEST: 7,
  CERTS_RESPONSE: 8,
  FORWARD: 9,
} as const;

/** What the wire adds to a consensus message: its tag byte. */
export const WIRE_TAG_BYTES = 1;
export const GOSSIP_TXS_MAX = 4096;
export const BLOCKS_PER_RESPONSE_MAX = 1024;
/** Heights one certs-request may ask for (and certificates one certs-response may carry). */
export const CERTS_PER_REQUEST_MAX = 128;
/** Largest encoded commit certificate (what ledger/block's decoder accepts). */
export const CERT_BYTES_MAX = 48 + COMMIT_SIGNATURES_MAX * 68;
const HASH_BYTES = 32;
const SIGNATURE_BYTES = 64;

export interface WireLimits {
  /** Largest consensus message (consensus messageBytesMax). */
  consensusBytesMax: number;
  /** Largest encoded block or certificate carried in a response. */
  blockBytesMax: number;
}

export type WireMessage =
  | { type: 'consensus'; bytes: Uint8Array }
  | { type: 'txs'; txs: Uint8Array[] }
  /**
   * A follower's clients' txs sent to the leader before the follower verified them (at low
   * load, so the leader's verification overlaps the follower's). Unlike gossip they vouch for
   * nothing: the leader verifies them and a bad signature says nothing about the sender.
   */
  | { type: 'forward'; txs: Uint8Array[] }
  | { type: 'block-sig'; height: bigint; hash: Uint8Array; signature: Uint8Array }
  | { type: 'blocks-request'; requestId: number; fromHeight: bigint; count: number }
  | {
      type: 'blocks-response';
      requestId: number;
      tipHeight: bigint;
      /** Encoded blocks from fromHeight on, each with its encoded commit certificate when known. */
      blocks: { block: Uint8Array; cert: Uint8Array | null }[];
    }
  | { type: 'status'; height: bigint; view: bigint }
  /** Asks a peer for the commit certificates of these heights (node/cert-repair.ts). */
  | { type: 'certs-request'; requestId: number; heights: bigint[] }
  /** The encoded certificates the peer holds of the requested heights; the others are left out. */
  | { type: 'certs-response'; requestId: number; certs: Uint8Array[] };

export function encodeWire(m: WireMessage): Uint8Array {
  switch (m.type) {
    case 'consensus': {
      const w = new Writer(m.bytes.length + 1);
      return w.u8(WireTag.CONSENSUS).raw(m.bytes).finish();
    }
    case 'txs':
    case 'forward': {
      let size = 5;
      for (const t of m.txs) size += 4 + t.length;
      const w = new Writer(size).u8(m.type === 'txs' ? WireTag.TXS : WireTag.FORWARD).u32(m.txs.length);
      for (const t of m.txs) w.bytes(t);
      return w.finish();
    }
    case 'block-sig':
      return new Writer(1 + 8 + HASH_BYTES + SIGNATURE_BYTES)
        .u8(WireTag.BLOCK_SIG)
        .u64(m.height)
        .raw(m.hash)
        .raw(m.signature)
        .finish();
    case 'blocks-request':
      return new Writer(17)
        .u8(WireTag.BLOCKS_REQUEST)
        .u32(m.requestId)
        .u64(m.fromHeight)
        .u32(m.count)
        .finish();
    case 'blocks-response': {
      let size = 17;
      for (const b of m.blocks) size += 9 + b.block.length + (b.cert?.length ?? 0);
      const w = new Writer(size)
        .u8(WireTag.BLOCKS_RESPONSE)
        .u32(m.requestId)
        .u64(m.tipHeight)
        .u32(m.blocks.length);
      for (const b of m.blocks) {
        w.bytes(b.block);
        if (b.cert === null) w.u8(0);
        else w.u8(1).bytes(b.cert);
      }
      return w.finish();
    }
    case 'status':
      return new Writer(17).u8(WireTag.STATUS).u64(m.height).u64(m.view).finish();
    case 'certs-request': {
      const w = new Writer(9 + 8 * m.heights.length)
        .u8(WireTag.CERTS_REQUEST)
        .u32(m.requestId)
        .u32(m.heights.length);
      for (const h of m.heights) w.u64(h);
      return w.finish();
    }
    case 'certs-response': {
      let size = 9;
      for (const c of m.certs) size += 4 + c.length;
      const w = new Writer(size).u8(WireTag.CERTS_RESPONSE).u32(m.requestId).u32(m.certs.length);
      for (const c of m.certs) w.bytes(c);
      return w.finish();
    }
  }
}

function readBody(r: Reader, tag: number, bytes: Uint8Array, limits: WireLimits): WireMessage {
  switch (tag) {
    case WireTag.TXS:
    case WireTag.FORWARD: {
      const n = r.count(GOSSIP_TXS_MAX, 'txs.count');
      const txs: Uint8Array[] = [];
      for (let i = 0; i < n; i++) txs.push(r.bytes(TX_BYTES_MAX, `txs[${i}]`));
      return { type: tag === WireTag.TXS ? 'txs' : 'forward', txs };
    }
    case WireTag.BLOCK_SIG:
      return {
        type: 'block-sig',
        height: r.u64('height'),
        hash: r.raw(HASH_BYTES, 'hash'),
        signature: r.raw(SIGNATURE_BYTES, 'signature'),
      };
    case WireTag.BLOCKS_REQUEST:
      return {
        type: 'blocks-request',
        requestId: r.u32('requestId'),
        fromHeight: r.u64('fromHeight'),
        count: r.count(BLOCKS_PER_RESPONSE_MAX, 'count'),
      };
    case WireTag.BLOCKS_RESPONSE: {
      const requestId = r.u32('requestId');
      const tipHeight = r.u64('tipHeight');
      const n = r.count(BLOCKS_PER_RESPONSE_MAX, 'blocks.count');
      const blocks: { block: Uint8Array; cert: Uint8Array | null }[] = [];
      for (let i = 0; i < n; i++) {
        const block = r.bytes(limits.blockBytesMax, `blocks[${i}]`);
        const flag = r.u8('cert.flag');
        if (flag > 1) throw new DecodeError('bad-tag', `cert flag ${flag}`, 'cert.flag');
        blocks.push({ block, cert: flag === 1 ? r.bytes(limits.blockBytesMax, `certs[${i}]`) : null });
      }
      return { type: 'blocks-response', requestId, tipHeight, blocks };
    }
    case WireTag.STATUS:
      return { type: 'status', height: r.u64('height'), view: r.u64('view') };
    case WireTag.CERTS_REQUEST: {
      const requestId = r.u32('requestId');
      const n = r.count(CERTS_PER_REQUEST_MAX, 'heights.count');
      const heights: bigint[] = [];
      for (let i = 0; i < n; i++) heights.push(r.u64(`heights[${i}]`));
      return { type: 'certs-request', requestId, heights };
    }
    case WireTag.CERTS_RESPONSE: {
      const requestId = r.u32('requestId');
      const n = r.count(CERTS_PER_REQUEST_MAX, 'certs.count');
      const certs: Uint8Array[] = [];
      for (let i = 0; i < n; i++) certs.push(r.bytes(CERT_BYTES_MAX, `certs[${i}]`));
      return { type: 'certs-response', requestId, certs };
    }
    default:
      throw new DecodeError('bad-tag', `unknown replica message tag ${tag} (${bytes.length} bytes)`, 'tag');
  }
}

/** Never throws. Consensus payloads are returned as a view (the consensus codec copies what it keeps). */
export function decodeWire(bytes: Uint8Array, limits: WireLimits): Result<WireMessage> {
  if (bytes.length === 0) return { ok: false, error: new DecodeError('truncated', 'empty replica message') };
  const tag = bytes[0] as number;
  if (tag === WireTag.CONSENSUS) {
    if (bytes.length - 1 > limits.consensusBytesMax) {
      return {
        ok: false,
        error: new DecodeError('oversized', `consensus message is ${bytes.length - 1} bytes`),
      };
    }
    return { ok: true, value: { type: 'consensus', bytes: bytes.subarray(1) } };
  }
  const max = Math.max(limits.blockBytesMax * 2, 1 << 20) * 4;
  return decodeWith(bytes, max, (r) => {
    r.u8('tag');
    return readBody(r, tag, bytes, limits);
  });
}
