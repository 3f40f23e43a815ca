// The secure-channel handshake, the one exchange an unauthenticated stranger can reach:
// a hostile "peer" sends a (mutated) Hello and Auth over an in-memory connection to a
// real responder. Whatever it sends, the handshake must end with a typed
// SecureChannelError and a closed connection (never an exception, never a channel).
import crypto from 'node:crypto';
import fc from 'fast-check';
import { keyPairFromSeed } from '../../../ledger/keys.js';
import { SecureChannelError, secureChannel } from '../../../node/transport/secure-channel.js';
import type { TransportConnection, TransportError } from '../../../node/transport/types.js';
import { type FuzzTarget, FuzzViolation, type Outcome } from '../harness.js';
import { hostileInputs } from '../mutate.js';

const HELLO_BYTES = 68;
const GENESIS = new Uint8Array(32).fill(7);
const keys = [0, 1, 2].map((i) => keyPairFromSeed(new Uint8Array(32).fill(i + 1)));
const validators = keys.map((k, id) => ({ id, publicKey: k.publicKey }));

/** The side the fuzzer drives: records what the channel does to it. */
class HostileEnd implements TransportConnection {
  readonly remote = 'memory://fuzzer';
  closed = false;
  private handler: ((batch: Uint8Array[]) => void) | undefined;
  private readonly closers: ((e?: TransportError) => void)[] = [];
  send(_message: Uint8Array): boolean {
    if (this.closed) throw new Error('send after close');
    return true;
  }
  onMessages(cb: (batch: Uint8Array[]) => void): void {
    this.handler = cb;
  }
  onDrain(_cb: () => void): void {}
  onClose(cb: (error?: TransportError) => void): void {
    this.closers.push(cb);
  }
  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      for (const c of this.closers) c();
    }
    return Promise.resolve();
  }
  deliver(batch: Uint8Array[]): void {
    if (!this.closed) this.handler?.(batch);
  }
}

/** A well-formed Hello from validator 1 (fresh ephemeral key), followed by a plausible Auth. */
const validHandshake = fc.constantFrom(1, 2).map((id) => {
  const eph = crypto
    .generateKeyPairSync('x25519')
    .publicKey.export({ format: 'der', type: 'spki' }) as Buffer;
  const hello = Buffer.alloc(HELLO_BYTES);
  hello[0] = 1;
  hello[1] = 1;
  hello.set(GENESIS, 2);
  hello.writeUInt16BE(id, 34);
  hello.set(eph.subarray(eph.length - 32), 36);
  // An Auth with a signature over the wrong transcript: the fuzzer cannot know the responder's ephemeral key.
  const auth = Buffer.concat([Buffer.of(2), crypto.randomBytes(64)]);
  return new Uint8Array(Buffer.concat([hello, auth]));
});

async function runHandshake(bytes: Uint8Array): Promise<Outcome> {
  const conn = new HostileEnd();
  let pending: Promise<unknown>;
  try {
    pending = secureChannel(conn, {
      self: { id: 0, secretKey: keys[0]!.secretKey },
      validators,
      genesisHash: GENESIS,
      role: 'responder',
      timeoutMs: 25,
    });
  } catch (e) {
    throw new FuzzViolation('threw', `secureChannel threw synchronously: ${String(e)}`);
  }
  // The first 68 bytes as one message (the Hello's size), the rest as the next.
  const batch = [bytes.subarray(0, HELLO_BYTES), bytes.subarray(HELLO_BYTES)].filter((m) => m.length > 0);
  try {
    conn.deliver(batch.map((m) => new Uint8Array(m)));
  } catch (e) {
    throw new FuzzViolation('threw', `handshake threw on delivery: ${String(e)}`);
  }
  try {
    await pending;
  } catch (e) {
    if (!(e instanceof SecureChannelError)) throw new FuzzViolation('untyped-error', String(e));
    if (!conn.closed)
      throw new FuzzViolation('unbounded', `handshake failed (${e.code}) but left the connection open`);
    return 'rejected';
  }
  throw new FuzzViolation('round-trip', 'a stranger without the validator key completed the handshake');
}

export const handshakeTargets: FuzzTarget[] = [
  {
    name: 'transport.handshake',
    valid: validHandshake,
    inputs: hostileInputs(validHandshake, 256),
    run: runHandshake,
    async: true,
    oversized: () => null,
    // Every input is refused: without the key there is nothing valid to accept.
    acceptsValid: false,
  },
];
