// Transport conformance suite, run against every Transport implementation with real
// processes over real sockets (or fabric endpoints).
//
// For rdma-native/ (helper C1): call `describeTransportConformance('rdma tcp;ofi_rxm', {...})`
// from your own test file, with `moduleUrl` the file URL of a compiled module (next to your
// test in the build dir) whose export `exportName` is `(limits: Partial<TransportLimits>) =>
// Transport`, and `listenEndpoint` what `listen()` accepts for "any free address on
// loopback". The peer process (peer-process.js, a sibling of this file) imports that module
// itself, so no transport code is passed between processes. The suite needs
// `TransportConnection.queuedBytes`, and that `listen()` on the endpoint it returned works
// again in a new process after the old one was killed (the reconnect test).
import assert from 'node:assert/strict';
import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { generateKeyPair } from '../../../ledger/keys.js';
import { type DialerEvent, ReconnectingDialer } from '../../../node/transport/dialer.js';
import { SecureChannelError, secureChannel } from '../../../node/transport/secure-channel.js';
import {
  type Transport,
  type TransportConnection,
  TransportError,
  type TransportLimits,
} from '../../../node/transport/types.js';
import type { PeerConfig, PeerReport } from './peer-process.js';
import { checkStreamMessage, fillStreamMessage } from './stream.js';
import { tap } from './tap.js';

export interface TransportFactory {
  /** File URL of a compiled ESM module exporting the factory. */
  moduleUrl: string;
  /** Name of the export: `(limits: Partial<TransportLimits>) => Transport`. */
  exportName: string;
  /** Endpoint for `listen()` that picks a free loopback address. */
  listenEndpoint: string;
}

const PEER_SCRIPT = fileURLToPath(new URL('./peer-process.js', import.meta.url));

export interface Peer {
  child: ChildProcess;
  /** Resolves with the next report of this type (rejects on an 'error' report or exit). */
  next<T extends PeerReport['type']>(type: T, timeoutMs?: number): Promise<Extract<PeerReport, { type: T }>>;
  kill(): void;
}

export function spawnPeer(config: PeerConfig): Peer {
  const child = fork(PEER_SCRIPT, [JSON.stringify(config)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const reports: PeerReport[] = [];
  const waiters: (() => void)[] = [];
  let exited = false;
  child.on('message', (m) => {
    reports.push(m as PeerReport);
    for (const w of waiters.splice(0)) w();
  });
  child.on('exit', () => {
    exited = true;
    for (const w of waiters.splice(0)) w();
  });
  return {
    child,
    next(type, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`peer: no '${type}' report in ${timeoutMs} ms`)),
          timeoutMs,
        );
        const check = () => {
          const i = reports.findIndex((r) => r.type === type || r.type === 'error');
          if (i >= 0) {
            const [r] = reports.splice(i, 1);
            clearTimeout(timer);
            if (r!.type === 'error') reject(new Error(`peer failed: ${r!.message}`));
            else resolve(r as Extract<PeerReport, { type: typeof type }>);
            return;
          }
          if (exited) {
            clearTimeout(timer);
            reject(new Error(`peer exited before reporting '${type}'`));
            return;
          }
          waiters.push(check);
        };
        check();
      });
    },
    kill() {
      if (!exited) child.kill('SIGKILL');
    },
  };
}

async function loadFactory(
  factory: TransportFactory,
): Promise<(limits: Partial<TransportLimits>) => Transport> {
  const mod = (await import(factory.moduleUrl)) as Record<string, unknown>;
  const create = mod[factory.exportName];
  assert.equal(typeof create, 'function', `${factory.moduleUrl} exports ${factory.exportName}`);
  return create as (limits: Partial<TransportLimits>) => Transport;
}

/** Collects messages from `conn` until `count` arrived. */
function collect(conn: TransportConnection, count: number, timeoutMs = 20_000): Promise<Uint8Array[]> {
  return new Promise((resolve, reject) => {
    const got: Uint8Array[] = [];
    const timer = setTimeout(() => reject(new Error(`got ${got.length} of ${count} messages`)), timeoutMs);
    conn.onMessages((batch) => {
      got.push(...batch.map((m) => Uint8Array.from(m)));
      if (got.length >= count) {
        clearTimeout(timer);
        resolve(got);
      }
    });
  });
}

function waitFor<E extends DialerEvent['type']>(
  dialer: ReconnectingDialer,
  type: E,
  timeoutMs = 15_000,
): Promise<Extract<DialerEvent, { type: E }>> {
  return new Promise((resolve, reject) => {
    let done = false;
    const timer = setTimeout(() => {
      done = true;
      reject(new Error(`dialer: no '${type}' event in ${timeoutMs} ms`));
    }, timeoutMs);
    dialer.onEvent((e) => {
      if (done || e.type !== type) return;
      done = true;
      clearTimeout(timer);
      resolve(e as Extract<DialerEvent, { type: E }>);
    });
  });
}

