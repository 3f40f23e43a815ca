import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import {
  type Commit,
  decodeMessage,
  encodeMessage,
  makeConfig,
  type PersistDelta,
  type PillarSnapshot,
  type Prepare,
  Replica,
} from '../../consensus/index.js';
import { encodeBatch } from '../../ledger/batch.js';
import { Executor } from '../../ledger/executor.js';
import { LedgerStore } from '../../ledger/store.js';
import {
  ConsensusPersistence,
  decodeEntryRecord,
  decodeHeaderRecord,
  encodeEntryRecord,
  encodeHeaderRecord,
  encodeLegacyRecord,
  fromTagged,
  PersistedStateError,
  RecordTag,
  toTagged,
} from '../../node/persist.js';
import { LocalCluster, TEST_TRINX_KEY } from '../sim/cluster.js';

const genesisHash = new Uint8Array(32).fill(7);
const config = makeConfig({
  n: 3,
  pillars: 1,
  window: 8,
  checkpointInterval: 4,
  retransmitMs: 10,
  viewTimeoutMs: 100,
  viewTimeoutMsMax: 800,
});

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

/** A commit for `p` as a follower would send it (the MACs are placeholders: only bytes matter here). */
function commitFor(p: Prepare): Commit {
  return {
    type: 'commit',
    pillar: p.pillar,
    view: p.view,
    order: p.order,
    batchDigest: new Uint8Array(32).fill(3),
    cert: { ...p.cert, issuer: { validator: 2, pillar: p.pillar } },
    topCert: { ...p.topCert, issuer: { validator: 2, pillar: p.pillar } },
    needReply: false,
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
    stable: null,
    putEntries: put.map((o) => ({ prepare: prepare(o), myCommit: null })),
    pruneBelow,
  };
}

/**
 * Real deltas of replica 2: leader 0 orders six batches (a checkpoint becomes stable), goes
 * dark, 1 and 2 change to view 1 (view proof, ACCEPT) and 1 orders one more, so orders 4-6
 * stay live above the checkpoint.
 */
function realDeltas(): PersistDelta[] {
  const c = new LocalCluster(config);
  c.tracing = true;
  const batch = (i: number): Uint8Array => new TextEncoder().encode(`batch ${i}`);
  for (let i = 0; i < 6; i++) c.step(0, { type: 'propose', batch: batch(i) });
  c.drain();
  c.isolated.add(0);
  c.step(1, { type: 'request-timeout' });
  c.step(2, { type: 'request-timeout' });
  c.drain();
  c.step(1, { type: 'propose', batch: batch(6) });
  c.drain();
  // Replica 2 is the follower in view 1: its entries carry its own commits.
  return c.trace
    .filter((t) => t.v === 2 && t.a.type === 'persist')
    .map((t) => (t.a as { delta: PersistDelta }).delta);
}

/** What the previous version wrote for the same deltas: tagged JSON under the same keys. */
async function writeLegacy(store: LedgerStore, deltas: readonly PersistDelta[]): Promise<void> {
  const slots = BigInt(config.window / config.pillars);
  for (const d of deltas) {
    const { putEntries, ...h } = d;
    const records = putEntries.map((e) => ({
      name: `consensus/p${d.pillar}/slot/${(e.prepare.order / BigInt(config.pillars)) % slots}`,
      value: encodeLegacyRecord(e),
    }));
    records.push({ name: `consensus/p${d.pillar}/header`, value: encodeLegacyRecord(h) });
    await store.putMetaBatch(records);
  }
}

