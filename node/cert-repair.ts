// Getting back commit certificates this validator is missing for blocks of its own chain.
// A certificate can be lost for good in two ways: the process crashed inside the window in
// which a formed certificate waits for the next block batch to carry it to disk
// (CERT_WRITE_DELAY_MS), or the validator was not connected when its peers broadcast their
// block signatures (a late joiner that fetched the block by state transfer before any peer
// held the certificate). Block signatures are sent once, so nothing forms it again; peers
// hold it, so this validator asks them ('certs-request' / 'certs-response', node/wire.ts).
//
// This module holds the decisions and their bounds and does no I/O: the validator tells it
// the tip and which heights have a certificate, asks it for the next request to send, and
// reports what came back. Verification of what a peer sends is a pure function here too.
import {
  type CommitCertificate,
  type CommitSignature,
  commitSigningBytes,
  decodeCommitCertificate,
} from '../ledger/block.js';
import { bytesEqual } from '../ledger/codec/binary.js';
import { HASH_BYTES, SIGNATURE_BYTES, verify } from '../ledger/keys.js';
import { CERTS_PER_REQUEST_MAX } from './wire.js';

export interface CertRepairOptions {
  /**
   * Heights below the tip left alone while the chain moves: their certificates are still
   * forming (peers' signatures arrive a millisecond or two after each block).
   */
  settleHeights: number;
  /** How long the tip must stand still before the newest heights are checked too, ms. */
  idleMs: number;
  /**
   * How long a height must be seen without a certificate before it is asked for, ms. Under
   * I/O contention a block's write took seconds here, and its certificate waits for it.
   */
  graceMs: number;
  /** On start, how many heights below the tip are checked (older ones are taken as complete). */
  startScanHeights: number;
  /** Heights checked per tick while the low-water mark catches up with the tip. */
  scanPerTickMax: number;
  /** Heights known to lack a certificate, at most; the scan waits while the set is full. */
  missingMax: number;
  /** Heights asked for in one request (at most CERTS_PER_REQUEST_MAX). */
  heightsPerRequestMax: number;
  /** Shortest time between two requests (to any peers), ms. */
  requestIntervalMs: number;
  /** A request not answered within this is given up and its heights go to another peer, ms. */
  requestTimeoutMs: number;
  /** First wait before a height a request did not bring is asked for again, ms (doubles each time). */
  retryMsMin: number;
  /** Longest wait before a height that no peer could give is asked for again, ms. */
  backoffMsMax: number;
  /**
   * Requests that did not bring a height before it is given up (counted as unrepairable):
   * a height no peer holds must not keep its place in `missing` for good, or a full set
   * would stop the low-water mark.
   */
  attemptsMax: number;
}

export const CERT_REPAIR_DEFAULTS: CertRepairOptions = {
  settleHeights: 4,
  idleMs: 1000,
  graceMs: 2000,
  startScanHeights: 4096,
  // Each check may be a synchronous point read on the event loop (the certificate cache
  // misses for old heights): 128 per 100 ms tick keeps that well under a millisecond or two.
  scanPerTickMax: 128,
  missingMax: 4096,
  heightsPerRequestMax: 64,
  requestIntervalMs: 200,
  requestTimeoutMs: 2000,
  retryMsMin: 1000,
  backoffMsMax: 30_000,
  attemptsMax: 8,
};

interface Missing {
  /** Not asked for before this time (monotonic ms): the grace period, then backoff. */
  dueMs: number;
  /** Requests that did not bring it (unanswered, left out, or refused). */
  attempts: number;
  /** The peer asked last, so that a retry goes to another one when there is one. */
  lastPeer: number | null;
  /**
   * Our own block's hash at this height once read: every certificate a peer sends for it is
   * checked against this, and a peer must not make us read the block again and again.
   */
  ownHash: Uint8Array | null;
}

export interface CertRequest {
  peer: number;
  requestId: number;
  heights: bigint[];
}

interface Outstanding {
  requestId: number;
  heights: bigint[];
  sentMs: number;
}

/**
 * Which heights of this validator's chain lack a commit certificate, and whom to ask next.
 *
 * Finding them does not scan the chain on every tick. A low-water mark, `checkedUpTo`,
 * divides the chain: every height at or below it has been looked at once and is either
 * certified or in the bounded `missing` set; heights above it are looked at as the mark
 * moves up behind the tip, at most scanPerTickMax per tick (in steady state the few blocks
 * written since the last tick, whose certificates are in the store's memory cache). A
 * certificate can only go missing at a height when its block is new (a crash in the write
 * window, a transfer without it), so nothing at or below the mark needs a second look
 * unless it is in `missing`. At start the mark is set startScanHeights below the tip: a
 * crash loses at most the certificates of the newest blocks, so a bounded scan finds them
 * without reading the whole chain on every start; older holes (a long-ago late join) are not
 * looked for again after a restart. While `missing` is full the mark waits, so no height is
 * skipped, only delayed.
 */
