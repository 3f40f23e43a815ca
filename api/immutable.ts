// Answers that never change once the ledger has them: a block that has its commit
// certificate, a committed tx. They are rendered once, kept as bytes with an ETag,
// and sent with `Cache-Control: immutable`, so a client or proxy that has one asks again
// (if at all) with If-None-Match and gets a bodiless 304.
import { hash } from 'node:crypto';
import type { FastifyReply } from 'fastify';

export interface ImmutableAnswer {
  /** The JSON body, UTF-8, outside the JS heap (its own allocation, or a copy out of api/tx-answers.ts's slabs). */
  readonly body: Buffer;
  /** Its ETag: etagOf(body) unless the caller derived one from what the body is a function of. */
  readonly etag: string;
}

/** A year, the longest lifetime RFC 9111 caches are expected to honour. */
export const IMMUTABLE_CACHE_CONTROL = 'public, max-age=31536000, immutable';

/** Heap and bookkeeping held per cached answer besides its body, for cache weights. */
const ANSWER_OVERHEAD_BYTES = 256;

export function immutableAnswer(json: string): ImmutableAnswer {
  // Not a slice of Node's shared 8 KB pool, which a long-lived answer would pin whole.
  const body = Buffer.allocUnsafeSlow(Buffer.byteLength(json));
  body.write(json);
  return { body, etag: etagOf(body) };
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
