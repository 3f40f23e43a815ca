// The RDMA transport: the Transport interface over libfabric (FI_EP_RDM endpoints,
// providers verbs;ofi_rxm, tcp;ofi_rxm or shm). One transport owns one fabric endpoint;
// a connection is an AV entry plus the state below, set up by a HELLO/ACCEPT exchange
// over the fabric itself (wire.ts).
//
// Each direction of a connection is a byte stream of [u32 length][payload] frames, cut
// into chunks. Data path `rma`: a chunk is one RMA write into the receiver's ring for
// this peer (a ring per peer, remote write only), announced by remote CQ data; the
// receiver checks the announced offset and length against its own copy of the ring
// position, copies the chunk out of the ring before looking at it, and returns ring
// bytes as credits. Data path `msg`: a chunk is one two-sided send into a pre-posted
// buffer, with a per-connection window of chunks as credits. Credits ride on data going
// the other way, or on a CREDIT message once a quarter of the ring (half the window)
// is owed, which cannot deadlock since a chunk never needs more than that. Over
// tcp;ofi_rxm only the msg path runs: libfabric's tcp provider crashes the receiver when a
// connection ends mid-write (see rmaSafe).
//
// Anything a peer does outside these rules (a bad offset, length, credit or frame)
// closes that peer's connection with 'ring-violation', deregisters its ring (revoking
// its key) and removes its address; other peers are unaffected.
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readdirSync, readSync, unlinkSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { FrameDecoder } from '../node/transport/frame.js';
import {
  type Transport,
  type TransportConnection,
  TransportError,
  type TransportKind,
  type TransportLimits,
} from '../node/transport/types.js';
import {
  EVENT_ERROR,
  EVENT_RECV,
  EVENT_REMOTE_DATA,
  type NativeEvent,
  type NativeFabric,
  type NativeFabricStats,
  nativeAddon,
} from './native.js';
import {
  alignUp,
  DATA_HEADER_BYTES,
  type DataPath,
  decodeAccept,
  decodeCqData,
  decodeHello,
  encodeAccept,
  encodeControl,
  encodeCqData,
  encodeHello,
  formatEndpoint,
  HEADER_BYTES,
  isShmRegionOf,
  MSG_ACCEPT,
  MSG_BYE,
  MSG_CREDIT,
  MSG_DATA,
  MSG_HELLO,
  MSG_PING,
  MSG_REJECT,
  type ParsedEndpoint,
  parseEndpoint,
  parseListenEndpoint,
  placeChunk,
  type RingGrant,
  RMA_CHUNK_BYTES_MAX,
  RMA_CHUNK_HEADER_BYTES,
  RMA_CONN_ID_MAX,
  RMA_RING_BYTES_MAX,
  RMA_TOKEN_MASK,
  shmFabricName,
  shmNodeName,
  shmRegionOf,
} from './wire.js';

export type RdmaProvider = 'auto' | 'tcp;ofi_rxm' | 'shm' | 'verbs;ofi_rxm';
/**
 * How completions reach JavaScript. 'event-loop': the event loop watches the CQ's wait fd
 * and drains it on the JS thread (one wake-up per burst, no thread; falls back to
 * 'thread' when the provider has no wait fd, as shm). 'thread': a native progress thread
 * sleeps in fi_cq_sread and hands batches over (two wake-ups per burst: thread, then JS).
 * 'busy-poll': JS polls from a setImmediate loop while traffic flows, for `spinUs` after
 * the last completion or send, then parks on the wait fd (or a 1 ms timer without one).
 */
export type CompletionMode = 'event-loop' | 'thread' | 'busy-poll';
export type { DataPath } from './wire.js';

export interface RdmaLimits extends TransportLimits {
  /** Receive ring per peer on the rma path (registered memory, remote write only). */
  ringBytes: number;
  /** Receive buffers posted on the endpoint (shared by all peers). */
  recvSlots: number;
  /** Size of each posted receive buffer: the largest msg-path chunk. */
  recvSlotBytes: number;
  /** Chunks a peer may have in flight to us on the msg path. */
  msgCredits: number;
  /** Connections held at once, both directions. */
  connectionsMax: number;
}

export const RDMA_LIMITS_DEFAULT: RdmaLimits = {
  messageBytesMax: 4 * 1024 * 1024,
  sendQueueBytesMax: 8 * 1024 * 1024,
  ringBytes: 1024 * 1024,
  recvSlots: 128,
  recvSlotBytes: 64 * 1024,
  msgCredits: 32,
  connectionsMax: 64,
};

export interface RdmaTransportOptions {
  provider?: RdmaProvider;
  /**
   * Default 'rma'. Over a provider that cannot carry RMA safely (see rmaSafe) the transport
   * runs 'msg' instead; `RdmaTransport.dataPath` says which path is in use.
   */
  dataPath?: DataPath;
  /** Default 'event-loop' (one wake-up per burst, no spinning; see CompletionMode). */
  completion?: CompletionMode;
  /**
   * How long to keep polling after activity before sleeping, µs. 'busy-poll': the JS
   * poll loop (default SPIN_US_DEFAULT_BUSY_POLL); 'thread': the progress thread after a
   * completion (default 0). Costs up to that much CPU per burst; bounds what an idle
   * connection costs. Ignored by 'event-loop'.
   */
  spinUs?: number;
  limits?: Partial<RdmaLimits>;
  /** Local address to bind for socket-based providers when only connecting. */
  bindHost?: string;
  connectTimeoutMs?: number;
  /** A PING goes out after this long without sending. */
  heartbeatMs?: number;
  /** A peer silent for this long is lost. */
  peerTimeoutMs?: number;
}

export interface RdmaViolation {
  remote: string;
  reason: string;
}

const AUTO_PROVIDERS: readonly string[] = ['verbs;ofi_rxm', 'tcp;ofi_rxm', 'shm'];

/**
 * Whether the rma data path is safe over `provider`. Not over tcp;ofi_rxm: libfabric's tcp
 * provider (1.17, the Debian 12 package) emulates RMA in software, and when a connection
 * ends (the peer dies, or either side removes the other's address) while a remote write
 * with remote CQ data is only partly received, it reports that write as a cancelled
 * completion with a NULL context, which ofi_rxm then dereferences (rxm_handle_comp_error):
 * the receiving process dies with SIGSEGV inside libfabric. Any peer granted a ring could
 * do that on purpose, so over tcp no ring is granted at all and the msg path (two-sided
 * sends into receive buffers ofi_rxm owns, which it cancels safely) runs instead. RDMA
 * NICs (verbs) and shm carry remote writes without that software state.
 */
