// Hybster wire messages and their binary codecs. Decoding takes untrusted bytes and
// returns a typed DecodeError for anything malformed or larger than the configured
// limits; it never throws past `decodeMessage`.
import { DecodeError, decodeWith, type Reader, type Result, Writer } from '../ledger/codec/binary.js';
import { type ConsensusConfig, faults, messageBytesMax } from './config.js';
import { prepareDigest, u64s, viewChangeContentDigest } from './digest.js';
import {
  COUNTER_IDS,
  type CounterCert,
  type CounterId,
  type CounterValue,
  DIGEST_BYTES,
  MAC_BYTES,
  type PlainCert,
} from './trinx.js';

export const MessageTag = {
  PREPARE: 1,
  COMMIT: 2,
  CHECKPOINT: 3,
  VIEW_CHANGE: 4,
  NEW_VIEW: 5,
  NEW_VIEW_ACK: 6,
  ACCEPT: 7,
  VIEW_REQUEST: 8,
} as const;

export interface Prepare {
  readonly type: 'prepare';
  readonly pillar: number;
  readonly view: bigint;
  readonly order: bigint;
  readonly batch: Uint8Array;
  /** Leader's independent ORDER certificate on (view, order + 2) over prepareDigest. */
  readonly cert: CounterCert;
  /** Leader's continuing TOP certificate with value (0, t), t > order, issued before `cert`. */
  readonly topCert: CounterCert;
}

export interface Commit {
  readonly type: 'commit';
  readonly pillar: number;
  readonly view: bigint;
  readonly order: bigint;
  readonly batchDigest: Uint8Array;
  readonly cert: CounterCert;
  /** Sender's continuing TOP certificate with value (0, t), t > order, issued before `cert`. */
  readonly topCert: CounterCert;
  /** Set on a retransmission from a replica still waiting for the quorum: peers that committed answer once. */
  readonly needReply: boolean;
}

export interface Checkpoint {
  readonly type: 'checkpoint';
  readonly pillar: number;
  readonly order: bigint;
  readonly stateDigest: Uint8Array;
  readonly blockHash: Uint8Array;
  readonly cert: PlainCert;
}

/** f + 1 matching checkpoint certificates from distinct validators: everything <= order is stable. */
export interface StableProof {
  readonly order: bigint;
  readonly stateDigest: Uint8Array;
  readonly blockHash: Uint8Array;
  readonly certs: readonly PlainCert[];
}

/**
 * What one NEW-VIEW decided, with f + 1 ACCEPT certificates over it: at least one correct
 * replica checked that NEW-VIEW, so prepares of its view are bound to its slots.
 */
export interface ViewProof {
  readonly view: bigint;
  /** Digest of the NEW-VIEW's view changes: opaque here, it only completes the certified content. */
  readonly vcsDigest: Uint8Array;
  /** The first re-proposed pillar order and one past the last (the NEW-VIEW's top). */
  readonly firstOrder: bigint;
  readonly top: bigint;
  /** Batch digest of every pillar order in [firstOrder, top). */
  readonly slotDigests: readonly Uint8Array[];
  readonly certs: readonly PlainCert[];
}

export interface ViewChange {
  readonly type: 'view-change';
  readonly pillar: number;
  readonly toView: bigint;
  /** One past the highest order the sender ever certified in this pillar (proved by `proof`). */
  readonly top: bigint;
  readonly stable: StableProof | null;
  /** For every pillar order in [lowWatermark, top): the highest-view prepare the sender accepted. */
  readonly history: readonly Prepare[];
  /** One proof per distinct view above 0 among the history's prepares, ascending. */
  readonly proofs: readonly ViewProof[];
  /** ORDER certificate on (toView, 0): after it the sender cannot certify in an older view. */
  readonly link: CounterCert;
  /**
   * Continuing TOP certificate whose previous and new value are both (0, top), over the whole
   * content including `link`: issued after the link, it shows the TOP counter at a moment when
   * every prepare or commit the sender made in older views already existed.
   */
  readonly proof: CounterCert;
}

export interface NewView {
  readonly type: 'new-view';
  readonly pillar: number;
  readonly view: bigint;
  readonly viewChanges: readonly ViewChange[];
  /**
   * The batches to re-propose, one per pillar order from the recomputed first order up to
   * the recomputed top. Uncertified: the leader certifies them as prepares only once f + 1
   * ACCEPTs of this NEW-VIEW form its view proof.
   */
  readonly batches: readonly Uint8Array[];
  /** Independent NEWVIEW certificate on (view, 0) over viewContentDigest: at most one NEW-VIEW per view. */
  readonly cert: CounterCert;
}

