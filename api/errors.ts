// Every error the API returns is `{ error: { code, message, field? } }` with one of
// these stable codes. The code decides the HTTP status, so clients can switch on
// the code alone; the message is for humans and may change.
import type { SubmitRejectCode } from './node-port.js';

export const API_ERROR_STATUS = {
  malformed: 400, // body or parameter does not parse (bad JSON, bad hex, undecodable tx)
  'schema-violation': 400, // parses, but a field violates the route's schema
  'not-found': 404,
  'method-not-allowed': 405,
  'request-timeout': 408, // the request was not received in full within requestTimeoutMs
  'too-large': 413,
  'unsupported-media-type': 415,
  'headers-too-large': 431,
  'bad-signature': 422,
  'wrong-chain': 422,
  'stale-nonce': 409,
  'duplicate-nonce': 409,
  'nonce-gap': 409,
  'rate-limited': 429,
  'mempool-full': 503,
  unavailable: 503,
  'too-many-streams': 503,
  internal: 500,
} as const satisfies Record<string, number>;

export type ApiErrorCode = keyof typeof API_ERROR_STATUS;
export const API_ERROR_CODES = Object.keys(API_ERROR_STATUS) as [ApiErrorCode, ...ApiErrorCode[]];

export interface ApiErrorBody {
  error: { code: ApiErrorCode; message: string; field?: string };
}

/** Thrown by route handlers; the server's error handler turns it into the typed body and status. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  readonly status: number;
  constructor(
    readonly code: ApiErrorCode,
    message: string,
    readonly field?: string,
    /** Sent as Retry-After (rounded up to whole seconds). */
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.status = API_ERROR_STATUS[code];
  }

  toBody(): ApiErrorBody {
    return {
      error:
        this.field === undefined
          ? { code: this.code, message: this.message }
          : { code: this.code, message: this.message, field: this.field },
    };
  }
}

export function rejectionToApiError(r: {
  code: SubmitRejectCode;
  message: string;
  field?: string;
  retryAfterMs?: number;
}): ApiError {
  const retry = r.code === 'mempool-full' || r.code === 'unavailable' ? (r.retryAfterMs ?? 1000) : undefined;
  return new ApiError(r.code, r.message, r.field, retry);
}
