// The TCP transport: the Transport interface over node:net with length-prefixed
// frames (see frame.ts). Small sends are coalesced into one socket write per
// microtask turn, because one write per consensus message would cost a syscall each;
// large messages are written as they are (no copy). Backpressure counts both our
// coalescing queue and the socket's own buffer.
import net from 'node:net';
import { encodeFrameHeader, encodeFrames, FRAME_HEADER_BYTES, FrameDecoder } from './frame.js';
import {
  type Transport,
  type TransportConnection,
  TransportError,
  type TransportKind,
  type TransportLimits,
} from './types.js';

export const TCP_LIMITS_DEFAULT: TransportLimits = {
  messageBytesMax: 4 * 1024 * 1024,
  sendQueueBytesMax: 8 * 1024 * 1024,
};

export interface TcpTransportOptions {
  limits?: Partial<TransportLimits>;
  /** Accepted connections held at once; more are closed on arrival. */
  connectionsInboundMax?: number;
  /** A connect() that has not completed by then fails with 'connect-failed'. */
  connectTimeoutMs?: number;
  /** A graceful close() waits this long for the peer before destroying the socket. */
  closeTimeoutMs?: number;
  /** Errors of the listening socket after listen() (for logs); they do not stop the listener. */
  onListenerError?: (error: Error) => void;
}

const CONNECTIONS_INBOUND_MAX_DEFAULT = 256;
const CONNECT_TIMEOUT_MS_DEFAULT = 5_000;
const CLOSE_TIMEOUT_MS_DEFAULT = 2_000;
/**
 * Smallest send queue limit: above the socket's own high-water mark (16 KiB on Node 20,
 * 64 KiB on 22), so a queue over our limit always means the socket will emit 'drain'.
 */
export const SEND_QUEUE_BYTES_MIN = 64 * 1024;
/** Messages at least this large are written directly instead of being copied into a coalesced buffer. */
const DIRECT_WRITE_BYTES_MIN = 64 * 1024;
/** Coalesced buffers are cut at about this size so one burst does not build one huge buffer. */
const COALESCE_BYTES_MAX = 256 * 1024;
/** TCP keepalive lets a connection to a peer that vanished without a FIN (power loss, partition) end. */
const KEEPALIVE_INITIAL_DELAY_MS = 10_000;

export interface TcpEndpoint {
  host: string;
  port: number;
}

/** Parses `tcp://host:port` (or bare `host:port`; IPv6 hosts in brackets). */
export function parseTcpEndpoint(endpoint: string): TcpEndpoint {
  const m = /^(?:tcp:\/\/)?(\[[0-9a-fA-F:.]+\]|[^\s:/[\]]+):(\d{1,5})$/.exec(endpoint);
  const port = m ? Number(m[2]) : Number.NaN;
  if (!m || !(port >= 0 && port <= 65535)) {
    throw new TransportError('connect-failed', `not a tcp endpoint (expected tcp://host:port): ${endpoint}`);
  }
  const host = m[1]!.startsWith('[') ? m[1]!.slice(1, -1) : m[1]!;
  return { host, port };
}

export function formatTcpEndpoint({ host, port }: TcpEndpoint): string {
  return host.includes(':') ? `tcp://[${host}]:${port}` : `tcp://${host}:${port}`;
}

function resolveLimits(partial: Partial<TransportLimits> | undefined): TransportLimits {
  const limits = { ...TCP_LIMITS_DEFAULT, ...partial };
  if (!Number.isInteger(limits.messageBytesMax) || limits.messageBytesMax < 1) {
    throw new RangeError(`messageBytesMax must be a positive integer, got ${limits.messageBytesMax}`);
  }
  if (limits.messageBytesMax > 0xffffffff)
    throw new RangeError('messageBytesMax must fit the u32 frame header');
  if (!Number.isInteger(limits.sendQueueBytesMax) || limits.sendQueueBytesMax < SEND_QUEUE_BYTES_MIN) {
    throw new RangeError(
      `sendQueueBytesMax must be an integer >= ${SEND_QUEUE_BYTES_MIN}, got ${limits.sendQueueBytesMax}`,
    );
  }
  return limits;
}

const asBuffer = (m: Uint8Array): Buffer =>
  Buffer.isBuffer(m) ? m : Buffer.from(m.buffer, m.byteOffset, m.byteLength);

