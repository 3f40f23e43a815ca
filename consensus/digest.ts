// Domain-separated SHA-256 digests of what TrInX certifies. Every digest names its
// message kind first, so a certificate for one kind can never verify as another.
import { createHash } from 'node:crypto';
import type { CounterValue } from './trinx.js';

export function sha256(...parts: Uint8Array[]): Uint8Array {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest().buffer, 0, 32);
}

const tag = (s: string): Uint8Array => new TextEncoder().encode(`hybster/${s}/v1`);
const TAG_PREPARE = tag('prepare');
const TAG_COMMIT = tag('commit');
const TAG_CHECKPOINT = tag('checkpoint');
const TAG_LINK = tag('link');
const TAG_TOP = tag('top');
const TAG_BURN = tag('burn');
const TAG_VIEW_CHANGE = tag('view-change');
const TAG_NEW_VIEW = tag('new-view');
const TAG_VIEW_CONTENT = tag('view-content');

function u64s(...vs: bigint[]): Uint8Array {
  const b = Buffer.alloc(vs.length * 8);
  vs.forEach((v, i) => {
    b.writeBigUInt64BE(v, i * 8);
  });
  return b;
}

export const EMPTY_BATCH = new Uint8Array(0);
export const EMPTY_BATCH_DIGEST = sha256(EMPTY_BATCH);

export const batchDigest = (batch: Uint8Array): Uint8Array => sha256(batch);

/**
 * What the ORDER certificate of a prepare covers. `topMac` is the MAC of the sender's TOP
 * certificate that travels with it: certifying over it proves TOP was raised first.
 */
export const prepareDigest = (
  pillar: number,
  view: bigint,
  order: bigint,
  digest: Uint8Array,
  topMac: Uint8Array,
): Uint8Array => sha256(TAG_PREPARE, u64s(BigInt(pillar), view, order), digest, topMac);

export const commitDigest = (
  pillar: number,
  view: bigint,
  order: bigint,
  digest: Uint8Array,
  topMac: Uint8Array,
): Uint8Array => sha256(TAG_COMMIT, u64s(BigInt(pillar), view, order), digest, topMac);

/**
 * The digest of a TOP certificate: the sender's TOP counter is at least its value from now on.
 * The MAC already binds the counter id and the value, so the digest only names the kind and
 * the pillar; it is the same for every TOP certificate of a pillar and computed once.
 */
const topDigests = new Map<number, Uint8Array>();
export function topDigest(pillar: number): Uint8Array {
  let d = topDigests.get(pillar);
  if (d === undefined) {
    d = sha256(TAG_TOP, u64s(BigInt(pillar)));
    topDigests.set(pillar, d);
  }
  return d;
}

/**
 * What a restarted replica certifies to move its ORDER counter past every value it may have
 * used before a crash (PillarCore.restore): a certificate that is never sent.
 */
export function burnDigest(pillar: number): Uint8Array {
  return sha256(TAG_BURN, u64s(BigInt(pillar)));
}

export const checkpointDigest = (order: bigint, stateDigest: Uint8Array, blockHash: Uint8Array): Uint8Array =>
  sha256(TAG_CHECKPOINT, u64s(order), stateDigest, blockHash);

/**
 * A view-change or ack link: a continuing ORDER certificate that moves the counter to
 * (view, 0) or (view, 1), so the sender can never certify in an older view again. It
 * binds the `top` the sender reports (the TOP counter proves that value, not the link).
 */
export const linkDigest = (pillar: number, value: CounterValue, top: bigint): Uint8Array =>
  sha256(TAG_LINK, u64s(BigInt(pillar), value.view, value.order, top));

export const viewChangeContentDigest = (parts: Uint8Array[]): Uint8Array => sha256(TAG_VIEW_CHANGE, ...parts);

export const newViewContentDigest = (parts: Uint8Array[]): Uint8Array => sha256(TAG_NEW_VIEW, ...parts);

/**
 * What a NEW-VIEW decides, as certified by its NEWVIEW certificate and by every ACCEPT:
 * the digest of its view changes and the batch digest of every re-proposed slot.
 */
export const viewContentDigest = (
  pillar: number,
  view: bigint,
  vcsDigest: Uint8Array,
  firstOrder: bigint,
  top: bigint,
  slotDigests: readonly Uint8Array[],
): Uint8Array =>
  sha256(
    TAG_VIEW_CONTENT,
    u64s(BigInt(pillar), view, firstOrder, top, BigInt(slotDigests.length)),
    vcsDigest,
    ...slotDigests,
  );

export { u64s };
