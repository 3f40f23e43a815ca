// The other process in the transport conformance tests. Forked with one JSON argument
// (PeerConfig) and an IPC channel; it loads the transport under test from a module URL,
// so the same script drives TCP and RDMA. It reports on IPC and never exits on its own
// except on error: the parent kills it.

import { type SecureChannelError, secureChannel } from '../../../node/transport/secure-channel.js';
import type { Transport, TransportConnection, TransportLimits } from '../../../node/transport/types.js';
import { checkStreamMessage, fillStreamMessage } from './stream.js';

export type PeerRole =
  /** Listens; echoes every message back on the connection it came from. */
  | 'echo-server'
  /** Listens; blocks `delayMs` per received batch (a slow consumer) and checks the stream. */
  | 'slow-server'
  /** Connects and sends `count` stream messages of `size` bytes, honouring backpressure. */
  | 'stream-sender'
  /** Listens; runs the secure channel as a responder (`secure`), echoes, reports how channels end. */
  | 'secure-echo-server';

export interface SecurePeerConfig {
  selfId: number;
  secretKeyHex: string;
  validators: { id: number; publicKeyHex: string }[];
  genesisHashHex: string;
}

export interface PeerConfig {
  moduleUrl: string;
  exportName: string;
  limits: Partial<TransportLimits>;
  role: PeerRole;
  endpoint: string;
  count?: number;
  size?: number;
  delayMs?: number;
  secure?: SecurePeerConfig;
}

export type PeerReport =
  | { type: 'ready'; endpoint: string }
  | { type: 'sent'; count: number; queuedBytesMax: number; backpressureCount: number; drainCount: number }
  | { type: 'received'; count: number; bytes: number; ok: boolean; detail?: string }
  | { type: 'channel-closed'; peerId: number; code?: string }
  | { type: 'handshake-failed'; code: string }
  | { type: 'error'; message: string };

function report(r: PeerReport): void {
  process.send?.(r);
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

async function sendStream(conn: TransportConnection, count: number, size: number): Promise<void> {
  let queuedBytesMax = 0;
  let backpressureCount = 0;
  let drainCount = 0;
  let drained: (() => void) | undefined;
  conn.onDrain(() => {
    drainCount += 1;
    drained?.();
  });
  const perBlock = Math.max(1, Math.floor((1 << 20) / Math.max(size, 1)));
  let block = new Uint8Array(0);
  for (let i = 0; i < count; i++) {
    const slot = i % perBlock;
    if (slot === 0) block = new Uint8Array(perBlock * size);
    const m = block.subarray(slot * size, (slot + 1) * size);
    fillStreamMessage(m, i);
    const more = conn.send(m);
    queuedBytesMax = Math.max(queuedBytesMax, conn.queuedBytes ?? Number.NaN);
    if (!more) {
      backpressureCount += 1;
      await new Promise<void>((resolve) => {
        drained = resolve;
      });
      drained = undefined;
    }
  }
  report({ type: 'sent', count, queuedBytesMax, backpressureCount, drainCount });
}

function secureEcho(conn: TransportConnection, secure: SecurePeerConfig): void {
  secureChannel(conn, {
    self: { id: secure.selfId, secretKey: Buffer.from(secure.secretKeyHex, 'hex') },
    validators: secure.validators.map((v) => ({ id: v.id, publicKey: Buffer.from(v.publicKeyHex, 'hex') })),
    genesisHash: Buffer.from(secure.genesisHashHex, 'hex'),
    role: 'responder',
  }).then(
    (ch) => {
      ch.onMessages((batch) => {
        for (const m of batch) ch.send(m);
      });
      ch.onClose((e) =>
        report({ type: 'channel-closed', peerId: ch.peerId, ...(e ? { code: e.code } : {}) }),
      );
    },
    (e: SecureChannelError) => report({ type: 'handshake-failed', code: e.code }),
  );
}

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? '{}') as PeerConfig;
  const mod = (await import(config.moduleUrl)) as Record<
    string,
    (limits: Partial<TransportLimits>) => Transport
  >;
  const factory = mod[config.exportName];
  if (typeof factory !== 'function')
    throw new Error(`${config.moduleUrl} has no export ${config.exportName}`);
  const transport = factory(config.limits);

  if (config.role === 'stream-sender') {
    const conn = await transport.connect(config.endpoint);
    await sendStream(conn, config.count ?? 0, config.size ?? 16);
    return;
  }

  transport.onConnection((conn) => {
    if (config.role === 'secure-echo-server') {
      secureEcho(conn, config.secure!);
      return;
    }
    if (config.role === 'echo-server') {
      conn.onMessages((batch) => {
        for (const m of batch) conn.send(m);
      });
      return;
    }
    const size = config.size ?? 0;
    let count = 0;
    let bytes = 0;
    let ok = true;
    let detail: string | undefined;
    conn.onMessages((batch) => {
      sleepSync(config.delayMs ?? 0);
      for (const m of batch) {
        if (ok && !checkStreamMessage(m, count, size)) {
          ok = false;
          detail = `message ${count} is corrupt or out of order`;
        }
        count += 1;
        bytes += m.length;
      }
      if (count === config.count)
        report({ type: 'received', count, bytes, ok, ...(detail ? { detail } : {}) });
    });
  });
  const endpoint = await transport.listen(config.endpoint);
  report({ type: 'ready', endpoint });
}

main().catch((e: unknown) => {
  report({ type: 'error', message: e instanceof Error ? (e.stack ?? e.message) : String(e) });
  process.exitCode = 1;
  setTimeout(() => process.exit(1), 100);
});
