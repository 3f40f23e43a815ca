// A rogue process that attacks a validator's replica endpoint, forked by
// replica-hostility.test.ts with one JSON argument (RogueConfig). It runs one attack,
// reports on IPC how the validator reacted, and exits.
//
// Without a validator key it can only reach the transport and the handshake. With one
// (a validator turned Byzantine) it completes the handshake and then abuses the channel:
// replayed frames, frames with a wrong MAC, garbage frames, and a flood.
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { keyPairFromSeed } from '../../ledger/keys.js';
import { secureChannel } from '../../node/transport/secure-channel.js';
import { TcpTransport } from '../../node/transport/tcp.js';
import type { TransportConnection } from '../../node/transport/types.js';
import { encodeWire } from '../../node/wire.js';

export type Attack =
  | 'garbage'
  | 'oversized-frame'
  | 'unknown-peer'
  | 'bad-signature'
  | 'replay'
  | 'bad-mac'
  | 'garbage-frames'
  | 'byzantine-messages'
  | 'flood'
  | 'forged-gossip';

export interface RogueConfig {
  attack: Attack;
  /** tcp://host:port of the validator under attack. */
  endpoint: string;
  genesisHashHex: string;
  validators: { id: number; publicKeyHex: string }[];
  /** The identity the rogue claims, and (for a Byzantine validator) its real key. */
  claimId: number;
  secretKeyHex?: string;
  /** For floods and message barrages. */
  durationMs: number;
  /** For forged-gossip: encoded txs (hex) to gossip as if this validator had checked them. */
  txsHex?: string[];
  /** After the validator closed the channel, try to connect again at once with the same identity. */
  reconnect?: boolean;
}

export interface RogueReport {
  attack: Attack;
  /** The validator closed the connection (or refused the handshake). */
  closedByValidator: boolean;
  /** From the first hostile byte to the close, ms (null if not closed). */
  closedAfterMs: number | null;
  /**
   * The validator accepted us: the handshake completed and the validator kept the channel
   * open (a refused identity can still see the handshake finish on its side, then be closed).
   */
  authenticated: boolean;
  framesSent: number;
  detail: string;
  /** With `reconnect`: whether the immediate second attempt was accepted. */
  reconnectAccepted?: boolean;
  reconnectDetail?: string;
}

const hostPort = (endpoint: string): { host: string; port: number } => {
  const u = new URL(endpoint.includes('://') ? endpoint : `tcp://${endpoint}`);
  return { host: u.hostname, port: Number(u.port) };
};

/** Raw socket attacks: bytes that never become a handshake. */
function rawAttack(cfg: RogueConfig, payload: Buffer): Promise<RogueReport> {
  return new Promise((resolve) => {
    const { host, port } = hostPort(cfg.endpoint);
    const sock = net.connect(port, host);
    let t0 = 0;
    const done = (closed: boolean, detail: string) => {
      sock.destroy();
      resolve({
        attack: cfg.attack,
        closedByValidator: closed,
        closedAfterMs: closed ? Date.now() - t0 : null,
        authenticated: false,
        framesSent: 1,
        detail,
      });
    };
    const timer = setTimeout(() => done(false, 'still open'), cfg.durationMs);
    sock.on('connect', () => {
      t0 = Date.now();
      sock.write(payload);
    });
    sock.on('data', () => {}); // the validator's own Hello
    sock.on('error', () => {});
    sock.on('close', () => {
      clearTimeout(timer);
      done(true, 'closed');
    });
  });
}

/** A channel whose raw frames the rogue can capture, hold back, and re-send. */
function tap(conn: TransportConnection) {
  const sent: Uint8Array[] = [];
  let hold = false;
  const proxy: TransportConnection = {
    remote: conn.remote,
    send(m) {
      sent.push(Uint8Array.from(m));
      return hold ? true : conn.send(m);
    },
    onMessages: (cb) => conn.onMessages(cb),
    onDrain: (cb) => conn.onDrain(cb),
    onClose: (cb) => conn.onClose(cb),
    close: () => conn.close(),
  };
  return { proxy, sent, hold: (v: boolean) => (hold = v) };
}