/** A replica checked the NEW-VIEW of `view` with this content; f + 1 of them form a ViewProof. */
export interface Accept {
  readonly type: 'accept';
  readonly pillar: number;
  readonly view: bigint;
  readonly vcsDigest: Uint8Array;
  readonly firstOrder: bigint;
  readonly top: bigint;
  readonly slotDigests: readonly Uint8Array[];
  /** Set while the sender still lacks the proof: peers holding an ACCEPT of this view answer once. */
  readonly needReply: boolean;
  /** TrInX MAC of the sender over viewContentDigest. */
  readonly cert: PlainCert;
}

export interface NewViewAck {
  readonly type: 'new-view-ack';
  readonly pillar: number;
  readonly view: bigint;
  readonly top: bigint;
  /** Continuing link to (view, 1): closes the sender's old-view counter state. */
  readonly cert: CounterCert;
}

/**
 * Asks the leader of `view` (or of a later view) for the NEW-VIEW that entered it: sent by a
 * replica that may send no VIEW-CHANGE (an amnesic one, see PillarCore.forgetAhead), where a
 * VIEW-CHANGE for a view the leader is in already would have made it resend. Certified by
 * nothing: the replica channel authenticates the sender, and the answer is public.
 */
export interface ViewRequest {
  readonly type: 'view-request';
  readonly pillar: number;
  readonly view: bigint;
}

export type Message =
  | Prepare
  | Commit
  | Checkpoint
  | ViewChange
  | NewView
  | NewViewAck
  | Accept
  | ViewRequest;

// ---- encoding ----

export function writeValue(w: Writer, v: CounterValue): void {
  w.u64(v.view).u64(v.order);
}

function writeCert(w: Writer, c: CounterCert): void {
  w.u16(c.issuer.validator).u16(c.issuer.pillar).u8(c.counter);
  if (c.prev === null) w.u8(0);
  else {
    w.u8(1);
    writeValue(w, c.prev);
  }
  writeValue(w, c.value);
  w.raw(c.mac);
}

function writePlain(w: Writer, c: PlainCert): void {
  w.u16(c.issuer.validator).u16(c.issuer.pillar).raw(c.mac);
}

function writePrepareBody(w: Writer, m: Prepare): void {
  w.u16(m.pillar).u64(m.view).u64(m.order).bytes(m.batch);
  writeCert(w, m.cert);
  writeCert(w, m.topCert);
}

export function writeStable(w: Writer, s: StableProof | null): void {
  if (s === null) {
    w.u8(0);
    return;
  }
  w.u8(1).u64(s.order).raw(s.stateDigest).raw(s.blockHash).u32(s.certs.length);
  for (const c of s.certs) writePlain(w, c);
}

function writeViewContent(
  w: Writer,
  m: Pick<ViewProof, 'view' | 'vcsDigest' | 'firstOrder' | 'top' | 'slotDigests'>,
): void {
  w.u64(m.view).raw(m.vcsDigest).u64(m.firstOrder).u64(m.top).u32(m.slotDigests.length);
  for (const d of m.slotDigests) w.raw(d);
}

export function writeViewProof(w: Writer, vp: ViewProof): void {
  writeViewContent(w, vp);
  w.u32(vp.certs.length);
  for (const c of vp.certs) writePlain(w, c);
}

function writeViewChangeBody(w: Writer, m: ViewChange): void {
  w.u16(m.pillar).u64(m.toView).u64(m.top);
  writeStable(w, m.stable);
  w.u32(m.history.length);
  for (const p of m.history) writePrepareBody(w, p);
  w.u32(m.proofs.length);
  for (const vp of m.proofs) writeViewProof(w, vp);
  writeCert(w, m.link);
  writeCert(w, m.proof);
}

const certEncodedBytes = (c: CounterCert): number =>
  2 + 2 + 1 + 1 + (c.prev === null ? 0 : 16) + 16 + c.mac.length;

