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
import { PUBLIC_KEY_BYTES, SIGNATURE_BYTES, verify } from './keys.js';
import type { VerifyAnswer, VerifyJob } from './verify-worker.js';

export interface SignatureCheck {
  signature: Uint8Array;
  message: Uint8Array;
  publicKey: Uint8Array;
}

/** Below this many signatures a call verifies inline (a job's round trip costs about two verifications). */
export const INLINE_SIGNATURES_MAX = 8;
/** Signatures per job: big enough to amortise a message, small enough to spread over workers. */
const JOB_SIGNATURES_MAX = 64;
const WORKER_URL = new URL('./verify-worker.js', import.meta.url);

const inline = (checks: readonly SignatureCheck[]): boolean[] =>
  checks.map((c) => verify(c.signature, c.message, c.publicKey));

/** A malformed check can never verify; the worker is only given well-sized ones. */
const wellSized = (c: SignatureCheck): boolean =>
  c.signature.length === SIGNATURE_BYTES && c.publicKey.length === PUBLIC_KEY_BYTES;

/** A check a worker holds: its job's answer carries the verdict at `index`. */
interface InFlight {
  readonly check: SignatureCheck;
  readonly job: Promise<Uint8Array | null>;
  readonly index: number;
}

/** Map key of a check in flight: its signature (a forged copy must still match key and message). */
const signatureKey = (signature: Uint8Array): string =>
  Buffer.from(signature.buffer, signature.byteOffset, signature.byteLength).toString('latin1');

const sameCheck = (a: SignatureCheck, b: SignatureCheck): boolean =>
  bytesEqual(a.publicKey, b.publicKey) && bytesEqual(a.message, b.message);

export class VerifyPool {
  private readonly workers: Worker[] = [];
  /**
   * Checks handed to a worker and not answered yet, by signature. Bounded by the jobs in
   * flight: an entry leaves when its job answers (or the pool fails).
   */
  private readonly inFlight = new Map<string, InFlight>();
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
    const waits: { i: number; f: InFlight }[] = [];
    const fresh: number[] = [];
    checks.forEach((c, i) => {
      if (!wellSized(c)) return;
      const f = this.inFlight.get(signatureKey(c.signature));
      if (f !== undefined && sameCheck(f.check, c)) waits.push({ i, f });
      else fresh.push(i);
    });
    this.verifiedCount += fresh.length;
    if (fresh.length <= INLINE_SIGNATURES_MAX) {
      for (const i of fresh) out[i] = verify(checks[i]!.signature, checks[i]!.message, checks[i]!.publicKey);
    } else {
      if (this.workers.length === 0) this.start();
      for (let from = 0; from < fresh.length; from += JOB_SIGNATURES_MAX) {
        const idx = fresh.slice(from, from + JOB_SIGNATURES_MAX);
        const job = this.run(idx.map((i) => checks[i] as SignatureCheck));
        const entries = idx.map((i, index): [string, InFlight] => {
          const f: InFlight = { check: checks[i] as SignatureCheck, job, index };
          waits.push({ i, f });
          return [signatureKey(f.check.signature), f];
        });
        for (const [key, f] of entries) this.inFlight.set(key, f);
        void job.then(() => {
          for (const [key, f] of entries) if (this.inFlight.get(key) === f) this.inFlight.delete(key);
        });
      }
    }
    if (waits.length === 0) return out;
    const jobs = [...new Set(waits.map((w) => w.f.job))];
    const answers = await Promise.all(jobs);
    const answerOf = new Map(jobs.map((j, k) => [j, answers[k] ?? null]));
    for (const { i, f } of waits) {
      const ok = answerOf.get(f.job) ?? null;
      const c = checks[i] as SignatureCheck;
      out[i] = ok === null ? verify(c.signature, c.message, c.publicKey) : ok[f.index] === 1;
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
      size += checks[i]!.message.length;
      ends[i] = size;
    }
    const messages = new Uint8Array(size);
    checks.forEach((c, i) => {
      signatures.set(c.signature, i * SIGNATURE_BYTES);
      keys.set(c.publicKey, i * PUBLIC_KEY_BYTES);
      messages.set(c.message, i === 0 ? 0 : (ends[i - 1] as number));
    });
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
