// Regenerates test/vectors/tx.json: `node dist/test/ledger/make-vectors.js`.
// Ed25519 signatures are deterministic, so the output is stable; vectors.test.ts checks
// the code against the committed file, so a format change shows up as a test failure.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { toHex } from '../../ledger/codec/binary.js';
import { keyPairFromSeed } from '../../ledger/keys.js';
import { encodeTx, signingBytes, signTx, type TxPayload, txHash, txToJson } from '../../ledger/tx.js';
import { repoRoot } from './helpers.js';

const seedOf = (b: number) => new Uint8Array(32).fill(b);
const enc = new TextEncoder();

export function buildVectors() {
  const bob = keyPairFromSeed(seedOf(0x22));
  const cases: { name: string; seed: Uint8Array; nonce: bigint; payload: TxPayload }[] = [
    {
      name: 'transfer',
      seed: seedOf(0x11),
      nonce: 1n,
      payload: { type: 'transfer', to: bob.publicKey, amount: 1_000_000n },
    },
    {
      name: 'kv.put',
      seed: seedOf(0x11),
      nonce: 2n,
      payload: { type: 'kv.put', key: enc.encode('config/leader'), value: enc.encode('node-1') },
    },
    {
      name: 'kv.delete',
      seed: seedOf(0x22),
      nonce: 1n,
      payload: { type: 'kv.delete', key: enc.encode('config/leader') },
    },
    {
      name: 'kv.cas',
      seed: seedOf(0x22),
      nonce: 18446744073709551615n,
      payload: {
        type: 'kv.cas',
        key: enc.encode('locks/job-7'),
        expectedVersion: 3n,
        value: new Uint8Array(0),
      },
    },
  ];
  return {
    description:
      'Transaction test vectors: seed is the 32-byte Ed25519 private key; signingBytes is what the signature covers; ' +
      'encoded is the canonical tx; hash = SHA-256(encoded). Layout: docs/ledger.md.',
    chainId: 'hybster-vectors',
    vectors: cases.map((c) => {
      const kp = keyPairFromSeed(c.seed);
      const tx = signTx(
        { chainId: 'hybster-vectors', from: kp.publicKey, nonce: c.nonce, payload: c.payload },
        kp.secretKey,
      );
      const encoded = encodeTx(tx);
      return {
        name: c.name,
        seed: toHex(c.seed),
        publicKey: toHex(kp.publicKey),
        tx: txToJson(tx),
        signingBytes: toHex(signingBytes(tx)),
        signature: toHex(tx.signature),
        encoded: toHex(encoded),
        hash: toHex(txHash(encoded)),
      };
    }),
  };
}

if (process.argv[1]?.endsWith('make-vectors.js')) {
  const path = join(repoRoot(), 'test', 'vectors', 'tx.json');
  writeFileSync(path, `${JSON.stringify(buildVectors(), null, 2)}\n`);
  console.log(`wrote ${path}`);
}
