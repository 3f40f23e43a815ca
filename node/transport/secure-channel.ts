// The authenticated replica channel, layered over any TransportConnection (TCP or
// RDMA). Handshake, one round trip, both sides send at once:
//
//   Hello = type 1 | version | genesisHash(32) | validator id (u16) | ephemeral X25519 public key(32)
//   Auth  = type 2 | Ed25519 signature(64) by the genesis key over
//           AUTH_CONTEXT | role byte | SHA-256(HELLO_CONTEXT | initiator Hello | responder Hello)
//
// Both derive the X25519 shared secret and, with HKDF-SHA256 salted by the transcript
// hash, one session key per direction. The signature binds the validator's genesis key
// to both ephemeral keys, so a man in the middle cannot substitute its own; the role
// byte stops a signature from being reflected back at its signer. Ephemeral keys give
// forward secrecy for the MAC keys.
//
// After the handshake every frame is  seq u64 | payload | tag(16)  where
// tag = HMAC-SHA256(direction key, direction byte | seq | payload) truncated to 16
// bytes. 128 bits are far beyond what an online forger can try (every wrong tag closes
// the channel and penalizes the peer), and truncated HMAC is standard (RFC 2104 §5,
// NIST SP 800-107); it saves 16 bytes on every small consensus message. The receiver
// requires seq == last + 1: the transport is ordered, so anything else is a replay,
// a reorder or a drop, and all three are violations.
import crypto from 'node:crypto';
import { sha256Parts, sign, verify } from '../../ledger/keys.js';
import { FrameMac } from './frame-mac.js';
import type { PeerPenaltyBox } from './penalty-box.js';
import { PeerRateLimiter, RATE_LIMIT_DEFAULT, type RateLimitOptions } from './rate-limit.js';
import { type TransportConnection, TransportError } from './types.js';

export type SecureChannelErrorCode =
  /** Bytes that are not a handshake message or a data frame. */
  | 'malformed'
  | 'version'
  | 'wrong-genesis'
  /** The claimed validator id is not in the validator set. */
  | 'unknown-peer'
  /** The peer claims our own id. */
  | 'self-connection'
  /** The peer is in the penalty box. */
  | 'penalized'
  /** The ephemeral key is invalid (e.g. a low-order point). */
  | 'bad-key'
  | 'bad-signature'
  | 'handshake-timeout'
  | 'bad-mac'
  /** A sequence number other than last + 1: a replayed, reordered or dropped frame. */
  | 'replay'
  | 'rate-limited'
  /** A payload above the channel's limit (local send). */
  | 'oversized'
  /** The connection under the channel ended or failed. */
  | 'transport'
  /** Use after close. */
  | 'closed';

/** Codes that mean the peer broke the protocol (as opposed to the link going away). */
export const VIOLATION_CODES: ReadonlySet<SecureChannelErrorCode> = new Set([
  'malformed',
  'version',
  'wrong-genesis',
  'unknown-peer',
  'self-connection',
  'bad-key',
  'bad-signature',
  'handshake-timeout',
  'bad-mac',
  'replay',
  'rate-limited',
]);

export class SecureChannelError extends Error {
  override readonly name = 'SecureChannelError';
  constructor(
    readonly code: SecureChannelErrorCode,
    message: string,
    /** The peer's validator id when it was authenticated (never an unproven claim). */
    readonly peerId?: number,
    readonly transportError?: TransportError,
  ) {
    super(message);
  }

  get isViolation(): boolean {
    return VIOLATION_CODES.has(this.code);
  }
}

export interface ValidatorPublicKey {
  /** Index of the validator in genesis. */
  id: number;
  /** 32-byte Ed25519 public key from genesis. */
  publicKey: Uint8Array;
}

export interface SecureChannelOptions {
  self: { id: number; secretKey: Uint8Array };
  validators: readonly ValidatorPublicKey[];
  /** 32-byte genesis hash: both sides must be on the same chain. */
  genesisHash: Uint8Array;
  role: 'initiator' | 'responder';
  /** Handshake deadline. */
  timeoutMs?: number;
  /** Limits on what the peer may send us. */
  rateLimit?: Partial<RateLimitOptions>;
  /** Refuse penalized peers at the handshake, and penalize an authenticated peer that violates the protocol. */
  penaltyBox?: PeerPenaltyBox<number>;
  /** Largest payload in either direction; keep it <= the transport's messageBytesMax - FRAME_OVERHEAD_BYTES. */
  payloadBytesMax?: number;
  /** Clock for the rate limiter, ms. */
  now?: () => number;
}

