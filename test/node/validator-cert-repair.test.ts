// Three validators in this process (real LevelDB on disk, real TCP replica channels, the real
// API). One validator's stored commit certificates are deleted from its LevelDB while it is
// stopped, as a crash inside the certificate's write window would leave it; after restart it
// gets them back from its peers (certs-request / certs-response), checks them against its own
// block hashes, and its API serves them. The first peer to answer is made to answer with
// forged certificates: those are refused, and the heights are asked of the other peer.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import {
  blockHash,
  type CommitCertificate,
  certifies,
  decodeCommitCertificate,
  encodeCommitCertificate,
  signCommit,
} from '../../ledger/block.js';
import { decodeWire, encodeWire } from '../../node/wire.js';
import { submit, transfer, waitFor } from '../helpers/client.js';
import { type InProcessNetwork, metricValue, startInProcessNetwork } from '../helpers/in-process-network.js';

const CHAIN_ID = 'cert-repair-test';
const WIRE_LIMITS = { consensusBytesMax: 64 << 20, blockBytesMax: 64 << 20 };
/** The store's key of a commit certificate: 'C' and the height as a big-endian u64 (ledger/store.ts). */
const certKey = (height: bigint): Buffer => {
  const b = Buffer.alloc(9);
  b[0] = 0x43;
  b.writeBigUInt64BE(height, 1);
  return b;
};

describe('node/validator: repair of missing commit certificates', function () {
  this.timeout(90_000);
  let dir: string;
  let network: InProcessNetwork | null = null;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'hybster-certrepair-'));
  });
  afterEach(async () => {
    await network?.stopAll();
    network = null;
    rmSync(dir, { recursive: true, force: true });
  });

  /** Three validators in this process, connected, and a way to commit txs through validator 0. */
  async function startThree() {
    const nw = await startInProcessNetwork({ dir, chainId: CHAIN_ID });
    network = nw;
    const from = nw.account(1);
    /** Commits `count` txs, one at a time, through validator 0; their block heights. */
    const commitTxs = async (count: number): Promise<bigint[]> => {
      const heights: bigint[] = [];
      for (let k = 0; k < count; k++) {
        const r = await submit(
          nw.at(0).apiUrl as string,
          transfer(CHAIN_ID, from, new Uint8Array(32).fill(5), 1n).hex,
          'commit',
          20_000,
        );
        assert.equal(r.status, 200, JSON.stringify(r.body));
        heights.push(BigInt((r.body.location as { height: number }).height));
      }
      return heights;
    };
    return { nw, commitTxs };
  }

  it('gets back certificates deleted while it was stopped, refusing a peer that forges them', async () => {
    const { nw, commitTxs } = await startThree();
    const { net, logs, keys, secretKeys } = nw;
    const f = 1;
    const heights = await commitTxs(3);
    const target = 2;
    const tip = heights[heights.length - 1] as bigint;
    await waitFor(
      async () => (await nw.at(target).validator.store.getCommitCertificate(tip)) !== null,
      30_000,
      `validator ${target}'s certificate of its tip ${tip}`,
    );
    // A height below the tip and the tip itself (on this quiet chain only repair brings it back).
    const lost = [heights[0] as bigint, tip];
    const hashes = new Map<bigint, Uint8Array>();
    for (const h of lost) {
      const b = await nw.at(target).validator.store.getBlock(h);
      assert.ok(b !== null);
      hashes.set(h, blockHash(b.header));
    }

    await nw.stop(target);
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
    const v = await nw.start(target);
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
    const { nw, commitTxs } = await startThree();
    const { keys } = nw;
    const f = 1;
    // Validator 2 hears no peer's block signature from here on (as if not connected when they
    // were sent): its certificates cannot form from signatures, only come by repair.
    const target = 2;
    const v = nw.at(target).validator;
    const original = v.onReplicaMessages.bind(v);
    let sigsDropped = 0;
    v.onReplicaMessages = (peer, batch) => {
      const kept = batch.filter((bytes) => {
        const w = decodeWire(bytes, WIRE_LIMITS);
        const sig = w.ok && w.value.type === 'block-sig';
        if (sig) sigsDropped++;
        return !sig;
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
      assert.equal(c.signatures.length, f + 1, 'a repaired certificate holds f+1 signatures');
    }
    assert.ok(sigsDropped >= 1, "the filter kept peers' block signatures from validator 2");
    assert.ok((await metricValue(nw.at(target), 'hybster_certificates_repaired_total')) >= heights.length);
    assert.equal(await metricValue(nw.at(target), 'hybster_certificates_refused_total'), 0);
  });

  it('drops a certs-response nobody asked for as it arrives, without queueing it', async () => {
    const { nw } = await startThree();
    const v = nw.at(0).validator;
    const counter = v.metrics.getSingleMetric('hybster_transport_errors_total');
    assert.ok(counter !== undefined);
    const unrequested = async (): Promise<number> =>
      (await counter.get()).values.find((x) => x.labels.code === 'certs-response-unrequested')?.value ?? 0;
    const cert = encodeCommitCertificate({ height: 1n, blockHash: new Uint8Array(32), signatures: [] });
    const frame = encodeWire({ type: 'certs-response', requestId: 0x7fff_fff0, certs: [cert] });
    const before = await unrequested();
    for (let k = 0; k < 100; k++) v.onReplicaMessages(1, [frame]);
    // Read in the same turn: each was counted (and dropped) synchronously, none waits in a queue.
    const counted = counter.get();
    assert.equal(
      (await counted).values.find((x) => x.labels.code === 'certs-response-unrequested')?.value,
      before + 100,
    );
    assert.equal(await metricValue(nw.at(0), 'hybster_certificates_refused_total'), 0);
  });
});
