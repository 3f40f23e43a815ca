// The shared transport conformance suite (1M messages in order from another process,
// messages up to the frame limit, a bounded send queue against a slow receiver, peer
// crash and reconnect) over both libfabric providers that run here, covering both data
// paths (rma on shm only: over tcp;ofi_rxm a transport asked for rma runs msg, see rmaSafe),
// the event loop (tcp;ofi_rxm: what the node runs) and the progress thread (the rest; shm
// has no wait fd, so its event-loop mode is the thread). Busy-poll runs in
// the completion, violation and lifecycle tests
// (one polling process at a time): two processes spinning on this shared 2-core
// machine starve each other and the 1M-message test then misses its deadline.
import { describeTransportConformance } from '../node/transport/conformance.js';
import { requireRdma } from './require-rdma.js';

const factories = new URL('./factories.js', import.meta.url).href;

describe('rdma-native over libfabric', () => {
  before(function () {
    requireRdma(this);
  });
  describeTransportConformance(
    'rdma tcp;ofi_rxm, event loop, rma asked for (the node default; the msg path runs)',
    {
      moduleUrl: factories,
      exportName: 'rdmaTcpRmaEventLoop',
      listenEndpoint: 'rdma+tcp;ofi_rxm://127.0.0.1:0',
    },
  );
  describeTransportConformance('rdma shm, rma path, progress thread', {
    moduleUrl: factories,
    exportName: 'rdmaShmRmaThread',
    listenEndpoint: 'rdma+shm://',
  });
  describeTransportConformance('rdma tcp;ofi_rxm, msg path, progress thread', {
    moduleUrl: factories,
    exportName: 'rdmaTcpMsgThread',
    listenEndpoint: 'rdma+tcp;ofi_rxm://127.0.0.1:0',
  });
  describeTransportConformance('rdma shm, msg path, progress thread', {
    moduleUrl: factories,
    exportName: 'rdmaShmMsgThread',
    listenEndpoint: 'rdma+shm://',
  });
});
