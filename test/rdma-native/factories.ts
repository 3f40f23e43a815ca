// Transport factories for the conformance suite (test/node/transport/conformance.ts) and
// this folder's peer processes: a compiled module both the test and its child processes
// import, so each process builds its own transport from the same configuration.
import type { TransportLimits } from '../../node/transport/types.js';
import { RdmaTransport, type RdmaTransportOptions } from '../../rdma-native/transport.js';

/** Peers are declared lost quickly in tests (the defaults suit real networks). */
const TEST_TIMING = { heartbeatMs: 250, peerTimeoutMs: 4_000, connectTimeoutMs: 3_000 } as const;

const make =
  (options: RdmaTransportOptions) =>
  (limits: Partial<TransportLimits> = {}): RdmaTransport =>
    new RdmaTransport({ ...TEST_TIMING, ...options, limits: { ...options.limits, ...limits } });

export const rdmaTcpRmaThread = make({ provider: 'tcp;ofi_rxm', dataPath: 'rma', completion: 'thread' });
export const rdmaTcpMsgBusy = make({ provider: 'tcp;ofi_rxm', dataPath: 'msg', completion: 'busy-poll' });
export const rdmaShmRmaThread = make({ provider: 'shm', dataPath: 'rma', completion: 'thread' });
export const rdmaShmMsgBusy = make({ provider: 'shm', dataPath: 'msg', completion: 'busy-poll' });
