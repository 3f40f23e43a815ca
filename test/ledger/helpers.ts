// Shared fixtures for ledger tests: deterministic keys, signed txs, temp dirs, repo root.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type KeyPair, keyPairFromSeed } from '../../ledger/keys.js';
import { encodeTx, signTx, type TxPayload } from '../../ledger/tx.js';

export const CHAIN = 'test-chain';

export function seedKey(i: number): KeyPair {
  const seed = new Uint8Array(32);
  new DataView(seed.buffer).setUint32(28, i + 1);
  return keyPairFromSeed(seed);
}

export function signed(k: KeyPair, nonce: bigint, payload: TxPayload, chainId = CHAIN): Uint8Array {
  return encodeTx(signTx({ chainId, from: k.publicKey, nonce, payload }, k.secretKey));
}

export const transfer = (to: KeyPair, amount: bigint): TxPayload => ({
  type: 'transfer',
  to: to.publicKey,
  amount,
});
export const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

export function tempDir(tag: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(os.tmpdir(), `ledger-${tag}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The directory holding package.json, found by walking up from the compiled test file. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('package.json not found');
    dir = up;
  }
  return dir;
}