export function rmaSafe(provider: string): boolean {
  return !provider.startsWith('tcp');
}

const CONNECT_TIMEOUT_MS_DEFAULT = 5_000;
const HEARTBEAT_MS_DEFAULT = 1_000;
const PEER_TIMEOUT_MS_DEFAULT = 5_000;
/** Busy-poll spins this long after activity: a round trip or two on a loaded host. */
export const SPIN_US_DEFAULT_BUSY_POLL = 2_000;
export const SPIN_US_DEFAULT_THREAD = 0;
const SPIN_US_MAX = 1_000_000;
/** Busy-poll without a wait fd (shm): how often a parked loop looks at the CQ. */
const PARKED_POLL_MS = 1;
const NO_CONN = 0;

function resolveLimits(partial: Partial<RdmaLimits> | undefined): RdmaLimits {
  const l = { ...RDMA_LIMITS_DEFAULT, ...partial };
  const positive = (k: keyof RdmaLimits, max: number) => {
    const v = l[k];
    if (!Number.isInteger(v) || v < 1 || v > max)
      throw new RangeError(`${k} must be an integer in 1..${max}, got ${v}`);
  };
  positive('messageBytesMax', 0xffffffff);
  positive('sendQueueBytesMax', Number.MAX_SAFE_INTEGER);
  positive('ringBytes', RMA_RING_BYTES_MAX);
  positive('recvSlots', 65536);
  positive('recvSlotBytes', 16 * 1024 * 1024);
  positive('msgCredits', 65536);
  positive('connectionsMax', RMA_CONN_ID_MAX - 1);
  if (l.ringBytes < 4096 || l.ringBytes % 8 !== 0)
    throw new RangeError('ringBytes must be a multiple of 8, >= 4096');
  if (l.recvSlotBytes < 256) throw new RangeError('recvSlotBytes must be >= 256');
  if (l.msgCredits < 2) throw new RangeError('msgCredits must be >= 2');
  return l;
}

/** The largest chunk a writer may put into a ring of `ringBytes` (see the header comment). */
export const rmaChunkBytesMax = (ringBytes: number): number =>
  Math.min(Math.floor(ringBytes / 4 / 8) * 8, RMA_CHUNK_BYTES_MAX);

interface AddrRef {
  fiAddr: number;
  refs: number;
}

export class RdmaConnection implements TransportConnection {
  remoteId = 0;
  state: 'connecting' | 'open' | 'closed' = 'connecting';
  private readonly decoder: FrameDecoder;
  // Send side.
  private queue: Uint8Array[] = [];
  private queueHead = 0;
  /** Bytes of the frame at queueHead already sent (header included). */
  private headSentBytes = 0;
  queuedBytes = 0;
  private drainWanted = false;
  blocked = false;
  private txGrant: RingGrant = { addr: 0n, key: 0n, token: 0n, bytes: 0 };
  private txPos = 0;
  private txFree = 0;
  private txCredits = 0;
  private txCreditsMax = 0;
  // Receive side.
  ringId = 0;
  /** The token naming our ring for this peer in remote CQ data (0n: none). */
  ringToken = 0n;
  private rxPos = 0;
  /** Sequence number of the next chunk to deliver, and chunks that completed before it (msg path). */
  private rxSeq = 0;
  private readonly rxEarly = new Map<number, Buffer>();
  private txSeq = 0;
  /** Ring bytes (rma) or chunks (msg) received and not yet returned as credit. */
  private rxOwed = 0;
  private batch: Uint8Array[] = [];
  private held: Uint8Array[][] = [];
  private handler: ((batch: Uint8Array[]) => void) | undefined;
  private readonly drainListeners: (() => void)[] = [];
  private readonly closeListeners: ((error?: TransportError) => void)[] = [];
  lastRecvMs = performance.now();
  lastSendMs = performance.now();

  constructor(
    private readonly t: RdmaTransport,
    readonly localId: number,
    readonly fiAddr: number,
    readonly nameKey: string,
    readonly remote: string,
    readonly dataPath: DataPath,
    private readonly limits: RdmaLimits,
  ) {
    this.decoder = new FrameDecoder(limits.messageBytesMax);
  }

  /** Our receive capacity as granted to the peer. */
  get rxGrantBytes(): number {
    return this.dataPath === 'rma' ? this.limits.ringBytes : this.limits.recvSlotBytes;
  }

  /** Sets the peer's side of the connection from its HELLO or ACCEPT. */
  established(remoteId: number, grant: RingGrant, msgCredits: number): string | undefined {
    if (this.dataPath === 'rma') {
      if (grant.bytes < 4096 || grant.bytes > RMA_RING_BYTES_MAX || grant.bytes % 8 !== 0) {
        return `ring of ${grant.bytes} bytes`;
      }
    } else if (grant.bytes < 256 || msgCredits < 1 || msgCredits > 65536) {
      return `receive slots of ${grant.bytes} bytes, ${msgCredits} credits`;
    }
    this.remoteId = remoteId;
    this.txGrant = grant;
    this.txFree = grant.bytes;
    this.txCredits = msgCredits;
    this.txCreditsMax = msgCredits;
    this.state = 'open';
    return undefined;
  }

  send(message: Uint8Array): boolean {
    if (this.state === 'closed') throw new TransportError('closed', `connection to ${this.remote} is closed`);
    if (message.length > this.limits.messageBytesMax) {
      throw new TransportError(
        'oversized',
        `message of ${message.length} bytes exceeds messageBytesMax ${this.limits.messageBytesMax}`,
      );
    }
    const wasEmpty = this.queuedBytes === 0;
    this.queue.push(message);
    this.queuedBytes += 4 + message.length;
    if (wasEmpty) this.t.schedulePump(this);
    if (this.queuedBytes > this.limits.sendQueueBytesMax) {
      this.drainWanted = true;
      return false;
    }
    return true;
  }

  onMessages(cb: (batch: Uint8Array[]) => void): void {
    this.handler = cb;
    if (this.held.length === 0) return;
    const held = this.held;
    this.held = [];
    queueMicrotask(() => {
      for (const b of held) this.handler?.(b);
    });
  }

  onDrain(cb: () => void): void {
    this.drainListeners.push(cb);
  }

  /** Sends the queued chunks now; the pump already scheduled for this turn then finds nothing. */
  flush(): void {
    if (this.state === 'open' && this.queuedBytes > 0) this.pump();
  }

  onClose(cb: (error?: TransportError) => void): void {
    this.closeListeners.push(cb);
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    if (this.state === 'open') {
      this.pump();
      this.t.sendControl(this.fiAddr, encodeControl(MSG_BYE, this.remoteId), this.localId);
    }
    this.finish(undefined);
  }

