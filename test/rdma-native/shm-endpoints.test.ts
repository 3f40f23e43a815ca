// shm endpoints in host:port form, as genesis writes them: each names its own shm node
// (host and port), dialers find the region from the same string, a name has one live
// owner at a time, and a SIGKILLed owner's leftover region does not stop its successor.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import type { TransportConnection } from '../../node/transport/types.js';
import { TransportError } from '../../node/transport/types.js';
import { RdmaTransport } from '../../rdma-native/transport.js';
import {
  formatEndpoint,
  isShmRegionOf,
  parseEndpoint,
  parseListenEndpoint,
  shmFabricName,
  shmNodeName,
  shmRegionOf,
} from '../../rdma-native/wire.js';
import { requireRdma } from './require-rdma.js';

const transportUrl = new URL('../../rdma-native/transport.js', import.meta.url).href;
const small = { ringBytes: 64 * 1024, recvSlots: 8, recvSlotBytes: 4096, msgCredits: 4 };

/** A port no other run is likely to use at the same time (the name lock would refuse it). */
const testPort = (offset: number): number => 40_000 + ((process.pid * 7 + offset) % 20_000);

const regionsOf = (port: number): string[] =>
  readdirSync('/dev/shm').filter((f) => isShmRegionOf(f, shmNodeName('127.0.0.1', port)));

const removeRegions = (port: number): void => {
  for (const r of regionsOf(port)) rmSync(`/dev/shm/${r}`, { force: true });
};

describe('rdma-native shm endpoint names', () => {
  it('names the shm node after host and port, and dials the same string as genesis writes', () => {
    const p = parseEndpoint('rdma+shm://127.0.0.1:20837');
    assert.ok(p);
    assert.equal(p.provider, 'shm');
    assert.equal(p.shmNode, 'hyb-ep-127.0.0.1-20837');
    assert.equal(p.name.toString(), 'fi_shm://hyb-ep-127.0.0.1-20837:0:0\0');
    assert.notEqual(
      parseEndpoint('rdma+shm://127.0.0.1:20838')?.shmNode,
      p.shmNode,
      'another port is another name',
    );
    assert.notEqual(parseEndpoint('rdma+shm://127.0.0.2:20837')?.shmNode, p.shmNode, 'another host too');
  });

  it('formats the fabric name of a host:port node back to host:port, whatever its suffix', () => {
    for (const suffix of [':0:0', ':0:3', ':0:1:2']) {
      const name = shmFabricName(`hyb-ep-127.0.0.1-20837${suffix}`);
      assert.equal(formatEndpoint('shm', name), 'rdma+shm://127.0.0.1:20837');
    }
    assert.deepEqual(parseListenEndpoint('rdma+shm://127.0.0.1:20837'), {
      provider: 'shm',
      host: '127.0.0.1',
      port: 20837,
    });
  });

  it('keeps the bare, port-0 and base64url forms and the socket form of other providers', () => {
    assert.deepEqual(parseListenEndpoint('rdma+shm://'), { provider: 'shm' });
    assert.deepEqual(parseListenEndpoint('rdma+shm://127.0.0.1:0'), {
      provider: 'shm',
      host: '127.0.0.1',
      port: 0,
    });
    assert.equal(parseEndpoint('rdma+shm://127.0.0.1:0'), undefined, 'port 0 names no endpoint to dial');
    const unique = shmFabricName('hyb-123-0123456789ab:0:0');
    const e = formatEndpoint('shm', unique);
    assert.match(e, /^rdma\+shm:\/\/[A-Za-z0-9_-]+$/);
    assert.deepEqual(parseEndpoint(e)?.name, unique);
    assert.equal(parseEndpoint(e)?.shmNode, undefined);
    assert.deepEqual(parseListenEndpoint(e), { provider: 'shm', host: 'fi_shm://hyb-123-0123456789ab' });
    const tcp = parseEndpoint('rdma+tcp;ofi_rxm://127.0.0.1:40123');
    assert.equal(tcp?.name.length, 16, 'a sockaddr_in');
    assert.equal(tcp?.shmNode, undefined);
    assert.equal(formatEndpoint('tcp;ofi_rxm', tcp!.name), 'rdma+tcp;ofi_rxm://127.0.0.1:40123');
  });

  it('refuses malformed host:port forms and region names that leave /dev/shm', () => {
    assert.equal(parseEndpoint('rdma+shm://127.0.0.1:70000'), undefined);
    assert.equal(parseEndpoint('rdma+shm://256.0.0.1:20837'), undefined);
    assert.equal(parseListenEndpoint('rdma+shm://1.2.3:5'), undefined);
    assert.equal(shmRegionOf(Buffer.from('fi_shm://../etc/passwd\0')), undefined);
    assert.equal(shmRegionOf(Buffer.from('fi_shm://hyb-ep-127.0.0.1-1:0:0\0')), 'hyb-ep-127.0.0.1-1:0:0');
    assert.equal(isShmRegionOf('hyb-ep-127.0.0.1-20837:0:0', 'hyb-ep-127.0.0.1-2083'), false);
    assert.equal(isShmRegionOf('hyb-ep-127.0.0.1-20837:0:0', 'hyb-ep-127.0.0.1-20837'), true);
  });
});