export class TcpConnection implements TransportConnection {
  private readonly decoder: FrameDecoder;
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private flushScheduled = false;
  private drainWanted = false;
  private handler: ((batch: Uint8Array[]) => void) | undefined;
  private held: Uint8Array[][] = [];
  private readonly drainListeners: (() => void)[] = [];
  private readonly closeListeners: ((error?: TransportError) => void)[] = [];
  /** No more sends: set by close() or when the socket ended. */
  private closing = false;
  private finished = false;
  private localClose = false;
  private closeReason: TransportError | undefined;
  private failure: TransportError | undefined;
  private socketError: Error | undefined;
  private readonly closed: Promise<void>;
  private resolveClosed!: () => void;

  constructor(
    private readonly socket: net.Socket,
    readonly remote: string,
    private readonly limits: TransportLimits,
    private readonly closeTimeoutMs: number,
    private readonly onGone: (conn: TcpConnection) => void,
  ) {
    this.decoder = new FrameDecoder(limits.messageBytesMax);
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
    socket.setNoDelay(true);
    socket.setKeepAlive(true, KEEPALIVE_INITIAL_DELAY_MS);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.maybeDrain());
    socket.on('error', (e) => {
      this.socketError = e;
    });
    socket.on('close', () => this.finish());
  }

  get queuedBytes(): number {
    return this.pendingBytes + this.socket.writableLength;
  }

  send(message: Uint8Array): boolean {
    if (this.closing) throw new TransportError('closed', `connection to ${this.remote} is closed`);
    if (message.length > this.limits.messageBytesMax) {
      throw new TransportError(
        'oversized',
        `message of ${message.length} bytes exceeds messageBytesMax ${this.limits.messageBytesMax}`,
      );
    }
    this.pending.push(message);
    this.pendingBytes += FRAME_HEADER_BYTES + message.length;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(() => this.flush());
    }
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
    // Delivered in the same turn that resumes the socket, so held batches stay ahead of new data.
    queueMicrotask(() => {
      for (const batch of held) this.handler?.(batch);
      if (!this.finished) this.socket.resume();
    });
  }

  onDrain(cb: () => void): void {
    this.drainListeners.push(cb);
  }

  restrictNextMessages(count: number, bytesMax: number): void {
    this.decoder.restrictNext(count, bytesMax);
  }

  onClose(cb: (error?: TransportError) => void): void {
    if (this.finished) {
      const error = this.closeReason;
      queueMicrotask(() => cb(error));
      return;
    }
    this.closeListeners.push(cb);
  }

  async close(): Promise<void> {
    if (!this.closing) {
      this.closing = true;
      this.localClose = true;
      this.flush();
      this.socket.end();
      const timer = setTimeout(() => this.socket.destroy(), this.closeTimeoutMs);
      timer.unref();
      this.closed.then(() => clearTimeout(timer));
    }
    return this.closed;
  }

  /** Ends the connection because the peer broke the protocol. */
  fail(error: TransportError): void {
    if (this.finished) return;
    this.failure ??= error;
    this.closing = true;
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    const result = this.decoder.push(chunk);
    if (result.frames.length > 0) this.deliver(result.frames);
    if (!result.ok) {
      this.fail(
        new TransportError(
          'oversized',
          `${this.remote} announced a ${result.claimedBytes}-byte frame, limit ${result.limitBytes}`,
        ),
      );
    }
  }

  private deliver(batch: Uint8Array[]): void {
    if (this.handler) {
      this.handler(batch);
      return;
    }
    // No handler yet: hold what arrived and stop reading, so holding stays bounded.
    this.held.push(batch);
    this.socket.pause();
  }

  /** Writes the queued messages now (the microtask that would have done it finds nothing). */
  flush(): void {
    this.flushScheduled = false;
    if (this.pending.length === 0 || this.socket.destroyed) return;
    const pending = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    this.socket.cork();
    let run: Uint8Array[] = [];
    let runBytes = 0;
    const writeRun = () => {
      if (run.length === 0) return;
      this.socket.write(encodeFrames(run, runBytes));
      run = [];
      runBytes = 0;
    };
    for (const m of pending) {
      if (m.length >= DIRECT_WRITE_BYTES_MIN) {
        writeRun();
        this.socket.write(encodeFrameHeader(m.length));
        this.socket.write(asBuffer(m));
        continue;
      }
      run.push(m);
      runBytes += m.length;
      if (runBytes >= COALESCE_BYTES_MAX) writeRun();
    }
    writeRun();
    this.socket.uncork();
    this.maybeDrain();
  }

  private maybeDrain(): void {
    if (!this.drainWanted || this.closing) return;
    if (this.queuedBytes > this.limits.sendQueueBytesMax) {
      // The socket emits 'drain' (and we come back here) only after a write crossed its own
      // high-water mark; SEND_QUEUE_BYTES_MIN keeps our limit above it, this is the backstop.
      if (!this.socket.writableNeedDrain) setImmediate(() => this.maybeDrain());
      return;
    }
    this.drainWanted = false;
    for (const cb of this.drainListeners) cb();
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.closing = true;
    this.pending = [];
    this.pendingBytes = 0;
    let error = this.failure;
    if (!error && !this.localClose) {
      const why = this.socketError ? `: ${this.socketError.message}` : '';
      error = new TransportError('peer-lost', `connection to ${this.remote} ended by the peer${why}`);
    }
    this.closeReason = error;
    this.onGone(this);
    this.resolveClosed();
    for (const cb of this.closeListeners) cb(error);
  }
}

