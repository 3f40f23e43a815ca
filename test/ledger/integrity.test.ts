// Real corruption of a real store on disk: bytes flipped and files truncated or removed
// after a ledger was written through the Executor and LedgerStore.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  cp,
  mkdtemp,
  open,
  readdir,
  readFile,
  rm,
  stat,
  truncate,
  unlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { encodeBatch } from '../../ledger/batch.js';
import { decodeBlock, encodeBlock } from '../../ledger/block.js';
import { Executor } from '../../ledger/executor.js';
import {
  assertDataDirIntact,
  checkDataDir,
  type DamageKind,
  DataDirCorruptError,
  DataDirLockedError,
  type IntegrityReport,
} from '../../ledger/integrity.js';
import { generateKeyPair } from '../../ledger/keys.js';
import { LedgerStore } from '../../ledger/store.js';
import { encodeTx, signTx } from '../../ledger/tx.js';

const CHAIN = 'integrity-test';
const BLOCKS = 12;

/** Writes BLOCKS blocks of signed transfers; returns the genesis hash. */
async function buildLedger(dir: string): Promise<Uint8Array> {
  const genesisHash = new Uint8Array(randomBytes(32));
  const alice = generateKeyPair();
  const bob = generateKeyPair();
  const store = await LedgerStore.open(dir, {
    genesisHash,
    genesisAccounts: [{ address: alice.publicKey, balance: 1_000_000n }],
  });
  const exec = new Executor({ store, chainId: CHAIN });
  let nonce = 0n;
  for (let order = 0n; order < BigInt(BLOCKS); order++) {
    const txs = [];
    for (let i = 0; i < 20; i++) {
      nonce++;
      const tx = signTx(
        {
          chainId: CHAIN,
          from: alice.publicKey,
          nonce,
          payload: { type: 'transfer', to: bob.publicKey, amount: 1n },
        },
        alice.secretKey,
      );
      txs.push(encodeTx(tx));
    }
    await exec.executeBatch({
      order,
      view: 0n,
      proposer: 0,
      batch: encodeBatch({ timestampMs: 1000n + order, txs }),
    });
  }
  await store.close();
  return genesisHash;
}

/** Opens and closes the raw database, so LevelDB moves the write-ahead log into a table. */
async function flushToTables(dir: string): Promise<void> {
  const db = new ClassicLevel(dir);
  await db.open();
  await db.close();
}

async function filesMatching(dir: string, re: RegExp): Promise<string[]> {
  return (await readdir(dir)).filter((n) => re.test(n)).sort();
}

async function flipByte(path: string, at: number): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, at);
    b[0] = b[0]! ^ 0x10;
    await fh.write(b, 0, 1, at);
  } finally {
    await fh.close();
  }
}

const kinds = (r: IntegrityReport): DamageKind[] =>
  r.damage.filter((d) => d.severity === 'fatal').map((d) => d.kind);

