import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ed25519 } from '@noble/curves/ed25519.js';
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { fromHex, toHex } from '../../ledger/codec/binary.js';
import { keyPairFromSeed, sign, verify } from '../../ledger/keys.js';
import { decodeTx, encodeTx, signingBytes, txFromJson, txHash } from '../../ledger/tx.js';
import { repoRoot } from './helpers.js';
import { buildVectors } from './make-vectors.js';

interface Vector {
  name: string;
  seed: string;
  publicKey: string;
  tx: unknown;
  signingBytes: string;
  signature: string;
  encoded: string;
  hash: string;
}

const file = JSON.parse(readFileSync(join(repoRoot(), 'test', 'vectors', 'tx.json'), 'utf8')) as {
  vectors: Vector[];
};

describe('ledger/tx test vectors (test/vectors/tx.json)', () => {
  it('covers every tx type', () => {
    assert.deepEqual(
      file.vectors.map((v) => v.name),
      ['transfer', 'kv.put', 'kv.delete', 'kv.cas'],
    );
  });

  for (const v of file.vectors) {
    it(`reproduces the ${v.name} vector: key, signing bytes, signature, encoding and hash`, () => {
      const kp = keyPairFromSeed(fromHex(v.seed));
      assert.equal(toHex(kp.publicKey), v.publicKey);
      const tx = txFromJson(v.tx);
      assert.ok(tx.ok);
      assert.equal(toHex(signingBytes(tx.value)), v.signingBytes);
      assert.equal(toHex(sign(fromHex(v.signingBytes), kp.secretKey)), v.signature);
      assert.ok(verify(fromHex(v.signature), fromHex(v.signingBytes), kp.publicKey));
      assert.equal(toHex(encodeTx(tx.value)), v.encoded);
      assert.equal(toHex(txHash(fromHex(v.encoded))), v.hash);
      // An independent implementation (noble, pure JS) agrees: plain RFC 8032 Ed25519 and SHA-256.
      assert.equal(toHex(ed25519.getPublicKey(fromHex(v.seed))), v.publicKey);
      assert.equal(toHex(ed25519.sign(fromHex(v.signingBytes), fromHex(v.seed))), v.signature);
      assert.equal(toHex(nobleSha256(fromHex(v.encoded))), v.hash);
      const dec = decodeTx(fromHex(v.encoded));
      assert.ok(dec.ok);
      assert.deepEqual(dec.value, tx.value);
    });
  }

  it('matches what the generator produces today', () => {
    assert.deepEqual(JSON.parse(JSON.stringify(buildVectors())), file);
  });
});
