// Public surface of the Hybster consensus core. See docs/consensus.md.
export { AheadWrites } from './ahead-writes.js';
export {
  assertConfig,
  assertMessagesFit,
  batchBytesMaxFitting,
  type ConsensusConfig,
  DEFAULT_CONFIG,
  faults,
  firstOrderAtOrAbove,
  leaderOf,
  makeConfig,
  messageBytesMax,
} from './config.js';
export { Coordinator, Replica, type ReplicaOptions, type Routed } from './coordinator.js';
export { batchDigest, EMPTY_BATCH, sha256 } from './digest.js';
export {
  type Action,
  applyPersist,
  type Event,
  type PersistDelta,
  type PersistedEntry,
  type PillarSnapshot,
} from './events.js';
export {
  type Accept,
  type Checkpoint,
  type Commit,
  decodeMessage,
  encodeMessage,
  encodeMessageInto,
  fieldLimits,
  type Limits as FieldLimits,
  type Message,
  MessageTag,
  messageEncodedBytes,
  type NewView,
  type NewViewAck,
  type Prepare,
  peekPillar,
  readStable,
  readValue as readCounterValue,
  readViewProof,
  type StableProof,
  type ViewChange,
  type ViewProof,
  writeStable,
  writeValue as writeCounterValue,
  writeViewProof,
} from './messages.js';
export { PillarCore, type PillarOptions } from './pillar.js';
export {
  Counter,
  type CounterCert,
  type CounterId,
  type CounterValue,
  compareCounter,
  type Issuer,
  type PlainCert,
  SoftwareTrinx,
  type Trinx,
  type TrinxRefusal,
  type TrinxState,
} from './trinx.js';
