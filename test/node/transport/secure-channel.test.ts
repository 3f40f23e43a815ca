import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { generateKeyPair, type KeyPair } from '../../../ledger/keys.js';
import { PeerPenaltyBox } from '../../../node/transport/penalty-box.js';
import {
  type SecureChannel,
  SecureChannelError,
  type SecureChannelOptions,
  secureChannel,
  type ValidatorPublicKey,
} from '../../../node/transport/secure-channel.js';
import { TcpTransport } from '../../../node/transport/tcp.js';
import { tap } from './tap.js';

const genesisHash = new Uint8Array(randomBytes(32));
const keys: KeyPair[] = [0, 1, 2, 3].map(() => generateKeyPair());
const validators: ValidatorPublicKey[] = keys.map((k, id) => ({ id, publicKey: k.publicKey }));

const options = (id: number, role: 'initiator' | 'responder', extra: Partial<SecureChannelOptions> = {}) => ({
  self: { id, secretKey: keys[id]!.secretKey },
  validators,
  genesisHash,
  role,
  timeoutMs: 2_000,
  ...extra,
});

function waitUntil(cond: () => boolean, timeoutMs = 5_000): Promise<void> {
  const start = Date.now();
  return new Promise((resolve, reject) => {
    const poll = () => {
      if (cond()) resolve();
      else if (Date.now() - start > timeoutMs) reject(new Error('condition not met in time'));
      else setTimeout(poll, 5);
    };
    poll();
  });
}

function nextMessages(ch: SecureChannel, count: number): Promise<string[]> {
  const got: string[] = [];
  return new Promise((resolve) =>
    ch.onMessages((batch) => {
      got.push(...batch.map((m) => Buffer.from(m).toString()));
      if (got.length >= count) resolve(got);
    }),
  );
}

