// Ed25519 verification of many signatures at once, off the event loop.
//
// Why a pool of worker threads and not node:crypto's callback form: the callback form
// hands every signature to libuv's thread pool on its own, and the hand-off measured
// 130-150 us of CPU per signature against 80 us for the synchronous call (this 2-core VM,
// `verifyAsync` before it was removed), so under saturation intake got 1.6x costlier per
// tx. Here a job carries up to JOB_SIGNATURES_MAX signatures in packed, transferred
// buffers: one message each way per job. Few signatures are checked inline, where a
// hand-off would cost more than it saves.
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { bytesEqual } from './codec/binary.js';
import { PUBLIC_KEY_BYTES, SIGNATURE_BYTES, verify, verifyParts } from './keys.js';
import type { VerifyAnswer, VerifyJob } from './verify-worker.js';

/**
 * One signature to check, over a message given whole or in two parts. A tx signs a domain tag
 * followed by its encoding (ledger/tx.ts): in two parts, a job packs them straight from the
 * tx and no check needs the joined message as an array of its own (a ~180-byte buffer per tx,
 * allocated, accounted and freed, only to be copied again). A union, not an optional prefix,
 * so a verifier that reads `message` alone does not compile (it would drop the domain tag).
 */
export type SignatureCheck = WholeMessageCheck | SplitMessageCheck;

interface WholeMessageCheck {
  signature: Uint8Array;
  message: Uint8Array;
  messagePrefix?: undefined;
  messageBody?: undefined;
  publicKey: Uint8Array;
}

/** The signed message is messagePrefix followed by messageBody. */
interface SplitMessageCheck {
  signature: Uint8Array;
  message?: undefined;
  messagePrefix: Uint8Array;
  messageBody: Uint8Array;
  publicKey: Uint8Array;
}

/** Below this many signatures a call verifies inline (a job's round trip costs about two verifications). */
export const INLINE_SIGNATURES_MAX = 8;
/** Signatures per job: big enough to amortise a message, small enough to spread over workers. */
const JOB_SIGNATURES_MAX = 64;
const WORKER_URL = new URL('./verify-worker.js', import.meta.url);

/** Verifies one check on this thread (also for a BatchVerifier of one's own). */
export function verifyCheck(c: SignatureCheck): boolean {
  return c.message !== undefined
    ? verify(c.signature, c.message, c.publicKey)
    : verifyParts(c.signature, c.messagePrefix, c.messageBody, c.publicKey);
}

const inline = (checks: readonly SignatureCheck[]): boolean[] => checks.map(verifyCheck);

/** A malformed check can never verify; the worker is only given well-sized ones. */
const wellSized = (c: SignatureCheck): boolean =>
  c.signature.length === SIGNATURE_BYTES && c.publicKey.length === PUBLIC_KEY_BYTES;

/** A check a worker holds: its job's answer carries the verdict at `index`. */
interface InFlight {
  readonly check: SignatureCheck;
  readonly job: Promise<Uint8Array | null>;
  readonly index: number;
  /** Its signatureKey. */
  readonly key: number;
}

/**
 * Map key of a check in flight: 30 bits of its signature (of R and of S), a small integer, so
 * no string per check (a 64-char latin1 string each, ~16 MB over a benchmark run). Two checks
 * with the same key are the same only if sameCheck says so; a different one under the key
 * (a collision, or one crafted to collide) is simply verified itself, and the key then names
 * the newer check: no chains, so colliding keys cost nothing but a missed share.
 */
const signatureKey = (s: Uint8Array): number =>
  ((s[0]! | (s[1]! << 8) | (s[2]! << 16) | (s[3]! << 24)) ^
    (s[32]! | (s[33]! << 8) | (s[34]! << 16) | (s[35]! << 24))) &
  0x3fffffff;

const EMPTY = new Uint8Array(0);

/** Same signature, key and message (given the same way: another way only loses a share). */
const sameCheck = (a: SignatureCheck, b: SignatureCheck): boolean =>
  bytesEqual(a.signature, b.signature) &&
  bytesEqual(a.publicKey, b.publicKey) &&
  bytesEqual(a.message ?? a.messageBody, b.message ?? b.messageBody) &&
  bytesEqual(a.messagePrefix ?? EMPTY, b.messagePrefix ?? EMPTY);

export class VerifyPool {
  private readonly workers: Worker[] = [];
  /**
   * Checks handed to a worker and not answered yet, by signature. Bounded by the jobs in
   * flight: an entry leaves when its job answers (or the pool fails).
   */
  private readonly inFlight = new Map<number, InFlight>();
  private readonly pending = new Map<number, (ok: Uint8Array | null) => void>();
  private readonly load: number[] = [];
  private nextId = 1;
  private broken = false;
  private verifiedCount = 0;

  /** `threads` workers (default: one per core but one, at least one). */
  constructor(readonly threads = Math.max(1, os.availableParallelism() - 1)) {}

  private start(): void {
    for (let i = 0; i < this.threads; i++) {
      const w = new Worker(WORKER_URL);
      // An idle worker must not keep a process alive that has nothing else to do; a busy one
      // must (a caller awaiting its answer may have nothing else keeping the loop running).
      w.unref();
      w.on('message', (a: VerifyAnswer) => {
        this.load[i] = (this.load[i] ?? 1) - 1;
        if (this.load[i] === 0) w.unref();
        const done = this.pending.get(a.id);
        this.pending.delete(a.id);
        done?.(a.ok);
      });
      // A dead worker takes its jobs with it: they (and all later calls) verify inline.
      w.on('error', () => this.fail());
      w.on('exit', () => this.fail());
      this.workers.push(w);
      this.load.push(0);
    }
  }

