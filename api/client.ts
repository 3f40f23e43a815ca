// Typed client for the node's REST API. Paths, inputs and outputs come from the route
// table (api/routes.ts) and its zod schemas, so the client cannot drift from the server;
// responses are checked against the schemas too (turn off with validate: false).
// Used by the CLI, the tests and the benchmark. Needs only global fetch (Node 20).
import type { z } from 'zod';
import { type SignedTx, type TxJson, txToJson } from '../ledger/tx.js';
import type { ApiErrorCode } from './errors.js';
import { type RouteName, type Routes, routes } from './routes.js';
import { ErrorBody } from './schemas.js';

type Field<D, K extends string> = D extends { [P in K]: infer S extends z.ZodType } ? S : never;

export type RouteInput<N extends RouteName> = ([Field<Routes[N], 'params'>] extends [never]
  ? unknown
  : { params: z.input<Field<Routes[N], 'params'>> }) &
  ([Field<Routes[N], 'querystring'>] extends [never]
    ? unknown
    : { query?: Partial<z.input<Field<Routes[N], 'querystring'>>> }) &
  ([Field<Routes[N], 'body'>] extends [never] ? unknown : { body: z.input<Field<Routes[N], 'body'>> });

export type RouteOutput<N extends RouteName> = Routes[N]['response'] extends {
  200: infer S extends z.ZodType;
}
  ? z.output<S>
  : unknown;

/** A non-2xx answer, with the server's typed error. */
export class ApiRequestError extends Error {
  override readonly name = 'ApiRequestError';
  constructor(
    readonly status: number,
    readonly code: ApiErrorCode | 'bad-response',
    message: string,
    readonly field?: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

export interface ApiClientOptions {
  /** Per-request timeout (default 30 s; commit-mode submissions add their own wait). */
  timeoutMs?: number;
  /** Check every response against its schema (default true). */
  validate?: boolean;
  fetch?: typeof fetch;
}

export type BlockEvent = RouteOutput<'getBlockByHeight'>['header'];
export type AccountTxEvent = RouteOutput<'listAccountTxs'>['txs'][number];

export class ApiClient {
  readonly baseUrl: string;
  private readonly timeoutMs: number;
  private readonly validate: boolean;
  private readonly fetchFn: typeof fetch;

  constructor(baseUrl: string, opts: ApiClientOptions = {}) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.validate = opts.validate ?? true;
    this.fetchFn = opts.fetch ?? fetch;
  }

  /** Calls any route of the table by name. */
  async call<N extends RouteName>(
    name: N,
    input: RouteInput<N>,
    timeoutMs = this.timeoutMs,
  ): Promise<RouteOutput<N>> {
    const def = routes[name];
    const inp = input as { params?: Record<string, string>; query?: Record<string, unknown>; body?: unknown };
    let path: string = def.url;
    for (const [k, v] of Object.entries(inp.params ?? {}))
      path = path.replace(`:${k}`, encodeURIComponent(v));
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(inp.query ?? {})) if (v !== undefined) qs.set(k, String(v));
    const url = `${this.baseUrl}${path}${qs.size > 0 ? `?${qs}` : ''}`;
    const res = await this.fetchFn(url, {
      method: def.method,
      headers: inp.body === undefined ? {} : { 'content-type': 'application/json' },
      ...(inp.body === undefined ? {} : { body: JSON.stringify(inp.body) }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new ApiRequestError(res.status, 'bad-response', `non-JSON answer (${res.status}) from ${url}`);
    }
    if (!res.ok) {
      const e = ErrorBody.safeParse(json);
      if (!e.success)
        throw new ApiRequestError(res.status, 'bad-response', `untyped error ${res.status}: ${text}`);
      const retry = res.headers.get('retry-after');
      throw new ApiRequestError(
        res.status,
        e.data.error.code,
        e.data.error.message,
        e.data.error.field,
        retry === null ? undefined : Number(retry) * 1000,
      );
    }
    const schema = (def.response as Record<number, z.ZodType>)[res.status];
    if (!this.validate || schema === undefined) return json as RouteOutput<N>;
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      throw new ApiRequestError(
        res.status,
        'bad-response',
        `${name}: response violates schema: ${parsed.error.message}`,
      );
    }
    return parsed.data as RouteOutput<N>;
  }

  /** Submits a tx given as encoded bytes, a SignedTx or its JSON. Commit mode waits for the block. */
  submitTx(
    tx: Uint8Array | SignedTx | TxJson,
    opts: { mode?: 'async' | 'commit'; timeoutMs?: number } = {},
  ): Promise<RouteOutput<'submitTx'>> {
    const mode = opts.mode ?? 'async';
    const wait = mode === 'commit' ? (opts.timeoutMs ?? 10_000) : 0;
    return this.call(
      'submitTx',
      {
        body: {
          tx: txBody(tx),
          mode,
          ...(opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs }),
        },
      },
      this.timeoutMs + wait,
    );
  }