export class TcpTransport implements Transport {
  readonly kind: TransportKind = 'tcp';
  readonly limits: TransportLimits;
  private readonly connectionsInboundMax: number;
  private readonly connectTimeoutMs: number;
  private readonly closeTimeoutMs: number;
  private readonly onListenerError: ((error: Error) => void) | undefined;
  private server: net.Server | undefined;
  private connectionCb: ((conn: TransportConnection) => void) | undefined;
  private readonly connections = new Set<TcpConnection>();
  private inboundCount = 0;
  private closed = false;

  constructor(options: TcpTransportOptions = {}) {
    this.limits = resolveLimits(options.limits);
    this.connectionsInboundMax = options.connectionsInboundMax ?? CONNECTIONS_INBOUND_MAX_DEFAULT;
    this.connectTimeoutMs = options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS_DEFAULT;
    this.closeTimeoutMs = options.closeTimeoutMs ?? CLOSE_TIMEOUT_MS_DEFAULT;
    this.onListenerError = options.onListenerError;
  }

  /** Open connections, both directions (for metrics and tests). */
  get connectionCount(): number {
    return this.connections.size;
  }

  async listen(endpoint: string): Promise<string> {
    if (this.closed) throw new TransportError('closed', 'transport is closed');
    if (this.server) throw new TransportError('internal', 'already listening');
    const { host, port } = parseTcpEndpoint(endpoint);
    const server = net.createServer({ pauseOnConnect: false });
    server.on('connection', (socket) => this.accept(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e) =>
        reject(new TransportError('connect-failed', `listen ${endpoint}: ${e.message}`)),
      );
      server.listen({ host, port, exclusive: true }, () => resolve());
    });
    // Accept errors after listening (e.g. out of file descriptors) must not crash the node;
    // the affected connection is simply not accepted.
    server.on('error', (e) => this.onListenerError?.(e));
    const address = server.address() as net.AddressInfo;
    return formatTcpEndpoint({ host, port: address.port });
  }

  onConnection(cb: (conn: TransportConnection) => void): void {
    this.connectionCb = cb;
  }

  connect(endpoint: string): Promise<TransportConnection> {
    if (this.closed) return Promise.reject(new TransportError('closed', 'transport is closed'));
    let target: TcpEndpoint;
    try {
      target = parseTcpEndpoint(endpoint);
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: target.host, port: target.port, noDelay: true });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(
          new TransportError(
            'connect-failed',
            `connect ${endpoint}: timed out after ${this.connectTimeoutMs} ms`,
          ),
        );
      }, this.connectTimeoutMs);
      socket.once('error', (e) => {
        clearTimeout(timer);
        reject(new TransportError('connect-failed', `connect ${endpoint}: ${e.message}`));
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        if (this.closed) {
          socket.destroy();
          reject(new TransportError('closed', 'transport closed while connecting'));
          return;
        }
        const conn = new TcpConnection(
          socket,
          formatTcpEndpoint(target),
          this.limits,
          this.closeTimeoutMs,
          (c) => this.connections.delete(c),
        );
        this.connections.add(conn);
        resolve(conn);
      });
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const server = this.server;
    const serverClosed = server
      ? new Promise<void>((resolve) => server.close(() => resolve()))
      : Promise.resolve();
    await Promise.all([...this.connections].map((c) => c.close()));
    await serverClosed;
  }

  private accept(socket: net.Socket): void {
    if (this.closed || !this.connectionCb || this.inboundCount >= this.connectionsInboundMax) {
      socket.destroy();
      return;
    }
    this.inboundCount += 1;
    const remote = formatTcpEndpoint({ host: socket.remoteAddress ?? '?', port: socket.remotePort ?? 0 });
    const conn = new TcpConnection(socket, remote, this.limits, this.closeTimeoutMs, (c) => {
      this.connections.delete(c);
      this.inboundCount -= 1;
    });
    this.connections.add(conn);
    this.connectionCb(conn);
  }
}

/** Factory with the shape the transport conformance suite loads in child processes. */
export function createTcpTransport(limits?: Partial<TransportLimits>): TcpTransport {
  return new TcpTransport({ limits });
}