export class CertRepair {
  private readonly o: CertRepairOptions;
  private readonly missing = new Map<bigint, Missing>();
  private readonly outstanding = new Map<number, Outstanding>();
  private checkedUpTo: bigint;
  private lastTip: bigint;
  private tipMovedMs: number;
  private lastRequestMs = Number.NEGATIVE_INFINITY;
  private nextRequestId = 1;
  private peerCursor = 0;
  private readonly onUnrepairable: (height: bigint) => void;

  /** `onUnrepairable`: called for each height given up after attemptsMax requests. */
  constructor(
    tip: bigint,
    nowMs: number,
    opts: Partial<CertRepairOptions> = {},
    onUnrepairable: (height: bigint) => void = () => {},
  ) {
    this.o = { ...CERT_REPAIR_DEFAULTS, ...opts };
    this.onUnrepairable = onUnrepairable;
    this.o.attemptsMax = Math.max(1, this.o.attemptsMax);
    this.o.heightsPerRequestMax = Math.max(1, Math.min(CERTS_PER_REQUEST_MAX, this.o.heightsPerRequestMax));
    const start = tip - BigInt(this.o.startScanHeights);
    this.checkedUpTo = start > 0n ? start : 0n;
    this.lastTip = tip;
    this.tipMovedMs = nowMs;
  }

  /** Heights known to lack a certificate (bounded by missingMax). */
  get missingCount(): number {
    return this.missing.size;
  }

  /** The low-water mark: every height at or below it has been looked at. */
  get scannedUpTo(): bigint {
    return this.checkedUpTo;
  }

  /**
   * Moves the low-water mark up behind the tip. `hasCertificate` must answer from memory or a
   * point read (the store's commitCertificateSync); it is called at most scanPerTickMax times.
   */
  scan(tip: bigint, nowMs: number, hasCertificate: (height: bigint) => boolean): void {
    if (tip !== this.lastTip) {
      this.lastTip = tip;
      this.tipMovedMs = nowMs;
    }
    const settle = BigInt(this.o.settleHeights);
    // A chain that stopped moving has no certificate still forming after idleMs: the newest
    // heights are looked at too (on a quiet chain the lost one is usually the tip's).
    const frontier = nowMs - this.tipMovedMs >= this.o.idleMs ? tip : tip - settle;
    let budget = this.o.scanPerTickMax;
    while (this.checkedUpTo < frontier && budget > 0 && this.missing.size < this.o.missingMax) {
      const h = this.checkedUpTo + 1n;
      budget--;
      if (!hasCertificate(h))
        this.missing.set(h, { dueMs: nowMs + this.o.graceMs, attempts: 0, lastPeer: null, ownHash: null });
      this.checkedUpTo = h;
    }
  }

  /** A certificate for `height` is stored (repaired, formed late, or from state transfer). */
  resolved(height: bigint): void {
    this.missing.delete(height);
  }

  /** Our block's hash at a missing height, if read before (see noteOwnHash). */
  ownHash(height: bigint): Uint8Array | null {
    return this.missing.get(height)?.ownHash ?? null;
  }

  /** Remembers our block's hash at a missing height (32 bytes per entry, bounded by missingMax). */
  noteOwnHash(height: bigint, hash: Uint8Array): void {
    const m = this.missing.get(height);
    if (m !== undefined) m.ownHash = hash;
  }

