// Hostile REST clients against the real API server (api/server.ts) over real sockets,
// backed by a real single-node ledger (E's fixture: LevelDB store, real executor).
// Whatever a client sends: a typed 4xx (never a 5xx), the process stays up, memory stays
// bounded, and oversized bodies are refused before they are read whole.
import assert from 'node:assert/strict';
import net from 'node:net';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { createApiServer } from '../../api/server.js';
import { toHex } from '../../ledger/codec/binary.js';
import { decodeTx, txToJson } from '../../ledger/tx.js';
import { type SingleNode, startSingleNode } from '../api/fixtures/single-node.js';
import { hostileInputs } from '../fuzz/mutate.js';

const BODY_BYTES_MAX = 16 * 1024;
const RUNS = Number(process.env.API_FUZZ_RUNS ?? 300);

interface Sent {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Uint8Array | string;
}

/** Path templates from the route table, with hostile values for their parameters. */
const PATHS = [
  '/v1/txs',
  '/v1/txs/{hash}',
  '/v1/status',
  '/v1/health',
  '/v1/ready',
  '/v1/blocks/latest',
  '/v1/blocks/{height}',
  '/v1/blocks/by-hash/{hash}',
  '/v1/blocks',
  '/v1/accounts/{address}',
  '/v1/accounts/{address}/txs',
  '/v1/kv/{key}',
  '/v1/kv/{key}/history',
  '/v1/kv',
  '/v1/validators',
  '/v1/genesis',
  '/v1/stream/blocks',
  '/metrics',
  '/openapi.json',
  '/',
  '/nope',
];

const hostileString = fc.oneof(
  fc.constantFrom(
    '',
    '0',
    '-1',
    '1e308',
    '18446744073709551616',
    '99999999999999999999999999',
    'NaN',
    'null',
    '..%2F..%2Fetc%2Fpasswd',
    '%00',
    '%ZZ',
    '%F0%9F%92%A9',
    '__proto__',
    'constructor',
    '0x',
    'zz',
    `${'ab'.repeat(32)}`,
    `0x${'00'.repeat(32)}`,
    'a'.repeat(2000),
    '1a',
  ),
  fc.string({ maxLength: 40 }).map(encodeURIComponent),
  fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b).toString('hex')),
  fc.bigInt({ min: -(1n << 70n), max: 1n << 70n }).map(String),
);

const queryArb = fc
  .array(
    fc.tuple(
      fc.oneof(
        fc.constantFrom(
          'limit',
          'before',
          'beforeHeight',
          'cursor',
          'prefix',
          'after',
          'account',
          'proof',
          '__proto__[x]',
          'limit[]',
        ),
        fc.string({ maxLength: 8 }).map(encodeURIComponent),
      ),
      hostileString,
    ),
    { maxLength: 4 },
  )
  .map((pairs) => (pairs.length === 0 ? '' : `?${pairs.map(([k, v]) => `${k}=${v}`).join('&')}`));

const pathArb = fc
  .tuple(fc.constantFrom(...PATHS), hostileString, hostileString, queryArb)
  .map(
    ([t, a, b, q]) =>
      t.replace('{hash}', a).replace('{address}', a).replace('{height}', a).replace('{key}', b) + q,
  );

const CONTENT_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'application/json; charset=utf-16',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/octet-stream',
  'application/jsonx',
  '',
];

function bodyArb(validTxJson: fc.Arbitrary<string>): fc.Arbitrary<Uint8Array | string> {
  const enc = new TextEncoder();
  return fc.oneof(
    // A valid submission, then mutated: reaches schema validation and the tx decoder.
    hostileInputs(
      validTxJson.map((s) => enc.encode(s)),
      256,
    ),
    fc.json({ maxDepth: 3 }),
    fc.constantFrom(
      '[]',
      '{}',
      'null',
      '"x"',
      '{"tx":null}',
      '{"tx":"zz"}',
      '{"tx":"00","encoding":"base64"}',
      '{"tx":{},"mode":"commit","timeoutMs":1e308}',
      '{"tx":"00","timeoutMs":-1}',
      '{"__proto__":{"polluted":1},"tx":"00"}',
      '{"constructor":{"prototype":{"polluted":1}}}',
      `${'['.repeat(5000)}${']'.repeat(5000)}`,
      `{"tx":"${'0'.repeat(BODY_BYTES_MAX)}"}`,
    ),
  );
}

