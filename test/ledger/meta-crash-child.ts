// Child process for executor-meta.test.ts: executes empty batches, each block carrying
// metadata records that name its height (as the node's consensus records ride in a
// follower's block batch), three blocks in flight, printing "durable <height>" after
// each. The parent kills it with SIGKILL mid-load.
import { encodeBatch } from '../../ledger/batch.js';
import { fromHex } from '../../ledger/codec/binary.js';
import { Executor } from '../../ledger/executor.js';
import { LedgerStore } from '../../ledger/store.js';

const [dir, genesisHex] = process.argv.slice(2);
if (!dir || !genesisHex) throw new Error('usage: meta-crash-child <dir> <genesis hash hex>');
const store = await LedgerStore.open(dir, { genesisHash: fromHex(genesisHex), sync: false });
const exec = new Executor({ store, chainId: 'meta-crash' });
const height = (h: bigint): Uint8Array => new TextEncoder().encode(String(h));
const inFlight: Promise<unknown>[] = [];
for (let order = store.latestHeight(); order < 100_000n; order++) {
  const h = order + 1n;
  const done = exec.executeBatch({
    order,
    view: 0n,
    proposer: 0,
    batch: encodeBatch({ timestampMs: h, txs: [] }),
    // A large record too, so a kill can land while a sizeable batch is being written.
    meta: [
      { name: 'last', value: height(h) },
      { name: `h/${h}`, value: new Uint8Array(32 * 1024).fill(Number(h % 251n)) },
    ],
  });
  inFlight.push(done.then(() => process.stdout.write(`durable ${h}\n`)));
  if (inFlight.length >= 3) await inFlight.shift();
}