export interface SecureChannel {
  /** The authenticated validator id of the peer. */
  readonly peerId: number;
  readonly remote: string;
  /** Bytes queued in the transport, when it reports them. */
  readonly queuedBytes: number | undefined;
  /** As TransportConnection.send: false means wait for onDrain. Throws SecureChannelError('oversized'|'closed'). */
  send(payload: Uint8Array): boolean;
  /** One handler (a later call replaces it); batches that arrive before it is set are held. */
  onMessages(cb: (batch: Uint8Array[]) => void): void;
  onDrain(cb: () => void): void;
  /** Hands what send queued to the transport's socket/NIC now (see TransportConnection.flush). */
  flush(): void;
  /** Fires once; `error` is set unless close() was called locally. A listener added after the end fires at once. */
  onClose(cb: (error?: SecureChannelError) => void): void;
  close(): Promise<void>;
}

export const HANDSHAKE_TIMEOUT_MS_DEFAULT = 5_000;
export const SEQ_BYTES = 8;
export const TAG_BYTES = 16;
export const FRAME_OVERHEAD_BYTES = SEQ_BYTES + TAG_BYTES;
export const PAYLOAD_BYTES_MAX_DEFAULT = 4 * 1024 * 1024 - FRAME_OVERHEAD_BYTES;

const PROTOCOL_VERSION = 1;
const TYPE_HELLO = 1;
const TYPE_AUTH = 2;
const HELLO_BYTES = 2 + 32 + 2 + 32;
const AUTH_BYTES = 1 + 64;
const HELLO_CONTEXT = Buffer.from('hybster/secure-channel/v1/transcript');
const AUTH_CONTEXT = Buffer.from('hybster/secure-channel/v1/auth');
const KEY_INFO_I2R = Buffer.from('hybster/secure-channel/v1/key/initiator->responder');
const KEY_INFO_R2I = Buffer.from('hybster/secure-channel/v1/key/responder->initiator');
const ROLE_INITIATOR = 0x49; // 'I'
const ROLE_RESPONDER = 0x52; // 'R'
const X25519_SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');
const SEQ_MAX = Number.MAX_SAFE_INTEGER;

interface Hello {
  genesisHash: Buffer;
  id: number;
  ephemeral: Buffer;
}

function encodeHello(genesisHash: Uint8Array, id: number, ephemeral: Uint8Array): Buffer {
  const b = Buffer.alloc(HELLO_BYTES);
  b[0] = TYPE_HELLO;
  b[1] = PROTOCOL_VERSION;
  b.set(genesisHash, 2);
  b.writeUInt16BE(id, 34);
  b.set(ephemeral, 36);
  return b;
}

function decodeHello(m: Uint8Array): Hello | SecureChannelErrorCode {
  if (m.length !== HELLO_BYTES || m[0] !== TYPE_HELLO) return 'malformed';
  if (m[1] !== PROTOCOL_VERSION) return 'version';
  // Copied: the transport may hand us views into memory the peer can still change (RDMA rings).
  const b = Buffer.from(m);
  return { genesisHash: b.subarray(2, 34), id: b.readUInt16BE(34), ephemeral: b.subarray(36, 68) };
}

