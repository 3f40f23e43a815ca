// Three validators in this process (real LevelDB on disk, real TCP replica channels, the real
// API). One validator's stored commit certificates are deleted from its LevelDB while it is
// stopped, as a crash inside the certificate's write window would leave it; after restart it
// gets them back from its peers (certs-request / certs-response), checks them against its own
// block hashes, and its API serves them. The first peer to answer is made to answer with
// forged certificates: those are refused, and the heights are asked of the other peer.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { ClassicLevel } from 'classic-level';
import { generateTestnet } from '../../genesis/generate.js';
import {
  blockHash,
  type CommitCertificate,
  certifies,
  decodeCommitCertificate,
  encodeCommitCertificate,
  signCommit,
} from '../../ledger/block.js';
import { fromHex } from '../../ledger/codec/binary.js';
import { loadChainSpec } from '../../node/chain-spec.js';
import { type RunningValidator, startValidator } from '../../node/start.js';
import { decodeWire, encodeWire } from '../../node/wire.js';
import { type Account, submit, transfer, waitFor } from '../helpers/client.js';

const CHAIN_ID = 'cert-repair-test';
const WIRE_LIMITS = { consensusBytesMax: 64 << 20, blockBytesMax: 64 << 20 };
/** The store's key of a commit certificate: 'C' and the height as a big-endian u64 (ledger/store.ts). */
const certKey = (height: bigint): Buffer => {
  const b = Buffer.alloc(9);
  b[0] = 0x43;
  b.writeBigUInt64BE(height, 1);
  return b;
};

async function metricValue(v: RunningValidator, name: string): Promise<number> {
  const m = v.validator.metrics.getSingleMetric(name);
  assert.ok(m !== undefined, `no metric ${name}`);
  return (await m.get()).values[0]?.value ?? 0;
}

