// Bad input never reaches a 5xx: random paths, queries and bodies against the real
// server (in-process inject) must all answer with a typed error or a success.
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { API_ERROR_CODES } from '../../api/errors.js';
import { createApiServer } from '../../api/server.js';
import { type SingleNode, startSingleNode } from './fixtures/single-node.js';

const codes = new Set<string>(API_ERROR_CODES);

describe('REST API robustness', function () {
  this.timeout(60_000);
  let node: SingleNode;
  let app: FastifyInstance;

  before(async () => {
    node = await startSingleNode();
    await node.appendBlock([
      node.signedTx(0, { type: 'transfer', to: node.accountKeys[1]!.publicKey, amount: 1n }),
    ]);
    app = await createApiServer({ node: node.port, rateLimit: false, explorer: false });
  });
  after(async () => {
    await app.close();
    await node.close();
  });

  function assertTyped(status: number, body: string, what: string): void {
    assert.ok(status < 500, `${what} -> ${status} ${body.slice(0, 200)}`);
    if (status >= 400) {
      const j = JSON.parse(body) as { error?: { code?: string; message?: string } };
      assert.ok(
        j.error && codes.has(j.error.code ?? '') && typeof j.error.message === 'string',
        `${what}: ${body}`,
      );
    }
  }

  it('answers random paths and query strings under /v1 with typed errors, never 5xx', async () => {
    const segment = fc.oneof(
      fc.string({ maxLength: 80 }),
      fc.stringMatching(/^[0-9a-f]{0,70}$/),
      fc.stringMatching(/^[0-9:]{0,40}$/),
      fc.constantFrom('latest', 'by-hash', 'history', '%ff', '..', '0', '-1', '99999999999999999999'),
    );
    const route = fc.constantFrom('blocks', 'txs', 'accounts', 'kv', 'status', 'stream/blocks', 'validators');
    const query = fc.dictionary(
      fc.constantFrom('limit', 'before', 'cursor', 'prefix', 'after', 'account', 'x'),
      fc.oneof(fc.string({ maxLength: 30 }), fc.integer().map(String), fc.stringMatching(/^[0-9a-f]{0,66}$/)),
    );
    await fc.assert(
      fc.asyncProperty(route, fc.array(segment, { maxLength: 3 }), query, async (r, segs, q) => {
        if (r === 'stream/blocks' && Object.keys(q).every((k) => k === 'account')) return; // a valid stream never ends
        const path = [r, ...segs.map(encodeURIComponent)].join('/');
        const qs = new URLSearchParams(q).toString();
        const url = `/v1/${path}${qs ? `?${qs}` : ''}`;
        const res = await app.inject({ method: 'GET', url });
        assertTyped(res.statusCode, res.body, url);
      }),
      { numRuns: 300 },
    );
  });

  it('answers random POST /v1/txs bodies with typed errors, never 5xx', async () => {
    const body = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.json().map(String),
      fc
        .record({
          tx: fc.oneof(
            fc.stringMatching(/^[0-9a-f]{0,400}$/),
            fc.base64String({ maxLength: 200 }),
            fc.object(),
          ),
          encoding: fc.constantFrom('hex', 'base64', 'utf8', undefined),
          mode: fc.constantFrom('async', 'commit', 'sync', undefined),
          timeoutMs: fc.oneof(fc.integer({ min: -5, max: 50 }), fc.constant(undefined)),
        })
        .map((o) => JSON.stringify(o)),
    );
    const contentType = fc.constantFrom('application/json', 'text/plain', 'application/octet-stream', '');
    await fc.assert(
      fc.asyncProperty(body, contentType, async (b, ct) => {
        const res = await app.inject({
          method: 'POST',
          url: '/v1/txs',
          payload: b,
          headers: ct === '' ? {} : { 'content-type': ct },
        });
        assertTyped(res.statusCode, res.body, `${ct} ${b.slice(0, 100)}`);
      }),
      { numRuns: 300 },
    );
  });
});

describe('REST API framing errors', () => {
  it('answers a request the HTTP parser refuses with a typed 400', async () => {
    const { createConnection } = await import('node:net');
    const node = await startSingleNode();
    const app = await createApiServer({ node: node.port, rateLimit: false, explorer: false });
    try {
      await app.listen({ host: '127.0.0.1', port: 0 });
      const port = (app.server.address() as import('node:net').AddressInfo).port;
      const answer = await new Promise<string>((resolve, reject) => {
        const sock = createConnection({ host: '127.0.0.1', port }, () => {
          sock.write('GET /v1/status HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n');
        });
        let data = '';
        sock.on('data', (d) => {
          data += d.toString();
        });
        sock.on('close', () => resolve(data));
        sock.on('error', reject);
      });
      assert.match(answer, /^HTTP\/1.1 400 /);
      const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as { error: { code: string } };
      assert.equal(body.error.code, 'malformed');
    } finally {
      await app.close();
      await node.close();
    }
  });
});
