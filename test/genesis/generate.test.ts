import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { keys as libp2pKeys } from '@libp2p/crypto';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { generateTestnet, TestnetError } from '../../genesis/generate.js';
import { genesisHash, parseGenesisText } from '../../genesis/genesis.js';
import { toHex } from '../../ledger/codec/binary.js';
import { keyPairFromSeed } from '../../ledger/keys.js';
import { LedgerStore, LedgerStoreError } from '../../ledger/store.js';
import { tempDir } from '../ledger/helpers.js';

describe('genesis/generate', () => {
  it('writes keys (mode 0600), configs and one shared valid genesis for n = 2f + 1 validators', async () => {
    const t = tempDir('testnet');
    try {
      const net = await generateTestnet({
        validators: 3,
        outDir: t.dir,
        chainId: 'gen-test',
        basePort: 17000,
      });
      assert.equal(net.nodes.length, 3);
      assert.equal(net.genesis.consensus.f, 1);
      const texts = net.nodes.map((n) => readFileSync(n.genesisPath, 'utf8'));
      assert.ok(texts.every((x) => x === texts[0]));
      for (const n of net.nodes) {
        const g = parseGenesisText(readFileSync(n.genesisPath, 'utf8'));
        assert.ok(g.ok);
        assert.equal(toHex(genesisHash(g.value)), net.genesisHashHex);
        assert.equal(statSync(n.keyPath).mode & 0o777, 0o600);
        assert.equal(statSync(n.libp2pKeyPath).mode & 0o777, 0o600);
        const key = JSON.parse(readFileSync(n.keyPath, 'utf8')) as { secretKey: string; publicKey: string };
        const kp = keyPairFromSeed(Buffer.from(key.secretKey, 'hex'));
        assert.equal(toHex(kp.publicKey), n.publicKeyHex);
        assert.equal(g.value.validators[n.index]!.peerId, n.peerId);
        // The libp2p key file is the same identity.
        const lp = libp2pKeys.privateKeyFromProtobuf(
          Buffer.from(readFileSync(n.libp2pKeyPath, 'utf8'), 'base64'),
        );
        assert.equal(peerIdFromPrivateKey(lp).toString(), n.peerId);
        const cfg = JSON.parse(readFileSync(n.configPath, 'utf8'));
        assert.equal(cfg.api.port, 17000 + n.index);
        assert.equal(cfg.transport.listen, `127.0.0.1:${19000 + n.index}`);
        assert.equal(cfg.p2p.bootstrap.length, 2);
      }
    } finally {
      t.cleanup();
    }
  });

  it('refuses an even number of validators', async () => {
    await assert.rejects(generateTestnet({ validators: 4, outDir: '/nonexistent' }), TestnetError);
  });

  it('gives different networks different genesis hashes, so a data dir cannot be reused across them', async () => {
    const t = tempDir('testnet2');
    try {
      const one = await generateTestnet({ validators: 1, outDir: join(t.dir, 'a') });
      const two = await generateTestnet({ validators: 1, outDir: join(t.dir, 'b') });
      assert.notEqual(one.genesisHashHex, two.genesisHashHex);
      const dir = join(t.dir, 'data');
      const s = await LedgerStore.open(dir, {
        genesisHash: genesisHash(one.genesis),
        genesisAccounts: one.genesis.accounts,
      });
      await s.close();
      await assert.rejects(
        LedgerStore.open(dir, { genesisHash: genesisHash(two.genesis) }),
        (e: unknown) => e instanceof LedgerStoreError && e.code === 'genesis-mismatch',
      );
    } finally {
      t.cleanup();
    }
  });
});
