import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { SecondLookupAdmission } from '../../api/admission.js';

const hashHex = (i: number): string => createHash('sha256').update(String(i)).digest('hex');

describe('SecondLookupAdmission', () => {
  it('admits a hash on its second lookup, then starts over', () => {
    const a = new SecondLookupAdmission();
    const h = hashHex(1);
    assert.deepEqual([a.admit(h), a.admit(h), a.admit(h), a.admit(h)], [false, true, false, true]);
  });

  it('keeps a thousand hashes apart in a table of 65,536 slots', () => {
    const a = new SecondLookupAdmission(16);
    const hashes = Array.from({ length: 1000 }, (_, i) => hashHex(i));
    assert.equal(hashes.filter((h) => a.admit(h)).length, 0, 'no first lookup is admitted');
    // Hashes that shared a slot overwrote each other: a few are forgotten, most are not.
    const second = hashes.filter((h) => a.admit(h)).length;
    assert.ok(second > 950 && second <= 1000, `${second} of 1000 admitted`);
  });

  it('forgets an older hash when a newer one takes its slot', () => {
    const a = new SecondLookupAdmission(1);
    const [x, y] = [hashHex(1), hashHex(2)];
    // With two slots, find a hash that shares x's slot (the slot is the first 7 digits' low bit).
    const sameSlot = (h: string) =>
      (Number.parseInt(h.slice(0, 7), 16) & 1) === (Number.parseInt(x.slice(0, 7), 16) & 1);
    const z = sameSlot(y) ? y : hashHex(3);
    assert.ok(sameSlot(z));
    a.admit(x);
    a.admit(z);
    assert.equal(a.admit(x), false, 'x was overwritten by z');
  });

  it('refuses a table size it cannot index', () => {
    assert.throws(() => new SecondLookupAdmission(0), RangeError);
    assert.throws(() => new SecondLookupAdmission(25), RangeError);
  });
});
