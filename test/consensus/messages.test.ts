import assert from 'node:assert/strict';
import fc from 'fast-check';
import { sha256 } from '../../consensus/digest.js';
import {
  Counter,
  decodeMessage,
  encodeMessage,
  encodeMessageInto,
  type Message,
  makeConfig,
  messageEncodedBytes,
  type Prepare,
  SoftwareTrinx,
} from '../../consensus/index.js';
import { DecodeError, Writer } from '../../ledger/codec/binary.js';

const config = makeConfig({ n: 5, pillars: 2, window: 16, checkpointInterval: 4, batchBytesMax: 1024 });
const t = new SoftwareTrinx(new Uint8Array(32).fill(9), { validator: 1, pillar: 1 });
const digest = sha256(new Uint8Array([1]));
const cert = (
  view: bigint,
  order: bigint,
  counter: (typeof Counter)[keyof typeof Counter] = Counter.ORDER,
) => {
  const c = new SoftwareTrinx(new Uint8Array(32).fill(9), { validator: 1, pillar: 1 }).certifyContinuing(
    counter,
    { view, order },
    digest,
  );
  assert.ok(c.ok);
  return c.value;
};
const prepare: Prepare = {
  type: 'prepare',
  pillar: 1,
  view: 3n,
  order: 5n,
  batch: new Uint8Array([1, 2, 3]),
  cert: { ...cert(3n, 7n), prev: null },
  topCert: cert(0n, 6n, Counter.TOP),
};
const stable = {
  order: 3n,
  stateDigest: digest,
  blockHash: digest,
  certs: [t.certifyPlain(digest), { ...t.certifyPlain(digest), issuer: { validator: 2, pillar: 1 } }],
};
const viewChange = {
  type: 'view-change' as const,
  pillar: 1,
  toView: 4n,
  top: 6n,
  stable,
  history: [prepare],
  proofs: [
    {
      view: 2n,
      vcsDigest: digest,
      firstOrder: 1n,
      top: 4n,
      slotDigests: [digest, digest],
      certs: stable.certs,
    },
  ],
  link: cert(4n, 0n),
  proof: cert(0n, 6n, Counter.TOP),
};

const samples: Message[] = [
  prepare,
  {
    type: 'commit',
    pillar: 1,
    view: 3n,
    order: 5n,
    batchDigest: digest,
    cert: { ...cert(3n, 8n), prev: null },
    topCert: cert(0n, 6n, Counter.TOP),
    needReply: true,
  },
  {
    type: 'checkpoint',
    pillar: 0,
    order: 7n,
    stateDigest: digest,
    blockHash: digest,
    cert: t.certifyPlain(digest),
  },
  viewChange,
  { ...viewChange, stable: null, history: [], proofs: [] },
  {
    type: 'new-view',
    pillar: 1,
    view: 4n,
    viewChanges: [viewChange],
    batches: [prepare.batch, new Uint8Array(0)],
    cert: cert(4n, 1n),
  },
  { type: 'new-view-ack', pillar: 1, view: 4n, top: 6n, cert: cert(5n, 1n) },
  {
    type: 'accept',
    pillar: 1,
    view: 4n,
    vcsDigest: digest,
    firstOrder: 1n,
    top: 4n,
    slotDigests: [digest, digest],
    needReply: true,
    cert: t.certifyPlain(digest),
  },
];

describe('consensus message codecs', () => {
  for (const [i, m] of samples.entries()) {
    it(`round-trips a ${m.type} message (sample ${i})`, () => {
      const bytes = encodeMessage(m);
      const back = decodeMessage(bytes, config);
      assert.ok(back.ok, back.ok ? '' : back.error.message);
      assert.deepEqual(back.value, m);
      assert.deepEqual(encodeMessage(back.value), bytes);
    });
  }

  it('knows the exact encoded size of prepares and commits, with and without a previous counter value', () => {
    const withPrev = { ...prepare, cert: cert(3n, 7n), batch: new Uint8Array(5000).fill(7) };
    const sized = [...samples, withPrev].filter((m) => m.type === 'prepare' || m.type === 'commit');
    assert.ok(sized.length >= 3);
    for (const m of sized) assert.equal(messageEncodedBytes(m), encodeMessage(m).length, m.type);
  });

  it('hands out a prepare in a buffer of exactly its size', () => {
    const bytes = encodeMessage({ ...prepare, batch: new Uint8Array(5000).fill(7) });
    assert.equal(bytes.buffer.byteLength, bytes.length);
    assert.equal(bytes.byteOffset, 0);
  });

  it('encodes into a given writer after what it already holds, byte for byte as encodeMessage', () => {
    for (const m of samples) {
      const w = new Writer(4);
      w.u32(0xdeadbeef);
      encodeMessageInto(w, m);
      const out = w.finish();
      assert.deepEqual(out.subarray(0, 4), Uint8Array.of(0xde, 0xad, 0xbe, 0xef));
      assert.deepEqual(out.subarray(4), encodeMessage(m));
    }
  });

  it('rejects every truncation of every message with a typed error', () => {
    for (const m of samples) {
      const bytes = encodeMessage(m);
      for (let len = 0; len < bytes.length; len++) {
        const r = decodeMessage(bytes.subarray(0, len), config);
        assert.equal(r.ok, false);
        if (!r.ok) assert.ok(r.error instanceof DecodeError);
      }
    }
  });

  it('rejects trailing bytes, unknown tags, validators and pillars out of range', () => {
    const bytes = encodeMessage(prepare);
    const trailing = decodeMessage(new Uint8Array([...bytes, 0]), config);
    assert.ok(!trailing.ok && trailing.error.code === 'trailing-bytes');
    const badTag = decodeMessage(new Uint8Array([99, ...bytes.subarray(1)]), config);
    assert.ok(!badTag.ok && badTag.error.code === 'bad-tag');
    const badPillar = encodeMessage({ ...prepare, pillar: 2 });
    const r1 = decodeMessage(badPillar, config);
    assert.ok(!r1.ok && r1.error.code === 'bad-value');
    const badIssuer = encodeMessage({
      ...prepare,
      cert: { ...prepare.cert, issuer: { validator: 5, pillar: 1 } },
    });
    const r2 = decodeMessage(badIssuer, config);
    assert.ok(!r2.ok && r2.error.code === 'bad-value');
  });

  it('refuses an oversized batch before allocating it', () => {
    const big = encodeMessage({ ...prepare, batch: new Uint8Array(1025) });
    const r = decodeMessage(big, config);
    assert.ok(!r.ok && r.error.code === 'oversized');
    // A length prefix claiming 4 GiB in a tiny message.
    const lie = new Uint8Array([1, 0, 1, ...new Array(16).fill(0), 0xff, 0xff, 0xff, 0xff]);
    const r2 = decodeMessage(lie, config);
    assert.ok(!r2.ok && r2.error.code === 'oversized');
  });

  it('never throws on arbitrary or mutated bytes', () => {
    const encoded = samples.map(encodeMessage);
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 300 }),
          fc
            .tuple(
              fc.integer({ min: 0, max: encoded.length - 1 }),
              fc.nat(),
              fc.integer({ min: 0, max: 255 }),
            )
            .map(([i, at, x]) => {
              const b = encoded[i]!.slice();
              b[at % b.length] = x;
              return b;
            }),
        ),
        (bytes) => {
          const r = decodeMessage(bytes, config);
          if (!r.ok) assert.ok(r.error instanceof DecodeError);
        },
      ),
      { numRuns: 3000 },
    );
  });
});