describe('data directory integrity check', function () {
  this.timeout(60_000);
  let root: string;
  let pristineLog: string; // ledger with its last blocks still in the write-ahead log
  let pristineTables: string; // the same ledger flushed into tables
  let genesisHash: Uint8Array;

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'hyb-integrity-'));
    pristineLog = join(root, 'pristine-log');
    genesisHash = await buildLedger(pristineLog);
    pristineTables = join(root, 'pristine-tables');
    await cp(pristineLog, pristineTables, { recursive: true });
    await flushToTables(pristineTables);
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  let n = 0;
  async function copyOf(src: string): Promise<string> {
    const dst = join(root, `case-${n++}`);
    await cp(src, dst, { recursive: true });
    return dst;
  }

  it('reports an intact ledger as ok, checking every table and the newest blocks', async () => {
    for (const src of [pristineLog, pristineTables]) {
      const dir = await copyOf(src);
      const r = await checkDataDir(dir, { genesisHash });
      assert.equal(r.ok, true, JSON.stringify(r.damage));
      assert.equal(r.tipHeight, BigInt(BLOCKS));
      assert.equal(r.blocksChecked, BLOCKS);
      assert.deepEqual(r.damage, []);
    }
    const r = await checkDataDir(await copyOf(pristineTables));
    assert.ok(r.tablesChecked >= 1, 'no table was verified');
  });

  it('treats a missing or empty directory as a new validator', async () => {
    const r = await checkDataDir(join(root, 'does-not-exist'));
    assert.equal(r.ok, true);
    assert.equal(r.empty, true);
  });

  it('finds a flipped byte anywhere in a table and names the file', async () => {
    const [table] = await filesMatching(pristineTables, /\.ldb$/);
    assert.ok(table, 'the flushed ledger has a table');
    const size = (await stat(join(pristineTables, table))).size;
    // Early (a data block), middle, and near the end (index block / footer).
    for (const at of [100, Math.floor(size / 2), size - 60]) {
      const dir = await copyOf(pristineTables);
      await flipByte(join(dir, table), at);
      const r = await checkDataDir(dir, { genesisHash });
      assert.equal(r.ok, false, `flip at ${at} of ${size} went unnoticed`);
      assert.equal(r.damage[0]?.file, table);
      assert.ok(['checksum-mismatch', 'bad-format'].includes(r.damage[0]!.kind), r.damage[0]!.kind);
    }
  });

  it('finds a truncated table and a missing table', async () => {
    const [table] = await filesMatching(pristineTables, /\.ldb$/);
    let dir = await copyOf(pristineTables);
    await truncate(join(dir, table!), 1000);
    let r = await checkDataDir(dir);
    assert.deepEqual(kinds(r), ['truncated-file']);
    assert.match(r.damage[0]!.detail, /1000 bytes/);

    dir = await copyOf(pristineTables);
    await unlink(join(dir, table!));
    r = await checkDataDir(dir);
    assert.deepEqual(kinds(r), ['missing-file']);
    assert.equal(r.damage[0]!.file, table);
  });

  it('finds a flipped byte in the write-ahead log before LevelDB would silently drop the record', async () => {
    const [log] = await filesMatching(pristineLog, /\.log$/);
    const size = (await stat(join(pristineLog, log!))).size;
    assert.ok(size > 1000, 'the newest blocks are in the log');
    const dir = await copyOf(pristineLog);
    await flipByte(join(dir, log!), size - 500);
    const witness = await copyOf(dir);
    const r = await checkDataDir(dir, { genesisHash });
    assert.deepEqual(kinds(r), ['checksum-mismatch']);
    assert.equal(r.damage[0]!.file, log);
    // Without the check, LevelDB opens the same bytes without a word and the ledger is shorter.
    const store = await LedgerStore.open(witness, { genesisHash });
    const height = store.latestHeight();
    await store.close();
    assert.ok(height < BigInt(BLOCKS), `LevelDB kept all ${height} blocks`);
  });

  it('accepts a log torn by a crash mid-write with a warning, and the ledger stays at a block boundary', async () => {
    const [log] = await filesMatching(pristineLog, /\.log$/);
    const dir = await copyOf(pristineLog);
    const size = (await stat(join(dir, log!))).size;
    await truncate(join(dir, log!), size - 100);
    const r = await checkDataDir(dir, { genesisHash });
    assert.equal(r.ok, true, JSON.stringify(r.damage));
    assert.deepEqual(
      r.damage.map((d) => [d.kind, d.severity]),
      [['torn-log-tail', 'warning']],
    );
    assert.equal(r.tipHeight, BigInt(BLOCKS - 1), 'the torn last block is dropped whole');
  });

  it('finds a damaged MANIFEST and a missing CURRENT', async () => {
    let dir = await copyOf(pristineTables);
    const [manifest] = await filesMatching(dir, /^MANIFEST-/);
    await flipByte(join(dir, manifest!), 20);
    let r = await checkDataDir(dir);
    assert.deepEqual(kinds(r), ['checksum-mismatch']);
    assert.equal(r.damage[0]!.file, manifest);

    dir = await copyOf(pristineTables);
    await unlink(join(dir, 'CURRENT'));
    r = await checkDataDir(dir);
    assert.deepEqual(kinds(r), ['missing-file']);
  });

  it('finds a block rewritten with valid checksums: the hash chain breaks', async () => {
    const dir = await copyOf(pristineTables);
    const db = new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' });
    await db.open();
    // Block 10 (key 'B' + u64 height), with its timestamp changed: a well-formed block that is not the one the chain committed.
    const k = Buffer.concat([Buffer.from('B'), Buffer.from('000000000000000a', 'hex')]);
    const dec = decodeBlock((await db.get(k))!);
    assert.ok(dec.ok);
    dec.value.header.timestampMs += 1n;
    await db.put(k, encodeBlock(dec.value));
    await db.close();
    const r = await checkDataDir(dir, { genesisHash });
    assert.deepEqual(kinds(r), ['chain-break']);
    assert.equal(r.damage[0]!.height, 10n);
  });

  it('finds a block whose transactions were altered under an unchanged header', async () => {
    const dir = await copyOf(pristineTables);
    const db = new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' });
    await db.open();
    const k = Buffer.concat([
      Buffer.from('B'),
      Buffer.from(`000000000000000${BLOCKS.toString(16)}`.slice(-16), 'hex'),
    ]);
    const dec = decodeBlock((await db.get(k))!);
    assert.ok(dec.ok);
    const tx = dec.value.txs[3]!;
    tx[tx.length - 1] = tx[tx.length - 1]! ^ 1;
    await db.put(k, encodeBlock(dec.value));
    await db.close();
    const r = await checkDataDir(dir, { genesisHash });
    assert.deepEqual(kinds(r), ['body-mismatch']);
    assert.match(r.damage[0]!.detail, /txRoot/);
  });

  it('refuses to check a directory a running validator holds, instead of calling it damaged', async () => {
    const dir = await copyOf(pristineTables);
    const store = await LedgerStore.open(dir, { genesisHash });
    try {
      await assert.rejects(checkDataDir(dir), (e: unknown) => e instanceof DataDirLockedError);
    } finally {
      await store.close();
    }
  });

  it('reports a directory of another genesis', async () => {
    const r = await checkDataDir(await copyOf(pristineTables), { genesisHash: new Uint8Array(32) });
    assert.deepEqual(kinds(r), ['genesis-mismatch']);
  });

  it('refuses to start with an error naming the damage and the recovery options', async () => {
    const dir = await copyOf(pristineTables);
    const [table] = await filesMatching(dir, /\.ldb$/);
    await flipByte(join(dir, table!), 200);
    await assert.rejects(assertDataDirIntact(dir, { home: '/srv/validator0' }), (e: unknown) => {
      assert.ok(e instanceof DataDirCorruptError);
      assert.equal(e.code, 'data-dir-corrupt');
      assert.match(e.message, new RegExp(`damaged[\\s\\S]*${table}`));
      assert.match(e.message, /hybster restore --home \/srv\/validator0/);
      assert.match(e.message, /state transfer/);
      return true;
    });
    // And the check never changed the damaged files it reported.
    const again = await checkDataDir(dir);
    assert.equal(again.ok, false);
  });

  it('never reports damage when LevelDB itself reads every record back intact', async () => {
    // A cross-check of the file parser against LevelDB on a larger, compacted database.
    const dir = join(root, 'big');
    const db = new ClassicLevel<string, string>(dir);
    await db.open();
    for (let b = 0; b < 10; b++) {
      await db.batch(
        Array.from({ length: 400 }, (_, i) => ({
          type: 'put' as const,
          key: `k${b}-${i}`,
          value: randomBytes(200).toString('hex'),
        })),
      );
    }
    await db.compactRange('a', 'z');
    await db.put('tail', 'x');
    let count = 0;
    for await (const _ of db.keys()) count++;
    await db.close();
    assert.equal(count, 4001);
    await writeFile(join(dir, 'unrelated.txt'), 'ignored');
    const r = await checkDataDir(dir);
    // Not a ledger (no genesis record), but every file checksum is fine.
    assert.deepEqual(kinds(r), ['bad-format']);
    assert.match(r.damage[0]!.detail, /genesis record/);
    assert.ok(r.tablesChecked >= 1 && r.bytesChecked > 400_000, JSON.stringify(r));
    assert.ok((await readFile(join(dir, 'CURRENT'), 'utf8')).startsWith('MANIFEST-'));
  });
});