describe('node/persist', () => {
  let dir: string;
  let store: LedgerStore;
  const reopen = async (): Promise<void> => {
    await store.close();
    store = await LedgerStore.open(join(dir, 'data'), { genesisHash });
  };
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
    const p = new ConsensusPersistence(store, config);
    await p.write([delta(3n, [0n, 1n, 2n], 0n)]);
    await p.write([delta(10n, [8n, 9n], 5n)]);
    await reopen();
    const [snap] = await new ConsensusPersistence(store, config).load();
    assert.ok(snap);
    assert.equal(snap.top, 10n);
    assert.equal(snap.trinx.counters[0]?.order, 11n);
    // 0 and 1 were overwritten by 8 and 9 (same ring slots); 2 is below the prune mark.
    assert.deepEqual([...snap.entries.keys()].sort(), [8n, 9n]);
    assert.deepEqual(snap.entries.get(9n)?.prepare.batch, new Uint8Array([9]));
  });

  it('keeps sentAhead in the header; a header written without it (or before it existed) reads as false', async () => {
    const p = new ConsensusPersistence(store, config);
    await p.write([{ ...delta(3n, [0n], 0n), sentAhead: true }]);
    await reopen();
    const [ahead] = await new ConsensusPersistence(store, config).load();
    assert.equal(ahead?.sentAhead, true);
    const plain = encodeHeaderRecord({ ...delta(3n, [], 0n), sentAhead: false }, config);
    const flagged = encodeHeaderRecord({ ...delta(3n, [], 0n), sentAhead: true }, config);
    // The flag is one trailing byte, so an older header is the same bytes without it.
    assert.deepEqual(flagged.subarray(0, plain.length), plain);
    assert.equal(flagged.length, plain.length + 1);
    const back = decodeHeaderRecord(plain, config);
    assert.ok(back.ok);
    assert.equal(back.value.sentAhead, false);
  });

  it('reports a fresh start when nothing was persisted', async () => {
    const snaps = await new ConsensusPersistence(store, makeConfig({ ...config, pillars: 2 })).load();
    assert.deepEqual(snaps, [undefined, undefined]);
  });

  it('writes binary records, tagged by their first byte', async () => {
    const deltas = realDeltas();
    await new ConsensusPersistence(store, config).write(deltas);
    const header = await store.getMeta('consensus/p0/header');
    const slot = await store.getMeta('consensus/p0/slot/0');
    assert.equal(header?.[0], RecordTag.HEADER);
    assert.equal(slot?.[0], RecordTag.ENTRY);
  });

  it('embeds the prepare exactly in its wire encoding, the one codec both read with', () => {
    for (const e of realDeltas().flatMap((d) => d.putEntries)) {
      const record = encodeEntryRecord(e);
      const wire = encodeMessage(e.prepare);
      assert.equal(new DataView(record.buffer, record.byteOffset).getUint32(1), wire.length);
      assert.deepEqual(record.subarray(5, 5 + wire.length), wire);
    }
  });

  it('embeds the own commit exactly in its wire encoding after the prepare', () => {
    const entries = realDeltas()
      .flatMap((d) => d.putEntries)
      .map((e) => ({ ...e, myCommit: e.myCommit ?? commitFor(e.prepare) }));
    for (const e of entries) {
      const record = encodeEntryRecord(e);
      const at = 5 + encodeMessage(e.prepare).length;
      const wire = encodeMessage(e.myCommit);
      assert.equal(record[at], 1);
      assert.equal(new DataView(record.buffer, record.byteOffset).getUint32(at + 1), wire.length);
      assert.deepEqual(record.subarray(at + 5), wire);
    }
  });

  it('keeps every record intact when one write holds several and the next reuses the buffer', async () => {
    const p = new ConsensusPersistence(store, config);
    const big = (o: bigint): PersistDelta => {
      const d = delta(o + 1n, [o], 0n);
      const e = d.putEntries[0]!;
      const batch = new Uint8Array(100_000 + Number(o)).fill(Number(o) + 1);
      return { ...d, putEntries: [{ ...e, prepare: { ...e.prepare, batch } }] };
    };
    await p.write([big(0n), big(1n), big(2n)]);
    await p.write([big(3n)]);
    await reopen();
    const [snap] = await new ConsensusPersistence(store, config).load();
    for (const o of [0n, 1n, 2n, 3n]) {
      const b = snap?.entries.get(o)?.prepare.batch;
      assert.equal(b?.length, 100_000 + Number(o));
      assert.ok(b?.every((x) => x === Number(o) + 1));
    }
  });

  it('round-trips real deltas with a stable checkpoint, a view proof, an ACCEPT and own commits', () => {
    const deltas = realDeltas();
    const last = deltas.at(-1)!;
    // The scenario must reach every kind of field, or this test proves less than it says.
    assert.ok(last.stable !== null, 'a stable checkpoint');
    assert.ok((last.viewProofs?.length ?? 0) > 0, 'a view proof');
    assert.ok(last.accept, 'an ACCEPT');
    const entries = deltas.flatMap((d) => d.putEntries);
    assert.ok(entries.some((e) => e.myCommit !== null && e.prepare.view === 1n));
    for (const e of entries)
      assert.deepEqual(decodeEntryRecord(encodeEntryRecord(e), config), { ok: true, value: e });
    for (const d of deltas) {
      const { putEntries: _, ...h } = d;
      const back = decodeHeaderRecord(encodeHeaderRecord(h, config), config);
      assert.ok(back.ok);
      assert.deepEqual(back.value, { ...h, viewProofs: h.viewProofs ?? [], accept: h.accept ?? null });
    }
  });

  it('restores from a data dir written by the previous (JSON) version exactly as from binary records', async () => {
    const deltas = realDeltas();
    await writeLegacy(store, deltas);
    await reopen();
    const [fromLegacy] = await new ConsensusPersistence(store, config).load();
    const other = join(dir, 'binary');
    const binaryStore = await LedgerStore.open(other, { genesisHash });
    let fromBinary: PillarSnapshot | undefined;
    try {
      await new ConsensusPersistence(binaryStore, config).write(deltas);
      [fromBinary] = await new ConsensusPersistence(binaryStore, config).load();
    } finally {
      await binaryStore.close();
    }
    assert.ok(fromLegacy && fromBinary);
    assert.ok(fromLegacy.entries.size > 0);
    assert.deepEqual(fromLegacy, fromBinary);
    // And the core restarts from it in view 1 with its top.
    const r = new Replica({
      config,
      validator: 2,
      trinxKey: TEST_TRINX_KEY,
      snapshots: [fromLegacy],
      executedNext: fromLegacy.top,
    });
    assert.equal(r.pillars[0]!.currentView, 1n);
  });

  it('reads a pillar whose old JSON records are partly replaced by binary ones', async () => {
    const deltas = realDeltas();
    const half = Math.floor(deltas.length / 2);
    await writeLegacy(store, deltas.slice(0, half));
    await reopen();
    const p = new ConsensusPersistence(store, config);
    await p.write(deltas.slice(half));
    await reopen();
    const [mixed] = await new ConsensusPersistence(store, config).load();
    const other = join(dir, 'binary');
    const binaryStore = await LedgerStore.open(other, { genesisHash });
    try {
      await new ConsensusPersistence(binaryStore, config).write(deltas);
      const [all] = await new ConsensusPersistence(binaryStore, config).load();
      assert.deepEqual(mixed, all);
    } finally {
      await binaryStore.close();
    }
  });

  it('restores PREPAREs stored before batchBytesMax was lowered: a stored record was accepted when written', async () => {
    const wide = makeConfig({ ...config, batchBytesMax: 4096 });
    const narrow = makeConfig({ ...config, batchBytesMax: 64 });
    const big: Prepare = { ...prepare(1n), batch: new Uint8Array(3000).fill(5) };
    const d = delta(2n, [], 0n);
    await new ConsensusPersistence(store, wide).write([
      { ...d, putEntries: [{ prepare: big, myCommit: commitFor(big) }] },
    ]);
    await reopen();
    // The current limit refuses such a PREPARE on the wire; the restored one is kept whole.
    assert.equal(decodeMessage(encodeMessage(big), narrow).ok, false);
    const [snap] = await new ConsensusPersistence(store, narrow).load();
    assert.ok(snap);
    assert.deepEqual(snap.entries.get(1n)?.prepare.batch, big.batch);
    assert.equal(snap.entries.get(1n)?.myCommit?.order, 1n);
  });

  it('encodes without writing the records write() puts; written in a block batch they restore the same snapshot', async () => {
    const deltas = realDeltas();
    await new ConsensusPersistence(store, config).write(deltas);
    await reopen();
    const [written] = await new ConsensusPersistence(store, config).load();

    const other = await LedgerStore.open(join(dir, 'fused'), { genesisHash });
    try {
      const p = new ConsensusPersistence(other, config);
      const encoded = p.encode(deltas);
      // Encoding alone writes nothing.
      assert.deepEqual(await p.load(), [undefined]);
      const exec = new Executor({ store: other, chainId: 'persist-test' });
      await exec.executeBatch({
        order: 0n,
        view: 0n,
        proposer: 0,
        batch: encodeBatch({ timestampMs: 1n, txs: [] }),
        meta: encoded.records,
      });
      encoded.done();
      assert.equal(other.durableHeight(), 1n);
      const [fused] = await new ConsensusPersistence(other, config).load();
      assert.deepEqual(fused, written);
    } finally {
      await other.close();
    }
  });

  describe('corrupted records', () => {
    const corruptions: [string, string, (b: Uint8Array) => Uint8Array][] = [
      ['a truncated binary header', 'header', (b) => b.subarray(0, b.length - 3)],
      ['a header with an unknown tag', 'header', (b) => Uint8Array.of(9, ...b.subarray(1))],
      ['a truncated JSON header', 'header', () => encodeLegacyRecord({ top: 1n }).subarray(0, 9)],
      ['a JSON header without top', 'header', () => encodeLegacyRecord({ view: 1n })],
      ['a binary entry with trailing bytes', 'slot/1', (b) => Uint8Array.of(...b, 0)],
      ['an entry tagged as a header', 'slot/1', (b) => Uint8Array.of(RecordTag.HEADER, ...b.subarray(1))],
      [
        'an entry with its prepare cut short',
        'slot/1',
        (b) => Uint8Array.of(...b.subarray(0, 5), ...b.subarray(9)),
      ],
      ['an empty entry', 'slot/1', () => new Uint8Array(0)],
      ['a JSON entry that is not JSON', 'slot/1', () => new TextEncoder().encode('{"prepare": {')],
    ];
    for (const [what, key, corrupt] of corruptions) {
      it(`refuses ${what} with a typed error naming the record`, async () => {
        const p = new ConsensusPersistence(store, config);
        await p.write([delta(3n, [0n, 1n, 2n], 0n)]);
        const name = `consensus/p0/${key}`;
        const bytes = await store.getMeta(name);
        assert.ok(bytes);
        await store.putMeta(name, corrupt(bytes));
        await assert.rejects(p.load(), (e: unknown) => {
          assert.ok(e instanceof PersistedStateError, String(e));
          assert.equal(e.key, name);
          assert.equal(e.code, 'consensus-state-corrupt');
          return true;
        });
      });
    }

    it('refuses a header stored under another pillar', async () => {
      const two = makeConfig({ ...config, pillars: 2 });
      const p = new ConsensusPersistence(store, two);
      await p.write([{ ...delta(3n, [], 0n), pillar: 1 }]);
      await store.putMeta('consensus/p0/header', (await store.getMeta('consensus/p1/header'))!);
      await assert.rejects(p.load(), PersistedStateError);
    });

    it('decodes every truncation and bit flip of a record to a value or a typed error, never a throw', () => {
      const entry = encodeEntryRecord({ prepare: prepare(5n), myCommit: null });
      const { putEntries: _, ...h } = realDeltas().at(-1)!;
      const header = encodeHeaderRecord(h, config);
      fc.assert(
        fc.property(
          fc.boolean(),
          fc.nat(),
          fc.nat(),
          fc.integer({ min: 0, max: 255 }),
          (isHeader, cut, at, byte) => {
            const src = isHeader ? header : entry;
            const b = src.slice(0, 1 + (cut % src.length));
            if (b.length > 0) b[at % b.length] = byte;
            const r = isHeader ? decodeHeaderRecord(b, config) : decodeEntryRecord(b, config);
            if (!r.ok) assert.equal(r.error.name, 'DecodeError');
          },
        ),
        { numRuns: 2000 },
      );
    });
  });
});