  /**
   * The next request to send, or null: at most one per requestIntervalMs, one outstanding per
   * peer, the lowest due heights first, each preferably to a peer other than the one asked
   * last. `connected`: peers with a channel now. Heights that got a certificate meanwhile are
   * dropped here (`hasCertificate`), not asked for. `peerHeights`: the heights peers last
   * reported; a peer known to be below the lowest due height is asked only when no free peer
   * is known to have it (a peer that has not reported yet counts as having it).
   */
  nextRequest(
    nowMs: number,
    connected: readonly number[],
    hasCertificate: (height: bigint) => boolean,
    peerHeights: ReadonlyMap<number, bigint> = new Map(),
  ): CertRequest | null {
    this.expire(nowMs);
    if (this.missing.size === 0 || nowMs - this.lastRequestMs < this.o.requestIntervalMs) return null;
    const idle = connected.filter((p) => !this.outstanding.has(p));
    if (idle.length === 0) return null;
    const inFlight = new Set<bigint>();
    for (const r of this.outstanding.values()) for (const h of r.heights) inFlight.add(h);
    const due: bigint[] = [];
    for (const [h, m] of this.missing) if (m.dueMs <= nowMs && !inFlight.has(h)) due.push(h);
    if (due.length === 0) return null;
    due.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const lowestDue = due[0] as bigint;
    const ahead = idle.filter((p) => (peerHeights.get(p) ?? lowestDue) >= lowestDue);
    const free = ahead.length > 0 ? ahead : idle;
    // Rotate over free peers; the first one that is not the last asked of the lowest due
    // height takes the request (with a single peer, that peer).
    let peer = free[this.peerCursor % free.length] as number;
    const lowest = this.missing.get(lowestDue) as Missing;
    if (free.length > 1 && lowest.lastPeer === peer)
      peer = free[(this.peerCursor + 1) % free.length] as number;
    this.peerCursor++;
    const heights: bigint[] = [];
    // hasCertificate may be a point read: only the candidates of this request are looked at
    // (those that got one meanwhile are dropped), not every due height.
    let checksLeft = 4 * this.o.heightsPerRequestMax;
    for (const h of due) {
      if (heights.length >= this.o.heightsPerRequestMax || checksLeft === 0) break;
      const m = this.missing.get(h) as Missing;
      if (free.length > 1 && m.lastPeer === peer) continue;
      checksLeft--;
      if (hasCertificate(h)) {
        this.missing.delete(h);
        continue;
      }
      heights.push(h);
    }
    if (heights.length === 0) return null;
    for (const h of heights) {
      const m = this.missing.get(h) as Missing;
      m.lastPeer = peer;
      // Not due again while the answer may still be in flight or queued for checking (its
      // request is no longer outstanding once matched): failed() or resolved() follows.
      m.dueMs = nowMs + this.o.requestTimeoutMs;
    }
    const requestId = this.nextRequestId;
    this.nextRequestId = (this.nextRequestId % 0xffff_ffff) + 1;
    this.outstanding.set(peer, { requestId, heights, sentMs: nowMs });
    this.lastRequestMs = nowMs;
    return { peer, requestId, heights };
  }

  /**
   * A response from `peer`: the heights its outstanding request asked for, or null when it
   * answers nothing we asked (another id, or no request outstanding): such a response is
   * dropped unread, so a peer cannot make this validator verify what it did not ask for.
   * The request is no longer outstanding either way once it matched.
   */
  takeResponse(peer: number, requestId: number): bigint[] | null {
    const r = this.outstanding.get(peer);
    if (r === undefined || r.requestId !== requestId) return null;
    this.outstanding.delete(peer);
    return r.heights;
  }

  /**
   * A height asked for came back without a usable certificate: back off, then ask another
   * peer; after attemptsMax such requests it is given up (onUnrepairable).
   */
  failed(height: bigint, nowMs: number): void {
    const m = this.missing.get(height);
    if (m === undefined) return;
    m.attempts++;
    if (m.attempts >= this.o.attemptsMax) {
      this.missing.delete(height);
      this.onUnrepairable(height);
      return;
    }
    const backoff = this.o.retryMsMin * 2 ** Math.min(m.attempts - 1, 16);
    m.dueMs = nowMs + Math.min(this.o.backoffMsMax, backoff);
  }

  private expire(nowMs: number): void {
    for (const [peer, r] of this.outstanding) {
      if (nowMs - r.sentMs < this.o.requestTimeoutMs) continue;
      this.outstanding.delete(peer);
      for (const h of r.heights) this.failed(h, nowMs);
    }
  }
}

export type CertRefusal =
  | 'undecodable'
  | 'not-requested'
  | 'too-many-signatures'
  | 'duplicate-signer'
  | 'does-not-certify';

/**
 * The certificate of (height, hash) made of only the first f+1 genesis validators whose
 * signatures in `cert` verify, or null when fewer do. Signatures of validators outside
 * genesis, bad ones, and any beyond f+1 are left out: a certificate this validator stores as
 * verified, serves to API clients and peers and puts into a block as its parentCommit must
 * hold nothing unchecked. Signers are tried once each, so the work is at most one Ed25519
 * verification per genesis validator.
 *
 * The result is built from fresh arrays (blockHash a copy of `hash`, each signature copied):
 * a decoded certificate's arrays are views into the received frame (Reader.raw on a Buffer),
 * and a stored certificate sits in the store's caches, where a view would keep a frame of up
 * to several MB alive for one 32-byte hash.
 */
