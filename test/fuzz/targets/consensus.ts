// Consensus messages: what a Byzantine validator can put inside an authenticated frame.
// A small configuration keeps the codec's limits (history, batch bytes) within
// reach of the generator, so mutations hit every bound.
import fc from 'fast-check';
import { makeConfig, messageBytesMax } from '../../../consensus/config.js';
import {
  type Accept,
  type Checkpoint,
  type Commit,
  decodeMessage,
  encodeMessage,
  type Message,
  type NewView,
  type NewViewAck,
  type Prepare,
  type StableProof,
  type ViewChange,
  type ViewProof,
} from '../../../consensus/messages.js';
import type { CounterCert, CounterId, CounterValue, PlainCert } from '../../../consensus/trinx.js';
import { decoderTarget, type FuzzTarget } from '../harness.js';

export const FUZZ_CONSENSUS_CONFIG = makeConfig({
  n: 3,
  pillars: 2,
  window: 8,
  checkpointInterval: 2,
  batchBytesMax: 1024,
});
const C = FUZZ_CONSENSUS_CONFIG;
const HISTORY_MAX = C.window / C.pillars;

const u64 = fc.oneof(fc.bigInt({ min: 0n, max: 64n }), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }));
const digest = fc.uint8Array({ minLength: 32, maxLength: 32 });
const pillar = fc.nat({ max: C.pillars - 1 });
const issuer = fc.record({ validator: fc.nat({ max: C.n - 1 }), pillar });
const value: fc.Arbitrary<CounterValue> = fc.record({ view: u64, order: u64 });
const counterCert: fc.Arbitrary<CounterCert> = fc.record({
  issuer,
  counter: fc.constantFrom<CounterId>(0, 1, 2, 3),
  prev: fc.option(value, { nil: null }),
  value,
  mac: digest,
});
const plainCert: fc.Arbitrary<PlainCert> = fc.record({ issuer, mac: digest });

const prepare: fc.Arbitrary<Prepare> = fc.record({
  type: fc.constant('prepare' as const),
  pillar,
  view: u64,
  order: u64,
  batch: fc.uint8Array({ maxLength: 64 }),
  cert: counterCert,
  topCert: counterCert,
});
const commit: fc.Arbitrary<Commit> = fc.record({
  type: fc.constant('commit' as const),
  pillar,
  view: u64,
  order: u64,
  batchDigest: digest,
  cert: counterCert,
  topCert: counterCert,
  needReply: fc.boolean(),
});
const checkpoint: fc.Arbitrary<Checkpoint> = fc.record({
  type: fc.constant('checkpoint' as const),
  pillar,
  order: u64,
  stateDigest: digest,
  blockHash: digest,
  cert: plainCert,
});
const stable: fc.Arbitrary<StableProof> = fc.record({
  order: u64,
  stateDigest: digest,
  blockHash: digest,
  certs: fc.array(plainCert, { maxLength: C.n }),
});
const viewProof: fc.Arbitrary<ViewProof> = fc.record({
  view: u64,
  vcsDigest: digest,
  firstOrder: u64,
  top: u64,
  slotDigests: fc.array(digest, { maxLength: HISTORY_MAX }),
  certs: fc.array(plainCert, { maxLength: C.n }),
});
const viewChange: fc.Arbitrary<ViewChange> = fc.record({
  type: fc.constant('view-change' as const),
  pillar,
  toView: u64,
  top: u64,
  stable: fc.option(stable, { nil: null }),
  history: fc.array(prepare, { maxLength: HISTORY_MAX }),
  proofs: fc.array(viewProof, { maxLength: 2 }),
  link: counterCert,
  proof: counterCert,
});
const newView: fc.Arbitrary<NewView> = fc.record({
  type: fc.constant('new-view' as const),
  pillar,
  view: u64,
  viewChanges: fc.array(viewChange, { maxLength: 2 }),
  batches: fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: HISTORY_MAX }),
  cert: counterCert,
});
const accept: fc.Arbitrary<Accept> = fc.record({
  type: fc.constant('accept' as const),
  pillar,
  view: u64,
  vcsDigest: digest,
  firstOrder: u64,
  top: u64,
  slotDigests: fc.array(digest, { maxLength: HISTORY_MAX }),
  needReply: fc.boolean(),
  cert: plainCert,
});
const newViewAck: fc.Arbitrary<NewViewAck> = fc.record({
  type: fc.constant('new-view-ack' as const),
  pillar,
  view: u64,
  top: u64,
  cert: counterCert,
});

export const messageArb: fc.Arbitrary<Message> = fc.oneof(
  prepare,
  commit,
  checkpoint,
  viewChange,
  newView,
  newViewAck,
  accept,
);

export const consensusTargets: FuzzTarget[] = [
  decoderTarget({
    name: 'consensus.message',
    valid: messageArb.map(encodeMessage),
    inputBytesMax: messageBytesMax(C),
    decode: (b) => decodeMessage(b, C),
    encode: encodeMessage,
  }),
];
