// createApiServer: the node's HTTP face. Fastify with zod schemas (api/schemas.ts),
// an OpenAPI document from the same schemas (/openapi.json, UI at /docs), typed JSON
// errors for everything (api/errors.ts), per-client rate limits, Prometheus metrics
// (/metrics), live blocks over SSE and the explorer page at /.
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import fastifyRateLimit from '@fastify/rate-limit';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import {
  hasZodFastifySchemaValidationErrors,
  isResponseSerializationError,
  jsonSchemaTransform,
  serializerCompiler,
  validatorCompiler,
} from 'fastify-type-provider-zod';
import { Histogram, type Registry } from 'prom-client';
import { LedgerStoreError } from '../ledger/store.js';
import { TX_BYTES_MAX } from '../ledger/tx.js';
import { ApiError } from './errors.js';
import { registerHandlers } from './handlers.js';
import type { NodePort } from './node-port.js';
import { loadExplorerAssets, registerExplorer } from './static.js';
import { registerStreams } from './stream.js';

export interface ApiLimits {
  /** Request bodies above this are refused with 413 before being read whole. */
  bodyBytesMax: number;
  /** Most txs one POST /v1/txs/batch may carry (413 above it). */
  batchTxsMax: number;
  /** The body limit of POST /v1/txs/batch (the other routes keep bodyBytesMax). */
  batchBodyBytesMax: number;
  /** Largest `limit` a paginated route honours (larger requests get this many). */
  pageLimitMax: number;
  commitTimeoutMsDefault: number;
  commitTimeoutMsMax: number;
  /** Concurrent SSE clients. */
  streamsMax: number;
  /** An SSE client with more unsent bytes than this is disconnected. */
  streamBufferBytesMax: number;
  streamHeartbeatMs: number;
  blockCacheEntries: number;
  /** Total size of the cached rendered blocks (JSON bytes, held outside the JS heap). */
  blockCacheBytesMax: number;
  /** Blocks whose txs, results and Merkle tree are kept for tx lookups. */
  blockTxsCacheEntries: number;
  /** Total size of those entries (about the blocks' encoded txs plus 2 hashes per tx). */
  blockTxsCacheBytesMax: number;
  /** Rendered answers of GET /v1/txs/:hash for committed txs (JSON bytes, held outside the JS heap). */
  txAnswerCacheEntries: number;
  /** Total size of those answers (ETag and body, held outside the JS heap), plus 64 bytes of index each. */
  txAnswerCacheBytesMax: number;
  /** Commit certificates whose verification result is remembered. */
  certVerdictsEntries: number;
  /** Idle keep-alive connections are closed after this. */
  keepAliveTimeoutMs: number;
  /** A request must be fully received within this. */
  requestTimeoutMs: number;
  /** Open TCP connections at once; further connections are closed on arrival. */
  connectionsMax: number;
}

export const API_LIMITS_DEFAULT: ApiLimits = {
  // A TX_BYTES_MAX tx as hex inside JSON, with room for the envelope.
  bodyBytesMax: 2 * TX_BYTES_MAX + 16 * 1024,
  // A transfer is about 330 hex characters in JSON: 256 of them take about 90 KB. Larger txs
  // (kv values up to 32 KB) fit fewer per request; the client splits by bytes too.
  batchTxsMax: 256,
  batchBodyBytesMax: 2 * 1024 * 1024,
  pageLimitMax: 100,
  commitTimeoutMsDefault: 10_000,
  commitTimeoutMsMax: 60_000,
  streamsMax: 256,
  streamBufferBytesMax: 1024 * 1024,
  streamHeartbeatMs: 15_000,
  // 100 txs per block render to about 50 KB: 128 MB holds about 2,600 such blocks.
  blockCacheEntries: 4096,
  blockCacheBytesMax: 128 * 1024 * 1024,
  // About 22 KB per 100-tx block: 64 MB holds about 3,000 such blocks (300k txs).
  blockTxsCacheEntries: 4096,
  blockTxsCacheBytesMax: 64 * 1024 * 1024,
  // A transfer's answer is about 1.6 KB (plus 45 B of ETag and 64 B of index): the bytes bind first, at about 39k answers.
  txAnswerCacheEntries: 65_536,
  txAnswerCacheBytesMax: 64 * 1024 * 1024,
  certVerdictsEntries: 8192,
  keepAliveTimeoutMs: 72_000,
  requestTimeoutMs: 30_000,
  connectionsMax: 1024,
};