export function describeTransportConformance(name: string, factory: TransportFactory): void {
  describe(`transport conformance: ${name}`, function () {
    this.timeout(60_000);
    const peers: Peer[] = [];
    const transports: Transport[] = [];
    let create: (limits: Partial<TransportLimits>) => Transport;

    const peer = (config: Omit<PeerConfig, 'moduleUrl' | 'exportName'>): Peer => {
      const p = spawnPeer({ moduleUrl: factory.moduleUrl, exportName: factory.exportName, ...config });
      peers.push(p);
      return p;
    };
    const local = (limits: Partial<TransportLimits> = {}): Transport => {
      const t = create(limits);
      transports.push(t);
      return t;
    };

    before(async () => {
      create = await loadFactory(factory);
    });

    afterEach(async () => {
      for (const p of peers.splice(0)) p.kill();
      await Promise.all(transports.splice(0).map((t) => t.close()));
    });

    it('delivers 1,000,000 small messages from another process intact, in order and in batches', async () => {
      const count = 1_000_000;
      const size = 16;
      const server = local();
      let received = 0;
      let batches = 0;
      let firstBad = -1;
      const done = new Promise<void>((resolve, reject) => {
        server.onConnection((conn) => {
          conn.onClose((e) => {
            if (received < count)
              reject(new Error(`connection ended after ${received} messages: ${e?.message}`));
          });
          conn.onMessages((batch) => {
            batches += 1;
            for (const m of batch) {
              if (firstBad < 0 && !checkStreamMessage(m, received, size)) firstBad = received;
              received += 1;
            }
            if (received >= count) resolve();
          });
        });
      });
      const endpoint = await server.listen(factory.listenEndpoint);
      const sender = peer({ role: 'stream-sender', endpoint, limits: {}, count, size });
      await done;
      const sent = await sender.next('sent');
      assert.equal(firstBad, -1, `message ${firstBad} arrived corrupt or out of order`);
      assert.equal(received, count);
      assert.equal(sent.count, count);
      assert.ok(
        batches < count / 10,
        `messages arrive in batches (${batches} callbacks for ${count} messages)`,
      );
    });

    it('carries messages of every size up to messageBytesMax and refuses a larger one at the sender', async () => {
      const messageBytesMax = 4 * 1024 * 1024;
      const limits = { messageBytesMax, sendQueueBytesMax: 16 * 1024 * 1024 };
      const echo = peer({ role: 'echo-server', endpoint: factory.listenEndpoint, limits });
      const { endpoint } = await echo.next('ready');
      const conn = await local(limits).connect(endpoint);
      const messages = [0, 1, 4096, messageBytesMax - 1, messageBytesMax, messageBytesMax].map(
        (n) => new Uint8Array(randomBytes(n)),
      );
      const echoed = collect(conn, messages.length);
      for (const m of messages) conn.send(m);
      const got = await echoed;
      assert.deepEqual(
        got.map((m) => m.length),
        messages.map((m) => m.length),
      );
      for (let i = 0; i < messages.length; i++) {
        assert.ok(Buffer.from(got[i]!).equals(messages[i]!), `message ${i} came back unchanged`);
      }

      assert.throws(
        () => conn.send(new Uint8Array(messageBytesMax + 1)),
        (e: unknown) => e instanceof TransportError && e.code === 'oversized',
      );
      const after = collect(conn, 1);
      conn.send(Uint8Array.of(7));
      assert.deepEqual([...(await after)[0]!], [7], 'the connection still works after a refused send');
    });

    it('bounds the send queue while a slow receiver drains it, and loses nothing', async () => {
      const size = 64 * 1024;
      const count = 256; // 16 MiB through a 1 MiB queue
      const sendQueueBytesMax = 1024 * 1024;
      const slow = peer({
        role: 'slow-server',
        endpoint: factory.listenEndpoint,
        limits: {},
        count,
        size,
        delayMs: 2,
      });
      const { endpoint } = await slow.next('ready');
      const conn = await local({ sendQueueBytesMax }).connect(endpoint);
      assert.equal(typeof conn.queuedBytes, 'number', 'the transport reports queuedBytes');
      let drains = 0;
      let onDrain: (() => void) | undefined;
      conn.onDrain(() => {
        drains += 1;
        onDrain?.();
      });
      let queuedBytesMax = 0;
      let refusals = 0;
      for (let i = 0; i < count; i++) {
        const m = new Uint8Array(size);
        fillStreamMessage(m, i);
        const more = conn.send(m);
        queuedBytesMax = Math.max(queuedBytesMax, conn.queuedBytes!);
        if (!more) {
          refusals += 1;
          await new Promise<void>((resolve) => {
            onDrain = resolve;
          });
        }
      }
      const report = await slow.next('received');
      assert.ok(report.ok, report.detail);
      assert.equal(report.count, count);
      assert.ok(refusals > 0, 'send reported backpressure at least once');
      assert.equal(drains, refusals, 'every refusal was followed by exactly one drain');
      // One message past the limit is allowed (send queues it, then says stop); framing adds a few bytes.
      const bound = sendQueueBytesMax + size + 64;
      assert.ok(queuedBytesMax <= bound, `queued at most ${queuedBytesMax} bytes, bound ${bound}`);
    });

    it('hands queued messages to the kernel or NIC within the turn when flushed, and they arrive', async () => {
      const echo = peer({ role: 'echo-server', endpoint: factory.listenEndpoint, limits: {} });
      const { endpoint } = await echo.next('ready');
      const conn = await local().connect(endpoint);
      assert.equal(typeof conn.flush, 'function', 'the transport implements flush');
      const echoed = collect(conn, 2);
      conn.send(Uint8Array.of(1, 2, 3));
      conn.send(new Uint8Array(300).fill(4));
      assert.ok(conn.queuedBytes! > 0, 'sends are queued until the end of the turn');
      conn.flush!();
      // Still in the same turn: no microtask or I/O callback ran since the sends.
      assert.equal(conn.queuedBytes, 0, 'flush left nothing queued');
      const got = await echoed;
      assert.deepEqual([...got[0]!], [1, 2, 3]);
      assert.ok(
        got[1]!.length === 300 && got[1]!.every((x) => x === 4),
        'the second message came back unchanged',
      );
    });

    it('reconnects through the dialer after the peer process is killed and restarted', async () => {
      const first = peer({ role: 'echo-server', endpoint: factory.listenEndpoint, limits: {} });
      const { endpoint } = await first.next('ready');
      const client = local();
      const dialer = new ReconnectingDialer(client, endpoint, () => {}, {
        backoff: { delayMsMin: 20, delayMsMax: 200, factor: 2 },
        stableMs: 100,
      });
      try {
        const connected = waitFor(dialer, 'connected');
        dialer.start();
        const c1 = (await connected).conn;
        const echoed1 = collect(c1, 1);
        c1.send(Buffer.from('before'));
        assert.equal(Buffer.from((await echoed1)[0]!).toString(), 'before');

        const disconnected = waitFor(dialer, 'disconnected');
        const failedWhileDown = waitFor(dialer, 'failed');
        first.kill();
        const lost = await disconnected;
        assert.ok(lost.error instanceof TransportError, 'the loss is reported as a TransportError');
        assert.equal(lost.error.code, 'peer-lost');
        const failed = await failedWhileDown;
        assert.ok(
          failed.retryInMs >= 10 && failed.retryInMs <= 200,
          `retry delay ${failed.retryInMs} within backoff`,
        );

        const reconnected = waitFor(dialer, 'connected');
        const second = peer({ role: 'echo-server', endpoint, limits: {} });
        await second.next('ready');
        const c2 = (await reconnected).conn;
        assert.notEqual(c2, c1);
        const echoed2 = collect(c2, 1);
        c2.send(Buffer.from('after'));
        assert.equal(Buffer.from((await echoed2)[0]!).toString(), 'after');
      } finally {
        await dialer.close();
      }
    });

    it('runs the secure channel to another process, which closes it on a frame with a wrong MAC', async () => {
      const keys = [generateKeyPair(), generateKeyPair()];
      const genesisHash = new Uint8Array(randomBytes(32));
      const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
      const server = peer({
        role: 'secure-echo-server',
        endpoint: factory.listenEndpoint,
        limits: {},
        secure: {
          selfId: 0,
          secretKeyHex: hex(keys[0]!.secretKey),
          validators: keys.map((k, id) => ({ id, publicKeyHex: hex(k.publicKey) })),
          genesisHashHex: hex(genesisHash),
        },
      });
      const { endpoint } = await server.next('ready');
      const t = tap(await local().connect(endpoint));
      const ch = await secureChannel(t.proxy, {
        self: { id: 1, secretKey: keys[1]!.secretKey },
        validators: keys.map((k, id) => ({ id, publicKey: k.publicKey })),
        genesisHash,
        role: 'initiator',
      });
      assert.equal(ch.peerId, 0);
      const echoed = new Promise<string[]>((resolve) => {
        const got: string[] = [];
        ch.onMessages((batch) => {
          got.push(...batch.map((m) => Buffer.from(m).toString()));
          if (got.length >= 3) resolve(got);
        });
      });
      for (const s of ['one', 'two', 'three']) ch.send(Buffer.from(s));
      assert.deepEqual(await echoed, ['one', 'two', 'three'], 'authenticated frames are echoed');

      const ended = new Promise<SecureChannelError | undefined>((resolve) => ch.onClose(resolve));
      t.setHold(true);
      ch.send(Buffer.from('tampered'));
      t.setHold(false);
      const forged = Buffer.from(t.sent.at(-1)!);
      forged[forged.length - 1]! ^= 0x80;
      t.proxy.send(forged);
      const closed = await server.next('channel-closed');
      assert.deepEqual(closed, { type: 'channel-closed', peerId: 1, code: 'bad-mac' });
      assert.ok((await ended) instanceof SecureChannelError, 'our side sees the channel end');
    });
  });
}
