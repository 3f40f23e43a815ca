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

export class VerifyPool {
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<number, (ok: Uint8Array | null) => void>();
  private readonly load: number[] = [];
  private nextId = 1;
  private broken = false;

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

  /** One verdict per check, in order. Never rejects: a check that cannot verify is false. */
  async verifyMany(checks: readonly SignatureCheck[]): Promise<boolean[]> {
    if (checks.length <= INLINE_SIGNATURES_MAX || this.broken) return inline(checks);
    if (this.workers.length === 0) this.start();
    const out = new Array<boolean>(checks.length).fill(false);
    const jobs: Promise<void>[] = [];
    const sized: number[] = [];
    checks.forEach((c, i) => {
      if (wellSized(c)) sized.push(i);
    });
    for (let from = 0; from < sized.length; from += JOB_SIGNATURES_MAX) {
      const idx = sized.slice(from, from + JOB_SIGNATURES_MAX);
      jobs.push(
        this.run(idx.map((i) => checks[i] as SignatureCheck)).then((ok) => {
          idx.forEach((i, k) => {
            out[i] =
              ok === null
                ? verify(checks[i]!.signature, checks[i]!.message, checks[i]!.publicKey)
                : ok[k] === 1;
          });
        }),
      );
    }
    await Promise.all(jobs);
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