  /** Ends the connection because of the peer; `error` says why. */
  fail(error: TransportError): void {
    if (this.state === 'closed') return;
    if (error.code === 'ring-violation' || error.code === 'malformed-frame' || error.code === 'oversized') {
      this.t.reportViolation(this, error.message);
    }
    this.finish(error);
  }

  private finish(error: TransportError | undefined): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.queue = [];
    this.queueHead = 0;
    this.queuedBytes = 0;
    this.t.release(this);
    for (const cb of this.closeListeners) cb(error);
  }

  // ---- receive side: called by the transport, per completion ----

  /** A chunk of our stream arrived (already copied out of registered memory). */
  onChunk(stream: Buffer, credit: number): void {
    if (this.state !== 'open') return;
    this.lastRecvMs = performance.now();
    if (credit > 0) {
      if (this.dataPath === 'rma') {
        this.txFree += credit;
        if (this.txFree > this.txGrant.bytes) {
          this.violation(`returned ${credit} ring bytes it was not owed`);
          return;
        }
      } else {
        this.txCredits += credit;
        if (this.txCredits > this.txCreditsMax) {
          this.violation(`returned ${credit} credits it was not owed`);
          return;
        }
      }
      if (this.queuedBytes > 0) this.blocked = true;
    }
    if (stream.length === 0) return;
    const r = this.decoder.push(stream);
    for (const f of r.frames) this.batch.push(f);
    if (!r.ok) {
      this.fail(
        new TransportError(
          'oversized',
          `${this.remote} announced a ${r.claimedBytes}-byte frame, limit ${this.limits.messageBytesMax}`,
        ),
      );
    }
  }

  onRemoteWrite(length: number): void {
    if (this.dataPath !== 'rma') {
      this.violation('wrote to us on the msg data path');
      return;
    }
    const ringBytes = this.limits.ringBytes;
    if (length < RMA_CHUNK_HEADER_BYTES || length > rmaChunkBytesMax(ringBytes)) {
      this.violation(`announced a ${length}-byte chunk`);
      return;
    }
    // Where the chunk must be follows from the ring position: nothing the peer says moves it.
    const place = placeChunk(this.rxPos, length, ringBytes);
    if (this.rxOwed + place.usedBytes > ringBytes) {
      this.violation('wrote past its ring credits');
      return;
    }
    // Copied out before anything looks at it: the peer can rewrite the ring at any time.
    const copy = this.t.copyOut(this.ringId, place.offset, length);
    if (!copy) {
      this.violation(`chunk [${place.offset}, +${length}) outside the ring`);
      return;
    }
    this.rxPos = place.offset + alignUp(length);
    if (this.rxPos >= ringBytes) this.rxPos = 0;
    this.rxOwed += place.usedBytes;
    // Remote-write completions must come in write order (they do on tcp;ofi_rxm and shm);
    // the sequence number turns any reordering into a clean close instead of a garbled stream.
    const seq = copy.readUInt32BE(4);
    if (seq !== this.rxSeq) {
      this.violation(`wrote chunk ${seq}, expected ${this.rxSeq}`);
      return;
    }
    this.rxSeq = (this.rxSeq + 1) >>> 0;
    this.onChunk(copy.subarray(RMA_CHUNK_HEADER_BYTES), copy.readUInt32BE(0));
  }

  onData(msg: Buffer): void {
    if (this.dataPath !== 'msg') {
      this.violation('sent a DATA message on the rma data path');
      return;
    }
    if (msg.length < DATA_HEADER_BYTES) {
      this.violation('sent a truncated DATA message');
      return;
    }
    this.rxOwed += 1;
    if (this.rxOwed > this.limits.msgCredits) {
      this.violation('sent beyond its credits');
      return;
    }
    const seq = msg.readUInt32BE(HEADER_BYTES + 4);
    const ahead = (seq - this.rxSeq) >>> 0;
    if (ahead >= this.limits.msgCredits || this.rxEarly.has(seq)) {
      this.violation(`sent chunk ${seq}, expected ${this.rxSeq} (window ${this.limits.msgCredits})`);
      return;
    }
    // Bounded by the credit window: at most msgCredits chunks can be early.
    this.rxEarly.set(seq, msg);
    for (let next = this.rxEarly.get(this.rxSeq); next; next = this.rxEarly.get(this.rxSeq)) {
      this.rxEarly.delete(this.rxSeq);
      this.rxSeq = (this.rxSeq + 1) >>> 0;
      this.onChunk(next.subarray(DATA_HEADER_BYTES), next.readUInt32BE(HEADER_BYTES));
      if (this.state !== 'open') return;
    }
  }

  onCredit(credit: number): void {
    this.onChunk(Buffer.alloc(0), credit);
  }

  private violation(reason: string): void {
    this.fail(new TransportError('ring-violation', `${this.remote} ${reason}`));
  }

  /** Hands this completion batch's frames to the application, then returns credits. */
  flushReceived(): void {
    if (this.batch.length > 0) {
      const batch = this.batch;
      this.batch = [];
      if (this.handler) this.handler(batch);
      else this.held.push(batch);
    }
    if (this.state !== 'open') return;
    this.pump();
    const threshold = this.dataPath === 'rma' ? this.limits.ringBytes / 4 : this.limits.msgCredits / 2;
    if (this.rxOwed >= threshold) {
      this.t.sendControl(this.fiAddr, encodeControl(MSG_CREDIT, this.remoteId, this.rxOwed), this.localId);
      this.rxOwed = 0;
      this.lastSendMs = performance.now();
    }
  }

  // ---- send side ----

  /** Sends as many chunks as credits and the provider's queue allow. */
  pump(): void {
    this.blocked = false;
    while (this.state === 'open' && this.queuedBytes > 0) {
      const capacity =
        this.dataPath === 'rma'
          ? rmaChunkBytesMax(this.txGrant.bytes) - RMA_CHUNK_HEADER_BYTES
          : this.txGrant.bytes - DATA_HEADER_BYTES;
      const streamBytes = Math.min(capacity, this.queuedBytes);
      const headerBytes = this.dataPath === 'rma' ? RMA_CHUNK_HEADER_BYTES : DATA_HEADER_BYTES;
      let place = { offset: 0, usedBytes: 0 };
      if (this.dataPath === 'rma') {
        place = placeChunk(this.txPos, headerBytes + streamBytes, this.txGrant.bytes);
        if (place.usedBytes > this.txFree) return; // a credit will call pump again
      } else if (this.txCredits === 0) {
        return;
      }
      const chunk = Buffer.allocUnsafe(headerBytes + streamBytes);
      const taken = this.fillChunk(chunk, headerBytes);
      let rc: number;
      if (this.dataPath === 'rma') {
        chunk.writeUInt32BE(this.rxOwed, 0);
        chunk.writeUInt32BE(this.txSeq, 4);
        const cq = encodeCqData(this.txGrant.token, chunk.length);
        rc = this.t.writeData(
          this.fiAddr,
          chunk,
          this.txGrant.addr + BigInt(place.offset),
          this.txGrant.key,
          cq,
          this.localId,
        );
      } else {
        chunk[0] = MSG_DATA;
        chunk.writeUInt32BE(this.remoteId, 1);
        chunk.writeUInt32BE(this.rxOwed, HEADER_BYTES);
        chunk.writeUInt32BE(this.txSeq, HEADER_BYTES + 4);
        rc = this.t.sendRaw(this.fiAddr, chunk, this.localId);
      }
      if (rc === this.t.eagain) {
        this.blocked = true;
        this.t.retrySoon();
        return;
      }
      if (rc !== 0) {
        this.fail(new TransportError('peer-lost', `send to ${this.remote} failed (${rc})`));
        return;
      }
      this.txSeq = (this.txSeq + 1) >>> 0;
      this.lastSendMs = performance.now();
      this.rxOwed = 0;
      if (this.dataPath === 'rma') {
        this.txFree -= place.usedBytes;
        this.txPos = place.offset + alignUp(chunk.length);
        if (this.txPos >= this.txGrant.bytes) this.txPos = 0;
      } else {
        this.txCredits--;
      }
      this.commitTaken(taken);
    }
    this.maybeDrain();
  }

  /** Copies queued frame bytes after `start`; returns where the queue would stand after. */
  private fillChunk(chunk: Buffer, start: number): { head: number; headSent: number } {
    let pos = start;
    let head = this.queueHead;
    let sent = this.headSentBytes;
    while (pos < chunk.length) {
      const m = this.queue[head]!;
      const frameBytes = 4 + m.length;
      const take = Math.min(frameBytes - sent, chunk.length - pos);
      let o = sent;
      let left = take;
      if (o === 0 && left >= 4) {
        chunk.writeUInt32BE(m.length, pos);
        pos += 4;
        o = 4;
        left -= 4;
      } else if (o < 4) {
        const h = Math.min(4 - o, left);
        const hdr = Buffer.allocUnsafe(4);
        hdr.writeUInt32BE(m.length, 0);
        hdr.copy(chunk, pos, o, o + h);
        pos += h;
        o += h;
        left -= h;
      }
      if (left > 0) {
        chunk.set(m.subarray(o - 4, o - 4 + left), pos);
        pos += left;
      }
      sent += take;
      if (sent === frameBytes) {
        head++;
        sent = 0;
      }
    }
    return { head, headSent: sent };
  }

  private commitTaken(taken: { head: number; headSent: number }): void {
    let bytes = 0;
    for (let i = this.queueHead; i < taken.head; i++) bytes += 4 + this.queue[i]!.length;
    bytes += taken.headSent - this.headSentBytes;
    this.queuedBytes -= bytes;
    this.queueHead = taken.head;
    this.headSentBytes = taken.headSent;
    if (this.queueHead > 1024 || this.queueHead === this.queue.length) {
      this.queue = this.queue.slice(this.queueHead);
      this.queueHead = 0;
    }
  }

  private maybeDrain(): void {
    if (!this.drainWanted || this.state !== 'open') return;
    if (this.queuedBytes > this.limits.sendQueueBytesMax) return;
    this.drainWanted = false;
    for (const cb of this.drainListeners) cb();
  }

  ping(): void {
    this.t.sendControl(this.fiAddr, encodeControl(MSG_PING, this.remoteId), this.localId);
    this.lastSendMs = performance.now();
  }
}

