// The floor for bench/api.ts: a bare node:http server, in its own process, that answers
// every request with the same in-memory body. It reads, renders and writes nothing (the
// bench's writer keeps running in the bench process meanwhile), so its latency under the
// same load generator, rate and response size is what this machine's cores, loopback and
// scheduler allow any HTTP server in Node.js. Our server's figures are reported against
// it: a tail the floor shows too is the machine's, not the node's.
//
// Protocol with bench/api.ts: { bodyBytes } in, { port } out; killed when done.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FloorJob {
  bodyBytes: number;
}

const job = await new Promise<FloorJob>((resolve) => process.once('message', (m) => resolve(m as FloorJob)));
// JSON-shaped bytes of the requested size, so the client parses what it would from our server.
const body = Buffer.alloc(Math.max(2, job.bodyBytes), 0x20);
body[0] = 0x7b; // {
body[body.length - 1] = 0x7d; // }
const server = createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': body.length });
  res.end(body);
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  process.send?.({ port: (server.address() as AddressInfo).port });
});
process.on('disconnect', () => process.exit(0));
