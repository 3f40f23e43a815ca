import assert from 'node:assert/strict';
import { generateKeyPair, type KeyPair } from '../../ledger/keys.js';
import { createLogger } from '../../node/logging.js';
import { createMetrics } from '../../node/metrics.js';
import { ReplicaNetwork } from '../../node/replicas.js';
import { TcpTransport } from '../../node/transport/index.js';

const log = createLogger({ level: 'silent', format: 'json' });
const genesisHash = new Uint8Array(32).fill(3);

async function until(cond: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

function make(
  self: number,
  keys: KeyPair[],
  inbox: { from: number; text: string }[],
  validators = keys,
): ReplicaNetwork {
  return new ReplicaNetwork({
    selfId: self,
    secretKey: (keys[self] as KeyPair).secretKey,
    validators: validators.map((k, id) => ({ id, publicKey: k.publicKey })),
    genesisHash,
    transport: new TcpTransport(),
    payloadBytesMax: 1 << 20,
    log,
    metrics: createMetrics({ defaultMetrics: false }),
    onMessages: (from, batch) => {
      for (const m of batch) inbox.push({ from, text: new TextDecoder().decode(m) });
    },
  });
}

describe('node/replicas', function () {
  this.timeout(30_000);
  const nets: ReplicaNetwork[] = [];
  afterEach(async () => {
    await Promise.all(nets.splice(0).map((n) => n.close()));
  });

  it('connects validators over authenticated channels and delivers messages both ways', async () => {
    const keys = [generateKeyPair(), generateKeyPair(), generateKeyPair()];
    const inboxes = keys.map(() => [] as { from: number; text: string }[]);
    for (let i = 0; i < 3; i++) nets.push(make(i, keys, inboxes[i] as { from: number; text: string }[]));
    const eps = await Promise.all(nets.map((n) => n.listen('127.0.0.1:0')));
    nets.forEach((n, i) => {
      eps.forEach((e, j) => {
        if (i !== j) n.setEndpoint(j, e);
      });
    });
    await until(() => nets.every((n) => n.connectedPeers().length === 2));
    nets[2]?.broadcast(new TextEncoder().encode('from 2'));
    assert.equal(nets[0]?.send(1, new TextEncoder().encode('0 to 1')), true);
    await until(() => inboxes[0]?.length === 1 && inboxes[1]?.length === 2);
    assert.deepEqual(inboxes[0], [{ from: 2, text: 'from 2' }]);
    assert.deepEqual(inboxes[1]?.map((m) => m.text).sort(), ['0 to 1', 'from 2']);
  });

  it('refuses a peer whose key is not in the validator set', async () => {
    const keys = [generateKeyPair(), generateKeyPair()];
    const stranger = generateKeyPair();
    const inbox: { from: number; text: string }[] = [];
    const honest = make(1, keys, inbox);
    nets.push(honest);
    const ep = await honest.listen('127.0.0.1:0');
    // The stranger claims to be validator 0 but signs with its own key.
    const impostor = make(0, [stranger, keys[1] as KeyPair], [], [keys[0] as KeyPair, keys[1] as KeyPair]);
    nets.push(impostor);
    await impostor.listen('127.0.0.1:0');
    impostor.setEndpoint(1, ep);
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual(honest.connectedPeers(), []);
    assert.equal(impostor.send(1, new TextEncoder().encode('let me in')), false);
  });

  it('drops messages for a peer without a channel instead of queueing them', async () => {
    const keys = [generateKeyPair(), generateKeyPair()];
    const n = make(0, keys, []);
    nets.push(n);
    await n.listen('127.0.0.1:0');
    assert.equal(n.send(1, new Uint8Array([1])), false);
    assert.deepEqual(n.connectedPeers(), []);
  });
});