export class RdmaTransport implements Transport {
  readonly kind: TransportKind = 'rdma';
  readonly limits: RdmaLimits;
  /** The data path in use: the one asked for, or 'msg' where rma is unsafe (see rmaSafe). */
  dataPath: DataPath;
  private readonly dataPathWanted: DataPath;
  /** The completion mode in use ('event-loop' falls back to 'thread' without a wait fd). */
  completion: CompletionMode;
  private readonly spinUs: number;
  /** Busy-poll: keep polling until this time (performance.now() ms). */
  private hotUntil = 0;
  private readonly providerWanted: RdmaProvider;
  private readonly bindHost: string;
  private readonly connectTimeoutMs: number;
  private readonly heartbeatMs: number;
  private readonly peerTimeoutMs: number;
  private fabric: NativeFabric | undefined;
  /** shm, listening at a host:port name: held while we own that name (see lockShmNode). */
  private shmLock: Server | undefined;
  private providerName = '';
  private localName: Buffer | undefined;
  eagain = -11;
  private listening = false;
  private closed = false;
  private connectionCb: ((conn: TransportConnection) => void) | undefined;
  private readonly violationListeners: ((v: RdmaViolation) => void)[] = [];
  private readonly conns = new Map<number, RdmaConnection>();
  private readonly addrs = new Map<string, AddrRef>();
  /** Connections by the token of the ring we gave them. */
  private readonly rings = new Map<bigint, RdmaConnection>();
  private readonly pendingConnects = new Map<
    number,
    { resolve: (c: RdmaConnection) => void; reject: (e: TransportError) => void; timer: NodeJS.Timeout }
  >();
  private nextId = 1;
  private readonly pumpQueue = new Set<RdmaConnection>();
  private pumpScheduled = false;
  private controlBacklog: { dest: number; buf: Buffer; ctx: number }[] = [];
  private retryTimer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private pollHandle: NodeJS.Immediate | undefined;
  private parkTimer: NodeJS.Timeout | undefined;
  /** Counters for metrics and tests. */
  readonly stats = {
    violations: 0,
    strayMessages: 0,
    errors: 0,
    eventBatches: 0,
    events: 0,
    /** Busy-poll: times the poll loop went idle (parked on the wait fd or a timer). */
    pollParks: 0,
    /** HELLOs asking for the rma path over a provider where it is unsafe (see rmaSafe). */
    refusedRma: 0,
  };

