// A small API client for tests and benchmarks: funded accounts from a testnet's
// accounts.json, signed transfers, submission and status.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { fromHex, toHex } from '../../ledger/codec/binary.js';
import { encodeTx, signTx } from '../../ledger/tx.js';

export interface Account {
  address: Uint8Array;
  secretKey: Uint8Array;
  /** Next nonce to use (tracked locally). */
  nonce: bigint;
}

export function loadAccounts(testnetDir: string): Account[] {
  const raw = JSON.parse(readFileSync(join(testnetDir, 'accounts.json'), 'utf8')) as {
    address: string;
    secretKey: string;
  }[];
  return raw.map((a) => ({ address: fromHex(a.address), secretKey: fromHex(a.secretKey), nonce: 1n }));
}

/** A signed transfer from `from` (consuming its next nonce), hex-encoded. */
export function transfer(
  chainId: string,
  from: Account,
  to: Uint8Array,
  amount: bigint,
): { hex: string; nonce: bigint } {
  const nonce = from.nonce++;
  const tx = signTx(
    { chainId, from: from.address, nonce, payload: { type: 'transfer', to, amount } },
    from.secretKey,
  );
  return { hex: toHex(encodeTx(tx)), nonce };
}

export interface SubmitResult {
  status: number;
  body: Record<string, unknown>;
}

/**
 * Keep-alive connections for submissions. node:http costs the load generator a fraction of
 * what fetch does per request, and in benchmarks the generator shares the CPU with the
 * validators it measures.
 */
const submitAgent = new http.Agent({ keepAlive: true, maxSockets: 512 });

export async function submit(
  apiUrl: string,
  txHex: string,
  mode: 'async' | 'commit' = 'async',
  timeoutMs?: number,
): Promise<SubmitResult> {
  const body = JSON.stringify({ tx: txHex, mode, ...(timeoutMs ? { timeoutMs } : {}) });
  return new Promise<SubmitResult>((resolve, reject) => {
    const req = http.request(
      `${apiUrl}/v1/txs`,
      {
        method: 'POST',
        agent: submitAgent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          try {
            const text = Buffer.concat(chunks).toString('utf8');
            resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> });
          } catch (e) {
            reject(e);
          }
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

export async function getJson(url: string): Promise<Record<string, unknown>> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status}`);
  return (await res.json()) as Record<string, unknown>;
}

/** A block's hash and state digest as validator `apiUrl` serves it (GET /v1/blocks/:height). */
export async function blockAt(
  apiUrl: string,
  height: number,
): Promise<{ hash: string; stateDigest: string }> {
  const b = await getJson(`${apiUrl}/v1/blocks/${height}`);
  const header = (b.header ?? b) as Record<string, unknown>;
  return { hash: String(b.hash ?? header.hash), stateDigest: String(header.stateDigest) };
}

export async function status(apiUrl: string): Promise<Record<string, unknown>> {
  return getJson(`${apiUrl}/v1/status`);
}

export async function waitFor(cond: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await cond()) return;
    } catch {
      // retry until the deadline
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Waits until every validator reports ready (consensus started, caught up). */
export async function waitAllReady(apiUrls: readonly string[], timeoutMs = 30_000): Promise<void> {
  await waitFor(
    async () =>
      (await Promise.all(apiUrls.map(async (u) => (await status(u)).ready === true))).every(Boolean),
    timeoutMs,
    'all validators ready',
  );
}

export async function heightOf(apiUrl: string): Promise<number> {
  return Number((await status(apiUrl)).height);
}

/** A Prometheus metric of one validator, summed over its series; null when it has none. */
export async function metric(apiUrl: string, name: string, label?: string): Promise<number | null> {
  const text = await (await fetch(`${apiUrl}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  let total: number | null = null;
  for (const line of text.split('\n')) {
    if (!(line.startsWith(`${name}{`) || line.startsWith(`${name} `))) continue;
    // With `label` (e.g. outcome="executed"), only the series that carry it.
    if (label !== undefined && !line.slice(0, line.lastIndexOf(' ')).includes(label)) continue;
    total = (total ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}