export interface RateLimitOptions {
  /** Requests per window per client IP. */
  max: number;
  windowMs: number;
  /** Client IPs that are never limited. */
  allowList?: string[];
}

export const RATE_LIMIT_DEFAULT: RateLimitOptions = { max: 2000, windowMs: 1000 };

export interface ApiServerOptions {
  node: NodePort;
  limits?: Partial<ApiLimits>;
  /** false disables per-client rate limiting. */
  rateLimit?: RateLimitOptions | false;
  /** Errors (5xx) and warnings are logged here; request logs stay off. */
  logger?: FastifyBaseLogger;
  /** Serve the explorer page at / (default true). */
  explorer?: boolean;
}

/** Builds the server (routes registered, ready); the caller calls listen() and close(). */
export async function createApiServer(opts: ApiServerOptions): Promise<FastifyInstance> {
  const limits: ApiLimits = { ...API_LIMITS_DEFAULT, ...opts.limits };
  const { node } = opts;
  const rateLimit = opts.rateLimit === undefined ? RATE_LIMIT_DEFAULT : opts.rateLimit;

  const app = Fastify({
    ...(opts.logger === undefined ? { logger: false } : { loggerInstance: opts.logger }),
    bodyLimit: limits.bodyBytesMax,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    routerOptions: { maxParamLength: 1024 },
    return503OnClosing: true,
    clientErrorHandler: writeClientError,
    forceCloseConnections: 'idle',
    ajv: undefined,
    // Errors Fastify raises before routing (a malformed URL such as /v1/txs/%ZZ, a bad
    // content-type header) bypass setErrorHandler; answer them with the same typed body.
    frameworkErrors: (error: FastifyError, _req: unknown, reply: FastifyReply) => {
      const mapped = toApiError(error);
      const e = mapped.status < 500 ? mapped : new ApiError('malformed', `bad request: ${error.message}`);
      void reply.code(e.status).type('application/json; charset=utf-8').send(JSON.stringify(e.toBody()));
    },
  }) as unknown as FastifyInstance;
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  app.setErrorHandler((error: FastifyError, req, reply) => {
    const e = toApiError(error);
    if (e.status >= 500 && e.code === 'internal') {
      req.log.error({ err: error, url: req.url }, 'api internal error');
    }
    if (e.retryAfterMs !== undefined) reply.header('retry-after', Math.ceil(e.retryAfterMs / 1000));
    return reply.code(e.status).type('application/json; charset=utf-8').send(JSON.stringify(e.toBody()));
  });
  app.setNotFoundHandler((req, reply) => {
    const body = new ApiError('not-found', `no route ${req.method} ${req.url.split('?')[0]}`).toBody();
    return reply.code(404).type('application/json; charset=utf-8').send(JSON.stringify(body));
  });

  // node:http closes connections above this on arrival, before reading a byte of them.
  app.server.maxConnections = limits.connectionsMax;
  registerRequestMetrics(app, node.metrics);

  if (rateLimit !== false) {
    await app.register(fastifyRateLimit, {
      global: true,
      max: rateLimit.max,
      timeWindow: rateLimit.windowMs,
      ...(rateLimit.allowList === undefined ? {} : { allowList: rateLimit.allowList }),
      errorResponseBuilder: (_req, ctx) =>
        new ApiError('rate-limited', `more than ${ctx.max} requests in ${ctx.after}`, undefined, ctx.ttl),
    });
  }

  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'hybster-chain node API',
        description:
          'REST API of a hybster-chain validator. Errors are `{ error: { code, message, field? } }`; ' +
          'byte strings are hex; u64 quantities (balances, amounts, nonces, versions) are decimal strings. ' +
          'Answers that can no longer change (a block with its commit certificate, by height or hash; a ' +
          'committed tx) carry an `ETag` (blocks: a digest of the body; txs: weak, from the block hash and ' +
          'index) and `Cache-Control: public, max-age=31536000, immutable`; a request whose ' +
          '`If-None-Match` names that ETag gets 304 Not Modified without a body.',
        version: '1',
      },
      tags: [
        { name: 'txs', description: 'Submit and look up transactions' },
        { name: 'blocks', description: 'Blocks, newest first' },
        { name: 'accounts', description: 'Balances, nonces and account history' },
        { name: 'kv', description: 'The versioned key-value space' },
        { name: 'node', description: 'Status, health, validators, genesis' },
        { name: 'stream', description: 'Live updates (Server-Sent Events)' },
      ],
    },
    transform: jsonSchemaTransform,
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs' });

  registerHandlers(app, node, limits);
  registerStreams(app, node, {
    streamsMax: limits.streamsMax,
    streamBufferBytesMax: limits.streamBufferBytesMax,
    heartbeatMs: limits.streamHeartbeatMs,
  });

  app.get('/openapi.json', { schema: { hide: true } }, () => app.swagger());
  app.get('/metrics', { schema: { hide: true } }, async (_req, reply) =>
    reply.type(node.metrics.contentType).send(await node.metrics.metrics()),
  );
  if (opts.explorer !== false) registerExplorer(app, loadExplorerAssets());

  await app.ready();
  return app;
}