async function channelAttack(cfg: RogueConfig): Promise<RogueReport> {
  const transport = new TcpTransport();
  const conn = await transport.connect(cfg.endpoint.includes('://') ? cfg.endpoint : `tcp://${cfg.endpoint}`);
  let closedAt: number | null = null;
  conn.onClose(() => {
    closedAt ??= Date.now();
  });
  const t = tap(conn);
  const secretKey = cfg.secretKeyHex ? Buffer.from(cfg.secretKeyHex, 'hex') : randomBytes(32);
  const validators = cfg.validators.map((v) => ({ id: v.id, publicKey: Buffer.from(v.publicKeyHex, 'hex') }));
  if (!validators.some((v) => v.id === cfg.claimId)) {
    validators.push({ id: cfg.claimId, publicKey: Buffer.from(keyPairFromSeed(secretKey).publicKey) });
  }
  const report = (authenticated: boolean, t0: number, framesSent: number, detail: string): RogueReport => ({
    attack: cfg.attack,
    closedByValidator: closedAt !== null,
    closedAfterMs: closedAt === null ? null : Math.max(0, closedAt - t0),
    authenticated,
    framesSent,
    detail,
  });
  const t0 = Date.now();
  let ch: Awaited<ReturnType<typeof secureChannel>>;
  try {
    ch = await secureChannel(t.proxy, {
      self: { id: cfg.claimId, secretKey },
      validators,
      genesisHash: Buffer.from(cfg.genesisHashHex, 'hex'),
      role: 'initiator',
      timeoutMs: 5000,
    });
  } catch (e) {
    await new Promise((r) => setTimeout(r, 100));
    await transport.close();
    return report(false, t0, 0, `handshake refused: ${(e as Error).message}`);
  }
  // A refused identity can finish the handshake on its side and be closed right after.
  await new Promise((r) => setTimeout(r, 300));
  if (closedAt !== null) {
    await transport.close();
    return report(false, t0, 0, 'closed by the validator right after the handshake');
  }
  const status = (h: bigint) => encodeWire({ type: 'status', height: h, view: 0n });
  const start = Date.now();
  let frames = 0;
  const waitClosed = async (ms: number) => {
    const until = Date.now() + ms;
    while (closedAt === null && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  };
  switch (cfg.attack) {
    case 'forged-gossip': {
      ch.send(encodeWire({ type: 'txs', txs: (cfg.txsHex ?? []).map((h) => Buffer.from(h, 'hex')) }));
      frames++;
      break;
    }
    case 'replay': {
      ch.send(status(1n));
      frames++;
      await new Promise((r) => setTimeout(r, 100));
      // The same authenticated frame again: its sequence number is now stale.
      conn.send(t.sent[t.sent.length - 1]!);
      frames++;
      break;
    }
    case 'bad-mac': {
      t.hold(true);
      ch.send(status(2n));
      t.hold(false);
      const frame = Uint8Array.from(t.sent[t.sent.length - 1]!);
      frame[10] = frame[10]! ^ 0x01; // inside the payload: the MAC no longer matches
      conn.send(frame);
      frames++;
      break;
    }
    case 'garbage-frames': {
      conn.send(randomBytes(200));
      frames++;
      break;
    }
    case 'byzantine-messages': {
      // Well-authenticated nonsense: every kind of replica message with hostile content.
      const until = start + cfg.durationMs;
      while (Date.now() < until && closedAt === null) {
        for (let i = 0; i < 50; i++) {
          const r = randomBytes(1 + (i % 200));
          r[0] = 1 + (i % 6); // each wire tag, then garbage
          ch.send(r);
          frames++;
        }
        // A burst of whole-chain block requests: more than a validator serves at once for one peer.
        for (let k = 0; k < 8; k++) {
          ch.send(encodeWire({ type: 'blocks-request', requestId: frames + k, fromHeight: 0n, count: 1024 }));
        }
        ch.send(encodeWire({ type: 'status', height: (1n << 64n) - 1n, view: (1n << 64n) - 1n }));
        frames += 9;
        await new Promise((r) => setTimeout(r, 10));
      }
      break;
    }
    case 'flood': {
      const until = start + cfg.durationMs;
      const msg = status(3n);
      while (Date.now() < until && closedAt === null) {
        for (let i = 0; i < 2000 && closedAt === null; i++) {
          try {
            ch.send(msg);
          } catch {
            break;
          }
          frames++;
        }
        await new Promise((r) => setImmediate(r));
      }
      break;
    }
    default:
      break;
  }
  await waitClosed(
    cfg.attack === 'flood' || cfg.attack === 'byzantine-messages' || cfg.attack === 'forged-gossip'
      ? 500
      : 3000,
  );
  const r = report(true, start, frames, closedAt === null ? 'channel still open' : 'closed by the validator');
  await transport.close();
  if (cfg.reconnect && r.closedByValidator) {
    const again = await channelAttack({ ...cfg, attack: 'garbage-frames', reconnect: false });
    r.reconnectAccepted = again.authenticated;
    r.reconnectDetail = again.detail;
  }
  return r;
}

async function run(cfg: RogueConfig): Promise<RogueReport> {
  switch (cfg.attack) {
    case 'garbage':
      return rawAttack(cfg, randomBytes(4096));
    case 'oversized-frame': {
      const b = Buffer.alloc(64);
      b.writeUInt32BE(0xfffffff0, 0);
      return rawAttack(cfg, b);
    }
    default:
      return channelAttack(cfg);
  }
}

if (process.send) {
  const cfg = JSON.parse(process.argv[2] ?? '{}') as RogueConfig;
  run(cfg).then(
    (r) => process.send!(r, () => process.exit(0)),
    (e) => {
      process.send!({ error: String(e) }, () => process.exit(1));
    },
  );
}
