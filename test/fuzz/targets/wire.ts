// The node's replica messages (tx gossip, block signatures, state transfer, certificate
// repair) and the RDMA transport's connection set-up messages: both arrive from peers, the
// latter before any authentication.
import fc from 'fast-check';
import { decodeWire, encodeWire, type WireLimits, type WireMessage } from '../../../node/wire.js';
import {
  type Accept,
  decodeAccept,
  decodeHello,
  encodeAccept,
  encodeHello,
  type Hello,
  RMA_TOKEN_BITS,
} from '../../../rdma-native/wire.js';
import { decoderTarget, type FuzzTarget } from '../harness.js';
import { concat } from '../mutate.js';

const LIMITS: WireLimits = { consensusBytesMax: 4096, blockBytesMax: 4096 };
const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const u32 = fc.nat({ max: 0xffffffff });
const bytes = (max: number) => fc.uint8Array({ maxLength: max });
const fixed = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });

const wireArb: fc.Arbitrary<WireMessage> = fc.oneof(
  fc.record({ type: fc.constant('consensus' as const), bytes: bytes(128) }),
  fc.record({ type: fc.constant('txs' as const), txs: fc.array(bytes(64), { maxLength: 5 }) }),
  fc.record({ type: fc.constant('block-sig' as const), height: u64, hash: fixed(32), signature: fixed(64) }),
  fc.record({
    type: fc.constant('blocks-request' as const),
    requestId: u32,
    fromHeight: u64,
    count: fc.nat({ max: 1024 }),
  }),
  fc.record({
    type: fc.constant('blocks-response' as const),
    requestId: u32,
    tipHeight: u64,
    blocks: fc.array(fc.record({ block: bytes(96), cert: fc.option(bytes(64), { nil: null }) }), {
      maxLength: 3,
    }),
  }),
  fc.record({ type: fc.constant('status' as const), height: u64, view: u64 }),
  fc.record({
    type: fc.constant('certs-request' as const),
    requestId: u32,
    heights: fc.array(u64, { maxLength: 8 }),
  }),
  fc.record({
    type: fc.constant('certs-response' as const),
    requestId: u32,
    certs: fc.array(bytes(96), { maxLength: 3 }),
  }),
);

const ring = fc.record({
  addr: u64,
  key: u64,
  token: fc.bigInt({ min: 0n, max: (1n << RMA_TOKEN_BITS) - 1n }),
  bytes: u32,
});
const helloArb: fc.Arbitrary<Hello> = fc.record({
  connId: u32,
  dataPath: fc.constantFrom('rma' as const, 'msg' as const),
  msgCredits: u32,
  ring,
  name: bytes(64),
});
const acceptArb: fc.Arbitrary<Accept> = fc.record({
  clientConnId: u32,
  serverConnId: u32,
  msgCredits: u32,
  ring,
});

// The routing header ([type u8][dst u32] for HELLO, [type u8] for ACCEPT) is read by the
// dispatcher, not the decoder; the targets fuzz what follows it.
const HELLO_HEADER = encodeHello({
  connId: 0,
  dataPath: 'msg',
  msgCredits: 0,
  ring: { addr: 0n, key: 0n, token: 0n, bytes: 0 },
  name: new Uint8Array(),
}).subarray(0, 5);
const ACCEPT_HEADER = Uint8Array.of(2);

export const wireTargets: FuzzTarget[] = [
  decoderTarget({
    name: 'node.replica-message',
    valid: wireArb.map(encodeWire),
    inputBytesMax: Math.max(LIMITS.blockBytesMax * 2, 1 << 20) * 4,
    decode: (b) => decodeWire(b, LIMITS),
    encode: encodeWire,
    // Documented: a consensus payload is a view into the (already private) frame.
    returnsViews: true,
  }),
  decoderTarget({
    name: 'rdma.hello',
    valid: helloArb.map((h) => encodeHello(h).subarray(5)),
    inputBytesMax: 2048 - 5,
    decode: (b) => decodeHello(concat(HELLO_HEADER, b)),
    encode: (h) => encodeHello(h).subarray(5),
  }),
  decoderTarget({
    name: 'rdma.accept',
    valid: acceptArb.map((a) => encodeAccept(a).subarray(1)),
    inputBytesMax: 2048 - 1,
    decode: (b) => decodeAccept(concat(ACCEPT_HEADER, b)),
    encode: (a) => encodeAccept(a).subarray(1),
  }),
];
