// Which answers are worth caching: a tx hash is admitted to the answer cache on its second
// lookup, not its first (TinyLFU's "doorkeeper"). Many txs are looked up once (a wallet
// checking the tx it just sent); caching those would cost every first lookup a copy, a
// digest and long-lived objects for the garbage collector to promote, and would push out
// answers that are asked for again. The table is fixed-size and allocation-free: a slot
// per hash prefix holding a tag from the following digits; a newer hash in the same slot
// overwrites the older, so the table forgets on its own.

/** Lowercase hex digit to its value (the keys are validated, lowercased hex). */
const nibble = (c: number): number => (c <= 57 ? c - 48 : c - 87);

export class SecondLookupAdmission {
  private readonly tags: Int32Array;
  private readonly mask: number;

  constructor(
    /** log2 of the slot count: 16 keeps 65,536 recent first lookups in 256 KB. */
    readonly slotsLog2: number = 16,
  ) {
    if (!Number.isInteger(slotsLog2) || slotsLog2 < 1 || slotsLog2 > 24) throw new RangeError('slotsLog2');
    this.tags = new Int32Array(1 << slotsLog2);
    this.mask = (1 << slotsLog2) - 1;
  }

  /**
   * True when this hash was looked up before and is still remembered (the slot is then
   * cleared); otherwise remembers it and returns false. `hex`: at least 14 lowercase hex
   * digits of a uniformly distributed hash.
   */
  admit(hex: string): boolean {
    let slot = 0;
    for (let i = 0; i < 7; i++) slot = (slot << 4) | nibble(hex.charCodeAt(i));
    // Tag from the next 7 digits (28 bits), never 0 (an empty slot).
    let tag = 1;
    for (let i = 7; i < 14; i++) tag = (tag << 4) | nibble(hex.charCodeAt(i));
    const at = slot & this.mask;
    if (this.tags[at] === tag) {
      this.tags[at] = 0;
      return true;
    }
    this.tags[at] = tag;
    return false;
  }
}