/**
 * The exact encoded size of a PREPARE or COMMIT, for callers that length-prefix one inside a
 * larger record and for encodeMessage's own buffer: a PREPARE carries the whole batch, and a
 * guessed size that falls short makes the Writer double, one more batch-sized copy per send.
 */
export function messageEncodedBytes(m: Prepare | Commit): number {
  const certs = certEncodedBytes(m.cert) + certEncodedBytes(m.topCert);
  if (m.type === 'prepare') return 1 + 2 + 8 + 8 + 4 + m.batch.length + certs;
  return 1 + 2 + 8 + 8 + m.batchDigest.length + certs + 1;
}

export function encodeMessage(m: Message): Uint8Array {
  if (m.type === 'prepare') {
    // Sized exactly, so the buffer is handed out as it is: finish() would copy the batch again.
    const size = messageEncodedBytes(m);
    const w = new Writer(size);
    encodeMessageInto(w, m);
    if (w.length !== size)
      throw new Error(`assertion: prepare encoded to ${w.length} bytes, expected ${size}`);
    return w.written();
  }
  const w = new Writer(256);
  encodeMessageInto(w, m);
  return w.finish();
}

/** Appends the encoding of `m` to `w` (no length prefix), byte for byte what encodeMessage returns. */
export function encodeMessageInto(w: Writer, m: Message): void {
  switch (m.type) {
    case 'prepare':
      w.u8(MessageTag.PREPARE);
      writePrepareBody(w, m);
      break;
    case 'commit':
      w.u8(MessageTag.COMMIT).u16(m.pillar).u64(m.view).u64(m.order).raw(m.batchDigest);
      writeCert(w, m.cert);
      writeCert(w, m.topCert);
      w.u8(m.needReply ? 1 : 0);
      break;
    case 'checkpoint':
      w.u8(MessageTag.CHECKPOINT).u16(m.pillar).u64(m.order).raw(m.stateDigest).raw(m.blockHash);
      writePlain(w, m.cert);
      break;
    case 'view-change':
      w.u8(MessageTag.VIEW_CHANGE);
      writeViewChangeBody(w, m);
      break;
    case 'new-view':
      w.u8(MessageTag.NEW_VIEW).u16(m.pillar).u64(m.view).u32(m.viewChanges.length);
      for (const vc of m.viewChanges) writeViewChangeBody(w, vc);
      w.u32(m.batches.length);
      for (const b of m.batches) w.bytes(b);
      writeCert(w, m.cert);
      break;
    case 'accept':
      w.u8(MessageTag.ACCEPT).u16(m.pillar);
      writeViewContent(w, m);
      w.u8(m.needReply ? 1 : 0);
      writePlain(w, m.cert);
      break;
    case 'new-view-ack':
      w.u8(MessageTag.NEW_VIEW_ACK).u16(m.pillar).u64(m.view).u64(m.top);
      writeCert(w, m.cert);
      break;
    case 'view-request':
      w.u8(MessageTag.VIEW_REQUEST).u16(m.pillar).u64(m.view);
      break;
  }
}

// ---- decoding ----

/** Bounds for decoding consensus fields, from the config (see fieldLimits). */
export interface Limits {
  readonly n: number;
  readonly pillars: number;
  readonly batchBytesMax: number;
  readonly historyMax: number;
}

const limitsCache = new WeakMap<ConsensusConfig, { limits: Limits; bytesMax: number }>();

/** Decoding bounds for records outside the wire that embed consensus fields (node/persist.ts). */
export const fieldLimits = (c: ConsensusConfig): Limits => limitsOf(c).limits;

function limitsOf(c: ConsensusConfig): { limits: Limits; bytesMax: number } {
  let l = limitsCache.get(c);
  if (l === undefined) {
    l = {
      limits: {
        n: c.n,
        pillars: c.pillars,
        batchBytesMax: c.batchBytesMax,
        historyMax: c.window / c.pillars,
      },
      bytesMax: messageBytesMax(c),
    };
    limitsCache.set(c, l);
  }
  return l;
}

function readValidator(r: Reader, lim: Limits, field: string): number {
  const v = r.u16(field);
  if (v >= lim.n) throw new DecodeError('bad-value', `${field} ${v} is not a validator`, field);
  return v;
}

function readPillar(r: Reader, lim: Limits, field = 'pillar'): number {
  const p = r.u16(field);
  if (p >= lim.pillars) throw new DecodeError('bad-value', `${field} ${p} out of range`, field);
  return p;
}

