// Live updates over Server-Sent Events: GET /v1/stream/blocks sends an `event: block`
// (the header JSON) per new block, and with ?account=<address> also an `event: tx`
// per tx from or to that account. One node subscription is fanned out to every
// client. Bounded: at most streamsMax clients; a client whose socket buffer grows
// past streamBufferBytesMax (it does not read) is dropped rather than buffered forever.
import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { toHex } from '../ledger/codec/binary.js';
import { txHash } from '../ledger/tx.js';
import { ApiError } from './errors.js';
import type { NodePort } from './node-port.js';
import { StreamBlocksQuery } from './schemas.js';
import { decodeStored, headerJson, hexToBytes, txJson, txResultJson, txTouches } from './views.js';

interface Client {
  res: ServerResponse;
  account: Uint8Array | null;
}

export interface StreamLimits {
  streamsMax: number;
  streamBufferBytesMax: number;
  heartbeatMs: number;
}

export function registerStreams(app: FastifyInstance, node: NodePort, limits: StreamLimits): void {
  const clients = new Set<Client>();
  let unsubscribe: (() => void) | null = null;

  const write = (c: Client, chunk: string): void => {
    if (c.res.writableLength > limits.streamBufferBytesMax) {
      clients.delete(c);
      c.res.destroy();
      return;
    }
    c.res.write(chunk);
  };

  const onBlock: Parameters<NodePort['onBlock']>[0] = (block) => {
    const header = headerJson(block);
    const blockEvent = `event: block\nid: ${header.height}\ndata: ${JSON.stringify(header)}\n\n`;
    let decoded: ReturnType<typeof decodeStored>[] | null = null;
    for (const c of clients) {
      write(c, blockEvent);
      if (c.account === null) continue;
      decoded ??= block.txs.map(decodeStored);
      for (let i = 0; i < decoded.length; i++) {
        const tx = decoded[i];
        if (tx == null || !txTouches(tx, c.account)) continue;
        const data = {
          hash: toHex(txHash(block.txs[i]!)),
          height: header.height,
          index: i,
          tx: txJson(tx),
          result: txResultJson(block.results[i]!),
        };
        write(c, `event: tx\ndata: ${JSON.stringify(data)}\n\n`);
      }
    }
  };

  const heartbeat = setInterval(() => {
    for (const c of clients) write(c, ': ping\n\n');
  }, limits.heartbeatMs);
  heartbeat.unref();

  // Hijacked responses would keep app.close() waiting forever: end them first.
  app.addHook('preClose', (done) => {
    clearInterval(heartbeat);
    unsubscribe?.();
    unsubscribe = null;
    for (const c of clients) c.res.end();
    clients.clear();
    done();
  });

  app.withTypeProvider<ZodTypeProvider>().get(
    '/v1/stream/blocks',
    {
      schema: {
        summary:
          'Server-Sent Events: `block` events (header JSON) for new blocks; with ?account, `tx` events for its txs',
        tags: ['stream'],
        querystring: StreamBlocksQuery,
      },
    },
    (req, reply) => {
      if (clients.size >= limits.streamsMax) {
        throw new ApiError('too-many-streams', `at most ${limits.streamsMax} live streams`, undefined, 5000);
      }
      const account = req.query.account === undefined ? null : hexToBytes(req.query.account);
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      res.write('retry: 2000\n: connected\n\n');
      const c: Client = { res, account };
      clients.add(c);
      unsubscribe ??= node.onBlock(onBlock);
      req.raw.on('close', () => {
        clients.delete(c);
        if (clients.size === 0 && unsubscribe !== null) {
          unsubscribe();
          unsubscribe = null;
        }
      });
    },
  );
}
