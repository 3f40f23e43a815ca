// The hot half of POST /v1/txs/batch: reading its body and writing its answer. A batch of 64
// transfers is ~21 KB of hex; zod's per-item union, a regex per hex string, a decode into a
// pooled Buffer and a copy out of it, and an object per result rendered by JSON.stringify
// cost the route about as much per tx as the mempool's own intake (bench/api-batch.ts).
// What is here does the same work once per tx and answers byte for byte what the zod
// schema (api/schemas.ts SubmitTxsBody, which still documents the route) and
// JSON.stringify of the result objects would.
import type { FastifyRouteSchemaDef, FastifyValidationResult } from 'fastify/types/schema.js';
import { validatorCompiler } from 'fastify-type-provider-zod';
import type { z } from 'zod';
import type { ApiError } from './errors.js';
import type * as s from './schemas.js';

export type SubmitTxsBodyT = z.output<typeof s.SubmitTxsBody>;

const ENCODINGS = new Set<unknown>(['hex', 'base64']);

/**
 * The body as the schema outputs it when it is the plain form clients send (an object with a
 * non-empty array of strings under `txs`, `encoding` and `mode` valid or absent, nothing
 * else), or null for anything else, which the zod schema then checks (and names the error).
 */
export function plainBatchBody(data: unknown): SubmitTxsBodyT | null {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return null;
  const o = data as Record<string, unknown>;
  let keys = 0;
  for (const k in o) {
    if (k !== 'txs' && k !== 'encoding' && k !== 'mode') return null;
    keys++;
  }
  const { txs, encoding, mode } = o;
  if (!Array.isArray(txs) || txs.length === 0) return null;
  for (let i = 0; i < txs.length; i++) if (typeof txs[i] !== 'string') return null;
  if (encoding !== undefined && !ENCODINGS.has(encoding)) return null;
  if (mode !== undefined && mode !== 'async') return null;
  // Own enumerable keys only: anything inherited or odd went to zod above.
  if (keys !== Object.keys(o).length) return null;
  return {
    txs: txs as string[],
    encoding: (encoding ?? 'hex') as 'hex' | 'base64',
    mode: 'async',
  };
}

/**
 * The route's validator compiler: the plain body checked by hand, everything else (and every
 * other part of the request) by its zod schema, as the server's validatorCompiler would.
 */
export function batchBodyValidatorCompiler<S>(route: FastifyRouteSchemaDef<S>): FastifyValidationResult {
  const zod = validatorCompiler(route as unknown as FastifyRouteSchemaDef<z.ZodType>);
  if (route.httpPart !== 'body') return zod;
  return (data: unknown) => {
    const plain = plainBatchBody(data);
    return plain === null ? zod(data) : { value: plain };
  };
}

/**
 * Bytes of a hex string of even length (no 0x), or null if any character is not a hex digit.
 * Node's hex decoder stops at the first pair that is not hex (Buffer docs: "data truncation"),
 * so a full length proves every digit was one: no regex pass over the string. It reads a
 * character above U+00FF by its low byte only ("š", U+0161, as "a"), so the string must be
 * ASCII first: its UTF-8 length is its length exactly then (a fast native scan). The bytes
 * get an ArrayBuffer of their own, not a view into Buffer's shared 8 KB pool (a held tx would
 * keep the whole slab alive) nor a copy out of it.
 */
export function hexBytes(h: string): Uint8Array | null {
  if (h.length % 2 !== 0 || Buffer.byteLength(h, 'utf8') !== h.length) return null;
  const n = h.length >>> 1;
  const buf = Buffer.allocUnsafeSlow(n);
  if (buf.write(h, 0, n, 'hex') !== n) return null;
  // A plain Uint8Array: callers may rely on slice() copying, which Buffer's does not.
  return new Uint8Array(buf.buffer, buf.byteOffset, n);
}

/** One result of a batch, as JSON: a taken tx (`hashHex` is lowercase hex: no escaping needed). */
export function takenJson(hashHex: string, status: 'accepted' | 'known'): string {
  return `{"hash":"${hashHex}","status":"${status}"}`;
}

/** One refused tx of a batch, as JSON. */
export function refusedJson(e: ApiError): string {
  return JSON.stringify(e.toBody());
}

/** The whole answer from its rendered results (SubmitTxsResponse). */
export function batchAnswerJson(results: readonly string[], retryAfterMs: number | undefined): string {
  const tail = retryAfterMs === undefined ? '}' : `,"retryAfterMs":${retryAfterMs}}`;
  return `{"results":[${results.join(',')}]${tail}`;
}