  /**
   * Submits many txs in one request (POST /v1/txs/batch, async). The answer has one result
   * per tx, in order: `{ hash, status }` or `{ error: { code, message, field? } }` with the
   * code POST /v1/txs would give; `retryAfterMs` is set when some were refused as
   * mempool-full or unavailable. Only whole-request problems throw (empty, too many, too large).
   */
  submitTxs(txs: readonly (Uint8Array | SignedTx | TxJson)[]): Promise<RouteOutput<'submitTxs'>> {
    return this.call('submitTxs', { body: { txs: txs.map(txBody), mode: 'async' } });
  }

  tx(hash: string): Promise<RouteOutput<'getTx'>> {
    return this.call('getTx', { params: { hash } });
  }
  status(): Promise<RouteOutput<'getStatus'>> {
    return this.call('getStatus', {});
  }
  health(): Promise<RouteOutput<'getHealth'>> {
    return this.call('getHealth', {});
  }
  ready(): Promise<RouteOutput<'getReady'>> {
    return this.call('getReady', {});
  }
  latestBlock(): Promise<RouteOutput<'getLatestBlock'>> {
    return this.call('getLatestBlock', {});
  }
  block(height: number | bigint): Promise<RouteOutput<'getBlockByHeight'>> {
    return this.call('getBlockByHeight', { params: { height: String(height) } });
  }
  blockByHash(hash: string): Promise<RouteOutput<'getBlockByHash'>> {
    return this.call('getBlockByHash', { params: { hash } });
  }
  blocks(query: { before?: number; limit?: number } = {}): Promise<RouteOutput<'listBlocks'>> {
    return this.call('listBlocks', {
      query: {
        ...(query.before === undefined ? {} : { before: String(query.before) }),
        ...(query.limit === undefined ? {} : { limit: query.limit }),
      },
    });
  }
  account(address: string): Promise<RouteOutput<'getAccount'>> {
    return this.call('getAccount', { params: { address } });
  }
  accountTxs(
    address: string,
    query: { cursor?: string; limit?: number } = {},
  ): Promise<RouteOutput<'listAccountTxs'>> {
    return this.call('listAccountTxs', { params: { address }, query });
  }
  kv(keyHex: string): Promise<RouteOutput<'getKv'>> {
    return this.call('getKv', { params: { key: keyHex } });
  }
  kvHistory(keyHex: string, query: { limit?: number } = {}): Promise<RouteOutput<'getKvHistory'>> {
    return this.call('getKvHistory', { params: { key: keyHex }, query });
  }
  kvList(query: { prefix?: string; after?: string; limit?: number } = {}): Promise<RouteOutput<'listKv'>> {
    return this.call('listKv', { query });
  }
  validators(): Promise<RouteOutput<'getValidators'>> {
    return this.call('getValidators', {});
  }
  genesis(): Promise<unknown> {
    return this.call('getGenesis', {});
  }

  /**
   * Follows GET /v1/stream/blocks (Server-Sent Events) until the signal aborts.
   * Calls onBlock per new block header and, with `account`, onTx per tx of that account.
   */
  async streamBlocks(opts: {
    signal: AbortSignal;
    onBlock: (b: BlockEvent) => void;
    account?: string;
    onTx?: (t: AccountTxEvent) => void;
  }): Promise<void> {
    const qs = opts.account === undefined ? '' : `?account=${opts.account}`;
    const res = await this.fetchFn(`${this.baseUrl}/v1/stream/blocks${qs}`, {
      signal: opts.signal,
      headers: { accept: 'text/event-stream' },
    });
    if (!res.ok || res.body === null) {
      const body = ErrorBody.safeParse(await res.json().catch(() => null));
      throw new ApiRequestError(
        res.status,
        body.success ? body.data.error.code : 'bad-response',
        body.success ? body.data.error.message : `stream refused (${res.status})`,
      );
    }
    const decoder = new TextDecoder();
    let buf = '';
    try {
      for await (const chunk of res.body) {
        buf += decoder.decode(chunk as Uint8Array, { stream: true });
        for (let end = buf.indexOf('\n\n'); end >= 0; end = buf.indexOf('\n\n')) {
          const frame = buf.slice(0, end);
          buf = buf.slice(end + 2);
          let event = 'message';
          let data = '';
          for (const line of frame.split('\n')) {
            if (line.startsWith('event: ')) event = line.slice(7);
            else if (line.startsWith('data: ')) data += line.slice(6);
          }
          if (data === '') continue;
          if (event === 'block') opts.onBlock(JSON.parse(data) as BlockEvent);
          else if (event === 'tx') opts.onTx?.(JSON.parse(data) as AccountTxEvent);
        }
      }
    } catch (e) {
      if (!opts.signal.aborted) throw e;
    }
  }
}

/** A tx as the submit routes take it: encoded bytes as hex, or the tx as JSON. */
function txBody(tx: Uint8Array | SignedTx | TxJson): string | TxJson {
  if (tx instanceof Uint8Array) return Buffer.from(tx.buffer, tx.byteOffset, tx.byteLength).toString('hex');
  return 'signature' in tx && tx.signature instanceof Uint8Array ? txToJson(tx as SignedTx) : (tx as TxJson);
}
