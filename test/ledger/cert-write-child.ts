// Child process for store-cert-writes.test.ts: writes block 1, puts its commit certificate
// and prints "put <separate writes so far>". Mode "wait" then prints "written" once the
// delayed write has started and had time to land, and idles until the parent kills it; mode
// "exit" returns without closing the store (the process must end on its own).
import { encodeBatch } from '../../ledger/batch.js';
import { blockHash, signCommit } from '../../ledger/block.js';
import { fromHex } from '../../ledger/codec/binary.js';
import { Executor } from '../../ledger/executor.js';
import { LedgerStore } from '../../ledger/store.js';
import { CHAIN, seedKey } from './helpers.js';

const [dir, genesisHex, delay, mode] = process.argv.slice(2);
if (!dir || !genesisHex || !delay || (mode !== 'wait' && mode !== 'exit'))
  throw new Error('usage: cert-write-child <dir> <genesis hash hex> <certWriteDelayMs> wait|exit');
const store = await LedgerStore.open(dir, {
  genesisHash: fromHex(genesisHex),
  // A SIGKILL loses nothing the OS already has; fsync is for power loss, so keep the test fast.
  sync: false,
  certWriteDelayMs: Number(delay),
});
const exec = new Executor({ store, chainId: CHAIN });
const block = await exec.executeBatch({
  order: 0n,
  view: 0n,
  proposer: 0,
  batch: encodeBatch({ timestampMs: 1000n, txs: [] }),
});
const hash = blockHash(block.header);
await store.putCommitCertificate({
  height: 1n,
  blockHash: hash,
  signatures: [signCommit(1n, hash, 0, seedKey(0).secretKey)],
});
process.stdout.write(`put ${store.certificateWritesSeparate}\n`);
if (mode === 'wait') {
  setInterval(() => undefined, 60_000);
  // Started, then given ample time for an unsynced write of a few hundred bytes to reach the
  // OS (which keeps it through the SIGKILL), however loaded the machine.
  while (store.certificateWritesSeparate === 0) await new Promise((r) => setTimeout(r, 10));
  await new Promise((r) => setTimeout(r, 300));
  process.stdout.write('written\n');
}