  constructor(options: RdmaTransportOptions = {}) {
    this.limits = resolveLimits(options.limits);
    this.providerWanted = options.provider ?? 'auto';
    this.dataPathWanted = options.dataPath ?? 'rma';
    this.dataPath = this.dataPathWanted;
    this.completion = options.completion ?? 'event-loop';
    this.spinUs =
      options.spinUs ??
      (this.completion === 'busy-poll' ? SPIN_US_DEFAULT_BUSY_POLL : SPIN_US_DEFAULT_THREAD);
    if (!Number.isInteger(this.spinUs) || this.spinUs < 0 || this.spinUs > SPIN_US_MAX) {
      throw new RangeError(`spinUs must be an integer in 0..${SPIN_US_MAX}, got ${this.spinUs}`);
    }
    this.bindHost = options.bindHost ?? '127.0.0.1';
    this.connectTimeoutMs = options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS_DEFAULT;
    this.heartbeatMs = options.heartbeatMs ?? HEARTBEAT_MS_DEFAULT;
    this.peerTimeoutMs = options.peerTimeoutMs ?? PEER_TIMEOUT_MS_DEFAULT;
  }

  get provider(): string {
    return this.providerName;
  }

  get connectionCount(): number {
    return this.conns.size;
  }

  /** Native resource counts (for leak tests). */
  nativeStats(): NativeFabricStats | undefined {
    return this.fabric?.stats();
  }

  /** A peer broke the protocol (its connection is already closed when this fires). */
  onViolation(cb: (v: RdmaViolation) => void): void {
    this.violationListeners.push(cb);
  }

  async listen(endpoint: string): Promise<string> {
    if (this.closed) throw new TransportError('closed', 'transport is closed');
    if (this.listening) throw new TransportError('internal', 'already listening');
    const parsed = parseListenEndpoint(endpoint);
    if (!parsed) throw new TransportError('connect-failed', `not an rdma listen endpoint: ${endpoint}`);
    if (this.fabric) throw new TransportError('internal', 'listen() must come before connect()');
    const provider = parsed.provider === 'auto' ? this.providerWanted : parsed.provider;
    // A socket-style shm endpoint names the shm node after host and port (wire.ts shmNodeName).
    const shmNode =
      parsed.host !== undefined && parsed.port !== undefined && parsed.port > 0
        ? shmNodeName(parsed.host, parsed.port)
        : undefined;
    if (shmNode && (provider === 'shm' || provider === 'auto')) {
      this.shmLock = await lockShmNode(shmNode);
      if (this.closed) {
        this.shmLock.close();
        throw new TransportError('closed', 'transport is closed');
      }
    }
    try {
      this.open(provider, parsed.host, parsed.port, shmNode);
    } finally {
      if (this.shmLock && this.providerName !== 'shm') {
        this.shmLock.close();
        this.shmLock = undefined;
      }
    }
    this.listening = true;
    return formatEndpoint(this.providerName, this.localName!);
  }

  onConnection(cb: (conn: TransportConnection) => void): void {
    this.connectionCb = cb;
  }

