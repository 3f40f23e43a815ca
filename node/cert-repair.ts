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
import { type CommitCertificate, certifies, decodeCommitCertificate } from '../ledger/block.js';
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
}

export const CERT_REPAIR_DEFAULTS: CertRepairOptions = {
  settleHeights: 4,
  idleMs: 1000,
  graceMs: 2000,
  startScanHeights: 4096,
  scanPerTickMax: 512,
  missingMax: 4096,
  heightsPerRequestMax: 64,
  requestIntervalMs: 200,
  requestTimeoutMs: 2000,
  retryMsMin: 1000,
  backoffMsMax: 30_000,
};

interface Missing {
  /** Not asked for before this time (monotonic ms): the grace period, then backoff. */
  dueMs: number;
  /** Requests that did not bring it (unanswered, left out, or refused). */
  attempts: number;
  /** The peer asked last, so that a retry goes to another one when there is one. */
  lastPeer: number | null;
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

  constructor(tip: bigint, nowMs: number, opts: Partial<CertRepairOptions> = {}) {
    this.o = { ...CERT_REPAIR_DEFAULTS, ...opts };
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
        this.missing.set(h, { dueMs: nowMs + this.o.graceMs, attempts: 0, lastPeer: null });
      this.checkedUpTo = h;
    }
  }

  /** A certificate for `height` is stored (repaired, formed late, or from state transfer). */
  resolved(height: bigint): void {
    this.missing.delete(height);
  }

  /**
   * The next request to send, or null: at most one per requestIntervalMs, one outstanding per
   * peer, the lowest due heights first, each preferably to a peer other than the one asked
   * last. `connected`: peers with a channel now. Heights that got a certificate meanwhile are
   * dropped here (`hasCertificate`), not asked for.
   */
  nextRequest(
    nowMs: number,
    connected: readonly number[],
    hasCertificate: (height: bigint) => boolean,
  ): CertRequest | null {
    this.expire(nowMs);
    if (this.missing.size === 0 || nowMs - this.lastRequestMs < this.o.requestIntervalMs) return null;
    const free = connected.filter((p) => !this.outstanding.has(p));
    if (free.length === 0) return null;
    const inFlight = new Set<bigint>();
    for (const r of this.outstanding.values()) for (const h of r.heights) inFlight.add(h);
    const due: bigint[] = [];
    for (const [h, m] of this.missing) if (m.dueMs <= nowMs && !inFlight.has(h)) due.push(h);
    if (due.length === 0) return null;
    due.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    // Rotate over free peers; the first one that is not the last asked of the lowest due
    // height takes the request (with a single peer, that peer).
    let peer = free[this.peerCursor % free.length] as number;
    const lowest = this.missing.get(due[0] as bigint) as Missing;
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
    for (const h of heights) (this.missing.get(h) as Missing).lastPeer = peer;
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

  /** A height asked for came back without a usable certificate: back off, then ask another peer. */
  failed(height: bigint, nowMs: number): void {
    const m = this.missing.get(height);
    if (m === undefined) return;
    m.attempts++;
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
 * Checks a certificate a peer sent for one of the heights we asked for, against our OWN
 * block hash at its height: f+1 distinct genesis validators' valid signatures of exactly
 * that (height, hash). Never throws. A certificate with more signatures than there are
 * validators, or one signer twice, is refused before any signature is checked: a faulty
 * peer must not buy up to COMMIT_SIGNATURES_MAX Ed25519 verifications with one certificate.
 * `ownHash`: the hash of our own block at a height (null: we have none there), read only
 * for a certificate that passed the cheap checks.
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
  if (own === null || !certifies(cert, cert.height, own, validatorPublicKeys, f)) {
    return { ok: false, height: cert.height, reason: 'does-not-certify' };
  }
  return { ok: true, cert };
}
