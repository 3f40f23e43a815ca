// The API shows whether each commit certificate verifies. A certificate this node formed
// (its own signature and peers' ones it checked) is put into the store as verified, and the
// API answers for it without an Ed25519 verification; one read back from disk after a
// restart was checked by no one in this process and is verified, once.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { CertVerdicts } from '../../api/cert-verdicts.js';
import { generateTestnet } from '../../genesis/generate.js';
import type { CommitCertificate } from '../../ledger/block.js';
import { fromHex } from '../../ledger/codec/binary.js';
import { type RunningValidator, startValidator } from '../../node/start.js';
import { testCertificate, testValidatorPublicKeys } from '../helpers/certs.js';
import { type Account, getJson, metric, submit, transfer, waitFor } from '../helpers/client.js';
import { randomBasePort } from '../helpers/in-process-network.js';

const publicKeys = testValidatorPublicKeys;
const certFor = testCertificate;

describe('CertVerdicts with certificates trusted by the node', () => {
  it('answers a trusted certificate without verifying it, and still refuses every other bad one', () => {
    const good = certFor(5n, [0, 1]);
    const forged: CommitCertificate = {
      ...good,
      signatures: good.signatures.map((s, i) => (i === 0 ? { ...s, signature: new Uint8Array(64) } : s)),
    };
    let onVerify = 0;
    const v = new CertVerdicts(16, publicKeys, 1, {
      trusted: (c) => c === good,
      onVerify: () => onVerify++,
    });
    assert.equal(v.verify(good), true);
    assert.equal(v.verifications, 0, 'the trusted certificate is not verified');
    assert.equal(v.verify(forged), false, 'a forged copy is not the trusted object');
    assert.equal(v.verify(certFor(6n, [2])), false, 'one signature of the two needed');
    assert.equal(v.verify({ ...good }), true, 'an equal copy is verified on its own');
    assert.equal(v.verify(forged), false);
    assert.deepEqual([v.verifications, onVerify], [3, 3], 'each untrusted certificate verified once');
  });
});

describe('REST API: commit certificates of a running validator', function () {
  this.timeout(90_000);
  const CHAIN_ID = 'cert-trust-test';
  let dir: string;
  const running: RunningValidator[] = [];
  const quiet = () => new Writable({ write: (_c, _e, cb) => cb() });

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'hybster-cert-trust-'));
  });
  afterEach(async () => {
    for (const r of running) await r.stop();
    running.length = 0;
    rmSync(dir, { recursive: true, force: true });
  });

  it('shows the certificates its node formed as verified without verifying them, and verifies each one read from disk after a restart once', async () => {
    const basePort = randomBasePort();
    const net = await generateTestnet({ validators: 3, outDir: dir, chainId: CHAIN_ID, basePort });
    const flags = { 'api.port': '0', 'p2p.enabled': 'false', 'log.level': 'warn' };
    for (let i = 0; i < 3; i++)
      running.push(await startValidator({ home: net.nodes[i]!.home, flags, logDestination: quiet() }));
    await waitFor(
      async () => running.every((r) => r.validator.status().peers.every((p) => p.connected)),
      30_000,
      'all channels up',
    );
    const key = JSON.parse(readFileSync(net.nodes[1]!.keyPath, 'utf8')) as {
      publicKey: string;
      secretKey: string;
    };
    const from: Account = { address: fromHex(key.publicKey), secretKey: fromHex(key.secretKey), nonce: 1n };
    const v0 = running[0]!;
    const api = v0.apiUrl as string;
    const txs: string[] = [];
    let tip = 0;
    for (let k = 0; k < 3; k++) {
      const tx = transfer(CHAIN_ID, from, new Uint8Array(32).fill(3), 1n).hex;
      const r = await submit(api, tx, 'commit', 20_000);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal((r.body.commit as { verified: boolean } | null)?.verified, true, 'a verified certificate');
      txs.push(tx);
      tip = (r.body.location as { height: number }).height;
    }
    await waitFor(
      async () => v0.validator.store.commitCertificateSync(BigInt(tip)) !== null,
      30_000,
      `the certificate of block ${tip}`,
    );
    // A tx submitted again is answered with its location and its block's certificate, read
    // from the store on every answer (no rendered-answer cache in between).
    const resubmitted = async (url: string) => {
      for (const tx of txs) {
        const r = await submit(url, tx, 'async');
        assert.equal(r.status, 200, JSON.stringify(r.body));
        assert.equal(
          (r.body.commit as { verified: boolean } | null)?.verified,
          true,
          'a verified certificate',
        );
      }
    };
    const blocks = async () => {
      for (let h = 1; h <= tip; h++) {
        const b = (await getJson(`${api}/v1/blocks/${h}`)) as {
          commit: { verified: boolean } | null;
          parentCommit: { verified: boolean } | null;
        };
        assert.equal(b.commit?.verified, true, `block ${h}'s certificate`);
        if (b.parentCommit !== null) assert.equal(b.parentCommit.verified, true, `block ${h}'s parent's`);
      }
      await resubmitted(api);
    };
    await blocks();
    assert.ok(
      ((await metric(api, 'hybster_block_signatures_verified_total')) ?? 0) >= 1,
      'the node verified its peers signatures',
    );
    assert.equal(await metric(api, 'api_certificate_verifications_total'), 0, 'the API verified none');

    for (const r of running) await r.stop();
    running.length = 0;
    // Alone: no quorum, but the API serves what is on disk.
    running.push(await startValidator({ home: net.nodes[0]!.home, flags, logDestination: quiet() }));
    const again = running[0]!.apiUrl as string;
    const blocksAgain = async () => {
      for (let h = 1; h <= tip; h++) {
        const b = (await getJson(`${again}/v1/blocks/${h}`)) as { commit: { verified: boolean } | null };
        assert.equal(b.commit?.verified, true, `block ${h}'s certificate after the restart`);
      }
      await resubmitted(again);
    };
    await blocksAgain();
    // Block h's certificate is also block h+1's parentCommit: one verification per height.
    assert.equal(await metric(again, 'api_certificate_verifications_total'), tip, 'each certificate once');
    await blocksAgain();
    assert.equal(await metric(again, 'api_certificate_verifications_total'), tip, 'and never again');
  });
});