  connect(endpoint: string): Promise<TransportConnection> {
    if (this.closed) return Promise.reject(new TransportError('closed', 'transport is closed'));
    const target = parseEndpoint(endpoint);
    if (!target)
      return Promise.reject(new TransportError('connect-failed', `not an rdma endpoint: ${endpoint}`));
    let conn: RdmaConnection;
    try {
      if (!this.fabric) this.open(target.provider, target.provider === 'shm' ? undefined : this.bindHost, 0);
      if (target.provider !== this.providerName) {
        throw new TransportError(
          'connect-failed',
          `${endpoint} uses provider ${target.provider}, this transport runs ${this.providerName}`,
        );
      }
      if (this.conns.size >= this.limits.connectionsMax) {
        throw new TransportError('connect-failed', `connectionsMax ${this.limits.connectionsMax} reached`);
      }
      const name = this.providerName === 'shm' ? resolveShmTarget(target, endpoint) : target.name;
      conn = this.newConnection(name, endpoint);
    } catch (e) {
      return Promise.reject(
        e instanceof TransportError ? e : new TransportError('connect-failed', (e as Error).message),
      );
    }
    const hello = encodeHello({
      connId: conn.localId,
      dataPath: this.dataPath,
      msgCredits: this.limits.msgCredits,
      ring: this.grantFor(conn),
      name: this.localName!,
    });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pendingConnects.delete(conn.localId);
        conn.fail(
          new TransportError(
            'connect-failed',
            `connect ${endpoint}: no answer in ${this.connectTimeoutMs} ms`,
          ),
        );
        reject(
          new TransportError(
            'connect-failed',
            `connect ${endpoint}: no answer in ${this.connectTimeoutMs} ms`,
          ),
        );
      }, this.connectTimeoutMs);
      this.pendingConnects.set(conn.localId, { resolve, reject, timer });
      this.sendControl(conn.fiAddr, hello, conn.localId);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const [, p] of this.pendingConnects) {
      clearTimeout(p.timer);
      p.reject(new TransportError('closed', 'transport closed'));
    }
    this.pendingConnects.clear();
    for (const c of [...this.conns.values()]) await c.close();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    if (this.pollHandle) clearImmediate(this.pollHandle);
    if (this.parkTimer) clearTimeout(this.parkTimer);
    // A last progress pass so BYEs leave before the endpoint goes.
    if (this.fabric && this.completion !== 'thread') this.handleEvents(this.fabric.poll());
    this.fabric?.close();
    this.fabric = undefined;
    // After the endpoint (whose close removes the region): the name is free for a successor.
    this.shmLock?.close();
    this.shmLock = undefined;
  }

  // ---- plumbing used by connections ----

  sendRaw(dest: number, buf: Buffer, ctx: number): number {
    if (!this.fabric) return -22;
    this.kick();
    return this.fabric.send(dest, buf, ctx);
  }

  writeData(dest: number, buf: Buffer, raddr: bigint, key: bigint, cq: bigint, ctx: number): number {
    if (!this.fabric) return -22;
    this.kick();
    return this.fabric.writeData(dest, buf, raddr, key, cq, ctx);
  }

  copyOut(ringId: number, offset: number, len: number): Buffer | null {
    return this.fabric ? this.fabric.copyOut(ringId, offset, len) : null;
  }

  /** Control messages are few and small: queued in order behind any that met EAGAIN. */
  sendControl(dest: number, buf: Buffer, connId = NO_CONN): void {
    if (!this.fabric) return;
    // Negative contexts mark control sends: their completions do not count as data in flight.
    const ctx = -connId;
    this.kick();
    if (this.controlBacklog.length === 0) {
      const rc = this.fabric.send(dest, buf, ctx);
      if (rc !== this.eagain) return;
    }
    this.controlBacklog.push({ dest, buf, ctx });
    this.retrySoon();
  }

  schedulePump(conn: RdmaConnection): void {
    this.pumpQueue.add(conn);
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    // One microtask: sends made in the same turn share a chunk.
    queueMicrotask(() => {
      this.pumpScheduled = false;
      const conns = [...this.pumpQueue];
      this.pumpQueue.clear();
      for (const c of conns) c.pump();
    });
  }

  retrySoon(): void {
    // Busy-poll retries from its loop while it spins; a parked loop needs the timer too.
    if (this.retryTimer || this.closed) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.retryBlocked();
    }, 1);
  }

  private retryBlocked(): void {
    if (!this.fabric) return;
    while (this.controlBacklog.length > 0) {
      const m = this.controlBacklog[0]!;
      if (this.fabric.send(m.dest, m.buf, m.ctx) === this.eagain) break;
      this.controlBacklog.shift();
    }
    for (const c of this.conns.values()) if (c.blocked) c.pump();
    if (this.controlBacklog.length > 0) this.retrySoon();
  }

  release(conn: RdmaConnection): void {
    this.conns.delete(conn.localId);
    const pending = this.pendingConnects.get(conn.localId);
    if (pending) {
      clearTimeout(pending.timer);
      this.pendingConnects.delete(conn.localId);
      pending.reject(new TransportError('connect-failed', `connect ${conn.remote}: refused`));
    }
    if (this.fabric) {
      // Deregistering the ring revokes the peer's key: its later writes fail on its side.
      if (conn.ringId !== 0) this.fabric.closeRing(conn.ringId);
      this.rings.delete(conn.ringToken);
      const ref = this.addrs.get(conn.nameKey);
      if (ref && --ref.refs === 0) {
        this.addrs.delete(conn.nameKey);
        this.controlBacklog = this.controlBacklog.filter((m) => m.dest !== ref.fiAddr);
        this.fabric.avRemove(ref.fiAddr);
      }
    }
  }

  reportViolation(conn: RdmaConnection, reason: string): void {
    this.stats.violations++;
    for (const cb of this.violationListeners) cb({ remote: conn.remote, reason });
  }

  // ---- internals ----

  private open(provider: string, host: string | undefined, port: number | undefined, shmNode?: string): void {
    const addon = nativeAddon();
    this.eagain = addon.EAGAIN;
    const candidates = provider === 'auto' ? AUTO_PROVIDERS : [provider];
    const errors: string[] = [];
    for (const p of candidates) {
      const socketish = p !== 'shm';
      try {
        this.fabric = new addon.Fabric({
          provider: p,
          // shm names its endpoint after `node`; without one it uses the pid, and a connecting
          // transport would otherwise pass bindHost. Both collide across processes (a recycled
          // pid, every client named "127.0.0.1"), and the shm provider then answers EBUSY.
          node: socketish ? (host ?? this.bindHost) : shmListenNode(host, port, shmNode),
          service: socketish ? String(port ?? 0) : '',
          waitable: true,
          waitFd: this.completion !== 'thread',
          spinUs: this.completion === 'thread' ? this.spinUs : 0,
          recvSlots: this.limits.recvSlots,
          recvSlotBytes: this.limits.recvSlotBytes,
          cqSize: Math.max(4096, this.limits.recvSlots * 4),
        });
        const info = this.fabric.info();
        this.providerName = info.provider;
        this.localName = info.name;
        break;
      } catch (e) {
        errors.push(`${p}: ${(e as Error).message}`);
      }
    }
    if (!this.fabric)
      throw new TransportError('connect-failed', `no libfabric provider usable: ${errors.join('; ')}`);
    if (this.dataPathWanted === 'rma' && !rmaSafe(this.providerName)) this.dataPath = 'msg';
    const deliver = (events: NativeEvent[]) => {
      try {
        this.handleEvents(events);
      } catch (e) {
        // An application handler threw: surface it as an ordinary uncaught exception,
        // not inside the native callback (where Node only warns).
        queueMicrotask(() => {
          throw e;
        });
      }
    };
    if (this.completion === 'event-loop' && !this.fabric.watch(deliver)) this.completion = 'thread';
    if (this.completion === 'thread') {
      this.fabric.start(deliver);
    } else if (this.completion === 'busy-poll') {
      // Spinning without end costs a core per process, and two spinning peers sharing a
      // core take turns a scheduler time slice (milliseconds) apart: spin only while
      // traffic flows, then park on the wait fd, which wakes the loop again.
      this.parkedOnFd = this.fabric.watch((events) => {
        this.kick();
        deliver(events);
      });
      this.kick();
    }
    this.heartbeatTimer = setInterval(() => this.heartbeat(), Math.max(10, Math.floor(this.heartbeatMs / 2)));
    this.heartbeatTimer.unref();
  }

  private parkedOnFd = false;

  /** Busy-poll: whether the poll loop is spinning now (false: parked until activity). */
  get polling(): boolean {
    return this.pollHandle !== undefined;
  }

  /** Busy-poll: activity (a completion, a send) keeps the poll loop running for spinUs. */
  kick(): void {
    if (this.completion !== 'busy-poll' || !this.fabric) return;
    this.hotUntil = performance.now() + this.spinUs / 1000;
    if (this.pollHandle) return;
    if (this.parkTimer) {
      clearTimeout(this.parkTimer);
      this.parkTimer = undefined;
    }
    if (this.parkedOnFd) this.fabric.arm(false);
    this.pollHandle = setImmediate(this.pollLoop);
  }

  private readonly pollLoop = (): void => {
    this.pollHandle = undefined;
    if (!this.fabric) return;
    const events = this.fabric.poll();
    if (events.length > 0) {
      this.hotUntil = performance.now() + this.spinUs / 1000;
      this.handleEvents(events);
    } else if (this.controlBacklog.length > 0 || this.anyBlocked()) {
      this.retryBlocked();
    }
    if (!this.fabric) return;
    if (performance.now() < this.hotUntil) {
      this.pollHandle = setImmediate(this.pollLoop);
      return;
    }
    this.stats.pollParks++;
    if (this.parkedOnFd) this.fabric.arm(true);
    else this.parkTimer = setTimeout(this.kickFromTimer, PARKED_POLL_MS);
  };

  private readonly kickFromTimer = (): void => {
    this.parkTimer = undefined;
    if (!this.fabric || this.pollHandle) return;
    this.pollHandle = setImmediate(this.pollLoop);
  };

  private anyBlocked(): boolean {
    for (const c of this.conns.values()) if (c.blocked) return true;
    return false;
  }

  private heartbeat(): void {
    const now = performance.now();
    for (const c of [...this.conns.values()]) {
      if (c.state !== 'open') continue;
      if (now - c.lastRecvMs > this.peerTimeoutMs) {
        c.fail(
          new TransportError('peer-lost', `${c.remote} silent for ${Math.round(now - c.lastRecvMs)} ms`),
        );
      } else if (now - c.lastSendMs >= this.heartbeatMs) {
        c.ping();
      }
    }
  }

  private grantFor(conn: RdmaConnection): RingGrant {
    if (conn.dataPath === 'rma') {
      const ring = this.fabric!.openRing(this.limits.ringBytes);
      conn.ringId = ring.id;
      let token: bigint;
      do token = randomBytes(8).readBigUInt64BE(0) & RMA_TOKEN_MASK;
      while (token === 0n || this.rings.has(token));
      conn.ringToken = token;
      this.rings.set(token, conn);
      return { addr: ring.addr, key: ring.key, token, bytes: this.limits.ringBytes };
    }
    return { addr: 0n, key: 0n, token: 0n, bytes: this.limits.recvSlotBytes };
  }

  private allocId(): number {
    // Ids fit the 16 bits the rma path's CQ data has for them; 0 means "no connection".
    for (let i = 0; i < RMA_CONN_ID_MAX; i++) {
      const id = this.nextId;
      this.nextId = this.nextId >= RMA_CONN_ID_MAX ? 1 : this.nextId + 1;
      if (!this.conns.has(id) && !this.pendingConnects.has(id)) return id;
    }
    throw new TransportError('internal', 'no connection id free');
  }

  private newConnection(name: Buffer, remote: string, dataPath: DataPath = this.dataPath): RdmaConnection {
    const key = name.toString('hex');
    let ref = this.addrs.get(key);
    if (!ref) {
      ref = { fiAddr: this.fabric!.avInsert(name), refs: 0 };
      this.addrs.set(key, ref);
    }
    ref.refs++;
    const conn = new RdmaConnection(this, this.allocId(), ref.fiAddr, key, remote, dataPath, this.limits);
    this.conns.set(conn.localId, conn);
    return conn;
  }

  private handleEvents(events: NativeEvent[]): void {
    this.stats.eventBatches++;
    this.stats.events += events.length;
    const touched = new Set<RdmaConnection>();
    for (const ev of events) {
      switch (ev.kind) {
        case EVENT_RECV:
          this.onRecv(ev.src, ev.data!, touched);
          break;
        case EVENT_REMOTE_DATA: {
          const { token, length } = decodeCqData(ev.cqData!);
          const conn = this.rings.get(token);
          // The source address of a remote write is not reliable (see wire.ts): a write
          // without a valid token cannot be pinned on anyone, so it is only counted.
          if (conn?.state !== 'open') {
            this.stats.strayMessages++;
            break;
          }
          conn.onRemoteWrite(length);
          touched.add(conn);
          break;
        }
        case EVENT_ERROR: {
          this.stats.errors++;
          const conn = this.conns.get(Math.abs(ev.ctx));
          conn?.fail(new TransportError('peer-lost', `${conn.remote}: ${ev.message ?? 'fabric error'}`));
          break;
        }
      }
    }
    for (const c of touched) c.flushReceived();
    if (this.controlBacklog.length > 0 || this.anyBlocked()) this.retryBlocked();
  }

  /**
   * A message we cannot attribute to a connection of its sender: dropped and counted, never
   * acted on. It cannot touch another peer's connection (lookups check the sender's address),
   * and it is routine after a peer restarts at the same address: its old connection's BYE,
   * PING or CREDIT still names a connection id we have forgotten. Closing the sender's open
   * connections for it would tear down the fresh connection the restarted peer just made.
   */
  private stray(_src: number, _what: string): void {
    this.stats.strayMessages++;
  }

  private onRecv(src: number, data: Buffer, touched: Set<RdmaConnection>): void {
    if (data.length < HEADER_BYTES) {
      this.stray(src, 'truncated message');
      return;
    }
    const type = data[0];
    if (type === MSG_HELLO) {
      this.onHello(data);
      return;
    }
    const conn = this.conns.get(data.readUInt32BE(1));
    if (!conn || conn.fiAddr !== src) {
      this.stray(src, `message of type ${type}`);
      return;
    }
    conn.lastRecvMs = performance.now();
    switch (type) {
      case MSG_ACCEPT:
        this.onAccept(conn, data);
        return;
      case MSG_REJECT:
        if (conn.state === 'connecting')
          conn.fail(new TransportError('refused', `${conn.remote} refused the connection`));
        return;
      case MSG_DATA:
        if (conn.state !== 'open') return;
        conn.onData(data);
        touched.add(conn);
        return;
      case MSG_CREDIT:
        if (conn.state !== 'open') return;
        if (data.length !== HEADER_BYTES + 4) {
          conn.fail(new TransportError('ring-violation', 'bad CREDIT'));
          return;
        }
        conn.onCredit(data.readUInt32BE(HEADER_BYTES));
        touched.add(conn);
        return;
      case MSG_PING:
        return;
      case MSG_BYE:
        conn.fail(new TransportError('peer-lost', `${conn.remote} closed the connection`));
        return;
      default:
        conn.fail(new TransportError('malformed-frame', `${conn.remote} sent message type ${type}`));
        return;
    }
  }

  private onHello(data: Buffer): void {
    const hello = decodeHello(data);
    if (!hello.ok || !this.listening || !this.fabric) {
      this.stats.strayMessages++;
      return;
    }
    const h = hello.value;
    const remote = formatEndpoint(this.providerName, Buffer.from(h.name));
    let conn: RdmaConnection;
    try {
      conn = this.newConnection(Buffer.from(h.name), remote, h.dataPath);
    } catch {
      this.stats.strayMessages++;
      return;
    }
    const refuse = () => {
      this.sendControl(conn.fiAddr, encodeControl(MSG_REJECT, h.connId));
      conn.fail(new TransportError('connect-failed', `refused ${remote}`));
    };
    if (this.conns.size > this.limits.connectionsMax) {
      refuse();
      return;
    }
    if (h.dataPath === 'rma' && !rmaSafe(this.providerName)) {
      // No ring for anyone over this provider: one partly received write is enough to crash us.
      this.stats.refusedRma++;
      refuse();
      return;
    }
    const grant = this.grantFor(conn);
    const problem = conn.established(h.connId, h.ring, h.msgCredits);
    if (problem) {
      refuse();
      return;
    }
    this.sendControl(
      conn.fiAddr,
      encodeAccept({
        clientConnId: h.connId,
        serverConnId: conn.localId,
        msgCredits: this.limits.msgCredits,
        ring: grant,
      }),
      conn.localId,
    );
    conn.lastSendMs = performance.now();
    this.connectionCb?.(conn);
  }

  private onAccept(conn: RdmaConnection, data: Buffer): void {
    const pending = this.pendingConnects.get(conn.localId);
    if (conn.state !== 'connecting' || !pending) return;
    const accept = decodeAccept(data);
    const problem = accept.ok
      ? conn.established(accept.value.serverConnId, accept.value.ring, accept.value.msgCredits)
      : accept.error.message;
    clearTimeout(pending.timer);
    this.pendingConnects.delete(conn.localId);
    if (problem) {
      conn.fail(new TransportError('connect-failed', `${conn.remote}: bad ACCEPT (${problem})`));
      pending.reject(new TransportError('connect-failed', `${conn.remote}: bad ACCEPT (${problem})`));
      return;
    }
    pending.resolve(conn);
  }
}