  private fail(): void {
    this.broken = true;
    const waiting = [...this.pending.values()];
    this.pending.clear();
    for (const done of waiting) done(null);
  }

  /** Signatures this pool verified, in workers or inline (not those answered by sharing). */
  get signaturesVerified(): number {
    return this.verifiedCount;
  }

  /**
   * One verdict per check, in order. Never rejects: a check that cannot verify is false.
   * A check identical to one a worker holds already (same signature, key and message) waits
   * for that verdict instead of being verified twice: a follower gets a tx both in the
   * leader's PREPARE and by gossip, and under load the block's precheck often asked while
   * the gossip's verification still sat in a worker's queue (measured: followers verified
   * 1.3 signatures per committed tx, the leader 1.0).
   */
  async verifyMany(checks: readonly SignatureCheck[]): Promise<boolean[]> {
    if (this.broken) {
      this.verifiedCount += checks.length;
      return inline(checks);
    }
    const out = new Array<boolean>(checks.length).fill(false);
    // Parallel arrays: check waitAt[k] takes its verdict from waitOn[k] (no pair per check).
    const waitAt: number[] = [];
    const waitOn: InFlight[] = [];
    const fresh: number[] = [];
    for (let i = 0; i < checks.length; i++) {
      const c = checks[i] as SignatureCheck;
      if (!wellSized(c)) continue;
      const f = this.inFlight.get(signatureKey(c.signature));
      if (f !== undefined && sameCheck(f.check, c)) {
        waitAt.push(i);
        waitOn.push(f);
      } else fresh.push(i);
    }
    this.verifiedCount += fresh.length;
    if (fresh.length <= INLINE_SIGNATURES_MAX) {
      for (const i of fresh) out[i] = verifyCheck(checks[i] as SignatureCheck);
    } else {
      if (this.workers.length === 0) this.start();
      for (let from = 0; from < fresh.length; from += JOB_SIGNATURES_MAX) {
        const to = Math.min(fresh.length, from + JOB_SIGNATURES_MAX);
        const jobChecks: SignatureCheck[] = [];
        for (let k = from; k < to; k++) jobChecks.push(checks[fresh[k] as number] as SignatureCheck);
        const job = this.run(jobChecks);
        const entries: InFlight[] = [];
        for (let index = 0; index < jobChecks.length; index++) {
          const check = jobChecks[index] as SignatureCheck;
          const f: InFlight = { check, job, index, key: signatureKey(check.signature) };
          entries.push(f);
          waitAt.push(fresh[from + index] as number);
          waitOn.push(f);
          this.inFlight.set(f.key, f);
        }
        void job.then(() => {
          for (const f of entries) if (this.inFlight.get(f.key) === f) this.inFlight.delete(f.key);
        });
      }
    }
    if (waitAt.length === 0) return out;
    const jobs = [...new Set(waitOn.map((f) => f.job))];
    const answers = await Promise.all(jobs);
    const answerOf = new Map(jobs.map((j, k) => [j, answers[k] ?? null]));
    for (let k = 0; k < waitAt.length; k++) {
      const i = waitAt[k] as number;
      const f = waitOn[k] as InFlight;
      const ok = answerOf.get(f.job) ?? null;
      out[i] = ok === null ? verifyCheck(checks[i] as SignatureCheck) : ok[f.index] === 1;
    }
    return out;
  }

  private run(checks: readonly SignatureCheck[]): Promise<Uint8Array | null> {
    const n = checks.length;
    const signatures = new Uint8Array(n * SIGNATURE_BYTES);
    const keys = new Uint8Array(n * PUBLIC_KEY_BYTES);
    const ends = new Uint32Array(n);
    let size = 0;
    for (let i = 0; i < n; i++) {
      const c = checks[i] as SignatureCheck;
      size += c.message !== undefined ? c.message.length : c.messagePrefix.length + c.messageBody.length;
      ends[i] = size;
    }
    // Fresh arrays, never views: their buffers are transferred (detached here).
    const messages = new Uint8Array(size);
    let at = 0;
    for (let i = 0; i < n; i++) {
      const c = checks[i] as SignatureCheck;
      signatures.set(c.signature, i * SIGNATURE_BYTES);
      keys.set(c.publicKey, i * PUBLIC_KEY_BYTES);
      if (c.message !== undefined) {
        messages.set(c.message, at);
        at += c.message.length;
      } else {
        messages.set(c.messagePrefix, at);
        messages.set(c.messageBody, at + c.messagePrefix.length);
        at += c.messagePrefix.length + c.messageBody.length;
      }
    }
    // The least loaded worker takes the job.
    let w = 0;
    for (let i = 1; i < this.workers.length; i++) if ((this.load[i] ?? 0) < (this.load[w] ?? 0)) w = i;
    if ((this.load[w] ?? 0) === 0) this.workers[w]!.ref();
    this.load[w] = (this.load[w] ?? 0) + 1;
    const id = this.nextId++;
    const job: VerifyJob = { id, signatures, keys, messages, ends };
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.workers[w]!.postMessage(job, [signatures.buffer, keys.buffer, messages.buffer, ends.buffer]);
    });
  }

  /** Stops the workers (tests; a process may simply exit). */
  async close(): Promise<void> {
    const ws = this.workers.splice(0);
    this.broken = true;
    await Promise.all(ws.map((w) => w.terminate()));
  }
}

let shared: VerifyPool | null = null;

/** The process's pool, started on first use of a call big enough to need it. */
export function verifyMany(checks: readonly SignatureCheck[]): Promise<boolean[]> {
  shared ??= new VerifyPool();
  return shared.verifyMany(checks);
}
