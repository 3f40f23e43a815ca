// The live stream is bounded: a client that stops reading is disconnected once more
// than streamBufferBytesMax is queued for it, instead of the server buffering forever.
import assert from 'node:assert/strict';
import { get } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createApiServer } from '../../api/server.js';
import { toHex } from '../../ledger/codec/binary.js';
import { startSingleNode } from './fixtures/single-node.js';

describe('GET /v1/stream/blocks backpressure', function () {
  this.timeout(60_000);

  it('drops a client that does not read once its queue exceeds streamBufferBytesMax', async () => {
    const node = await startSingleNode();
    const app = await createApiServer({
      node: node.port,
      rateLimit: false,
      explorer: false,
      limits: { streamBufferBytesMax: 256 * 1024 },
    });
    try {
      await app.listen({ host: '127.0.0.1', port: 0 });
      const port = (app.server.address() as AddressInfo).port;
      const account = toHex(node.accountKeys[0]!.publicKey);
      let closed = false;
      let received = 0;
      await new Promise<void>((resolve, reject) => {
        const req = get({ host: '127.0.0.1', port, path: `/v1/stream/blocks?account=${account}` }, (res) => {
          assert.equal(res.statusCode, 200);
          res.once('data', (d: Buffer) => {
            received += d.length;
            res.pause(); // and never read again
            resolve();
          });
          res.on('close', () => {
            closed = true;
          });
        });
        req.on('error', () => {
          closed = true;
        });
        setTimeout(() => reject(new Error('stream did not open')), 10_000);
      });
      // Each block carries ~320 KB of `tx` events for the account (5 kv.puts of 32 KiB, hex in JSON).
      const value = new Uint8Array(32 * 1024).fill(0x61);
      let blocks = 0;
      for (; blocks < 60 && !closed; blocks++) {
        const txs = Array.from({ length: 5 }, (_, i) =>
          node.signedTx(0, { type: 'kv.put', key: new TextEncoder().encode(`big/${blocks}/${i}`), value }),
        );
        await node.appendBlock(txs);
        await new Promise((r) => setTimeout(r, 20));
      }
      for (let i = 0; i < 100 && !closed; i++) await new Promise((r) => setTimeout(r, 20));
      assert.ok(closed, `slow client still connected after ${blocks} blocks (~${blocks * 320} KB)`);
      assert.ok(received > 0);
      const status = await fetch(`http://127.0.0.1:${port}/v1/status`);
      assert.equal(status.status, 200, 'the server keeps serving');
    } finally {
      await app.close();
      await node.close();
    }
  });
});