/** A listener in its own process: echoes every message; prints its endpoint once listening. */
function spawnListener(endpoint: string): { child: ChildProcess; listening: Promise<string> } {
  const script = `
    const { RdmaTransport } = await import(${JSON.stringify(transportUrl)});
    const t = new RdmaTransport({ provider: 'shm', completion: 'thread', limits: ${JSON.stringify(small)} });
    t.onConnection((c) => c.onMessages((batch) => { for (const m of batch) c.send(m); }));
    console.log(await t.listen(${JSON.stringify(endpoint)}));
    process.on('SIGTERM', async () => { await t.close(); process.exit(0); });
    setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: 'pipe' });
  const listening = new Promise<string>((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout!.on('data', (d) => {
      out += String(d);
      if (out.includes('\n')) resolve(out.trim());
    });
    child.stderr!.on('data', (d) => {
      err += String(d);
    });
    child.once('exit', (code) => reject(new Error(`listener exited ${code}: ${err}`)));
  });
  return { child, listening };
}

async function kill(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill(signal);
  await exited;
}

async function roundTrip(conn: TransportConnection, text: string): Promise<string> {
  return new Promise((resolve) => {
    conn.onMessages((batch) => resolve(Buffer.from(batch[0]!).toString()));
    conn.send(Buffer.from(text));
  });
}

describe('rdma-native shm endpoints in host:port form', function () {
  this.timeout(60_000);

  before(function () {
    requireRdma(this);
  });

  it('lets two processes listen at different ports and a third dial each by its genesis string', async () => {
    const ports = [testPort(1), testPort(2)];
    const listeners = ports.map((p) => spawnListener(`rdma+shm://127.0.0.1:${p}`));
    const client = new RdmaTransport({ provider: 'shm', completion: 'thread', limits: small });
    try {
      const endpoints = await Promise.all(listeners.map((l) => l.listening));
      assert.deepEqual(
        endpoints,
        ports.map((p) => `rdma+shm://127.0.0.1:${p}`),
        'listen() reports the genesis form back',
      );
      for (const [i, e] of endpoints.entries()) {
        const conn = await client.connect(e);
        assert.equal(await roundTrip(conn, `hello ${i}`), `hello ${i}`);
        await conn.close();
      }
    } finally {
      await client.close();
      for (const l of listeners) await kill(l.child, 'SIGTERM');
      for (const p of ports) removeRegions(p);
    }
  });

  it('refuses a second live owner of a name without cutting the first one off', async () => {
    const endpoint = `rdma+shm://127.0.0.1:${testPort(3)}`;
    const first = spawnListener(endpoint);
    const second = new RdmaTransport({ provider: 'shm', completion: 'thread', limits: small });
    const client = new RdmaTransport({ provider: 'shm', completion: 'thread', limits: small });
    try {
      await first.listening;
      await assert.rejects(
        second.listen(endpoint),
        (e: unknown) =>
          e instanceof TransportError && e.code === 'connect-failed' && /in use/.test(e.message),
      );
      assert.equal(regionsOf(testPort(3)).length, 1, "the owner's region is still there");
      const conn = await client.connect(endpoint);
      assert.equal(await roundTrip(conn, 'still here'), 'still here');
      await conn.close();
    } finally {
      await client.close();
      await second.close();
      await kill(first.child, 'SIGTERM');
      removeRegions(testPort(3));
    }
  });

  it('fails a dial to a name nobody owns with connect-failed, at once', async () => {
    const client = new RdmaTransport({ provider: 'shm', completion: 'thread', limits: small });
    try {
      const started = performance.now();
      await assert.rejects(
        client.connect(`rdma+shm://127.0.0.1:${testPort(4)}`),
        (e: unknown) => e instanceof TransportError && e.code === 'connect-failed',
      );
      await assert.rejects(
        client.connect(formatEndpoint('shm', shmFabricName('hyb-1-000000000000:0:0'))),
        (e: unknown) => e instanceof TransportError && e.code === 'connect-failed',
      );
      // No HELLO went out to wait for: the region lookup answered.
      assert.ok(performance.now() - started < 2_000, 'no connect timeout was waited for');
      assert.equal(client.connectionCount, 0);
    } finally {
      await client.close();
    }
  });

  it('restarts a SIGKILLed owner under the same name despite its leftover region', async () => {
    const port = testPort(5);
    const endpoint = `rdma+shm://127.0.0.1:${port}`;
    const client = new RdmaTransport({ provider: 'shm', completion: 'thread', limits: small });
    let owner = spawnListener(endpoint);
    try {
      assert.equal(await owner.listening, endpoint);
      const conn = await client.connect(endpoint);
      assert.equal(await roundTrip(conn, 'before'), 'before');
      await kill(owner.child, 'SIGKILL');
      assert.equal(regionsOf(port).length, 1, 'SIGKILL left the region behind');
      await assert.rejects(
        client.connect(endpoint),
        (e: unknown) => e instanceof TransportError && e.code === 'connect-failed',
        'a dead owner is not dialed',
      );
      owner = spawnListener(endpoint);
      assert.equal(await owner.listening, endpoint, 'the successor listens under the same name');
      assert.equal(regionsOf(port).length, 1, 'it took the region over');
      const again = await client.connect(endpoint);
      assert.equal(await roundTrip(again, 'after'), 'after');
      await again.close();
      await conn.close();
    } finally {
      await client.close();
      await kill(owner.child, 'SIGTERM');
      removeRegions(port);
      assert.equal(existsSync(`/dev/shm/${shmNodeName('127.0.0.1', port)}:0:0`), false);
    }
  });
});
