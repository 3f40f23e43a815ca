// Three validators in this process (real LevelDB on disk, real TCP replica channels). A
// peer's block signature that arrives before this validator's own block at that height waits
// unverified until the block is durable (node/validator.ts onBlockSig); it then joins the
// commit certificate only if it signs the same block hash and verifies.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { blockHash, certifies, signCommit } from '../../ledger/block.js';
import { fromHex } from '../../ledger/codec/binary.js';
import { txHashWithHex } from '../../ledger/tx.js';
import type { RunningValidator } from '../../node/start.js';
import { decodeWire, encodeWire } from '../../node/wire.js';
import { submit, transfer, waitFor } from '../helpers/client.js';
import { type InProcessNetwork, metricValue, startInProcessNetwork } from '../helpers/in-process-network.js';

const CHAIN_ID = 'block-sigs-test';
const WIRE_LIMITS = { consensusBytesMax: 64 << 20, blockBytesMax: 64 << 20 };

describe('node/validator: block signatures and commit certificates', function () {
  this.timeout(90_000);
  let dir: string;
  let network: InProcessNetwork | null = null;
  /** The validators of `network`, all running (every test keeps them up). */
  let running: RunningValidator[] = [];

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'hybster-blocksigs-'));
  });
  afterEach(async () => {
    await network?.stopAll();
    network = null;
    running = [];
    rmSync(dir, { recursive: true, force: true });
  });

  /** Three validators in this process, connected (see test/helpers/in-process-network.ts). */
  async function startThree() {
    const nw = await startInProcessNetwork({ dir, chainId: CHAIN_ID });
    network = nw;
    running = nw.running.map((_, i) => nw.at(i));
    return nw;
  }

  it('keeps a signature of another block hash, sent before the block, out of the certificate', async () => {
    const { logs, keys, secretKeys, account } = await startThree();
    const f = 1;

    // At the leader, peer P's own signatures never arrive; in their place P "signs", ahead of
    // each of the next heights, a hash that is not the block's (validly, with P's key).
    const target = running[0]!.validator.status().leader;
    const p = (target + 1) % 3;
    const q = (target + 2) % 3;
    const val = running[target]!.validator;
    const original = val.onReplicaMessages.bind(val);
    val.onReplicaMessages = (from, batch) => {
      const kept = batch.filter((bytes) => {
        if (from !== p) return true;
        const w = decodeWire(bytes, WIRE_LIMITS);
        return !(w.ok && w.value.type === 'block-sig');
      });
      if (kept.length > 0) original(from, kept);
    };
    const tip = val.status().height;
    const wrongHash = new Uint8Array(32).fill(0xab);
    for (let h = tip + 1n; h <= tip + 8n; h++) {
      const sig = signCommit(h, wrongHash, p, secretKeys[p]!);
      original(p, [encodeWire({ type: 'block-sig', height: h, hash: wrongHash, signature: sig.signature })]);
    }

    const from = account(q);
    const r = await submit(
      running[target]!.apiUrl as string,
      transfer(CHAIN_ID, from, new Uint8Array(32).fill(3), 1n).hex,
      'commit',
      20_000,
    );
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const height = BigInt((r.body.location as { height: number }).height);
    assert.ok(height <= tip + 8n, `the tx's block ${height} is past the forged heights`);

    const block = await val.store.getBlock(height);
    assert.ok(block !== null);
    const hash = blockHash(block.header);
    await waitFor(
      async () => (await val.store.getCommitCertificate(height)) !== null,
      30_000,
      `the leader's certificate for block ${height}`,
    );
    const cert = await val.store.getCommitCertificate(height);
    assert.ok(cert !== null);
    assert.ok(certifies(cert, height, hash, keys, f), 'the certificate does not certify the block');
    assert.deepEqual(
      cert.signatures.map((s) => s.validator),
      [target, q].sort((a, b) => a - b),
      'the certificate holds the leader and the peer whose signature arrived',
    );
    const flagged = logs.filter(
      (l) =>
        l.i === target &&
        l.line.msg === 'validator signed a different block hash' &&
        l.line.validator === p &&
        BigInt(l.line.height as number) === height,
    );
    assert.equal(flagged.length, 1, 'the leader reports the signature of another hash once');

    // Every validator's certificate of that block certifies it.
    for (const v of running) {
      await waitFor(
        async () => (await v.validator.store.getCommitCertificate(height)) !== null,
        30_000,
        `validator ${v.validator.selfId}'s certificate for block ${height}`,
      );
      const c = await v.validator.store.getCommitCertificate(height);
      assert.ok(c !== null && certifies(c, height, hash, keys, f));
    }
  });

  it("verifies f peers' signatures per block, and each block's certificate certifies it", async () => {
    const { keys, account } = await startThree();
    const f = 1;
    const from = account(1);
    let height = 0n;
    // One tx at a time, to each validator in turn: the leader gets its peers' signatures
    // before its own block is durable, a follower mostly after.
    for (let k = 0; k < 6; k++) {
      const api = running[k % 3]!.apiUrl as string;
      const r = await submit(
        api,
        transfer(CHAIN_ID, from, new Uint8Array(32).fill(3), 1n).hex,
        'commit',
        20_000,
      );
      assert.equal(r.status, 200, JSON.stringify(r.body));
      height = BigInt((r.body.location as { height: number }).height);
    }
    const tip = height;
    for (const v of running)
      await waitFor(
        async () => (await v.validator.store.getCommitCertificate(tip)) !== null,
        30_000,
        `validator ${v.validator.selfId}'s certificate for block ${tip}`,
      );
    for (const v of running) {
      for (let h = 1n; h <= tip; h++) {
        const block = await v.validator.store.getBlock(h);
        const c = await v.validator.store.getCommitCertificate(h);
        assert.ok(
          block !== null && c !== null,
          `validator ${v.validator.selfId} lacks block or certificate ${h}`,
        );
        assert.ok(certifies(c, h, blockHash(block.header), keys, f), `certificate ${h} does not certify`);
      }
      // Every block was certified while these validators ran. Whether a peer's signature came
      // before this validator's own block or after, a certificate needs f of them per block.
      const metric = v.validator.metrics.getSingleMetric('hybster_block_signatures_verified_total');
      assert.ok(metric !== undefined);
      const verified = (await metric.get()).values[0]?.value ?? 0;
      const blocks = Number(v.validator.store.latestHeight());
      assert.ok(verified >= 1, `validator ${v.validator.selfId} verified no block signature`);
      assert.ok(
        verified <= f * blocks,
        `validator ${v.validator.selfId} verified ${verified} signatures for ${blocks} blocks`,
      );
    }
  });

  it("drops a peer's later signatures at a height once one of its signatures there was refused, unverified", async () => {
    const { logs, keys, secretKeys, account } = await startThree();
    const target = running[0]!.validator.status().leader;
    const p = (target + 1) % 3;
    const q = (target + 2) % 3;
    const t = running[target]!;
    const val = t.validator;

    // The target gets no peer's block signature on its own: they are held here, so no
    // certificate forms before the test sends what it wants.
    const held: { from: number; bytes: Uint8Array }[] = [];
    const original = val.onReplicaMessages.bind(val);
    val.onReplicaMessages = (from, batch) => {
      const kept = batch.filter((bytes) => {
        const w = decodeWire(bytes, WIRE_LIMITS);
        if (!(w.ok && w.value.type === 'block-sig')) return true;
        held.push({ from, bytes });
        return false;
      });
      if (kept.length > 0) original(from, kept);
    };

    const from = account(q);
    const tx = transfer(CHAIN_ID, from, new Uint8Array(32).fill(3), 1n);
    const r = await submit(t.apiUrl as string, tx.hex, 'async');
    assert.equal(r.status, 202, JSON.stringify(r.body));
    const { hash: txHash } = txHashWithHex(fromHex(tx.hex));
    let height = 0n;
    await waitFor(
      async () => {
        height = (await val.store.getTx(txHash))?.height ?? 0n;
        return height > 0n;
      },
      20_000,
      'the tx in a block at the target',
    );
    // hybster_height is set in the same synchronous step that makes the block's hash this
    // validator's own (afterBlock): from then on a peer's signature is checked at once.
    await waitFor(
      async () => (await metricValue(t, 'hybster_height')) >= Number(height),
      20_000,
      'afterBlock',
    );
    const block = await val.store.getBlock(height);
    assert.ok(block !== null);
    const hash = blockHash(block.header);
    const secretOf = (i: number): Uint8Array => secretKeys[i]!;
    const sigWire = (signature: Uint8Array): Uint8Array =>
      encodeWire({ type: 'block-sig', height, hash, signature });

    // p signs the right hash with signatures that do not verify (its signature of the next
    // height): the first costs one verification and is refused, the other 19 cost none.
    const before = await metricValue(t, 'hybster_block_signatures_verified_total');
    const wrong = signCommit(height + 1n, hash, p, secretOf(p)).signature;
    for (let k = 0; k < 20; k++) original(p, [sigWire(wrong)]);
    assert.equal(
      (await metricValue(t, 'hybster_block_signatures_verified_total')) - before,
      1,
      'signatures after a refused one were verified',
    );
    const refusedLogs = logs.filter(
      (l) => l.i === target && l.line.msg === 'bad block signature' && l.line.from === p,
    );
    assert.equal(refusedLogs.length, 1, 'each dropped signature was logged');
    // Even p's real signature is dropped there now: the certificate waits for q's.
    original(p, [sigWire(signCommit(height, hash, p, secretOf(p)).signature)]);
    assert.equal((await metricValue(t, 'hybster_block_signatures_verified_total')) - before, 1);
    assert.equal(await val.store.getCommitCertificate(height), null, 'a certificate formed without q');

    original(q, [sigWire(signCommit(height, hash, q, secretOf(q)).signature)]);
    await waitFor(
      async () => (await val.store.getCommitCertificate(height)) !== null,
      10_000,
      'the certificate from q',
    );
    const cert = await val.store.getCommitCertificate(height);
    assert.ok(cert !== null && certifies(cert, height, hash, keys, 1), 'the certificate does not certify');
    assert.deepEqual(
      cert.signatures.map((s) => s.validator),
      [target, q].sort((a, b) => a - b),
    );
    assert.ok(held.length > 0, 'no peer signature was held back');
  });
});