describe('secure channel', () => {
  let server: TcpTransport;
  let client: TcpTransport;
  let endpoint: string;
  let penaltyBox: PeerPenaltyBox;
  const established: SecureChannel[] = [];
  const handshakeErrors: SecureChannelError[] = [];
  const closes: { peerId: number; error?: SecureChannelError }[] = [];
  let honest: SecureChannel;

  const connect = async (id: number, extra: Partial<SecureChannelOptions> = {}) =>
    secureChannel(await client.connect(endpoint), options(id, 'initiator', extra));

  /** The honest validator 1 still gets its messages echoed by the server. */
  const assertHonestStillWorks = async () => {
    const echoed = nextMessages(honest, 2);
    honest.send(Buffer.from('still'));
    honest.send(Buffer.from('committing'));
    assert.deepEqual(await echoed, ['still', 'committing']);
  };
  const serverCloseOf = async (peerId: number) => {
    await waitUntil(() => closes.some((c) => c.peerId === peerId));
    return closes.find((c) => c.peerId === peerId)!.error;
  };

  beforeEach(async () => {
    established.length = 0;
    handshakeErrors.length = 0;
    closes.length = 0;
    penaltyBox = new PeerPenaltyBox({ penaltyMsMin: 60_000 });
    server = new TcpTransport();
    client = new TcpTransport();
    server.onConnection((conn) => {
      secureChannel(
        conn,
        options(0, 'responder', {
          penaltyBox,
          rateLimit: { messagesPerSecondMax: 2_000, burstSeconds: 0.25 },
          timeoutMs: 1_000, // generous: an honest handshake on a loaded CI box must not time out
        }),
      ).then(
        (ch) => {
          established.push(ch);
          ch.onClose((error) => closes.push({ peerId: ch.peerId, ...(error ? { error } : {}) }));
          ch.onMessages((batch) => {
            for (const m of batch) ch.send(m);
          });
        },
        (e: SecureChannelError) => handshakeErrors.push(e),
      );
    });
    endpoint = await server.listen('tcp://127.0.0.1:0');
    honest = await connect(1);
  });

  afterEach(async () => {
    await Promise.all([client.close(), server.close()]);
  });

  it('authenticates two genesis validators and carries messages both ways, in order', async () => {
    assert.equal(honest.peerId, 0);
    await waitUntil(() => established.length === 1);
    assert.equal(established[0]!.peerId, 1);
    const echoed = nextMessages(honest, 100);
    for (let i = 0; i < 100; i++) honest.send(Buffer.from(`m${i}`));
    assert.deepEqual(
      await echoed,
      Array.from({ length: 100 }, (_, i) => `m${i}`),
    );
  });

  it('hands sealed frames to the transport within the turn when flushed', async () => {
    const echoed = nextMessages(honest, 2);
    honest.send(Buffer.from('prepare'));
    honest.send(Buffer.from('commit'));
    assert.ok(honest.queuedBytes! > 0, 'frames wait for the end of the turn');
    honest.flush();
    assert.equal(honest.queuedBytes, 0, 'nothing left queued after flush');
    assert.deepEqual(await echoed, ['prepare', 'commit']);
  });

  it('refuses a peer whose id is not in genesis', async () => {
    const outsider = generateKeyPair();
    const attempt = secureChannel(await client.connect(endpoint), {
      self: { id: 9, secretKey: outsider.secretKey },
      validators: [...validators, { id: 9, publicKey: outsider.publicKey }],
      genesisHash,
      role: 'initiator',
      timeoutMs: 2_000,
    });
    await assert.rejects(attempt, SecureChannelError);
    await waitUntil(() => handshakeErrors.length === 1);
    assert.equal(handshakeErrors[0]!.code, 'unknown-peer');
    await assertHonestStillWorks();
  });

  it('refuses a peer that claims a validator id without its genesis key', async () => {
    const impostor = generateKeyPair();
    // The impostor may see its own side complete (it checked our valid signature before we
    // checked its bad one); what matters is that we refuse it and nothing gets through.
    const impostorSide = await connect(2, { self: { id: 2, secretKey: impostor.secretKey } }).catch(
      (e: unknown) => e,
    );
    await waitUntil(() => handshakeErrors.length === 1);
    if (!(impostorSide instanceof SecureChannelError)) {
      const ended = new Promise((resolve) => (impostorSide as SecureChannel).onClose(resolve));
      await ended;
    }
    assert.equal(established.length, 1, 'only the honest validator has a channel');
    assert.equal(handshakeErrors[0]!.code, 'bad-signature');
    assert.equal(
      penaltyBox.isPenalized(2),
      false,
      'an unproven claim does not get the real validator 2 banned',
    );
    await assertHonestStillWorks();
  });

  it('refuses a peer on another chain', async () => {
    await assert.rejects(connect(2, { genesisHash: new Uint8Array(32) }), SecureChannelError);
    await waitUntil(() => handshakeErrors.length === 1);
    assert.equal(handshakeErrors[0]!.code, 'wrong-genesis');
  });

  it('drops a connection that sends garbage or an oversized message instead of a handshake, or nothing at all', async () => {
    const garbage = await client.connect(endpoint);
    garbage.send(randomBytes(68));
    const silent = await client.connect(endpoint);
    const huge = await client.connect(endpoint);
    huge.send(new Uint8Array(1024 * 1024)); // within the transport's limit, far above a handshake message's
    await waitUntil(() => handshakeErrors.length === 3);
    assert.deepEqual(handshakeErrors.map((e) => e.code).sort(), [
      'handshake-timeout',
      'malformed',
      'malformed',
    ]);
    await Promise.all([garbage.close(), silent.close(), huge.close()]);
    await assertHonestStillWorks();
  });

  it('disconnects and penalizes a validator that sends a garbage frame after the handshake', async () => {
    const t = tap(await client.connect(endpoint));
    const ch = await secureChannel(t.proxy, options(2, 'initiator'));
    const closed = new Promise<SecureChannelError | undefined>((resolve) => ch.onClose(resolve));
    t.proxy.send(Buffer.from('not a frame'));
    const error = await serverCloseOf(2);
    assert.equal(error?.code, 'malformed');
    assert.equal(error?.peerId, 2);
    assert.ok(penaltyBox.isPenalized(2));
    assert.equal((await closed)?.code, 'transport', 'the attacker sees its connection end');
    await assertHonestStillWorks();
  });

  it('disconnects a validator that replays a frame', async () => {
    const t = tap(await client.connect(endpoint));
    const ch = await secureChannel(t.proxy, options(2, 'initiator'));
    const echoed = nextMessages(ch, 1);
    ch.send(Buffer.from('once'));
    assert.deepEqual(await echoed, ['once']);
    const frame = t.sent.at(-1)!;
    t.proxy.send(frame);
    const error = await serverCloseOf(2);
    assert.equal(error?.code, 'replay');
    assert.ok(penaltyBox.isPenalized(2));
    await assertHonestStillWorks();
  });

  it('disconnects a validator that sends a frame with a wrong MAC, and delivers nothing of it', async () => {
    const t = tap(await client.connect(endpoint));
    const ch = await secureChannel(t.proxy, options(2, 'initiator'));
    let serverGot = 0;
    await waitUntil(() => established.some((c) => c.peerId === 2));
    const serverSide = established.find((c) => c.peerId === 2)!;
    serverSide.onMessages((batch) => {
      serverGot += batch.length;
    });
    t.setHold(true);
    ch.send(Buffer.from('tampered'));
    t.setHold(false);
    const forged = Buffer.from(t.sent.at(-1)!);
    forged[forged.length - 1]! ^= 1;
    t.proxy.send(forged);
    const error = await serverCloseOf(2);
    assert.equal(error?.code, 'bad-mac');
    assert.equal(serverGot, 0);
    await assertHonestStillWorks();
  });

  it('disconnects a flooding validator, then refuses its reconnect while it is in the penalty box', async () => {
    const flooder = await connect(3);
    for (let i = 0; i < 2_000; i++) flooder.send(Buffer.from('flood'));
    const error = await serverCloseOf(3);
    assert.equal(error?.code, 'rate-limited');
    assert.ok(penaltyBox.remainingMs(3) > 0);

    await assert.rejects(connect(3), SecureChannelError);
    await waitUntil(() => handshakeErrors.length === 1);
    assert.equal(handshakeErrors[0]!.code, 'penalized');
    await assertHonestStillWorks();
  });

  it('refuses a payload above its limit at the sender with a typed error', async () => {
    const small = await connect(2, { payloadBytesMax: 16 });
    assert.throws(
      () => small.send(new Uint8Array(17)),
      (e: unknown) => e instanceof SecureChannelError && e.code === 'oversized',
    );
    await small.close();
    assert.throws(
      () => small.send(new Uint8Array(1)),
      (e: unknown) => e instanceof SecureChannelError && e.code === 'closed',
    );
  });
});
