import assert from 'node:assert/strict';
import net from 'node:net';
import {
  createTcpTransport,
  formatTcpEndpoint,
  parseTcpEndpoint,
  TcpTransport,
} from '../../../node/transport/tcp.js';
import { type TransportConnection, TransportError } from '../../../node/transport/types.js';
import { describeTransportConformance } from './conformance.js';

describeTransportConformance('tcp', {
  moduleUrl: new URL('../../../node/transport/tcp.js', import.meta.url).href,
  exportName: createTcpTransport.name,
  listenEndpoint: 'tcp://127.0.0.1:0',
});

function rawConnect(endpoint: string): Promise<net.Socket> {
  const { host, port } = parseTcpEndpoint(endpoint);
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port }, () => resolve(s));
    s.once('error', reject);
  });
}

function nextClose(conn: TransportConnection): Promise<TransportError | undefined> {
  return new Promise((resolve) => conn.onClose(resolve));
}

describe('TcpTransport', () => {
  const transports: TcpTransport[] = [];
  const make = (options?: ConstructorParameters<typeof TcpTransport>[0]) => {
    const t = new TcpTransport(options);
    transports.push(t);
    return t;
  };
  afterEach(async () => {
    await Promise.all(transports.splice(0).map((t) => t.close()));
  });

  it('parses and formats tcp endpoints, and rejects anything else with a typed error', () => {
    assert.deepEqual(parseTcpEndpoint('tcp://127.0.0.1:9000'), { host: '127.0.0.1', port: 9000 });
    assert.deepEqual(parseTcpEndpoint('localhost:0'), { host: 'localhost', port: 0 });
    assert.deepEqual(parseTcpEndpoint('tcp://[::1]:9'), { host: '::1', port: 9 });
    assert.equal(formatTcpEndpoint({ host: '::1', port: 9 }), 'tcp://[::1]:9');
    for (const bad of ['', 'tcp://127.0.0.1', 'udp://1.2.3.4:5', 'tcp://h:70000', 'h:-1']) {
      assert.throws(() => parseTcpEndpoint(bad), TransportError, bad);
    }
  });

  it('closes a connection that announces an oversized frame, without allocating it, and keeps serving others', async () => {
    const server = make({ limits: { messageBytesMax: 1024 } });
    const closes: (TransportError | undefined)[] = [];
    const accepted: TransportConnection[] = [];
    server.onConnection((conn) => {
      accepted.push(conn);
      conn.onClose((e) => closes.push(e));
      conn.onMessages((batch) => {
        for (const m of batch) conn.send(m);
      });
    });
    const endpoint = await server.listen('tcp://127.0.0.1:0');

    const honest = await make().connect(endpoint);
    const hostile = await rawConnect(endpoint);
    const hostileClosed = new Promise<void>((resolve) => hostile.on('close', () => resolve()));
    const header = Buffer.alloc(4);
    header.writeUInt32BE(0xffffffff); // claims 4 GiB
    hostile.write(header);
    await hostileClosed;
    assert.equal(closes.length, 1);
    assert.ok(closes[0] instanceof TransportError);
    assert.equal(closes[0].code, 'oversized');

    const echoed = new Promise<Uint8Array[]>((resolve) => honest.onMessages(resolve));
    honest.send(Buffer.from('still here'));
    assert.equal(Buffer.from((await echoed)[0]!).toString(), 'still here');
  });

  it('reassembles frames split at every byte boundary and delivers a chunk’s frames in one batch', async () => {
    const server = make();
    const batches: Uint8Array[][] = [];
    server.onConnection((conn) => conn.onMessages((b) => batches.push(b.map((m) => Uint8Array.from(m)))));
    const endpoint = await server.listen('tcp://127.0.0.1:0');
    const raw = await rawConnect(endpoint);
    raw.setNoDelay(true);
    const frame = (s: string) => {
      const b = Buffer.from(s);
      const h = Buffer.alloc(4);
      h.writeUInt32BE(b.length);
      return Buffer.concat([h, b]);
    };
    // Three frames in one write arrive as one batch.
    raw.write(Buffer.concat([frame('a'), frame(''), frame('ccc')]));
    await waitUntil(() => batches.length === 1);
    assert.deepEqual(
      batches[0]!.map((m) => Buffer.from(m).toString()),
      ['a', '', 'ccc'],
    );
    // One frame dribbled a byte at a time still arrives whole.
    const slow = frame('split-everywhere');
    for (const byte of slow) {
      raw.write(Buffer.of(byte));
      await new Promise((r) => setTimeout(r, 1));
    }
    await waitUntil(() => batches.flat().length === 4);
    assert.equal(Buffer.from(batches.flat()[3]!).toString(), 'split-everywhere');
    raw.destroy();
  });

  it('refuses inbound connections above connectionsInboundMax', async () => {
    const server = make({ connectionsInboundMax: 1 });
    const accepted: TransportConnection[] = [];
    server.onConnection((c) => accepted.push(c));
    const endpoint = await server.listen('tcp://127.0.0.1:0');
    await make().connect(endpoint);
    await waitUntil(() => accepted.length === 1);
    const extra = await make().connect(endpoint);
    const why = await nextClose(extra);
    assert.equal(why?.code, 'peer-lost');
    assert.equal(accepted.length, 1);
    assert.equal(server.connectionCount, 1);
  });

  it('reports a local close without an error, a peer close as peer-lost, and refuses sends after close', async () => {
    const server = make();
    const serverSide = new Promise<TransportConnection>((resolve) => server.onConnection(resolve));
    const endpoint = await server.listen('tcp://127.0.0.1:0');
    const client = await make().connect(endpoint);
    const peer = await serverSide;
    const clientClosed = nextClose(client);
    const peerClosed = nextClose(peer);
    await client.close();
    assert.equal(await clientClosed, undefined);
    assert.equal((await peerClosed)?.code, 'peer-lost');
    assert.throws(
      () => client.send(Uint8Array.of(1)),
      (e: unknown) => e instanceof TransportError && e.code === 'closed',
    );
  });

  it('fails connect to a port nobody listens on with connect-failed', async () => {
    const probe = make();
    const endpoint = await probe.listen('tcp://127.0.0.1:0');
    await probe.close();
    await assert.rejects(
      make().connect(endpoint),
      (e: unknown) => e instanceof TransportError && e.code === 'connect-failed',
    );
  });
});

async function waitUntil(cond: () => boolean, timeoutMs = 5_000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