describe('node/validator: repair of missing commit certificates', function () {
  this.timeout(90_000);
  let dir: string;
  const running: (RunningValidator | null)[] = [];

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'hybster-certrepair-'));
  });
  afterEach(async () => {
    for (const r of running) await r?.stop();
    running.length = 0;
    rmSync(dir, { recursive: true, force: true });
  });

  /** Three validators in this process, connected; their JSON log lines, keys, and a funded account. */
  async function startThree() {
    const basePort = 20_000 + Math.floor(Math.random() * 20_000);
    const net = await generateTestnet({ validators: 3, outDir: dir, chainId: CHAIN_ID, basePort });
    const flags = { 'api.port': '0', 'p2p.enabled': 'false', 'log.level': 'warn' };
    const logs: { i: number; line: Record<string, unknown> }[] = [];
    const sinkFor = (i: number): Writable =>
      new Writable({
        write(chunk: Buffer, _e, cb) {
          for (const l of chunk.toString('utf8').split('\n'))
            if (l.trim() !== '') logs.push({ i, line: JSON.parse(l) as Record<string, unknown> });
          cb();
        },
      });
    const start = async (i: number) =>
      startValidator({ home: net.nodes[i]!.home, flags, logDestination: sinkFor(i) });
    for (let i = 0; i < 3; i++) running.push(await start(i));
    await waitFor(
      async () => running.every((r) => r!.validator.status().peers.every((p) => p.connected)),
      30_000,
      'all channels up',
    );
    const spec = loadChainSpec(readFileSync(net.nodes[0]!.genesisPath, 'utf8'), 'genesis');
    const secretKeys = net.nodes.map((n) =>
      fromHex((JSON.parse(readFileSync(n.keyPath, 'utf8')) as { secretKey: string }).secretKey),
    );
    const key = JSON.parse(readFileSync(net.nodes[1]!.keyPath, 'utf8')) as { publicKey: string };
    const from: Account = { address: fromHex(key.publicKey), secretKey: secretKeys[1]!, nonce: 1n };
    /** Commits `count` txs, one at a time, through validator 0; their block heights. */
    const commitTxs = async (count: number): Promise<bigint[]> => {
      const heights: bigint[] = [];
      for (let k = 0; k < count; k++) {
        const r = await submit(
          running[0]!.apiUrl as string,
          transfer(CHAIN_ID, from, new Uint8Array(32).fill(5), 1n).hex,
          'commit',
          20_000,
        );
        assert.equal(r.status, 200, JSON.stringify(r.body));
        heights.push(BigInt((r.body.location as { height: number }).height));
      }
      return heights;
    };
    return { net, logs, start, keys: spec.validators.map((v) => v.publicKey), secretKeys, commitTxs };
  }

  it('gets back certificates deleted while it was stopped, refusing a peer that forges them', async () => {
    const { net, logs, start, keys, secretKeys, commitTxs } = await startThree();
    const f = 1;
    const heights = await commitTxs(3);
    const target = 2;
    const tip = heights[heights.length - 1] as bigint;
    await waitFor(
      async () => (await running[target]!.validator.store.getCommitCertificate(tip)) !== null,
      30_000,
      `validator ${target}'s certificate of its tip ${tip}`,
    );
    // A height below the tip and the tip itself (on this quiet chain only repair brings it back).
    const lost = [heights[0] as bigint, tip];
    const hashes = new Map<bigint, Uint8Array>();
    for (const h of lost) {
      const b = await running[target]!.validator.store.getBlock(h);
      assert.ok(b !== null);
      hashes.set(h, blockHash(b.header));
    }

    await running[target]!.stop();
    running[target] = null;
    const db = new ClassicLevel<Buffer, Buffer>(join(net.nodes[target]!.home, 'data'), {
      keyEncoding: 'buffer',
      valueEncoding: 'buffer',
    });
    await db.open();
    for (const h of lost) {
      assert.ok((await db.get(certKey(h))) !== undefined, `certificate ${h} was on disk`);
      await db.del(certKey(h));
    }
    await db.close();

    // Restarted, with the first peer that answers a certs-request answering forged certificates:
    // the real ones' heights, signed by two genesis validators over another block hash.
    const v = await start(target);
    running[target] = v;
    for (const h of lost) assert.equal(await v.validator.store.getCommitCertificate(h), null, `${h} is lost`);
    let forger: number | null = null;
    const original = v.validator.onReplicaMessages.bind(v.validator);
    v.validator.onReplicaMessages = (peer, batch) => {
      const out = batch.map((bytes) => {
        const w = decodeWire(bytes, WIRE_LIMITS);
        if (!w.ok || w.value.type !== 'certs-response') return bytes;
        forger ??= peer;
        if (peer !== forger) return bytes;
        const certs = w.value.certs.map((raw) => {
          const real = decodeCommitCertificate(raw);
          assert.ok(real.ok);
          const wrong = new Uint8Array(32).fill(0xee);
          const forged: CommitCertificate = {
            height: real.value.height,
            blockHash: wrong,
            signatures: [0, 1].map((i) => signCommit(real.value.height, wrong, i, secretKeys[i]!)),
          };
          return encodeCommitCertificate(forged);
        });
        return encodeWire({ type: 'certs-response', requestId: w.value.requestId, certs });
      });
      original(peer, out);
    };

    for (const h of lost) {
      await waitFor(
        async () => (await v.validator.store.getCommitCertificate(h)) !== null,
        30_000,
        `the repaired certificate of block ${h}`,
      );
      const c = await v.validator.store.getCommitCertificate(h);
      assert.ok(
        c !== null && certifies(c, h, hashes.get(h)!, keys, f),
        `the certificate of ${h} certifies our block`,
      );
      const res = await fetch(`${v.apiUrl}/v1/blocks/${h}`);
      assert.equal(res.status, 200);
      const body = (await res.json()) as {
        commit: { height: number; blockHash: string; verified: boolean } | null;
      };
      assert.ok(body.commit !== null, `the API serves block ${h} with its certificate`);
      assert.equal(body.commit.height, Number(h));
      assert.equal(body.commit.blockHash, Buffer.from(hashes.get(h)!).toString('hex'));
      assert.equal(body.commit.verified, true);
    }
    assert.ok(forger !== null, 'a peer answered a certs-request');
    assert.equal(await metricValue(v, 'hybster_certificates_repaired_total'), lost.length);
    assert.ok(
      (await metricValue(v, 'hybster_certificates_refused_total')) >= 1,
      'the forged ones were refused',
    );
    const warned = logs.filter(
      (l) =>
        l.i === target &&
        l.line.from === forger &&
        l.line.msg === 'certificate repair: peer sent certificates that do not certify our blocks; dropped',
    );
    assert.ok(warned.length >= 1, 'the forging peer is logged');
    assert.ok(
      !logs.some((l) => l.i === target && l.line.level !== undefined && Number(l.line.level) >= 60),
      'no fatal error',
    );
  });

  it('gets certificates it never saw form, without a restart, while its peers keep committing', async () => {
    const { keys, commitTxs } = await startThree();
    const f = 1;
    // Validator 2 hears no peer's block signature from here on (as if not connected when they
    // were sent): its certificates cannot form from signatures, only come by repair.
    const target = 2;
    const v = running[target]!.validator;
    const original = v.onReplicaMessages.bind(v);
    v.onReplicaMessages = (peer, batch) => {
      const kept = batch.filter((bytes) => {
        const w = decodeWire(bytes, WIRE_LIMITS);
        return !(w.ok && w.value.type === 'block-sig');
      });
      if (kept.length > 0) original(peer, kept);
    };
    const heights = await commitTxs(6);
    for (const h of heights) {
      await waitFor(
        async () => (await v.store.getCommitCertificate(h)) !== null,
        30_000,
        `validator ${target}'s repaired certificate of block ${h}`,
      );
      const block = await v.store.getBlock(h);
      assert.ok(block !== null);
      const c = await v.store.getCommitCertificate(h);
      assert.ok(c !== null && certifies(c, h, blockHash(block.header), keys, f));
      assert.ok(
        c.signatures.some((s) => s.validator !== target),
        'the certificate holds a peer signature it never received as a block-sig',
      );
    }
    assert.ok((await metricValue(running[target]!, 'hybster_certificates_repaired_total')) >= heights.length);
    assert.equal(await metricValue(running[target]!, 'hybster_certificates_refused_total'), 0);
  });
});
