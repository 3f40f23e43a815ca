// The RDMA transport over libfabric (see transport.ts) and the availability probe the
// node uses to fall back to TCP.
export { type NativeEvent, type RdmaAvailability, rdmaAvailable } from './native.js';
export {
  type CompletionMode,
  type DataPath,
  RDMA_LIMITS_DEFAULT,
  RdmaConnection,
  type RdmaLimits,
  type RdmaProvider,
  RdmaTransport,
  type RdmaTransportOptions,
  type RdmaViolation,
  rmaSafe,
} from './transport.js';
export { formatEndpoint, parseEndpoint } from './wire.js';
