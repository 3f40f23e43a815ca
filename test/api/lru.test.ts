import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Lru } from '../../api/lru.js';

describe('Lru', () => {
  it('evicts an entry not used since it was stored before one that was, by count and by weight', () => {
    const byCount = new Lru<number, string>(2);
    byCount.set(1, 'a');
    byCount.set(2, 'b');
    byCount.get(1);
    byCount.set(3, 'c');
    assert.deepEqual([byCount.get(1), byCount.get(2), byCount.get(3)], ['a', undefined, 'c']);
    const byWeight = new Lru<number, string>(100, 5, (v) => v.length);
    byWeight.set(1, 'aaa');
    byWeight.set(2, 'bb');
    byWeight.set(3, 'cc');
    assert.equal(byWeight.get(1), undefined);
    assert.equal(byWeight.weight, 4);
    byWeight.set(4, 'toolong');
    assert.equal(byWeight.get(4), undefined, 'an entry heavier than the bound is not kept');
    byWeight.set(2, 'b');
    assert.equal(byWeight.weight, 3);
  });

  it('keeps a new entry even when every older one was used (it is never its own victim)', () => {
    const lru = new Lru<number, string>(2);
    lru.set(1, 'a');
    lru.set(2, 'b');
    lru.get(1);
    lru.get(2);
    lru.set(3, 'c');
    assert.equal(lru.get(3), 'c');
    assert.equal(lru.size, 2);
    assert.equal([lru.get(1), lru.get(2)].filter((v) => v !== undefined).length, 1);
  });

  it('gives a used entry one more round only: unused since, it goes next', () => {
    const lru = new Lru<number, string>(3);
    for (const k of [1, 2, 3]) lru.set(k, String(k));
    lru.get(1);
    lru.set(4, '4'); // 1 moves to the back (flag cleared), 2 goes
    lru.set(5, '5'); // 3 goes
    lru.set(6, '6'); // 1 was not used again: it goes
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6].map((k) => lru.get(k)),
      [undefined, undefined, undefined, '4', '5', '6'],
    );
  });

  it('sends a replaced entry to the back, however often it is replaced', () => {
    const lru = new Lru<number, string>(3);
    lru.set(1, 'a');
    lru.set(2, 'b');
    // Many replacements without an eviction: the stale ring slots are compacted away.
    for (let i = 0; i < 1000; i++) lru.set(1, `a${i}`);
    lru.set(3, 'c');
    lru.set(4, 'd'); // 2 is now the oldest
    assert.deepEqual(
      [1, 2, 3, 4].map((k) => lru.get(k)),
      ['a999', undefined, 'c', 'd'],
    );
    assert.equal(lru.size, 3);
  });

  it('evicts in insertion order across many rounds of a full cache', () => {
    const lru = new Lru<number, number>(100);
    for (let k = 0; k < 10_000; k++) {
      lru.set(k, k);
      if (k >= 100) assert.equal(lru.get(k - 100), undefined, `${k - 100} went when ${k} came`);
    }
    assert.equal(lru.get(9_900), 9_900);
    assert.equal(lru.size, 100);
  });

  it('never exceeds its bounds and keeps its weight total exact under any sequence', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 8 }),
        fc.integer({ min: 1, max: 40 }),
        fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 15 }), fc.string({ maxLength: 12 })), {
          maxLength: 200,
        }),
        (entriesMax, weightMax, ops) => {
          const lru = new Lru<number, string>(entriesMax, weightMax, (v) => v.length);
          const held = new Map<number, string>();
          for (const [isSet, key, value] of ops) {
            if (isSet) {
              lru.set(key, value);
              if (entriesMax > 0 && value.length <= weightMax) {
                held.set(key, value);
                assert.equal(lru.get(key), value, 'a value that fits is kept when stored');
              }
            } else {
              const got = lru.get(key);
              if (got !== undefined) assert.equal(got, held.get(key), 'a hit returns the latest value');
            }
            assert.ok(lru.size <= entriesMax);
            assert.ok(lru.weight <= weightMax);
          }
          let total = 0;
          for (const k of held.keys()) total += lru.get(k)?.length ?? 0;
          assert.equal(lru.weight, total);
        },
      ),
    );
  });
});