export function trimmedCertificate(
  cert: CommitCertificate,
  height: bigint,
  hash: Uint8Array,
  validatorPublicKeys: readonly Uint8Array[],
  f: number,
): CommitCertificate | null {
  if (!Number.isInteger(f) || f < 0) return null;
  if (cert.height !== height || hash.length !== HASH_BYTES || !bytesEqual(cert.blockHash, hash)) return null;
  const msg = commitSigningBytes(height, hash);
  const tried = new Set<number>();
  const kept: CommitSignature[] = [];
  for (const s of cert.signatures) {
    if (kept.length === f + 1) break;
    const pk = validatorPublicKeys[s.validator];
    if (pk === undefined || tried.has(s.validator)) continue;
    tried.add(s.validator);
    if (s.signature.length !== SIGNATURE_BYTES || !verify(s.signature, msg, pk)) continue;
    kept.push({ validator: s.validator, signature: new Uint8Array(s.signature) });
  }
  if (kept.length < f + 1) return null;
  return { height, blockHash: new Uint8Array(hash), signatures: kept };
}

/**
 * Checks a certificate a peer sent for one of the heights we asked for, against our OWN
 * block hash at its height: f+1 distinct genesis validators' valid signatures of exactly
 * that (height, hash). Never throws. A certificate with more signatures than there are
 * validators, or one signer twice, is refused before any signature is checked: a faulty
 * peer must not buy up to COMMIT_SIGNATURES_MAX Ed25519 verifications with one certificate.
 * `ownHash`: the hash of our own block at a height (null: we have none there), read only
 * for a certificate that passed the cheap checks. The certificate returned holds only the
 * f+1 signatures that verified, in fresh arrays (trimmedCertificate).
 */
export async function checkRepairedCertificate(
  raw: Uint8Array,
  requested: ReadonlySet<bigint>,
  ownHash: (height: bigint) => Promise<Uint8Array | null>,
  validatorPublicKeys: Uint8Array[],
  f: number,
): Promise<
  { ok: true; cert: CommitCertificate } | { ok: false; height: bigint | null; reason: CertRefusal }
> {
  const d = decodeCommitCertificate(raw);
  if (!d.ok) return { ok: false, height: null, reason: 'undecodable' };
  const cert = d.value;
  if (!requested.has(cert.height)) return { ok: false, height: cert.height, reason: 'not-requested' };
  if (cert.signatures.length > validatorPublicKeys.length) {
    return { ok: false, height: cert.height, reason: 'too-many-signatures' };
  }
  const signers = new Set<number>();
  for (const s of cert.signatures) {
    if (signers.has(s.validator)) return { ok: false, height: cert.height, reason: 'duplicate-signer' };
    signers.add(s.validator);
  }
  const own = await ownHash(cert.height);
  const kept = own === null ? null : trimmedCertificate(cert, cert.height, own, validatorPublicKeys, f);
  if (kept === null) return { ok: false, height: cert.height, reason: 'does-not-certify' };
  return { ok: true, cert: kept };
}

/** Heights one certs-response answers at most (a request may ask for CERTS_PER_REQUEST_MAX). */
export const CERTS_SERVED_PER_REQUEST_MAX = 64;
/** certs-requests served per peer and second, by default; an honest peer sends one per 200 ms at most. */
export const CERT_REQUESTS_SERVED_PER_SEC = 10;
/** Heights looked up for one peer per second, by default: an honest peer asks for 64 per 200 ms at most. */
export const CERT_HEIGHTS_SERVED_PER_SEC = 320;

export interface CertServeLimits {
  /** certs-requests served per peer and window; more are dropped unanswered. */
  requestsPerWindowMax: number;
  /** Heights looked up per peer and window (each may be a point read). */
  heightsPerWindowMax: number;
  /** The window, ms. */
  windowMs: number;
}

/**
 * How much of peers' certs-requests this validator serves: per peer, at most
 * requestsPerWindowMax requests and heightsPerWindowMax heights per window, and at most
 * CERTS_SERVED_PER_REQUEST_MAX heights of one request. Counting requests alone would let a
 * peer buy 128 reads with each. Peers are genesis validators, so the map holds at most n.
 */
export class CertServeBudget {
  private readonly windows = new Map<number, { startMs: number; requests: number; heights: number }>();

  constructor(private readonly limits: CertServeLimits) {}

  /** How many of the `asked` heights to look up for `peer` now; 0: drop the request. */
  take(peer: number, asked: number, nowMs: number): number {
    let w = this.windows.get(peer);
    if (w === undefined || nowMs - w.startMs >= this.limits.windowMs) {
      w = { startMs: nowMs, requests: 0, heights: 0 };
      this.windows.set(peer, w);
    }
    const heightsLeft = this.limits.heightsPerWindowMax - w.heights;
    if (w.requests >= this.limits.requestsPerWindowMax || heightsLeft <= 0) return 0;
    const n = Math.max(0, Math.min(asked, CERTS_SERVED_PER_REQUEST_MAX, heightsLeft));
    w.requests++;
    w.heights += n;
    return n;
  }
}