async function send(base: string, s: Sent): Promise<{ status: number; text: string; type: string }> {
  const ac = new AbortController();
  // A live stream answered HEAD never ends; its open connection is the success.
  const stream = s.path.startsWith('/v1/stream');
  const timer = setTimeout(() => ac.abort(), stream ? 500 : 5000);
  try {
    const res = await fetch(base + s.path, {
      method: s.method,
      headers: s.headers,
      body: s.method === 'GET' || s.method === 'HEAD' ? undefined : s.body,
      signal: ac.signal,
    });
    const type = res.headers.get('content-type') ?? '';
    // Live streams never end: their status line is all we need.
    const text = type.startsWith('text/event-stream') ? '' : await res.text();
    if (type.startsWith('text/event-stream')) ac.abort();
    return { status: res.status, text, type };
  } catch (e) {
    if (stream && ac.signal.aborted) return { status: 200, text: '', type: 'text/event-stream' };
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

/** A typed error body: { error: { code, message, field? } }. */
function assertTypedError(text: string, why: string): string {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    assert.fail(`${why}: error body is not JSON: ${text.slice(0, 200)}`);
  }
  const e = (body as { error?: { code?: unknown; message?: unknown } }).error;
  assert.equal(typeof e?.code, 'string', `${why}: no error.code in ${text.slice(0, 200)}`);
  assert.equal(typeof e?.message, 'string', `${why}: no error.message`);
  return e!.code as string;
}

/** Raw bytes on a socket, for what fetch refuses to send; resolves to the status line. */
function rawRequest(
  port: number,
  chunks: (Buffer | string)[],
  keepWriting?: () => Buffer | null,
): Promise<{ status: number; written: number }> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let written = 0;
    let data = '';
    let done = false;
    const finish = (status: number) => {
      if (done) return;
      done = true;
      sock.destroy();
      resolve({ status, written });
    };
    sock.setTimeout(10_000, () => reject(new Error('no response within 10 s')));
    sock.on('data', (d) => {
      data += d.toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(data);
      if (m) finish(Number(m[1]));
    });
    sock.on('error', () => finish(data ? Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0) : 0));
    sock.on('close', () => finish(Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0)));
    sock.on('connect', () => {
      for (const c of chunks) {
        written += c.length;
        sock.write(c);
      }
      if (!keepWriting) return;
      const pump = () => {
        while (!done) {
          const next = keepWriting();
          if (next === null) return;
          written += next.length;
          if (!sock.write(next)) {
            sock.once('drain', pump);
            return;
          }
        }
      };
      pump();
    });
  });
}

