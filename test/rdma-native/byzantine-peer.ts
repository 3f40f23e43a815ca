// A Byzantine peer in its own process: it drives the raw addon (no RdmaTransport
// policy), completes the HELLO/ACCEPT exchange like an honest peer to get a ring in the
// victim's registered memory, then breaks one rule. Forked by violations.test.ts with
// one JSON argument; reports on IPC and waits to be killed.
import { randomBytes } from 'node:crypto';
import { secureChannel } from '../../node/transport/secure-channel.js';
import {
  EVENT_ERROR,
  EVENT_RECV,
  type NativeEvent,
  type NativeFabric,
  nativeAddon,
} from '../../rdma-native/native.js';
import { RdmaTransport } from '../../rdma-native/transport.js';
import {
  type Accept,
  decodeAccept,
  encodeCqData,
  encodeHello,
  MSG_ACCEPT,
  MSG_DATA,
  MSG_REJECT,
  parseEndpoint,
} from '../../rdma-native/wire.js';

export type Attack =
  /** An RMA chunk announced shorter than its own header. */
  | 'short'
  /** An RMA chunk announced longer than any chunk may be. */
  | 'length'
  /** An RMA chunk that returns more ring credit than the victim ever used. */
  | 'credit'
  /** A well-placed chunk whose frame header claims more than messageBytesMax. */
  | 'frame'
  /** Remote CQ data with ring tokens that are not its own (guessing another peer's). */
  | 'foreign'
  /** A violation, then a write into the ring after the victim deregistered it. */
  | 'revoked-write'
  /** msg path: more DATA messages than the credits granted. */
  | 'flood'
  /** An authenticated secure channel, then one frame with a wrong MAC. */
  | 'bad-mac';

export interface ByzantineConfig {
  provider: string;
  endpoint: string;
  attack: Attack;
  dataPath: 'rma' | 'msg';
  /** For 'bad-mac': validator 1's secret key (hex), the validator set and the genesis hash. */
  secretKeyHex?: string;
  validators?: { id: number; publicKeyHex: string }[];
  genesisHashHex?: string;
}

export type ByzantineReport =
  | { type: 'done'; writeErrors: number; writesCompleted: number }
  /** The victim answered the HELLO with REJECT (it grants no ring over this provider). */
  | { type: 'refused' }
  | { type: 'error'; message: string };

/** Far more DATA messages than the 32 credits granted, sent without waiting for any credit. */
const FLOOD_MESSAGES = 20_000;

function report(r: ByzantineReport): void {
  process.send?.(r);
}

class RawPeer {
  readonly events: NativeEvent[] = [];
  readonly fabric: NativeFabric;
  private readonly dest: number;
  private readonly eagain: number;

  constructor(cfg: ByzantineConfig) {
    const addon = nativeAddon();
    this.eagain = addon.EAGAIN;
    const socketish = cfg.provider !== 'shm';
    this.fabric = new addon.Fabric({
      provider: cfg.provider,
      // An shm name in the transport's own form (hyb-<pid>-<hex>): the test SIGKILLs this
      // process, and the next shm endpoint on the machine then sweeps its 16 MiB region.
      node: socketish ? '127.0.0.1' : `hyb-${process.pid}-${randomBytes(6).toString('hex')}`,
      service: socketish ? '0' : '',
    });
    const target = parseEndpoint(cfg.endpoint);
    if (!target) throw new Error(`bad endpoint ${cfg.endpoint}`);
    this.dest = this.fabric.avInsert(target.name);
  }

  async progress(ms: number): Promise<void> {
    const end = performance.now() + ms;
    while (performance.now() < end) {
      this.events.push(...this.fabric.poll());
      await new Promise((r) => setImmediate(r));
    }
  }

  async send(buf: Buffer): Promise<void> {
    while (this.fabric.send(this.dest, buf, 1) === this.eagain) await this.progress(1);
  }

  async write(grant: Accept['ring'], buf: Buffer, offset: number, cq: bigint): Promise<void> {
    while (
      this.fabric.writeData(this.dest, buf, grant.addr + BigInt(offset), grant.key, cq, 2) === this.eagain
    ) {
      await this.progress(1);
    }
  }

  async handshake(dataPath: 'rma' | 'msg'): Promise<Accept | 'refused'> {
    const ring = this.fabric.openRing(1 << 20);
    await this.send(
      encodeHello({
        connId: 1,
        dataPath,
        msgCredits: 32,
        ring: { addr: ring.addr, key: ring.key, token: 12345n, bytes: dataPath === 'rma' ? 1 << 20 : 65536 },
        name: this.fabric.info().name,
      }),
    );
    for (let i = 0; i < 300; i++) {
      await this.progress(10);
      if (this.events.some((e) => e.kind === EVENT_RECV && e.data?.[0] === MSG_REJECT)) return 'refused';
      const ev = this.events.find((e) => e.kind === EVENT_RECV && e.data?.[0] === MSG_ACCEPT);
      if (ev) {
        const accept = decodeAccept(ev.data!);
        if (!accept.ok) throw new Error(`bad ACCEPT: ${accept.error.message}`);
        return accept.value;
      }
    }
    throw new Error('no ACCEPT from the victim');
  }
}

