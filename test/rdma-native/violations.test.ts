// A peer that can write into our registered memory and breaks the rules, from a real
// second process (byzantine-peer.ts): the victim closes that peer's connection, reports
// the violation, deregisters the peer's ring, and keeps serving its other peers.
import assert from 'node:assert/strict';
import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { generateKeyPair } from '../../ledger/keys.js';
import { type SecureChannelError, secureChannel } from '../../node/transport/secure-channel.js';
import type { TransportConnection, TransportError } from '../../node/transport/types.js';
import { RdmaTransport, type RdmaViolation, rmaSafe } from '../../rdma-native/transport.js';
import type { Attack, ByzantineConfig, ByzantineReport } from './byzantine-peer.js';
import { requireRdma } from './require-rdma.js';

const PEER_SCRIPT = fileURLToPath(new URL('./byzantine-peer.js', import.meta.url));

function spawnByzantine(cfg: ByzantineConfig): { child: ChildProcess; done: Promise<ByzantineReport> } {
  const child = fork(PEER_SCRIPT, [JSON.stringify(cfg)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const done = new Promise<ByzantineReport>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('byzantine peer did not report')), 20_000);
    child.on('message', (m) => {
      clearTimeout(timer);
      const r = m as ByzantineReport;
      if (r.type === 'error') reject(new Error(r.message));
      else resolve(r);
    });
  });
  return { child, done };
}

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

function echoOnce(conn: TransportConnection, text: string): Promise<string> {
  return new Promise((resolve) => {
    conn.onMessages((batch) => resolve(Buffer.from(batch[0]!).toString()));
    conn.send(Buffer.from(text));
  });
}

const RMA_ATTACKS: [Attack, string, RegExp][] = [
  ['short', 'announces a chunk shorter than its header', /announced a 2-byte chunk/],
  ['length', 'announces a chunk longer than the ring allows', /announced a 16777215-byte chunk/],
  ['credit', 'returns credit it was never owed', /not owed/],
  ['frame', 'writes a frame header above messageBytesMax', /limit 1048576/],
];

