import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PersistDelta, Prepare } from '../../consensus/index.js';
import { LedgerStore } from '../../ledger/store.js';
import { ConsensusPersistence, fromTagged, toTagged } from '../../node/persist.js';

const genesisHash = new Uint8Array(32).fill(7);

function prepare(order: bigint): Prepare {
  return {
    type: 'prepare',
    pillar: 0,
    view: 1n,
    order,
    batch: new Uint8Array([Number(order % 256n)]),
    cert: {
      issuer: { validator: 1, pillar: 0 },
      counter: 0,
      prev: null,
      value: { view: 1n, order: order + 2n },
      mac: new Uint8Array(32).fill(1),
    },
    topCert: {
      issuer: { validator: 1, pillar: 0 },
      counter: 3,
      prev: { view: 0n, order: order + 1n },
      value: { view: 0n, order: order + 1n },
      mac: new Uint8Array(32).fill(2),
    },
  };
}

function delta(top: bigint, put: bigint[], pruneBelow: bigint): PersistDelta {
  return {
    pillar: 0,
    trinx: {
      counters: [
        { view: 1n, order: top + 1n },
        { view: 0n, order: 0n },
        { view: 0n, order: 0n },
      ],
    },
    view: 1n,
    viewChangeTarget: null,
    top,
    chain: [],
    entryTop: top,
    entryChain: [],
    stable: null,
    putEntries: put.map((o) => ({ prepare: prepare(o), myCommit: null })),
    pruneBelow,
  };
}

describe('node/persist', () => {
  let dir: string;
  let store: LedgerStore;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hybster-persist-'));
    store = await LedgerStore.open(join(dir, 'data'), { genesisHash });
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('round-trips bigints, bytes, maps and nulls through the tagged encoding', () => {
    const v = { a: 1n << 70n, b: new Uint8Array([1, 2]), m: new Map([[3n, 'x']]), n: null, s: ['y', 2] };
    assert.deepEqual(fromTagged(toTagged(v)), v);
  });

  it('restores the last header and the live entries after reopening the store', async () => {
    const p = new ConsensusPersistence(store, 1, 8);
    await p.write([delta(3n, [0n, 1n, 2n], 0n)]);
    await p.write([delta(10n, [8n, 9n], 5n)]);
    await store.close();
    store = await LedgerStore.open(join(dir, 'data'), { genesisHash });
    const [snap] = await new ConsensusPersistence(store, 1, 8).load();
    assert.ok(snap);
    assert.equal(snap.top, 10n);
    assert.equal(snap.trinx.counters[0]?.order, 11n);
    // 0 and 1 were overwritten by 8 and 9 (same ring slots); 2 is below the prune mark.
    assert.deepEqual([...snap.entries.keys()].sort(), [8n, 9n]);
    assert.deepEqual(snap.entries.get(9n)?.prepare.batch, new Uint8Array([9]));
  });

  it('reports a fresh start when nothing was persisted', async () => {
    const snaps = await new ConsensusPersistence(store, 2, 8).load();
    assert.deepEqual(snaps, [undefined, undefined]);
  });
});