/** The first RMA chunk: [credit u32][sequence u32 = 0][stream bytes]. */
function chunk(credit: number, stream: Buffer): Buffer {
  const b = Buffer.alloc(8 + stream.length);
  b.writeUInt32BE(credit, 0);
  stream.copy(b, 8);
  return b;
}

function frame(payload: Buffer): Buffer {
  const b = Buffer.alloc(4 + payload.length);
  b.writeUInt32BE(payload.length, 0);
  payload.copy(b, 4);
  return b;
}

async function badMac(cfg: ByzantineConfig): Promise<void> {
  const transport = new RdmaTransport({
    provider: cfg.provider as 'shm',
    dataPath: cfg.dataPath,
    completion: 'busy-poll',
  });
  const conn = await transport.connect(cfg.endpoint);
  // The underlying connection stays reachable: the channel only wraps it.
  const channel = await secureChannel(conn, {
    self: { id: 1, secretKey: Buffer.from(cfg.secretKeyHex!, 'hex') },
    validators: cfg.validators!.map((v) => ({ id: v.id, publicKey: Buffer.from(v.publicKeyHex, 'hex') })),
    genesisHash: Buffer.from(cfg.genesisHashHex!, 'hex'),
    role: 'initiator',
  });
  channel.send(Buffer.from('authentic'));
  await new Promise((r) => setTimeout(r, 100));
  // Sequence number 2, then a body and a tag that is not the MAC of anything.
  const forged = Buffer.alloc(8 + 6 + 16, 0xab);
  forged.writeBigUInt64BE(2n, 0);
  conn.send(forged);
  await new Promise((r) => setTimeout(r, 300));
  report({ type: 'done', writeErrors: 0, writesCompleted: 0 });
}

async function main(): Promise<void> {
  const cfg = JSON.parse(process.argv[2] ?? '{}') as ByzantineConfig;
  if (cfg.attack === 'bad-mac') return badMac(cfg);
  const peer = new RawPeer(cfg);
  const accept = await peer.handshake(cfg.dataPath);
  if (accept === 'refused') {
    report({ type: 'refused' });
    return;
  }
  const ring = accept.ring;
  const id = accept.serverConnId;
  const token = ring.token;
  const hello = chunk(0, frame(Buffer.from('hello')));
  switch (cfg.attack) {
    case 'short':
      await peer.write(ring, hello, 0, encodeCqData(token, 2));
      break;
    case 'length':
      await peer.write(ring, hello, 0, encodeCqData(token, 0xffffff));
      break;
    case 'credit': {
      const c = chunk(0xffffffff, frame(Buffer.from('x')));
      await peer.write(ring, c, 0, encodeCqData(token, c.length));
      break;
    }
    case 'frame': {
      const c = chunk(0, Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4]));
      await peer.write(ring, c, 0, encodeCqData(token, c.length));
      break;
    }
    case 'foreign':
      for (let i = 0; i < 16; i++) {
        const guess = randomBytes(8).readBigUInt64BE(0);
        await peer.write(ring, hello, 0, encodeCqData(guess === token ? guess + 1n : guess, hello.length));
      }
      break;
    case 'revoked-write':
      await peer.write(ring, hello, 0, encodeCqData(token, 0xffffff));
      await peer.progress(300);
      peer.events.length = 0;
      await peer.write(ring, hello, 0, encodeCqData(token, hello.length));
      break;
    case 'flood': {
      // DATA with an empty stream, in sequence: only the credit count is wrong. The victim
      // returns credit for every batch it drains, so a burst only just over the window can be
      // absorbed legitimately when the victim drains fast; a long burst outruns any drain.
      for (let i = 0; i < FLOOD_MESSAGES; i++) {
        const data = Buffer.alloc(13);
        data[0] = MSG_DATA;
        data.writeUInt32BE(id, 1);
        data.writeUInt32BE(i, 9);
        await peer.send(data);
      }
      break;
    }
  }
  await peer.progress(300);
  report({
    type: 'done',
    writeErrors: peer.events.filter((e) => e.kind === EVENT_ERROR && e.ctx === 2).length,
    writesCompleted: peer.fabric.stats().completedOps,
  });
}

// Keep the process alive until the parent kills it.
setInterval(() => {}, 1_000);
main().catch((e: unknown) => {
  report({ type: 'error', message: e instanceof Error ? (e.stack ?? e.message) : String(e) });
  setTimeout(() => process.exit(1), 100);
});