export function readValue(r: Reader, field: string): CounterValue {
  return { view: r.u64(`${field}.view`), order: r.u64(`${field}.order`) };
}

function readCert(r: Reader, lim: Limits): CounterCert {
  const validator = readValidator(r, lim, 'cert.validator');
  const pillar = readPillar(r, lim, 'cert.pillar');
  const counter = r.u8('cert.counter');
  if (!COUNTER_IDS.includes(counter as CounterId))
    throw new DecodeError('bad-value', 'unknown counter', 'cert');
  const hasPrev = r.u8('cert.hasPrev');
  if (hasPrev > 1) throw new DecodeError('bad-value', 'bad prev flag', 'cert.hasPrev');
  const prev = hasPrev === 1 ? readValue(r, 'cert.prev') : null;
  const value = readValue(r, 'cert.value');
  const mac = r.raw(MAC_BYTES, 'cert.mac');
  return { issuer: { validator, pillar }, counter: counter as CounterId, prev, value, mac };
}

function readPlain(r: Reader, lim: Limits): PlainCert {
  const validator = readValidator(r, lim, 'plain.validator');
  const pillar = readPillar(r, lim, 'plain.pillar');
  return { issuer: { validator, pillar }, mac: r.raw(MAC_BYTES, 'plain.mac') };
}

function readPrepareBody(r: Reader, lim: Limits): Prepare {
  const pillar = readPillar(r, lim);
  const view = r.u64('view');
  const order = r.u64('order');
  const batch = r.bytes(lim.batchBytesMax, 'batch');
  const cert = readCert(r, lim);
  const topCert = readCert(r, lim);
  return { type: 'prepare', pillar, view, order, batch, cert, topCert };
}

export function readStable(r: Reader, lim: Limits): StableProof | null {
  const flag = r.u8('stable.flag');
  if (flag === 0) return null;
  if (flag !== 1) throw new DecodeError('bad-value', 'bad stable flag', 'stable.flag');
  const order = r.u64('stable.order');
  const stateDigest = r.raw(DIGEST_BYTES, 'stable.stateDigest');
  const blockHash = r.raw(DIGEST_BYTES, 'stable.blockHash');
  const count = r.count(lim.n, 'stable.certs');
  const certs: PlainCert[] = [];
  for (let i = 0; i < count; i++) certs.push(readPlain(r, lim));
  return { order, stateDigest, blockHash, certs };
}

function readViewChangeBody(r: Reader, lim: Limits): ViewChange {
  const pillar = readPillar(r, lim);
  const toView = r.u64('toView');
  const top = r.u64('top');
  const stable = readStable(r, lim);
  const hCount = r.count(lim.historyMax, 'history');
  const history: Prepare[] = [];
  for (let i = 0; i < hCount; i++) history.push(readPrepareBody(r, lim));
  const pCount = r.count(lim.historyMax, 'proofs');
  const proofs: ViewProof[] = [];
  for (let i = 0; i < pCount; i++) proofs.push(readViewProof(r, lim));
  const link = readCert(r, lim);
  const proof = readCert(r, lim);
  return { type: 'view-change', pillar, toView, top, stable, history, proofs, link, proof };
}

export function readViewProof(r: Reader, lim: Limits): ViewProof {
  const content = readViewContent(r, lim);
  const count = r.count(lim.n, 'proof.certs');
  const certs: PlainCert[] = [];
  for (let j = 0; j < count; j++) certs.push(readPlain(r, lim));
  return { ...content, certs };
}

function readViewContent(
  r: Reader,
  lim: Limits,
): Pick<ViewProof, 'view' | 'vcsDigest' | 'firstOrder' | 'top' | 'slotDigests'> {
  const view = r.u64('view');
  const vcsDigest = r.raw(DIGEST_BYTES, 'vcsDigest');
  const firstOrder = r.u64('firstOrder');
  const top = r.u64('top');
  const count = r.count(lim.historyMax, 'slotDigests');
  const slotDigests: Uint8Array[] = [];
  for (let i = 0; i < count; i++) slotDigests.push(r.raw(DIGEST_BYTES, 'slotDigest'));
  return { view, vcsDigest, firstOrder, top, slotDigests };
}

