import assert from 'node:assert/strict';
import {
  assertMessagesFit,
  batchBytesMaxFitting,
  type ConsensusConfig,
  Counter,
  type CounterCert,
  decodeMessage,
  encodeMessage,
  faults,
  makeConfig,
  messageBytesMax,
  type NewView,
  type Prepare,
  SoftwareTrinx,
  type ViewChange,
} from '../../consensus/index.js';

const MIB = 1024 * 1024;
const key = new Uint8Array(32).fill(3);
const digest = new Uint8Array(32).fill(5);

/** A NEW-VIEW as large as the codec allows: f + 1 full histories of full batches, full stable proofs. */
function largestNewView(c: ConsensusConfig): NewView {
  const t = new SoftwareTrinx(key, { validator: c.n - 1, pillar: c.pillars - 1 });
  const big = (counter: (typeof Counter)[keyof typeof Counter]): CounterCert => {
    const r = t.certifyContinuing(counter, { view: 1n << 62n, order: 1n << 62n }, digest);
    assert.ok(r.ok);
    return r.value;
  };
  const perPillar = c.window / c.pillars;
  const prepares: Prepare[] = Array.from({ length: perPillar }, (_, i) => ({
    type: 'prepare',
    pillar: c.pillars - 1,
    view: 1n << 62n,
    order: BigInt(i),
    batch: new Uint8Array(c.batchBytesMax),
    cert: big(Counter.ORDER),
    topCert: big(Counter.TOP),
  }));
  const vc: ViewChange = {
    type: 'view-change',
    pillar: c.pillars - 1,
    toView: 1n << 62n,
    top: 1n << 62n,
    stable: {
      order: 1n << 62n,
      stateDigest: digest,
      blockHash: digest,
      certs: Array.from({ length: c.n }, () => t.certifyPlain(digest)),
    },
    history: prepares,
    proofs: Array.from({ length: perPillar }, (_, i) => ({
      view: BigInt(i + 1),
      vcsDigest: digest,
      firstOrder: 0n,
      top: 1n << 62n,
      slotDigests: Array.from({ length: perPillar }, () => digest),
      certs: Array.from({ length: c.n }, () => t.certifyPlain(digest)),
    })),
    link: big(Counter.ORDER),
    proof: big(Counter.TOP),
  };
  return {
    type: 'new-view',
    pillar: c.pillars - 1,
    view: 1n << 62n,
    viewChanges: Array.from({ length: faults(c) + 1 }, () => vc),
    batches: prepares.map((p) => p.batch),
    cert: big(Counter.NEWVIEW),
  };
}

describe('consensus config', () => {
  for (const [n, pillars] of [
    [3, 1],
    [5, 2],
    [7, 4],
  ] as const) {
    it(`bounds the largest NEW-VIEW by messageBytesMax (n=${n}, P=${pillars})`, () => {
      const c = makeConfig({ n, pillars, window: 16, checkpointInterval: 4, batchBytesMax: 2048 });
      const bytes = encodeMessage(largestNewView(c));
      assert.ok(bytes.length <= messageBytesMax(c), `${bytes.length} > ${messageBytesMax(c)}`);
      assert.ok(bytes.length > messageBytesMax(c) * 0.9, 'the bound is not loose');
      assert.ok(decodeMessage(bytes, c).ok);
    });
  }

  it('refuses a window and batch size whose NEW-VIEW cannot cross 16 MiB frames, and says what fits', () => {
    const defaults = makeConfig({ n: 3, pillars: 1 });
    assert.ok(messageBytesMax(defaults) > 300 * MIB);
    assert.throws(() => assertMessagesFit(defaults, 16 * MIB), /lower window or batchBytesMax.*<= \d+ fits/);
    const fit = batchBytesMaxFitting(defaults, 16 * MIB);
    assert.ok(fit > 0 && fit < defaults.batchBytesMax);
    assertMessagesFit(makeConfig({ n: 3, pillars: 1, batchBytesMax: fit }), 16 * MIB);
    assert.throws(() =>
      assertMessagesFit(makeConfig({ n: 3, pillars: 1, batchBytesMax: fit + 1 }), 16 * MIB),
    );
  });
});