describe('REST API under hostile clients', function () {
  this.timeout(120_000);
  let node: SingleNode;
  let app: FastifyInstance;
  let base: string;
  let port: number;
  let validTxJson: fc.Arbitrary<string>;

  before(async () => {
    node = await startSingleNode({ blockIntervalMs: 0 });
    app = await createApiServer({
      node: node.port,
      limits: { bodyBytesMax: BODY_BYTES_MAX },
      rateLimit: false,
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const addr = app.server.address();
    assert.ok(addr && typeof addr === 'object');
    port = addr.port;
    base = `http://127.0.0.1:${port}`;
    // Valid submissions in all three body forms, from a funded account.
    validTxJson = fc
      .tuple(fc.nat({ max: 3 }), fc.bigInt({ min: 1n, max: 1000n }), fc.nat({ max: 2 }))
      .map(([acct, amount, form]) => {
        const bytes = node.signedTx(acct, {
          type: 'transfer',
          to: node.accountKeys[(acct + 1) % 4]!.publicKey,
          amount,
        });
        const dec = decodeTx(bytes);
        assert.ok(dec.ok);
        const tx =
          form === 0
            ? toHex(bytes)
            : form === 1
              ? Buffer.from(bytes).toString('base64')
              : txToJson(dec.value);
        return JSON.stringify({ tx, ...(form === 1 ? { encoding: 'base64' } : {}) });
      });
  });
  after(async () => {
    await app?.close();
    await node?.close();
  });

  it(`answers ${RUNS} random requests (methods, paths, queries, headers, bodies) with 2xx-4xx only, typed`, async () => {
    const seen = new Map<number, number>();
    const slowest = { ms: 0, what: '' };
    const request: fc.Arbitrary<Sent> = fc.record({
      method: fc.constantFrom('GET', 'GET', 'POST', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'),
      path: fc.oneof(pathArb, fc.constant('/v1/txs')),
      headers: fc.record(
        {
          'content-type': fc.constantFrom(...CONTENT_TYPES),
          accept: fc.constantFrom('*/*', 'application/json', 'text/html', 'text/event-stream', 'x/y'),
          'x-forwarded-for': fc.constantFrom('1.2.3.4', 'garbage', '::1'),
          'accept-encoding': fc.constantFrom('gzip', 'br', 'identity', 'x'),
        },
        { requiredKeys: [] },
      ),
      body: bodyArb(validTxJson),
    });
    await fc.assert(
      fc.asyncProperty(request, async (s) => {
        const t0 = performance.now();
        const r = await send(base, s);
        const ms = performance.now() - t0;
        if (ms > slowest.ms) Object.assign(slowest, { ms, what: `${s.method} ${s.path.slice(0, 80)}` });
        seen.set(r.status, (seen.get(r.status) ?? 0) + 1);
        const why = `${s.method} ${s.path.slice(0, 120)} -> ${r.status}`;
        assert.ok(r.status < 500, `${why}: ${r.text.slice(0, 300)}`);
        if (r.status >= 400 && s.method !== 'HEAD') assertTypedError(r.text, why);
      }),
      { numRuns: RUNS },
    );
    // The run reached past validation: some requests succeeded and some were refused.
    const ok = [...seen].filter(([s]) => s < 300).reduce((n, [, c]) => n + c, 0);
    const refused = [...seen].filter(([s]) => s >= 400).reduce((n, [, c]) => n + c, 0);
    assert.ok(ok > 0 && refused > 0, JSON.stringify([...seen]));
    // Every request is answered promptly: nothing a client sends makes the server stall.
    assert.ok(slowest.ms < 3000, `slowest: ${slowest.what} took ${slowest.ms.toFixed(0)} ms`);
  });

  it('refuses a transaction JSON with a malformed u64 as a typed 400', async () => {
    const bytes = node.signedTx(0, { type: 'transfer', to: node.accountKeys[1]!.publicKey, amount: 5n });
    const dec = decodeTx(bytes);
    assert.ok(dec.ok);
    for (const nonce of ['1a', '0x10', '-1', '1e3', ' 1', '18446744073709551616']) {
      const r = await send(base, {
        method: 'POST',
        path: '/v1/txs',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ tx: { ...txToJson(dec.value), nonce } }),
      });
      assert.equal(r.status, 400, `nonce ${nonce}: ${r.text}`);
      assertTypedError(r.text, `nonce ${nonce}`);
    }
  });

  it('refuses a body declared larger than the limit before reading it', async () => {
    // Headers only: the server must answer without waiting for a gigabyte.
    const r = await rawRequest(port, [
      'POST /v1/txs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n',
    ]);
    assert.equal(r.status, 413);
  });

  it('stops a chunked body at the limit instead of buffering all of it', async () => {
    const chunk = Buffer.from(`1000\r\n${'x'.repeat(0x1000)}\r\n`);
    let sent = 0;
    const r = await rawRequest(
      port,
      [
        'POST /v1/txs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n',
      ],
      () => {
        // Give up at 64 MiB: the server should have answered long before.
        if (sent > 64 * 1024 * 1024) return null;
        sent += chunk.length;
        return chunk;
      },
    );
    assert.equal(r.status, 413);
    assert.ok(r.written < 64 * 1024 * 1024, `wrote ${r.written} bytes before the server answered`);
  });

  it('answers malformed HTTP with a 4xx and keeps serving', async () => {
    const cases = [
      'GARBAGE\r\n\r\n',
      'GET / HTTP/9.9\r\n\r\n',
      'GET /v1/status HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n',
      'POST /v1/txs HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
      `GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`,
      `GET /${'a'.repeat(100_000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
      'GET /v1/status HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n',
    ];
    for (const c of cases) {
      const r = await rawRequest(port, [c]);
      assert.ok(r.status >= 400 && r.status < 500, `${JSON.stringify(c.slice(0, 60))} -> ${r.status}`);
    }
    const health = await send(base, { method: 'GET', path: '/v1/health', headers: {} });
    assert.equal(health.status, 200);
  });

  it('keeps its memory bounded under a flood of large refused bodies', async () => {
    const before = process.memoryUsage().rss;
    const body = 'x'.repeat(BODY_BYTES_MAX * 4);
    for (let round = 0; round < 10; round++) {
      const rs = await Promise.all(
        Array.from({ length: 20 }, () =>
          send(base, {
            method: 'POST',
            path: '/v1/txs',
            headers: { 'content-type': 'application/json' },
            body,
          }),
        ),
      );
      for (const r of rs) assert.equal(r.status, 413);
    }
    const grownMb = (process.memoryUsage().rss - before) / 2 ** 20;
    // 200 bodies of 64 KiB = 12.5 MiB sent; a server that buffered them all would grow by more.
    assert.ok(grownMb < 64, `rss grew by ${grownMb.toFixed(1)} MiB`);
    const health = await send(base, { method: 'GET', path: '/v1/health', headers: {} });
    assert.equal(health.status, 200);
  });

  it('limits each client to its request rate with a typed 429 and Retry-After', async () => {
    const limited = await createApiServer({ node: node.port, rateLimit: { max: 10, windowMs: 60_000 } });
    await limited.listen({ host: '127.0.0.1', port: 0 });
    try {
      const addr = limited.server.address();
      assert.ok(addr && typeof addr === 'object');
      const url = `http://127.0.0.1:${addr.port}/v1/status`;
      const statuses: number[] = [];
      let retryAfter: string | null = null;
      let code = '';
      for (let i = 0; i < 15; i++) {
        const res = await fetch(url);
        statuses.push(res.status);
        const text = await res.text();
        if (res.status === 429) {
          retryAfter = res.headers.get('retry-after');
          code = assertTypedError(text, '429');
        }
      }
      assert.equal(statuses.filter((s) => s === 200).length, 10);
      assert.equal(statuses.filter((s) => s === 429).length, 5);
      assert.equal(code, 'rate-limited');
      assert.ok(retryAfter !== null && Number(retryAfter) > 0);
    } finally {
      await limited.close();
    }
  });
});