/**
 * The shm node to open: the host:port name (taking a dead owner's region over, see
 * removeRecycledRegions), the name given in a base64url endpoint, or a process-unique one.
 */
function shmListenNode(
  host: string | undefined,
  port: number | undefined,
  shmNode: string | undefined,
): string {
  if (shmNode !== undefined) {
    removeRecycledRegions(shmNode);
    return shmNode;
  }
  return port === undefined && host ? host : shmUniqueName();
}

/**
 * Only one live process may own an shm node name, and the provider is no help there: a
 * second fi_enable under a live owner's name fails with EBUSY but unlinks the owner's
 * region on the way out (smr_retry_map), cutting the owner off from every new peer. And it
 * decides "live" by whether the pid in the region still exists, which a recycled pid fools.
 * So the owner holds an abstract unix socket named after the node: the kernel frees it when
 * the process dies, even by SIGKILL, so holding it proves every region of that name is a
 * dead owner's (removeRecycledRegions), and failing to get it means a live owner: refused
 * before the provider is asked. Abstract sockets live in the network namespace, /dev/shm
 * in the mount namespace: processes sharing one but not the other are not supported.
 */
async function lockShmNode(node: string): Promise<Server> {
  const server = createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ path: `\0hybster-shm/${node}`, exclusive: true }, () => resolve());
    });
  } catch (e) {
    server.close();
    const code = (e as NodeJS.ErrnoException).code;
    throw new TransportError(
      'connect-failed',
      code === 'EADDRINUSE'
        ? `shm endpoint ${node} is in use by another live process`
        : `shm endpoint ${node}: ${(e as Error).message}`,
    );
  }
  // Nobody connects to it; it must not keep the process alive.
  server.unref();
  server.on('connection', (s) => s.destroy());
  return server;
}

