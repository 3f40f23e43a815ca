// The fuzz-target registry: every decoder of untrusted bytes in the project.
// Add a target here when a decoder lands; the CLI and the mocha test pick it up.
import type { FuzzTarget } from '../harness.js';
import { binaryTargets } from './binary.js';
import { consensusTargets } from './consensus.js';
import { handshakeTargets } from './handshake.js';
import { ledgerTargets } from './ledger.js';
import { leveldbTargets } from './leveldb.js';
import { transportTargets } from './transport.js';
import { wireTargets } from './wire.js';

export function allTargets(): FuzzTarget[] {
  return [
    ...binaryTargets,
    ...ledgerTargets,
    ...consensusTargets,
    ...transportTargets,
    ...wireTargets,
    ...handshakeTargets,
    ...leveldbTargets,
  ];
}
