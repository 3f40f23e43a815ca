import assert from 'node:assert/strict';
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import { Lru } from '../../api/lru.js';
import { RESERVE_BYTES_MAX, TX_ANSWER_ENTRY_OVERHEAD, TxAnswerCache } from '../../api/tx-answers.js';

/** A 64-hex-digit key whose first 8 digits (the table's hash) are `home`, the rest from `n`. */
const keyOf = (home: number, n: number): string =>
  home.toString(16).padStart(8, '0') + n.toString(16).padStart(56, '0');

const answer = (c: TxAnswerCache, key: string): [string, string] | undefined => {
  const a = c.get(key);
  return a === undefined ? undefined : [a.etag, a.body.toString()];
};

describe('TxAnswerCache', () => {
  it('answers what was stored, byte for byte, and nothing for a hash it does not hold', () => {
    const c = new TxAnswerCache(16, 1 << 20);
    const k = keyOf(7, 1);
    const stored = c.set(k, 'W/"abc.3"', '{"memo":"é ✓"}');
    assert.equal(stored.body.toString(), '{"memo":"é ✓"}');
    assert.deepEqual(answer(c, k), ['W/"abc.3"', '{"memo":"é ✓"}']);
    assert.equal(c.get(keyOf(7, 2)), undefined, 'same table slot, other key');
    assert.equal(c.get(keyOf(8, 1)), undefined);
    assert.equal(c.size, 1);
    assert.equal(
      c.bytes,
      'W/"abc.3"'.length + Buffer.byteLength('{"memo":"é ✓"}') + TX_ANSWER_ENTRY_OVERHEAD,
    );
  });

  it('keeps the first answer when a hash is stored twice (two misses raced)', () => {
    const c = new TxAnswerCache(16, 1 << 20);
    c.set(keyOf(1, 1), 'W/"a.0"', '{"a":1}');
    assert.deepEqual([c.set(keyOf(1, 1), 'W/"a.0"', '{"a":2}').body.toString(), c.size], ['{"a":1}', 1]);
  });

  it('evicts an answer not looked up since it was stored before one that was, by count and by bytes', () => {
    const byCount = new TxAnswerCache(2, 1 << 20);
    byCount.set(keyOf(1, 1), 'e1', 'a');
    byCount.set(keyOf(2, 2), 'e2', 'b');
    byCount.get(keyOf(1, 1));
    byCount.set(keyOf(3, 3), 'e3', 'c');
    assert.deepEqual(
      [1, 2, 3].map((i) => answer(byCount, keyOf(i, i))?.[1]),
      ['a', undefined, 'c'],
    );
    const perEntry = 2 + 10 + TX_ANSWER_ENTRY_OVERHEAD;
    const byBytes = new TxAnswerCache(100, 2 * perEntry);
    for (let i = 0; i < 3; i++) byBytes.set(keyOf(i, i), `e${i}`, 'x'.repeat(10));
    assert.equal(byBytes.size, 2);
    assert.equal(byBytes.get(keyOf(0, 0)), undefined);
    const huge = byBytes.set(keyOf(9, 9), 'e9', 'y'.repeat(3 * perEntry));
    assert.equal(huge.body.length, 3 * perEntry, 'an answer above the byte bound is still answered');
    assert.equal(byBytes.get(keyOf(9, 9)), undefined, 'but not kept');
    assert.equal(byBytes.size, 2);
  });

  /** Runs ops against the cache and the heap Lru as a model; every lookup and bound must agree. */
  const agreesWithLru = (
    ops: { home: number; n: number; bytes: number }[],
    entries: number,
    bytesMax: number,
  ): void => {
    const c = new TxAnswerCache(entries, bytesMax, 1024);
    const model = new Lru<string, string>(entries, bytesMax, (v) => 3 + v.length + TX_ANSWER_ENTRY_OVERHEAD);
    for (const { home, n, bytes } of ops) {
      const key = keyOf(home, n);
      const body = `${key.slice(-6)}${'.'.repeat(bytes)}`;
      const want = model.get(key);
      const got = answer(c, key);
      assert.deepEqual(got, want === undefined ? undefined : [`e${key.slice(-2)}`, want]);
      if (want === undefined) {
        model.set(key, body);
        c.set(key, `e${key.slice(-2)}`, body);
      }
      assert.equal(c.size, model.size);
      assert.equal(c.bytes, model.weight);
      assert.ok(c.bytes <= bytesMax && c.size <= entries);
    }
  };

  it('evicts exactly as the heap Lru does, over any sequence of lookups and inserts', () => {
    // Few table homes, so probe runs are long and deletions shift entries back.
    const op = fc.record({ home: fc.nat(3), n: fc.nat(40), bytes: fc.nat(300) });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 400 }), fc.integer({ min: 1, max: 30 }), (ops, entries) =>
        agreesWithLru(ops, entries, 4000),
      ),
      { numRuns: 200 },
    );
  });

  it('agrees with the heap Lru while its table grows with live entries and its ring has wrapped', () => {
    // Large answers first: the byte bound evicts (the ring's head moves on) at a few hundred
    // entries; then small ones take the count past 1024 rows, so the arrays double with
    // entries live and the ring wrapped. Keys repeat, so used entries are moved on too.
    const ops = (bytes: number, min: number) =>
      fc.array(fc.record({ home: fc.nat(3), n: fc.nat(700), bytes: fc.nat(bytes) }), {
        minLength: min,
        maxLength: min * 2,
      });
    fc.assert(
      fc.property(ops(300, 800), ops(4, 3000), (large, small) =>
        agreesWithLru([...large, ...small], 2500, 150_000),
      ),
      { numRuns: 15 },
    );
  });

  it('drops old slabs as their answers are evicted or moved on, so held slabs follow the byte bound', () => {
    const slabBytes = 4096;
    const c = new TxAnswerCache(1000, 8 * slabBytes, slabBytes);
    const hot = keyOf(0, 0);
    c.set(hot, 'eh', 'h'.repeat(100));
    for (let i = 1; i < 3000; i++) {
      c.get(hot);
      c.set(keyOf(i, i), 'ee', 'x'.repeat(100 + (i % 50)));
      // Above slabBytes / 8: a slab of its own, gone once it is evicted.
      if (i === 10) c.set(keyOf(99_999, 1), 'eL', 'L'.repeat(slabBytes));
      assert.ok(c.slabCount <= 8 + 2, `slabs held: ${c.slabCount}`);
    }
    assert.equal(c.get(keyOf(99_999, 1)), undefined, 'the large answer, never looked up, was evicted');
    assert.deepEqual(answer(c, hot), ['eh', 'h'.repeat(100)], 'a hot answer survives, moved intact');
  });

  it('keeps an answer sent from a slab intact after the slab has left the cache', () => {
    const c = new TxAnswerCache(2, 1 << 20, 1024);
    const sent = c.set(keyOf(1, 1), 'e1', 'first answer');
    for (let i = 2; i < 200; i++) c.set(keyOf(i, i), 'ee', 'z'.repeat(100));
    assert.equal(c.get(keyOf(1, 1)), undefined);
    assert.equal(sent.body.toString(), 'first answer', 'slab bytes are never overwritten');
  });

  it('answers with copies, so an answer already sent stays intact when its slab is refilled', () => {
    const slabBytes = 1024;
    const c = new TxAnswerCache(1000, 4 * slabBytes, slabBytes);
    c.set(keyOf(1, 1), 'e1', 'first answer');
    const sent = c.get(keyOf(1, 1));
    assert.ok(sent !== undefined);
    for (let i = 2; i < 400; i++) c.set(keyOf(i, i), 'ee', 'z'.repeat(100));
    assert.equal(c.get(keyOf(1, 1)), undefined, 'evicted, and its slab refilled since');
    assert.equal(sent.body.toString(), 'first answer');
  });

  it('reserves its slabs when made and allocates none while it fills and churns at the bound', () => {
    const slabBytes = 64 * 1024;
    const body = 'j'.repeat(1600);
    const allocate = Buffer.allocUnsafeSlow;
    let allocated = 0;
    Buffer.allocUnsafeSlow = (n: number) => {
      allocated++;
      return allocate(n);
    };
    try {
      const c = new TxAnswerCache(100_000, 16 * slabBytes, slabBytes);
      assert.equal(allocated, 16 + 2, 'the byte bound in slabs, and two for partly emptied ones');
      assert.equal(c.spareSlabCount, 18);
      // Past the bound several times over (a slab per ~40 answers), with hits moving some on.
      for (let i = 0; i < 24_000; i++) {
        c.set(keyOf(i, i), 'W/"e"', body);
        if (i % 3 === 0 && i >= 300) c.get(keyOf(i - 300, i - 300));
      }
      assert.equal(allocated, 18, 'emptied slabs were filled again, none allocated');
      assert.equal(answer(c, keyOf(23_999, 23_999))?.[1], body);
      assert.ok(c.bytes <= 16 * slabBytes);
    } finally {
      Buffer.allocUnsafeSlow = allocate;
    }
  });

  it('reserves nothing for a byte bound above RESERVE_BYTES_MAX, and nothing when it holds no entries', () => {
    assert.equal(new TxAnswerCache(1000, RESERVE_BYTES_MAX + 1).spareSlabCount, 0);
    assert.equal(new TxAnswerCache(0, 1 << 20).spareSlabCount, 0);
    assert.equal(new TxAnswerCache(1000, 1 << 20, 1 << 18).spareSlabCount, 4 + 2);
  });

  it('allocates nothing on the JS heap per insert that outlives it', () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const c = new TxAnswerCache(200_000, 1 << 30);
    const body = 'b'.repeat(100);
    // Rows grow by doubling; fill past the last doubling first so only inserts are measured.
    for (let i = 0; i < 140_000; i++) c.set(keyOf(i, i), 'W/"0123456789abcdef0123456789abcdef.42"', body);
    gc();
    const before = getHeapStatistics().used_heap_size;
    for (let i = 140_000; i < 190_000; i++)
      c.set(keyOf(i, i), 'W/"0123456789abcdef0123456789abcdef.42"', body);
    gc();
    const grown = getHeapStatistics().used_heap_size - before;
    assert.equal(c.size, 190_000);
    for (const i of [0, 65_535, 131_072, 189_999]) assert.equal(answer(c, keyOf(i, i))?.[1], body);
    // A heap entry per answer (Map slot, answer object, view, key and ETag strings) would be
    // about 500 bytes each, 25 MB for these 50k; here the bytes are in external slabs.
    assert.ok(grown < 2_000_000, `heap grew ${grown} bytes for 50k answers`);
  });
});