function x25519Shared(ownPrivate: crypto.KeyObject, peerPublicRaw: Buffer): Buffer | undefined {
  try {
    const publicKey = crypto.createPublicKey({
      key: Buffer.concat([X25519_SPKI_PREFIX, peerPublicRaw]),
      format: 'der',
      type: 'spki',
    });
    const shared = crypto.diffieHellman({ privateKey: ownPrivate, publicKey });
    // OpenSSL already refuses low-order points; the all-zero check keeps that true whatever the backend.
    return shared.some((x) => x !== 0) ? shared : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Runs the handshake over `conn` and resolves to the authenticated channel, or rejects
 * with a SecureChannelError after closing `conn`. Must be called before any message is
 * read from `conn` (it installs its own onMessages handler).
 */
export function secureChannel(
  conn: TransportConnection,
  options: SecureChannelOptions,
): Promise<SecureChannel> {
  const timeoutMs = options.timeoutMs ?? HANDSHAKE_TIMEOUT_MS_DEFAULT;
  const now = options.now ?? (() => performance.now());
  if (options.genesisHash.length !== 32) throw new RangeError('genesisHash must be 32 bytes');
  const selfKey = options.validators.find((v) => v.id === options.self.id);
  if (!selfKey) throw new RangeError(`own id ${options.self.id} is not in the validator set`);

  const ephemeral = crypto.generateKeyPairSync('x25519');
  const ephemeralPublic = (ephemeral.publicKey.export({ format: 'der', type: 'spki' }) as Buffer).subarray(
    X25519_SPKI_PREFIX.length,
  );
  const ownHello = encodeHello(options.genesisHash, options.self.id, ephemeralPublic);
  const initiator = options.role === 'initiator';

  return new Promise<SecureChannel>((resolve, reject) => {
    let stage: 'hello' | 'auth' | 'done' = 'hello';
    let peer: ValidatorPublicKey | undefined;
    let transcript: Uint8Array | undefined;
    let keys: { send: crypto.KeyObject; receive: crypto.KeyObject } | undefined;
    let settled = false;

    const fail = (code: SecureChannelErrorCode, message: string, error?: TransportError) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      void conn.close();
      reject(new SecureChannelError(code, message, undefined, error));
    };
    const timer = setTimeout(
      () => fail('handshake-timeout', `handshake with ${conn.remote} not done in ${timeoutMs} ms`),
      timeoutMs,
    );
    conn.onClose((error) => {
      // A frame too large for a handshake message is the peer's fault, not the link's.
      const code =
        error?.code === 'oversized' || error?.code === 'malformed-frame' ? 'malformed' : 'transport';
      fail(
        code,
        `connection to ${conn.remote} ended during the handshake: ${error?.message ?? 'closed'}`,
        error,
      );
    });

    const sendHandshake = (m: Uint8Array): boolean => {
      try {
        conn.send(m);
        return true;
      } catch (e) {
        // The connection closed under us; its onClose normally reports that first.
        fail('transport', `cannot send handshake to ${conn.remote}: ${e instanceof Error ? e.message : e}`);
        return false;
      }
    };

    const onHello = (m: Uint8Array): boolean => {
      const hello = decodeHello(m);
      if (typeof hello === 'string') {
        fail(hello, `bad hello from ${conn.remote}`);
        return false;
      }
      if (!hello.genesisHash.equals(options.genesisHash)) {
        fail('wrong-genesis', `${conn.remote} is on another chain`);
        return false;
      }
      if (hello.id === options.self.id) {
        fail('self-connection', `${conn.remote} claims our own id ${hello.id}`);
        return false;
      }
      peer = options.validators.find((v) => v.id === hello.id);
      if (!peer) {
        fail('unknown-peer', `${conn.remote} claims id ${hello.id}, which is not a validator in genesis`);
        return false;
      }
      if (options.penaltyBox?.isPenalized(peer.id)) {
        const ms = Math.ceil(options.penaltyBox.remainingMs(peer.id));
        fail('penalized', `validator ${peer.id} is refused for another ${ms} ms`);
        return false;
      }
      const shared = x25519Shared(ephemeral.privateKey, hello.ephemeral);
      if (!shared) {
        fail('bad-key', `${conn.remote} sent an invalid ephemeral key`);
        return false;
      }
      const peerHello = encodeHello(hello.genesisHash, hello.id, hello.ephemeral);
      transcript = initiator
        ? sha256Parts(HELLO_CONTEXT, ownHello, peerHello)
        : sha256Parts(HELLO_CONTEXT, peerHello, ownHello);
      const i2r = crypto.createSecretKey(
        Buffer.from(crypto.hkdfSync('sha256', shared, transcript, KEY_INFO_I2R, 32)),
      );
      const r2i = crypto.createSecretKey(
        Buffer.from(crypto.hkdfSync('sha256', shared, transcript, KEY_INFO_R2I, 32)),
      );
      keys = initiator ? { send: i2r, receive: r2i } : { send: r2i, receive: i2r };
      const role = Buffer.of(initiator ? ROLE_INITIATOR : ROLE_RESPONDER);
      const signature = sign(Buffer.concat([AUTH_CONTEXT, role, transcript]), options.self.secretKey);
      if (!sendHandshake(Buffer.concat([Buffer.of(TYPE_AUTH), signature]))) return false;
      stage = 'auth';
      return true;
    };

    const onAuth = (m: Uint8Array): boolean => {
      if (m.length !== AUTH_BYTES || m[0] !== TYPE_AUTH) {
        fail('malformed', `bad auth message from ${conn.remote}`);
        return false;
      }
      const peerRole = Buffer.of(initiator ? ROLE_RESPONDER : ROLE_INITIATOR);
      const signed = Buffer.concat([AUTH_CONTEXT, peerRole, transcript!]);
      if (!verify(Buffer.from(m.subarray(1)), signed, peer!.publicKey)) {
        fail('bad-signature', `${conn.remote} did not prove the genesis key of validator ${peer!.id}`);
        return false;
      }
      stage = 'done';
      return true;
    };

    conn.onMessages((batch) => {
      if (settled) return;
      for (let i = 0; i < batch.length; i++) {
        const ok = stage === 'hello' ? onHello(batch[i]!) : onAuth(batch[i]!);
        if (!ok) return;
        if (stage !== 'done') continue;
        settled = true;
        clearTimeout(timer);
        const channel = new EstablishedChannel(conn, peer!.id, keys!, options, now);
        // Frames the peer sent right behind its Auth belong to the channel.
        if (i + 1 < batch.length) channel.receive(batch.slice(i + 1));
        resolve(channel);
        return;
      }
    });

    // Hello then Auth, nothing larger: bounds what an unauthenticated peer can make us buffer.
    conn.restrictNextMessages?.(2, Math.max(HELLO_BYTES, AUTH_BYTES));
    sendHandshake(ownHello);
  });
}

const DIRECTION_I2R = Buffer.of(ROLE_INITIATOR);
const DIRECTION_R2I = Buffer.of(ROLE_RESPONDER);

class EstablishedChannel implements SecureChannel {
  readonly remote: string;
  private sendSeq = 0;
  private receiveSeq = 0;
  private readonly sendMac: FrameMac;
  private readonly receiveMac: FrameMac;
  private readonly limiter: PeerRateLimiter;
  private readonly payloadBytesMax: number;
  private handler: ((batch: Uint8Array[]) => void) | undefined;
  private held: Uint8Array[][] = [];
  private readonly closeListeners: ((error?: SecureChannelError) => void)[] = [];
  private closing = false;
  private ended = false;
  private violation: SecureChannelError | undefined;
  private closeReason: SecureChannelError | undefined;

  constructor(
    private readonly conn: TransportConnection,
    readonly peerId: number,
    keys: { send: crypto.KeyObject; receive: crypto.KeyObject },
    private readonly options: SecureChannelOptions,
    private readonly now: () => number,
  ) {
    this.remote = conn.remote;
    const initiator = options.role === 'initiator';
    this.sendMac = new FrameMac(keys.send, initiator ? DIRECTION_I2R : DIRECTION_R2I);
    this.receiveMac = new FrameMac(keys.receive, initiator ? DIRECTION_R2I : DIRECTION_I2R);
    this.limiter = new PeerRateLimiter({ ...RATE_LIMIT_DEFAULT, ...options.rateLimit }, now());
    this.payloadBytesMax = options.payloadBytesMax ?? PAYLOAD_BYTES_MAX_DEFAULT;
    conn.onMessages((batch) => this.receive(batch));
    conn.onClose((error) => this.end(error));
  }

  get queuedBytes(): number | undefined {
    return this.conn.queuedBytes;
  }

  send(payload: Uint8Array): boolean {
    if (this.closing) throw new SecureChannelError('closed', `channel to validator ${this.peerId} is closed`);
    if (payload.length > this.payloadBytesMax) {
      throw new SecureChannelError(
        'oversized',
        `payload of ${payload.length} bytes exceeds ${this.payloadBytesMax}`,
        this.peerId,
      );
    }
    // Sequence numbers stay exact in a double up to 2^53; at a million frames a second that is 285 years.
    this.sendSeq += 1;
    const frame = Buffer.allocUnsafe(FRAME_OVERHEAD_BYTES + payload.length);
    writeSeq(frame, this.sendSeq);
    frame.set(payload, SEQ_BYTES);
    const body = frame.subarray(0, SEQ_BYTES + payload.length);
    this.sendMac.tag(body).copy(frame, SEQ_BYTES + payload.length, 0, TAG_BYTES);
    try {
      return this.conn.send(frame);
    } catch (e) {
      // The transport ended before its close reached us, or its limit is below ours: typed either way.
      const code = e instanceof TransportError && e.code === 'oversized' ? 'oversized' : 'closed';
      throw new SecureChannelError(
        code,
        `send to validator ${this.peerId}: ${(e as Error).message}`,
        this.peerId,
      );
    }
  }

  onMessages(cb: (batch: Uint8Array[]) => void): void {
    this.handler = cb;
    if (this.held.length === 0) return;
    const held = this.held;
    this.held = [];
    for (const batch of held) cb(batch);
  }

  onDrain(cb: () => void): void {
    this.conn.onDrain(cb);
  }

  flush(): void {
    if (!this.ended) this.conn.flush?.();
  }

  onClose(cb: (error?: SecureChannelError) => void): void {
    if (this.ended) {
      const reason = this.closeReason;
      queueMicrotask(() => cb(reason));
      return;
    }
    this.closeListeners.push(cb);
  }

  close(): Promise<void> {
    this.closing = true;
    return this.conn.close();
  }

  /** Verifies and delivers one transport batch; the first bad frame ends the channel. */
  receive(batch: Uint8Array[]): void {
    if (this.violation || this.ended) return;
    const payloads: Uint8Array[] = [];
    const nowMs = this.now();
    for (const frame of batch) {
      const payload = this.open(frame, nowMs);
      if (payload === undefined) break;
      payloads.push(payload);
    }
    // Frames authenticated before a bad one were really sent by the peer: deliver them.
    if (payloads.length > 0) this.deliver(payloads);
    // Read through a method: `open` may have set it, which TypeScript's narrowing cannot see.
    const violation = this.currentViolation();
    if (violation) {
      this.closing = true;
      this.options.penaltyBox?.penalize(this.peerId, violation.code);
      void this.conn.close();
    }
  }

  private open(frame: Uint8Array, nowMs: number): Uint8Array | undefined {
    if (!this.limiter.admit(frame.length, nowMs)) {
      return this.reject('rate-limited', `validator ${this.peerId} exceeded its rate limit`);
    }
    if (frame.length < FRAME_OVERHEAD_BYTES || frame.length - FRAME_OVERHEAD_BYTES > this.payloadBytesMax) {
      return this.reject('malformed', `validator ${this.peerId} sent a ${frame.length}-byte frame`);
    }
    // Copy first: on RDMA the peer can rewrite the ring after we checked the tag.
    const copy = Buffer.from(frame);
    const bodyEnd = copy.length - TAG_BYTES;
    const body = copy.subarray(0, bodyEnd);
    const expected = this.receiveMac.tag(body).subarray(0, TAG_BYTES);
    if (!crypto.timingSafeEqual(expected, copy.subarray(bodyEnd))) {
      return this.reject('bad-mac', `validator ${this.peerId} sent a frame with a wrong MAC`);
    }
    const seq = readSeq(copy);
    if (seq !== this.receiveSeq + 1) {
      return this.reject(
        'replay',
        `validator ${this.peerId} sent seq ${seq}, expected ${this.receiveSeq + 1}`,
      );
    }
    this.receiveSeq = seq;
    return copy.subarray(SEQ_BYTES, bodyEnd);
  }

  private currentViolation(): SecureChannelError | undefined {
    return this.violation;
  }

  private reject(code: SecureChannelErrorCode, message: string): undefined {
    this.violation = new SecureChannelError(code, message, this.peerId);
    return undefined;
  }

  private deliver(payloads: Uint8Array[]): void {
    if (this.handler) this.handler(payloads);
    else this.held.push(payloads);
  }

  private end(error?: TransportError): void {
    if (this.ended) return;
    this.ended = true;
    this.closing = true;
    let reason = this.violation;
    if (!reason && error) {
      reason = new SecureChannelError(
        'transport',
        `connection to validator ${this.peerId} ended: ${error.message}`,
        this.peerId,
        error,
      );
    }
    this.closeReason = reason;
    for (const cb of this.closeListeners) cb(reason);
  }
}

function writeSeq(b: Buffer, seq: number): void {
  b.writeUInt32BE(Math.floor(seq / 0x1_0000_0000), 0);
  b.writeUInt32BE(seq >>> 0, 4);
}

function readSeq(b: Buffer): number {
  const high = b.readUInt32BE(0);
  // A seq past 2^53 is never legitimately reached; mapping it to -1 makes it a 'replay'.
  if (high > Math.floor(SEQ_MAX / 0x1_0000_0000)) return -1;
  return high * 0x1_0000_0000 + b.readUInt32BE(4);
}
