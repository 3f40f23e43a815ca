// Child process for crash.test.ts: executes the batches in a JSON file into a ledger store,
// resuming from the stored tip, with several blocks in flight, and prints "durable <height>"
// after each block is on disk. The parent kills it with SIGKILL mid-load.
import { readFileSync } from 'node:fs';
import type { Block } from '../../ledger/block.js';
import { fromHex } from '../../ledger/codec/binary.js';
import { Executor } from '../../ledger/executor.js';
import { LedgerStore } from '../../ledger/store.js';

interface Plan {
  chainId: string;
  genesisHash: string;
  accounts: { address: string; balance: string }[];
  batches: string[];
}

const [dir, planFile] = process.argv.slice(2);
if (!dir || !planFile) throw new Error('usage: crash-child <dir> <plan.json>');
const plan = JSON.parse(readFileSync(planFile, 'utf8')) as Plan;
const store = await LedgerStore.open(dir, {
  genesisHash: fromHex(plan.genesisHash),
  genesisAccounts: plan.accounts.map((a) => ({ address: fromHex(a.address), balance: BigInt(a.balance) })),
  // A SIGKILL loses nothing the OS already has; fsync is for power loss, so keep the test fast.
  sync: false,
});
const exec = new Executor({ store, chainId: plan.chainId });
const inFlight: Promise<Block>[] = [];
const report = (b: Block) => process.stdout.write(`durable ${b.header.height}\n`);
for (let i = Number(store.latestHeight()); i < plan.batches.length; i++) {
  inFlight.push(
    exec.executeBatch({ order: BigInt(i), view: 0n, proposer: 0, batch: fromHex(plan.batches[i]!) }),
  );
  if (inFlight.length >= 3) report(await inFlight.shift()!);
}
for (const p of inFlight) report(await p);
process.stdout.write('done\n');
await store.close();
