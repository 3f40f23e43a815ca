// What every drill checks after its fault: the network commits again, every validator
// ends with the same chain, and no acknowledged transaction is lost. Each check reads
// the validators' public API only, as an operator's monitoring would.

import { ApiClient } from '../../api/client.js';
import type { AckedTx } from './load.js';
import { sleep } from './load.js';

const client = (url: string): ApiClient => new ApiClient(url, { timeoutMs: 3000 });

export async function chainIdOf(url: string): Promise<string> {
  return (await client(url).status()).chainId;
}

async function latestHeader(url: string): Promise<{ height: number; timestampMs: number } | null> {
  try {
    const b = await client(url).latestBlock();
    return { height: b.header.height, timestampMs: b.header.timestampMs };
  } catch {
    return null;
  }
}

export async function heightOf(url: string): Promise<number | null> {
  try {
    return (await client(url).status()).height;
  } catch {
    return null;
  }
}

export async function leaderOf(url: string): Promise<number> {
  return (await client(url).status()).leader;
}

/**
 * Waits until one of `urls` has committed a block proposed at or after `tMs` (block
 * timestamps are the proposing leader's clock; every validator here shares one clock).
 * Returns the wall-clock time it was seen, or null on timeout.
 */
export async function waitForBlockProposedAfter(
  urls: string[],
  tMs: number,
  timeoutMs: number,
): Promise<number | null> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const heads = await Promise.all(urls.map(latestHeader));
    if (heads.some((h) => h !== null && h.timestampMs >= tMs)) return Date.now();
    await sleep(50);
  }
  return null;
}

/** Waits until validator `url` reaches `height`; returns the time it did, or null on timeout. */
export async function waitForHeight(url: string, height: number, timeoutMs: number): Promise<number | null> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const h = await heightOf(url);
    if (h !== null && h >= height) return Date.now();
    await sleep(100);
  }
  return null;
}

export interface Convergence {
  ok: boolean;
  height: number;
  heights: Array<number | null>;
  tipHashes: Array<string | null>;
}

/** Waits (load stopped) until every validator reports the same height and tip hash twice in a row. */
export async function waitForConvergence(urls: string[], timeoutMs: number): Promise<Convergence> {
  const deadline = Date.now() + timeoutMs;
  let last: Convergence = { ok: false, height: 0, heights: [], tipHashes: [] };
  let stableRounds = 0;
  while (Date.now() < deadline) {
    const st = await Promise.all(
      urls.map((u) =>
        client(u)
          .status()
          .catch(() => null),
      ),
    );
    const heights = st.map((s) => s?.height ?? null);
    const tipHashes = st.map((s) => s?.latestBlockHash ?? null);
    const same = st.every(
      (s) => s !== null && s.height === st[0]?.height && s.latestBlockHash === st[0]?.latestBlockHash,
    );
    const prevSame = last.ok && last.height === heights[0] && last.tipHashes[0] === tipHashes[0];
    last = { ok: same, height: heights[0] ?? 0, heights, tipHashes };
    stableRounds = same && prevSame ? stableRounds + 1 : same ? 1 : 0;
    if (stableRounds >= 2) return last;
    await sleep(300);
  }
  return { ...last, ok: false };
}

export interface ChainComparison {
  identical: boolean;
  heightsCompared: number[];
  mismatches: string[];
}

/**
 * Compares block hash and state digest of every validator at a few heights up to `height`
 * (the tip, the middle and the first block). With hash-chained headers, equal tips imply
 * equal chains; the extra heights catch a store that serves a different history.
 */
export async function compareChains(urls: string[], height: number): Promise<ChainComparison> {
  const heights = [...new Set([1, Math.max(1, Math.floor(height / 2)), height])].filter(
    (h) => h >= 1 && h <= height,
  );
  const mismatches: string[] = [];
  for (const h of heights) {
    const blocks = await Promise.all(
      urls.map((u) =>
        client(u)
          .block(h)
          .catch(() => null),
      ),
    );
    const ref = blocks[0];
    blocks.forEach((b, i) => {
      if (!b || !ref) mismatches.push(`height ${h}: validator ${i} has no block`);
      else if (b.header.hash !== ref.header.hash || b.header.stateDigest !== ref.header.stateDigest) {
        mismatches.push(
          `height ${h}: validator ${i} has ${b.header.hash}, validator 0 has ${ref.header.hash}`,
        );
      }
    });
  }
  return { identical: mismatches.length === 0 && heights.length > 0, heightsCompared: heights, mismatches };
}

export interface AckCheck {
  checked: number;
  /** Acknowledged txs the validator answered for as not committed, or at another height. */
  lost: number;
  /** Acknowledged txs the validator did not answer for at all, after retries. */
  unanswered: number;
  examples: string[];
}

const ACK_QUERY_ATTEMPTS = 3;

/** Every acknowledged tx must be committed on validator `url` at the height the ack named. */
export async function verifyAcked(url: string, acked: AckedTx[], concurrency = 8): Promise<AckCheck> {
  const c = new ApiClient(url, { timeoutMs: 10_000 });
  const examples: string[] = [];
  let lost = 0;
  let unanswered = 0;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < acked.length) {
      const a = acked[next++]!;
      let problem: string | null = null;
      let answered = false;
      for (let attempt = 0; attempt < ACK_QUERY_ATTEMPTS && !answered; attempt++) {
        try {
          const r = await c.tx(a.hash);
          answered = true;
          if (r.status !== 'committed')
            problem = `${a.hash} acknowledged at height ${a.height} but is ${r.status}`;
          else if (r.location?.height !== a.height) {
            problem = `${a.hash} acknowledged at height ${a.height}, found at ${r.location?.height}`;
          }
        } catch (e) {
          // A slow answer is not a lost tx: ask again before giving up on it.
          problem = `${a.hash}: no answer (${(e as Error).message})`;
          await sleep(200 * (attempt + 1));
        }
      }
      if (problem) {
        if (answered) lost++;
        else unanswered++;
        if (examples.length < 5) examples.push(problem);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { checked: acked.length, lost, unanswered, examples };
}
