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

/** The node's configuration: rma asked for (msg runs over tcp, see rmaSafe), event-loop completions. */
export const rdmaTcpRmaEventLoop = make({
  provider: 'tcp;ofi_rxm',
  dataPath: 'rma',
  completion: 'event-loop',
});
export const rdmaTcpRmaThread = make({ provider: 'tcp;ofi_rxm', dataPath: 'rma', completion: 'thread' });
export const rdmaTcpMsgThread = make({ provider: 'tcp;ofi_rxm', dataPath: 'msg', completion: 'thread' });
export const rdmaShmRmaThread = make({ provider: 'shm', dataPath: 'rma', completion: 'thread' });
export const rdmaShmMsgThread = make({ provider: 'shm', dataPath: 'msg', completion: 'thread' });
/** Busy-poll spins a core per process: used where one side polls (violations, lifecycle, bench). */
export const rdmaTcpRmaBusy = make({ provider: 'tcp;ofi_rxm', dataPath: 'rma', completion: 'busy-poll' });
