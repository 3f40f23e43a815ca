// A child process that keeps writing to a LevelDB directory the way the ledger does:
// one atomic batch per "block", each batch adding item/<i> and setting head = i. A
// consistent snapshot therefore has exactly the items 0..head. Prints "ready" after the
// first batches are durable; runs until killed.

import { ClassicLevel } from 'classic-level';

const dir = process.argv[2];
if (!dir) throw new Error('usage: level-writer.fixture.js <dir>');
const db = new ClassicLevel<string, Uint8Array>(dir, { keyEncoding: 'utf8', valueEncoding: 'view' });
await db.open();
// Values big enough that the 4 MiB memtable flushes and compactions happen during a backup.
const filler = new Uint8Array(8 * 1024).fill(7);
for (let i = 0; ; i++) {
  const head = new Uint8Array(8);
  new DataView(head.buffer).setBigUint64(0, BigInt(i));
  await db.batch([
    { type: 'put', key: `item/${String(i).padStart(10, '0')}`, value: filler },
    { type: 'put', key: 'head', value: head },
  ]);
  if (i === 50) process.stdout.write('ready\n');
}