/**
 * Requests so broken that Node's HTTP parser refuses them (bad framing, oversized
 * headers, timeouts) never reach a route; they still get the typed error body.
 */
function writeClientError(err: Error & { code?: string }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const e =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? new ApiError('request-timeout', 'request not received in time')
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? new ApiError('headers-too-large', 'request headers exceed the limit')
        : new ApiError('malformed', 'malformed HTTP request');
  const body = JSON.stringify(e.toBody());
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${e.status} ${STATUS_CODES[e.status]}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
        `Content-Type: application/json; charset=utf-8\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

/** Maps anything a route or Fastify can throw to a typed API error; never leaks internals for bad input. */
export function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  const fe = error as Partial<FastifyError> & { validationContext?: string };
  if (hasZodFastifySchemaValidationErrors(error)) {
    const first = error.validation[0];
    const path = (first?.instancePath ?? '').replace(/^\//, '').replaceAll('/', '.');
    const where = fe.validationContext ?? 'request';
    const field = path === '' ? where : `${where === 'body' ? '' : `${where}.`}${path}`;
    return new ApiError('schema-violation', `${field}: ${first?.message ?? 'invalid'}`, field);
  }
  if (isResponseSerializationError(error))
    return new ApiError('internal', 'response did not match its schema');
  // The store closes during shutdown; requests still in flight are told to retry elsewhere.
  if (error instanceof LedgerStoreError && error.code === 'closed') {
    return new ApiError('unavailable', 'node is shutting down', undefined, 1000);
  }
  switch (fe.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError('too-large', 'request body exceeds the configured limit', 'body');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiError('unsupported-media-type', 'send application/json', 'content-type');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new ApiError('malformed', 'empty JSON body', 'body');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new ApiError('malformed', 'body is not valid JSON', 'body');
  }
  if (error instanceof SyntaxError) return new ApiError('malformed', 'body is not valid JSON', 'body');
  const status = typeof fe.statusCode === 'number' ? fe.statusCode : 500;
  if (status === 413) return new ApiError('too-large', fe.message ?? 'too large');
  if (status === 415) return new ApiError('unsupported-media-type', fe.message ?? 'unsupported media type');
  if (status === 429) return new ApiError('rate-limited', fe.message ?? 'rate limited');
  if (status === 503) return new ApiError('unavailable', fe.message ?? 'unavailable', undefined, 1000);
  if (status >= 400 && status < 500) return new ApiError('malformed', fe.message ?? 'bad request');
  return new ApiError('internal', 'internal error');
}

type RouteHook = (req: FastifyRequest, reply: FastifyReply, done: () => void) => void;

/**
 * Observes every request's handling time by route, method and status. The route is bound
 * per route when it is registered (onRoute): reading req.routeOptions instead builds a
 * fresh options object per request.
 */
function registerRequestMetrics(app: FastifyInstance, registry: Registry): void {
  const name = 'api_request_duration_seconds';
  const existing = registry.getSingleMetric(name);
  const histogram =
    (existing as Histogram<'route' | 'method' | 'status'> | undefined) ??
    new Histogram({
      name,
      help: 'REST API request latency by route, method and status',
      labelNames: ['route', 'method', 'status'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5, 10],
      registers: [registry],
    });
  const observerFor =
    (route: string): RouteHook =>
    (req, reply, done) => {
      histogram.observe(
        { route, method: req.method, status: String(reply.statusCode) },
        reply.elapsedTime / 1000,
      );
      done();
    };
  app.addHook('onRoute', (route) => {
    const own = route.onResponse;
    const observe = observerFor(route.url ?? 'unmatched');
    route.onResponse = own === undefined ? [observe] : [...(Array.isArray(own) ? own : [own]), observe];
  });
  // Requests no route matched (404s, and errors raised before routing) have no route hook.
  const unmatched = observerFor('unmatched');
  app.addHook('onResponse', (req, reply, done) => {
    if (req.is404) unmatched(req, reply, done);
    else done();
  });
}