/**
 * A dead owner's region is left for the provider to take over in place (it does when the
 * pid recorded in the region is gone): peers that still map it then see the new owner's
 * queues and locks. Unlinked and created afresh instead, the old copy would stay mapped in
 * those peers as it was at the moment of death, possibly with a spin lock held (SIGKILL
 * inside the provider's critical section), and a peer writing into it would spin forever
 * inside fi_writedata. Only a region whose recorded pid is alive again is removed (a
 * recycled pid: we hold the lock, so the owner is dead), since the provider would refuse
 * it. Only for the holder of the node's lock (lockShmNode).
 */
function removeRecycledRegions(node: string): void {
  for (const region of shmRegions(node)) {
    const path = `/dev/shm/${region}`;
    const pid = shmRegionPid(path);
    if (pid === undefined || pid === 0 || !processAlive(pid)) continue;
    try {
      unlinkSync(path);
    } catch {
      // Gone already.
    }
  }
}

/** The owner pid libfabric's shm provider records in a region (struct smr_region: u8 version, u8, u16 flags, i32 pid). */
function shmRegionPid(path: string): number | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const head = Buffer.alloc(8);
    if (readSync(fd, head, 0, 8, 0) < 8) return undefined;
    return head.readInt32LE(4);
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function shmRegions(node: string): string[] {
  try {
    return readdirSync('/dev/shm').filter((f) => isShmRegionOf(f, node));
  } catch {
    return [];
  }
}

/**
 * The fabric name to dial for an shm endpoint, from the regions in /dev/shm (shm reaches
 * only this host, so its /dev/shm holds every endpoint we could dial). Only a region whose
 * owner is alive and done setting it up (the provider records the pid last) is dialed. The
 * provider's AV insert accepts a missing or half-built region and maps it later, and a
 * validator that dialed peers the moment their region file appeared died once with SIGSEGV
 * inside fi_writedata. A dead owner's region stays until a successor takes it over. So a
 * peer that is not running, or not running yet, fails now with 'connect-failed' instead of
 * after a HELLO timeout, and the dialer tries again. A host:port endpoint takes the suffix
 * of its node's region (wire.ts explains).
 */
function resolveShmTarget(target: ParsedEndpoint, endpoint: string): Buffer {
  const regions =
    target.shmNode !== undefined ? shmRegions(target.shmNode) : [shmRegionOf(target.name)].filter(isDefined);
  const live = regions.filter((region) => {
    const pid = shmRegionPid(`/dev/shm/${region}`);
    return pid !== undefined && pid > 0 && processAlive(pid);
  });
  // Two live owners of one node cannot be (lockShmNode); two regions of dead ones can.
  const region = live[0];
  if (region === undefined) {
    const what = regions.length === 0 ? 'no such shm endpoint on this host' : 'its owner is not running';
    throw new TransportError('connect-failed', `connect ${endpoint}: ${what}`);
  }
  return target.shmNode !== undefined ? shmFabricName(region) : target.name;
}

function isDefined<T>(v: T | undefined): v is T {
  return v !== undefined;
}

/** A process-unique shm endpoint name (the provider maps it to a /dev/shm region). */
function shmUniqueName(): string {
  sweepStaleShmRegions();
  return `hyb-${process.pid}-${randomBytes(6).toString('hex')}`;
}

let shmSwept = false;

/**
 * The shm provider leaves its 16 MiB /dev/shm region behind when a process dies without
 * closing (SIGKILL). Our names carry the owner's pid, so once per process remove the
 * regions of owners that are gone; unique names would otherwise only accumulate.
 */
function sweepStaleShmRegions(): void {
  if (shmSwept) return;
  shmSwept = true;
  let names: string[];
  try {
    names = readdirSync('/dev/shm');
  } catch {
    return;
  }
  for (const name of names) {
    const m = /^hyb-(\d+)-[0-9a-f]+:/.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || processAlive(pid)) continue;
    try {
      unlinkSync(`/dev/shm/${name}`);
    } catch {
      // Another process swept it first, or it is not ours to remove.
    }
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
