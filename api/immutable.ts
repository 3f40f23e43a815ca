// Answers that never change once the ledger has them: a block that has its commit
// certificate, a committed tx. They are rendered once, kept as bytes with an ETag,
// and sent with `Cache-Control: immutable`, so a client or proxy that has one asks again
// (if at all) with If-None-Match and gets a bodiless 304.
import { hash } from 'node:crypto';
import type { FastifyReply } from 'fastify';

export interface ImmutableAnswer {
  /** The JSON body, UTF-8, outside the JS heap (its own allocation or a slice of a slab). */
  readonly body: Buffer;
  /** Its ETag: etagOf(body) unless the caller derived one from what the body is a function of. */
  readonly etag: string;
}

/** A year, the longest lifetime RFC 9111 caches are expected to honour. */
export const IMMUTABLE_CACHE_CONTROL = 'public, max-age=31536000, immutable';

/** Heap and bookkeeping held per cached answer besides its body, for cache weights. */
const ANSWER_OVERHEAD_BYTES = 256;

/**
 * Packs small answers into shared slabs instead of one ArrayBuffer each: a fresh
 * ArrayBuffer (allocUnsafeSlow) cost as much per tx answer as the LevelDB lookup behind it,
 * and Node's own 8 KB pool would let one long-lived answer pin its whole pool chunk. A slab
 * stays alive while any answer in it does; the cache that holds the answers copies a
 * surviving answer forward (`moved`) when it gives it a second round, so old slabs die in
 * order and what is held stays near the cache's byte bound.
 */
export class AnswerSlabs {
  private slab: Buffer;
  private used = 0;

  constructor(
    /** Bytes per slab; answers above an eighth of this get their own allocation. */
    readonly slabBytes: number = 1 << 20,
  ) {
    this.slab = Buffer.allocUnsafeSlow(slabBytes);
  }

  private room(bytes: number): Buffer | null {
    if (bytes > this.slabBytes / 8) return null;
    if (this.used + bytes > this.slabBytes) {
      this.slab = Buffer.allocUnsafeSlow(this.slabBytes);
      this.used = 0;
    }
    const out = this.slab.subarray(this.used, this.used + bytes);
    this.used += bytes;
    return out;
  }

  /** The string as UTF-8 bytes in the current slab (or alone if large). */
  encode(json: string): Buffer {
    const bytes = Buffer.byteLength(json);
    const out = this.room(bytes) ?? Buffer.allocUnsafeSlow(bytes);
    out.write(json);
    return out;
  }

  /** The answer with its bytes copied into the current slab. */
  readonly moved = (a: ImmutableAnswer): ImmutableAnswer => {
    const out = this.room(a.body.length);
    if (out === null) return a;
    a.body.copy(out);
    return { body: out, etag: a.etag };
  };
}

export function immutableAnswer(
  json: string,
  opts: { etag?: string; slabs?: AnswerSlabs } = {},
): ImmutableAnswer {
  const { slabs } = opts;
  let body: Buffer;
  if (slabs !== undefined) {
    body = slabs.encode(json);
  } else {
    // Not a slice of Node's shared 8 KB pool, which a long-lived answer would pin whole.
    body = Buffer.allocUnsafeSlow(Buffer.byteLength(json));
    body.write(json);
  }
  return { body, etag: opts.etag ?? etagOf(body) };
}

/**
 * The strong ETag of a body: the first 132 bits (22 base64url characters) of its SHA-256 (of the UTF-8 bytes, given a string).
 * From the bytes, not from ledger ids: two validators may hold different (equally valid)
 * commit certificates for a block, and their block answers must not share a strong ETag.
 */
export function etagOf(body: Buffer | string): string {
  // One-shot crypto.hash: about 2 us for a 1.6 KB answer, against 5 us through createHash.
  return `"${hash('sha256', body, 'base64url').slice(0, 22)}"`;
}

export const answerBytes = (a: ImmutableAnswer): number => a.body.length + ANSWER_OVERHEAD_BYTES;

const opaque = (tag: string): string => (tag.startsWith('W/') ? tag.slice(2) : tag);

/**
 * Whether an If-None-Match header names this ETag (RFC 9110 13.1.2: weak comparison, so
 * `W/` on either side is ignored; `*` matches any current representation).
 */
export function matchesIfNoneMatch(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  if (header === etag) return true;
  const want = opaque(etag);
  for (const part of header.split(',')) {
    const tag = part.trim();
    if (tag === '*' || opaque(tag) === want) return true;
  }
  return false;
}

/** Sends the answer, or 304 without a body when the client already holds these bytes. */
export function sendImmutable(
  ifNoneMatch: string | undefined,
  reply: FastifyReply,
  answer: { readonly body: Buffer | string; readonly etag: string },
): FastifyReply {
  reply.header('etag', answer.etag).header('cache-control', IMMUTABLE_CACHE_CONTROL);
  if (matchesIfNoneMatch(ifNoneMatch, answer.etag)) return reply.code(304).send();
  return reply.type('application/json; charset=utf-8').send(answer.body);
}