function readMessage(r: Reader, lim: Limits): Message {
  const tag = r.u8('tag');
  switch (tag) {
    case MessageTag.PREPARE:
      return readPrepareBody(r, lim);
    case MessageTag.COMMIT: {
      const pillar = readPillar(r, lim);
      const view = r.u64('view');
      const order = r.u64('order');
      const batchDigest = r.raw(DIGEST_BYTES, 'batchDigest');
      const cert = readCert(r, lim);
      const topCert = readCert(r, lim);
      const flag = r.u8('needReply');
      if (flag > 1) throw new DecodeError('bad-value', 'bad needReply flag', 'needReply');
      return { type: 'commit', pillar, view, order, batchDigest, cert, topCert, needReply: flag === 1 };
    }
    case MessageTag.CHECKPOINT: {
      const pillar = readPillar(r, lim);
      const order = r.u64('order');
      const stateDigest = r.raw(DIGEST_BYTES, 'stateDigest');
      const blockHash = r.raw(DIGEST_BYTES, 'blockHash');
      return { type: 'checkpoint', pillar, order, stateDigest, blockHash, cert: readPlain(r, lim) };
    }
    case MessageTag.VIEW_CHANGE:
      return readViewChangeBody(r, lim);
    case MessageTag.NEW_VIEW: {
      const pillar = readPillar(r, lim);
      const view = r.u64('view');
      const vcCount = r.count(lim.n, 'viewChanges');
      const viewChanges: ViewChange[] = [];
      for (let i = 0; i < vcCount; i++) viewChanges.push(readViewChangeBody(r, lim));
      const bCount = r.count(lim.historyMax, 'batches');
      const batches: Uint8Array[] = [];
      for (let i = 0; i < bCount; i++) batches.push(r.bytes(lim.batchBytesMax, 'batch'));
      return { type: 'new-view', pillar, view, viewChanges, batches, cert: readCert(r, lim) };
    }
    case MessageTag.ACCEPT: {
      const pillar = readPillar(r, lim);
      const content = readViewContent(r, lim);
      const flag = r.u8('needReply');
      if (flag > 1) throw new DecodeError('bad-value', 'bad needReply flag', 'needReply');
      return { type: 'accept', pillar, ...content, needReply: flag === 1, cert: readPlain(r, lim) };
    }
    case MessageTag.NEW_VIEW_ACK: {
      const pillar = readPillar(r, lim);
      const view = r.u64('view');
      const top = r.u64('top');
      return { type: 'new-view-ack', pillar, view, top, cert: readCert(r, lim) };
    }
    case MessageTag.VIEW_REQUEST:
      return { type: 'view-request', pillar: readPillar(r, lim), view: r.u64('view') };
    default:
      throw new DecodeError('bad-tag', `unknown message tag ${tag}`, 'tag');
  }
}

/** Decodes untrusted bytes; every failure is a typed DecodeError result. */
export function decodeMessage(bytes: Uint8Array, config: ConsensusConfig): Result<Message> {
  const { limits, bytesMax } = limitsOf(config);
  return decodeWith(bytes, bytesMax, (r) => readMessage(r, limits));
}

/** The pillar a message belongs to, read without decoding the rest (for routing to a worker). */
export function peekPillar(bytes: Uint8Array): number | null {
  if (bytes.length < 3) return null;
  return (bytes[1]! << 8) | bytes[2]!;
}

// ---- content digests ----

export const prepareDigestOf = (p: Prepare, batchDigest: Uint8Array): Uint8Array =>
  prepareDigest(p.pillar, p.view, p.order, batchDigest, p.topCert.mac);

/** Digest over everything in a VIEW-CHANGE except its own TOP proof. */
export function viewChangeDigest(
  vc: Omit<ViewChange, 'proof'>,
  batchDigests: readonly Uint8Array[],
): Uint8Array {
  const parts: Uint8Array[] = [u64s(BigInt(vc.pillar), vc.toView, vc.top)];
  if (vc.stable !== null) parts.push(u64s(1n, vc.stable.order), vc.stable.stateDigest, vc.stable.blockHash);
  else parts.push(u64s(0n));
  vc.history.forEach((p, i) => {
    parts.push(prepareDigestOf(p, batchDigests[i]!), p.cert.mac);
  });
  parts.push(u64s(vc.link.value.view, vc.link.value.order), vc.link.mac);
  return viewChangeContentDigest(parts);
}

export const quorum = (c: ConsensusConfig): number => faults(c) + 1;