for (const provider of ['tcp;ofi_rxm', 'shm'] as const) {
  describe(`rdma-native (${provider}) against a Byzantine peer in another process`, function () {
    this.timeout(30_000);
    const listen = provider === 'shm' ? 'rdma+shm://' : 'rdma+tcp;ofi_rxm://127.0.0.1:0';
    // Over tcp;ofi_rxm the victim grants no ring at all (see rmaSafe): the rma attacks need one.
    const rma = rmaSafe(provider);
    let victim: RdmaTransport;
    let honest: RdmaTransport;
    let honestConn: TransportConnection;
    let endpoint: string;
    let violations: RdmaViolation[];
    let closes: (TransportError | undefined)[];
    const children: ChildProcess[] = [];

    // One victim and one honest peer for the whole sequence of attacks: each attack must
    // leave them exactly as it found them (one open connection, one ring, still echoing).
    before(async function () {
      requireRdma(this);
      victim = new RdmaTransport({
        provider,
        dataPath: 'rma',
        completion: 'thread',
        limits: { messageBytesMax: 1 << 20 },
        heartbeatMs: 200,
        peerTimeoutMs: 2_000,
      });
      victim.onViolation((v) => violations.push(v));
      victim.onConnection((conn) => {
        conn.onMessages((batch) => {
          for (const m of batch) conn.send(m);
        });
        conn.onClose((e) => closes.push(e));
      });
      endpoint = await victim.listen(listen);
      honest = new RdmaTransport({ provider, dataPath: 'rma', completion: 'busy-poll' });
      honestConn = await honest.connect(endpoint);
      assert.equal(await echoOnce(honestConn, 'before'), 'before');
    });

    beforeEach(() => {
      violations = [];
      closes = [];
    });

    afterEach(async () => {
      for (const c of children.splice(0)) c.kill('SIGKILL');
      await waitUntil(() => victim.connectionCount === 1).catch(() => {});
    });

    after(async () => {
      // Victim first, and the honest peer closes only once it saw the BYE: with shm, two
      // endpoints in one process share mappings, and sending to an in-process endpoint
      // that is already closed crashes inside libfabric (separate processes are safe).
      await victim?.close();
      await waitUntil(() => honest.connectionCount === 0).catch(() => {});
      await honest?.close();
    });

    const attack = async (cfg: Omit<ByzantineConfig, 'provider' | 'endpoint'>) => {
      const { child, done } = spawnByzantine({ provider, endpoint, ...cfg });
      children.push(child);
      const report = await done;
      await waitUntil(() => violations.length > 0);
      return report;
    };

    const assertStillServing = async () => {
      assert.equal(await echoOnce(honestConn, 'after'), 'after', 'the honest peer is still served');
      assert.equal(victim.connectionCount, 1, 'only the honest connection is left');
      assert.equal(victim.nativeStats()?.openRings, rma ? 1 : 0, "the attacker's ring was deregistered");
    };

    if (!rma) {
      it('refuses a peer that asks for the rma path, grants it no ring, and keeps serving the others', async () => {
        const refusedBefore = victim.stats.refusedRma;
        const { child, done } = spawnByzantine({ provider, endpoint, attack: 'short', dataPath: 'rma' });
        children.push(child);
        assert.deepEqual(await done, { type: 'refused' });
        assert.equal(victim.stats.refusedRma, refusedBefore + 1);
        await waitUntil(() => victim.connectionCount === 1);
        assert.equal(violations.length, 0);
        await assertStillServing();
      });
    }

    for (const [name, what, reason] of rma ? RMA_ATTACKS : []) {
      it(`closes the connection of a peer that ${what}, and keeps serving the others`, async () => {
        const report = await attack({ attack: name, dataPath: 'rma' });
        assert.equal(violations.length, 1, JSON.stringify(violations));
        assert.match(violations[0]!.reason, reason);
        await waitUntil(() => closes.length === 1);
        assert.ok(closes[0] && ['ring-violation', 'oversized'].includes(closes[0].code), String(closes[0]));
        assert.equal(report.type, 'done');
        await assertStillServing();
      });
    }

    if (rma)
      it("ignores remote writes whose ring token is not the writer's own, and keeps serving everyone", async () => {
        const { child, done } = spawnByzantine({ provider, endpoint, attack: 'foreign', dataPath: 'rma' });
        children.push(child);
        await done;
        await waitUntil(() => victim.stats.strayMessages >= 16);
        assert.equal(violations.length, 0, 'a write that names no ring of ours cannot be pinned on a peer');
        assert.equal(await echoOnce(honestConn, 'after'), 'after', 'the honest peer is still served');
        assert.equal(
          victim.connectionCount,
          2,
          'the honest and the attacking connection are both still open',
        );
      });

    if (rma)
      it('drops a write into a ring after deregistering it', async () => {
        const eventsBefore = victim.stats.events;
        const report = await attack({ attack: 'revoked-write', dataPath: 'rma' });
        assert.equal(report.type, 'done');
        await new Promise((r) => setTimeout(r, 200));
        assert.equal(
          violations.length,
          1,
          'only the first write was a violation: the late one reached nothing',
        );
        assert.equal(closes.length, 1);
        assert.ok(victim.stats.events > eventsBefore);
        await assertStillServing();
      });

    it('closes the connection of a peer that sends beyond its msg-path credits', async () => {
      await attack({ attack: 'flood', dataPath: 'msg' });
      assert.match(violations[0]!.reason, /beyond its credits/);
      assert.equal(await echoOnce(honestConn, 'after'), 'after');
      assert.equal(victim.connectionCount, 1);
    });

    it('ends a secure channel whose peer sends a frame with a wrong MAC, and keeps serving the others', async () => {
      const genesisHash = randomBytes(32);
      const keys = [generateKeyPair(), generateKeyPair()];
      const validators = keys.map((k, id) => ({ id, publicKey: k.publicKey }));
      const channelEnded = new Promise<{ error?: SecureChannelError; got: string[] }>((resolve) => {
        // Last test: it replaces the victim's echo handler.
        victim.onConnection((conn) => {
          void secureChannel(conn, {
            self: { id: 0, secretKey: keys[0]!.secretKey },
            validators,
            genesisHash,
            role: 'responder',
          }).then((ch) => {
            const got: string[] = [];
            ch.onMessages((b) => got.push(...b.map((m) => Buffer.from(m).toString())));
            ch.onClose((error) => resolve({ error, got }));
          });
        });
      });
      const { child, done } = spawnByzantine({
        provider,
        endpoint,
        attack: 'bad-mac',
        dataPath: 'rma',
        secretKeyHex: Buffer.from(keys[1]!.secretKey).toString('hex'),
        validators: validators.map((v) => ({
          id: v.id,
          publicKeyHex: Buffer.from(v.publicKey).toString('hex'),
        })),
        genesisHashHex: genesisHash.toString('hex'),
      });
      children.push(child);
      await done;
      const ended = await channelEnded;
      assert.equal(ended.error?.code, 'bad-mac');
      assert.deepEqual(ended.got, ['authentic'], 'the authentic frame before the forged one was delivered');
      assert.equal(await echoOnce(honestConn, 'after'), 'after');
    });
  });
}
