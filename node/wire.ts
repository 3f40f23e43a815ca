// Messages between validators over the authenticated replica channel. Consensus
// messages travel as opaque bytes (consensus/ has its own codec); the node adds tx
// gossip, block signatures (for commit certificates), state-transfer requests and a
// small status heartbeat. One tag byte selects the type; every length is bounded.
import { DecodeError, decodeWith, type Reader, type Result, Writer } from '../ledger/codec/binary.js';
import { TX_BYTES_MAX } from '../ledger/tx.js';

export const WireTag = {
  CONSENSUS: 1,
  TXS: 2,
  BLOCK_SIG: 3,
  BLOCKS_REQUEST: 4,
  BLOCKS_RESPONSE: 5,
  STATUS: 6,
} as const;

/** What the wire adds to a consensus message: its tag byte. */
export const WIRE_TAG_BYTES = 1;
export const GOSSIP_TXS_MAX = 4096;
export const BLOCKS_PER_RESPONSE_MAX = 1024;
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
  | { type: 'block-sig'; height: bigint; hash: Uint8Array; signature: Uint8Array }
  | { type: 'blocks-request'; requestId: number; fromHeight: bigint; count: number }
  | {
      type: 'blocks-response';
      requestId: number;
      tipHeight: bigint;
      /** Encoded blocks from fromHeight on, each with its encoded commit certificate when known. */
      blocks: { block: Uint8Array; cert: Uint8Array | null }[];
    }
  | { type: 'status'; height: bigint; view: bigint };

export function encodeWire(m: WireMessage): Uint8Array {
  switch (m.type) {
    case 'consensus': {
      const w = new Writer(m.bytes.length + 1);
      return w.u8(WireTag.CONSENSUS).raw(m.bytes).finish();
    }
    case 'txs': {
      let size = 5;
      for (const t of m.txs) size += 4 + t.length;
      const w = new Writer(size).u8(WireTag.TXS).u32(m.txs.length);
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
  }
}

function readBody(r: Reader, tag: number, bytes: Uint8Array, limits: WireLimits): WireMessage {
  switch (tag) {
    case WireTag.TXS: {
      const n = r.count(GOSSIP_TXS_MAX, 'txs.count');
      const txs: Uint8Array[] = [];
      for (let i = 0; i < n; i++) txs.push(r.bytes(TX_BYTES_MAX, `txs[${i}]`));
      return { type: 'txs', txs };
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
