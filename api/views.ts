// Ledger values to their JSON views (the shapes in api/schemas.ts). Pure functions;
// the handlers fetch from the store and call these.

import type { z } from 'zod';
import {
  type Block,
  blockHash,
  type CommitCertificate,
  type TxResult,
  verifyCommitCertificate,
} from '../ledger/block.js';
import { toHex } from '../ledger/codec/binary.js';
import type { KvEntry } from '../ledger/state.js';
import { decodeTx, type SignedTx, txHash, txToJson } from '../ledger/tx.js';
import type * as s from './schemas.js';

type Out<T extends z.ZodType> = z.output<T>;

/** u64 values that are heights, views, order numbers or timestamps: safe as JSON numbers. */
export function num(v: bigint): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new RangeError(`value ${v} exceeds 2^53`);
  return n;
}

export function strip0x(h: string): string {
  return h.startsWith('0x') || h.startsWith('0X') ? h.slice(2) : h;
}

export function hexToBytes(h: string): Uint8Array {
  return new Uint8Array(Buffer.from(strip0x(h), 'hex'));
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
/** The bytes as text when they are valid UTF-8 without control characters; else null. */
export function printableUtf8(b: Uint8Array): string | null {
  if (b.length === 0) return '';
  try {
    const t = utf8.decode(b);
    return /[\u0000-\u0008\u000e-\u001f\u007f]/.test(t) ? null : t;
  } catch {
    return null;
  }
}

export function txResultJson(r: TxResult): Out<typeof s.TxResultJson> {
  return r.ok ? { ok: true } : { ok: false, code: r.code, message: r.message };
}

export function decodeStored(encoded: Uint8Array): SignedTx | null {
  const d = decodeTx(encoded);
  return d.ok ? d.value : null;
}

export function txJson(tx: SignedTx | null): Out<typeof s.TxJsonOut> | null {
  return tx === null ? null : txToJson(tx);
}

export function headerJson(block: Block, hash?: Uint8Array): Out<typeof s.BlockHeaderJson> {
  const h = block.header;
  const ms = num(h.timestampMs);
  return {
    height: num(h.height),
    hash: toHex(hash ?? blockHash(h)),
    prevHash: toHex(h.prevHash),
    txRoot: toHex(h.txRoot),
    resultsHash: toHex(h.resultsHash),
    stateDigest: toHex(h.stateDigest),
    timestampMs: ms,
    time: new Date(ms).toISOString(),
    view: num(h.view),
    order: num(h.order),
    proposer: h.proposer,
    txCount: h.txCount,
  };
}

/** Checks a certificate's signatures; callers may pass a caching one (api/cert-verdicts.ts). */
export type CertVerifier = (cert: CommitCertificate) => boolean;

export function certificateJson(
  cert: CommitCertificate | null,
  validatorKeys: Uint8Array[],
  f: number,
  verifier?: CertVerifier,
): Out<typeof s.CommitCertificateJson> | null {
  if (cert === null) return null;
  return {
    height: num(cert.height),
    blockHash: toHex(cert.blockHash),
    signatures: cert.signatures.map((x) => ({ validator: x.validator, signature: toHex(x.signature) })),
    verified: verifier ? verifier(cert) : verifyCommitCertificate(cert, validatorKeys, f),
  };
}

export function blockJson(
  block: Block,
  commit: CommitCertificate | null,
  validatorKeys: Uint8Array[],
  f: number,
  verifier?: CertVerifier,
): Out<typeof s.BlockResponse> {
  return {
    header: headerJson(block),
    txs: block.txs.map((encoded, index) => ({
      hash: toHex(txHash(encoded)),
      index,
      tx: txJson(decodeStored(encoded)),
      result: txResultJson(block.results[index] ?? { ok: false, code: 'malformed', message: 'no result' }),
    })),
    commit: certificateJson(commit, validatorKeys, f, verifier),
    parentCommit: certificateJson(block.parentCommit, validatorKeys, f, verifier),
  };
}

/** Whether a tx concerns an account: sent by it, or a transfer to it. */
export function txTouches(tx: SignedTx, address: Uint8Array): boolean {
  if (Buffer.compare(tx.from, address) === 0) return true;
  return tx.payload.type === 'transfer' && Buffer.compare(tx.payload.to, address) === 0;
}

export function kvEntryJson(key: Uint8Array, e: KvEntry): Out<typeof s.KvEntryJson> {
  return {
    key: toHex(key),
    keyUtf8: printableUtf8(key),
    value: e.value === null ? '' : toHex(e.value),
    valueUtf8: e.value === null ? null : printableUtf8(e.value),
    version: e.version.toString(),
    lastModifiedHeight: num(e.lastModifiedHeight),
    lastModifiedBy: toHex(e.lastModifiedBy),
  };
}
