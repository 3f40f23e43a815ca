// Runs inside a validator's network namespace: accepts connections on a Unix socket
// (file system paths cross namespaces, ports do not) and relays each to host:port in
// this namespace. The drill harness in the root namespace connects to the socket, so it
// reaches every validator's API without giving the root namespace a 10.213.x address.
// Exits when stdin closes, so it never outlives the harness that started it.
//   node unix-forward.js <socketPath> <host> <port>

import { rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';

const [socketPath, host, portText] = process.argv.slice(2);
const port = Number(portText);
if (!socketPath || !host || !Number.isInteger(port)) {
  process.stderr.write('usage: unix-forward.js <socketPath> <host> <port>\n');
  process.exit(64);
}

rmSync(socketPath, { force: true });
const server = createServer((inbound) => {
  const outbound = connect({ host, port });
  inbound.pipe(outbound);
  outbound.pipe(inbound);
  const close = (): void => {
    inbound.destroy();
    outbound.destroy();
  };
  inbound.on('error', close);
  outbound.on('error', close);
  inbound.on('close', close);
  outbound.on('close', close);
});
server.listen(socketPath, () => process.stdout.write('listening\n'));

const stop = (): void => {
  server.close();
  rmSync(socketPath, { force: true });
  process.exit(0);
};
process.stdin.on('end', stop);
process.stdin.on('close', stop);
process.stdin.resume();
process.on('SIGTERM', stop);
