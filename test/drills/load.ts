// Steady transaction load for drills: signed kv.put transactions, each from a fresh key
// (nonce 1), so a transaction lost or delayed by a fault never blocks the ones after it.
// Submitted in commit mode round-robin to the validators that are up: a transaction
// counts as acknowledged only when an API answered "committed" with its location,
// which is exactly the promise the drills check is never broken.

import { ApiClient, ApiRequestError } from '../../api/client.js';
import { toHex } from '../../ledger/codec/binary.js';
import { generateKeyPair } from '../../ledger/keys.js';
import { encodeTx, signTx, txHash } from '../../ledger/tx.js';

export interface AckedTx {
  hash: string;
  height: number;
  index: number;
  /** Wall clock when the acknowledgement arrived. */
  atMs: number;
  via: number;
}

export interface LoadOptions {
  apiUrls: string[];
  chainId: string;
  ratePerSec: number;
  /** Requests in flight at most (each waits for its commit). */
  concurrency: number;
  /** Which validators may be sent to right now. */
  isUp: (i: number) => boolean;
  /** Commit wait per request, ms. */
  commitTimeoutMs?: number;
  /** Bound on remembered acknowledgements (a drill runs for seconds, so this is generous). */
  ackedMax?: number;
}

export interface LoadStats {
  submitted: number;
  acked: number;
  /** Answered but not committed within the wait (may still commit: not a loss). */
  pending: number;
  /** Refused or failed requests, by error code. */
  failed: Record<string, number>;
}

export class LoadGenerator {
  readonly acked: AckedTx[] = [];
  private readonly clients: ApiClient[];
  private running = false;
  private workers: Promise<void>[] = [];
  private seq = 0;
  private next = 0;
  private readonly stats: LoadStats = { submitted: 0, acked: 0, pending: 0, failed: {} };

  constructor(private readonly opts: LoadOptions) {
    this.clients = opts.apiUrls.map((u) => new ApiClient(u, { timeoutMs: 5000 }));
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    const interval = (1000 * this.opts.concurrency) / this.opts.ratePerSec;
    for (let w = 0; w < this.opts.concurrency; w++) this.workers.push(this.worker(interval, w));
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.workers);
    this.workers = [];
  }

  snapshot(): LoadStats {
    return { ...this.stats, failed: { ...this.stats.failed } };
  }

  /** Acknowledgements that arrived after `tMs`. */
  ackedSince(tMs: number): number {
    let c = 0;
    for (let i = this.acked.length - 1; i >= 0 && (this.acked[i]?.atMs ?? 0) > tMs; i--) c++;
    return c;
  }

  /** Resolves once `count` more acknowledgements than now have arrived, or rejects after timeoutMs. */
  async waitForAcks(count: number, timeoutMs: number): Promise<void> {
    const target = this.acked.length + count;
    const deadline = Date.now() + timeoutMs;
    while (this.acked.length < target) {
      if (Date.now() > deadline) {
        throw new Error(
          `only ${this.acked.length - target + count}/${count} acknowledgements in ${timeoutMs} ms`,
        );
      }
      await sleep(50);
    }
  }

  private pickTarget(): number | null {
    const n = this.clients.length;
    for (let k = 0; k < n; k++) {
      const i = (this.next + k) % n;
      if (this.opts.isUp(i)) {
        this.next = i + 1;
        return i;
      }
    }
    return null;
  }

  private async worker(intervalMs: number, offset: number): Promise<void> {
    await sleep((intervalMs * offset) / this.opts.concurrency);
    while (this.running) {
      const started = Date.now();
      await this.submitOne();
      const spent = Date.now() - started;
      if (spent < intervalMs) await sleep(intervalMs - spent);
    }
  }

  private async submitOne(): Promise<void> {
    const target = this.pickTarget();
    if (target === null) {
      await sleep(50);
      return;
    }
    const { encoded, hash } = makeIndependentTx(this.opts.chainId, `drill/${process.pid}/${this.seq++}`);
    this.stats.submitted++;
    try {
      const res = await this.clients[target]!.submitTx(encoded, {
        mode: 'commit',
        timeoutMs: this.opts.commitTimeoutMs ?? 4000,
      });
      if (res.status === 'committed' && res.location) {
        if (res.hash !== hash) throw new Error(`API answered for ${res.hash}, submitted ${hash}`);
        if (this.acked.length < (this.opts.ackedMax ?? 1_000_000)) {
          this.acked.push({
            hash,
            height: res.location.height,
            index: res.location.index,
            atMs: Date.now(),
            via: target,
          });
        }
        this.stats.acked++;
      } else {
        this.stats.pending++;
      }
    } catch (e) {
      // fetch() failing outright (TypeError) means the validator did not answer at all.
      const code =
        e instanceof ApiRequestError
          ? e.code
          : e instanceof TypeError
            ? 'unreachable'
            : e instanceof Error && e.name === 'TimeoutError'
              ? 'timeout'
              : 'other';
      this.stats.failed[code] = (this.stats.failed[code] ?? 0) + 1;
    }
  }
}

/** A signed kv.put from a fresh key (nonce 1): valid on its own, whatever else commits. */
export function makeIndependentTx(chainId: string, key: string): { encoded: Uint8Array; hash: string } {
  const keys = generateKeyPair();
  const tx = signTx(
    {
      chainId,
      from: keys.publicKey,
      nonce: 1n,
      payload: {
        type: 'kv.put',
        key: new TextEncoder().encode(key),
        value: new TextEncoder().encode('drill'),
      },
    },
    keys.secretKey,
  );
  const encoded = encodeTx(tx);
  return { encoded, hash: toHex(txHash(encoded)) };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
