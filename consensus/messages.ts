// Hybster wire messages and their binary codecs. Decoding takes untrusted bytes and
// returns a typed DecodeError for anything malformed or larger than the configured
// limits; it never throws past `decodeMessage`.
import { DecodeError, decodeWith, type Reader, type Result, Writer } from '../ledger/codec/binary.js';
import { type ConsensusConfig, faults, messageBytesMax } from './config.js';
import { newViewContentDigest, prepareDigest, u64s, viewChangeContentDigest } from './digest.js';
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

export interface ViewChange {
  readonly type: 'view-change';
  readonly pillar: number;
  readonly toView: bigint;
  /** One past the highest order the sender ever certified in this pillar (proved by `proof`). */
  readonly top: bigint;
  readonly stable: StableProof | null;
  /** For every pillar order in [lowWatermark, top): the highest-view prepare the sender accepted. */
  readonly history: readonly Prepare[];
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
  readonly prepares: readonly Prepare[];
  /** Independent NEWVIEW certificate on (view, 0): at most one NEW-VIEW per view. */
  readonly cert: CounterCert;
}

export interface NewViewAck {
  readonly type: 'new-view-ack';
  readonly pillar: number;
  readonly view: bigint;
  readonly top: bigint;
  /** Continuing link to (view, 1): closes the sender's old-view counter state. */
  readonly cert: CounterCert;
}

export type Message = Prepare | Commit | Checkpoint | ViewChange | NewView | NewViewAck;

// ---- encoding ----

function writeValue(w: Writer, v: CounterValue): void {
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

function writeStable(w: Writer, s: StableProof | null): void {
  if (s === null) {
    w.u8(0);
    return;
  }
  w.u8(1).u64(s.order).raw(s.stateDigest).raw(s.blockHash).u32(s.certs.length);
  for (const c of s.certs) writePlain(w, c);
}

function writeViewChangeBody(w: Writer, m: ViewChange): void {
  w.u16(m.pillar).u64(m.toView).u64(m.top);
  writeStable(w, m.stable);
  w.u32(m.history.length);
  for (const p of m.history) writePrepareBody(w, p);
  writeCert(w, m.link);
  writeCert(w, m.proof);
}

export function encodeMessage(m: Message): Uint8Array {
  const w = new Writer(m.type === 'prepare' ? m.batch.length + 128 : 256);
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
      w.u32(m.prepares.length);
      for (const p of m.prepares) writePrepareBody(w, p);
      writeCert(w, m.cert);
      break;
    case 'new-view-ack':
      w.u8(MessageTag.NEW_VIEW_ACK).u16(m.pillar).u64(m.view).u64(m.top);
      writeCert(w, m.cert);
      break;
  }
  return w.finish();
}

// ---- decoding ----

interface Limits {
  readonly n: number;
  readonly pillars: number;
  readonly batchBytesMax: number;
  readonly historyMax: number;
}

const limitsCache = new WeakMap<ConsensusConfig, { limits: Limits; bytesMax: number }>();

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

function readValue(r: Reader, field: string): CounterValue {
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

function readStable(r: Reader, lim: Limits): StableProof | null {
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
  const link = readCert(r, lim);
  const proof = readCert(r, lim);
  return { type: 'view-change', pillar, toView, top, stable, history, link, proof };
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
      const pCount = r.count(lim.historyMax, 'prepares');
      const prepares: Prepare[] = [];
      for (let i = 0; i < pCount; i++) prepares.push(readPrepareBody(r, lim));
      return { type: 'new-view', pillar, view, viewChanges, prepares, cert: readCert(r, lim) };
    }
    case MessageTag.NEW_VIEW_ACK: {
      const pillar = readPillar(r, lim);
      const view = r.u64('view');
      const top = r.u64('top');
      return { type: 'new-view-ack', pillar, view, top, cert: readCert(r, lim) };
    }
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

export function newViewDigest(
  pillar: number,
  view: bigint,
  vcDigests: readonly Uint8Array[],
  prepareDigests: readonly Uint8Array[],
): Uint8Array {
  return newViewContentDigest([
    u64s(BigInt(pillar), view, BigInt(vcDigests.length)),
    ...vcDigests,
    ...prepareDigests,
  ]);
}

export const quorum = (c: ConsensusConfig): number => faults(c) + 1;
