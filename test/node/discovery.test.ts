import assert from 'node:assert/strict';
import { generateKeyPair } from '../../ledger/keys.js';
import { Discovery, parseEndpointAnswer, peerIdForValidatorKey } from '../../node/discovery.js';
import { createLogger } from '../../node/logging.js';

const log = createLogger({ level: process.env.TEST_LOG ?? 'silent', format: 'json' });

async function freePort(): Promise<number> {
  const net = await import('node:net');
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as import('node:net').AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function until(cond: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('node/discovery', () => {
  it('derives the same libp2p peer id as libp2p does from the validator seed', async () => {
    const kp = generateKeyPair();
    const d = new Discovery({
      seed: kp.secretKey,
      selfIndex: 0,
      chainId: 'c',
      validatorKeys: [kp.publicKey],
      transportKind: 'tcp',
      endpoint: () => '127.0.0.1:1',
      listen: '/ip4/127.0.0.1/tcp/0',
      bootstrap: [],
      mdns: false,
      refreshMs: 1000,
      log,
      onEndpoint: () => {},
    });
    await d.start();
    try {
      assert.equal(d.peerId, peerIdForValidatorKey(kp.publicKey));
    } finally {
      await d.stop();
    }
  });

  it('rejects malformed endpoint answers', () => {
    assert.equal(parseEndpointAnswer(new TextEncoder().encode('{"validator":"x"}')), null);
    assert.equal(parseEndpointAnswer(new Uint8Array([0xff, 0x00])), null);
    const good = parseEndpointAnswer(
      new TextEncoder().encode('{"chainId":"c","validator":1,"transport":"tcp","endpoint":"127.0.0.1:5"}'),
    );
    assert.deepEqual(good, { chainId: 'c', validator: 1, transport: 'tcp', endpoint: '127.0.0.1:5' });
  });

  it('lets three validators learn each other endpoints, go quiet once settled, and find a changed endpoint after a restart', async function () {
    this.timeout(30_000);
    const keys = [generateKeyPair(), generateKeyPair(), generateKeyPair()];
    const ports = [await freePort(), await freePort(), await freePort()];
    const addrs = keys.map(
      (k, i) => `/ip4/127.0.0.1/tcp/${ports[i]}/p2p/${peerIdForValidatorKey(k.publicKey)}`,
    );
    const learned: Map<number, string>[] = keys.map(() => new Map());
    const endpoints = ['127.0.0.1:1000', '127.0.0.1:1001', '127.0.0.1:1002'];
    const make = (i: number): Discovery =>
      new Discovery({
        seed: (keys[i] as { secretKey: Uint8Array }).secretKey,
        selfIndex: i,
        chainId: 'chain',
        validatorKeys: keys.map((k) => k.publicKey),
        transportKind: 'tcp',
        endpoint: () => endpoints[i] as string,
        listen: `/ip4/127.0.0.1/tcp/${ports[i]}`,
        bootstrap: addrs.filter((_, j) => j !== i),
        mdns: false,
        refreshMs: 200,
        settledRefreshMs: 60_000,
        log,
        onEndpoint: (v, e) => learned[i]?.set(v, e),
      });
    const nodes = [make(0), make(1), make(2)];
    try {
      await Promise.all(nodes.map((n) => n.start()));
      await until(() => learned.every((m, i) => m.size === 2 && !m.has(i)), 20_000);
      assert.equal(learned[0]?.get(1), '127.0.0.1:1001');
      assert.equal(learned[2]?.get(0), '127.0.0.1:1000');
      // Settled: after at most one more round at the fast period, no refresh for a while.
      await new Promise((r) => setTimeout(r, 500));
      const rounds = nodes.map((n) => n.refreshRounds);
      await new Promise((r) => setTimeout(r, 1000));
      assert.deepEqual(
        nodes.map((n) => n.refreshRounds),
        rounds,
        'settled nodes refresh at the settled period',
      );
      // Validator 1 restarts with a new transport endpoint: the others find it again.
      await nodes[1]?.stop();
      endpoints[1] = '127.0.0.1:2001';
      nodes[1] = make(1);
      await nodes[1].start();
      await until(
        () => learned[0]?.get(1) === '127.0.0.1:2001' && learned[2]?.get(1) === '127.0.0.1:2001',
        20_000,
      );
    } finally {
      await Promise.all(nodes.map((n) => n.stop()));
    }
  });
});
