// api_request_duration_seconds counts every request once, under its route pattern,
// method and status: per-route hooks bound at registration (api/server.ts) must cover
// what one global hook did, HEAD routes and unmatched requests included.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { createApiServer } from '../../api/server.js';
import { type SingleNode, startSingleNode } from './fixtures/single-node.js';

describe('REST API request metrics', function () {
  this.timeout(30_000);
  let node: SingleNode;
  let app: FastifyInstance;
  let url: string;

  before(async () => {
    node = await startSingleNode({ accounts: 2 });
    await node.produceBlock();
    app = await createApiServer({ node: node.port, rateLimit: false });
    await app.listen({ host: '127.0.0.1', port: 0 });
    url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await app.close();
    await node.close();
  });

  /** Observation counts by `route method status`, read from the registry. */
  async function counts(): Promise<Map<string, number>> {
    const metric = node.port.metrics.getSingleMetric('api_request_duration_seconds');
    assert.ok(metric, 'the histogram is registered');
    const out = new Map<string, number>();
    for (const v of (await metric.get()).values) {
      if ((v as { metricName?: string }).metricName !== 'api_request_duration_seconds_count') continue;
      out.set(`${v.labels['route']} ${v.labels['method']} ${v.labels['status']}`, v.value);
    }
    return out;
  }

  it('counts each request once under its route pattern, method and status', async () => {
    const before = await counts();
    const requests: [string, string, string][] = [
      ['GET', '/v1/blocks/1', '/v1/blocks/:height GET 200'],
      ['GET', '/v1/blocks/1', '/v1/blocks/:height GET 200'],
      ['GET', '/v1/blocks/7', '/v1/blocks/:height GET 404'],
      ['GET', '/v1/blocks/x', '/v1/blocks/:height GET 400'],
      ['HEAD', '/v1/blocks/1', '/v1/blocks/:height HEAD 200'],
      ['GET', `/v1/txs/${'ab'.repeat(32)}`, '/v1/txs/:hash GET 200'],
      ['GET', '/v1/health', '/v1/health GET 200'],
      ['GET', '/no/such/route', 'unmatched GET 404'],
      ['GET', '/docs', '/docs GET 200'],
    ];
    const expected = new Map<string, number>();
    for (const [method, path, key] of requests) {
      const res = await fetch(`${url}${path}`, { method, redirect: 'manual' });
      await res.arrayBuffer();
      expected.set(key, (expected.get(key) ?? 0) + 1);
    }
    const after = await counts();
    const grown = new Map<string, number>();
    for (const [k, v] of after) {
      const d = v - (before.get(k) ?? 0);
      if (d !== 0) grown.set(k, d);
    }
    assert.deepEqual(grown, expected);
  });
});
