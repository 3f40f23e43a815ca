// The floor for bench/api.ts: a bare node:http server, in its own process, that answers
// every request with the same in-memory body. It reads, renders and writes nothing (the
// bench's writer keeps running in the bench process meanwhile), so its latency under the
// same load generator, rate and response size is what this machine's cores, loopback and
// scheduler allow any HTTP server in Node.js. Our server's figures are reported against
// it: a tail the floor shows too is the machine's, not the node's.
//
// Protocol with bench/api.ts: { bodyBytes } in, { port } out once the server answers with a
// body of that size; repeated (one process for the whole run, for the reason given in
// bench/_api-load.ts: a fork per phase slows the bench process down). Ends when the parent
// closes the channel.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FloorJob {
  bodyBytes: number;
}

/** JSON-shaped bytes of the requested size, so the client parses what it would from our server. */
function bodyOf(bytes: number): Buffer {
  const body = Buffer.alloc(Math.max(2, bytes), 0x20);
  body[0] = 0x7b; // {
  body[body.length - 1] = 0x7d; // }
  return body;
}

let body = bodyOf(2);
const server = createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': body.length });
  res.end(body);
});
server.keepAliveTimeout = 60_000;
const listening = new Promise<number>((resolve) =>
  server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)),
);
process.on('message', (m) => {
  body = bodyOf((m as FloorJob).bodyBytes);
  void listening.then((port) => process.send?.({ port }));
});
process.on('disconnect', () => process.exit(0));
