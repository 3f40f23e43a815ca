// Prometheus metrics of one validator, on a registry of its own (never the global
// one), so several validators in one process (tests) do not collide.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export interface NodeMetrics {
  registry: Registry;
  height: Gauge;
  view: Gauge;
  viewChanges: Counter;
  commitLatency: Histogram;
  mempoolSize: Gauge;
  mempoolBytes: Gauge;
  peers: Gauge;
  transportErrors: Counter<'code'>;
  txsCommitted: Counter;
  batchesCommitted: Counter;
  stateTransferBlocks: Counter;
  proposalsWithheld: Counter;
  preparesSentAhead: Counter;
  pillarThreads: Gauge;
  blockSignaturesVerified: Counter;
  certificatesRepaired: Counter;
  certificatesRefused: Counter;
  certificatesUnrepairable: Counter;
  vouchedHeld: Gauge;
  vouchedTxs: Counter<'outcome'>;
  gossipForged: Counter;
}

export function createMetrics(
  opts: { defaultMetrics?: boolean; labels?: Record<string, string> } = {},
): NodeMetrics {
  const registry = new Registry();
  if (opts.labels) registry.setDefaultLabels(opts.labels);
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'hybster_process_' });
  const registers = [registry];
  return {
    registry,
    height: new Gauge({ name: 'hybster_height', help: 'Height of the last block written', registers }),
    view: new Gauge({ name: 'hybster_view', help: 'Current consensus view', registers }),
    pillarThreads: new Gauge({
      name: 'hybster_pillar_threads',
      help: 'Pillars running in worker threads (0: all in the main thread)',
      registers,
    }),
    preparesSentAhead: new Counter({
      name: 'hybster_prepares_sent_ahead_total',
      help: "groups of a leader's messages sent while their consensus-state write was in flight (batch.sendAhead)",
      registers,
    }),
    proposalsWithheld: new Counter({
      name: 'hybster_proposals_withheld_total',
      help: "PREPAREs not committed because the leader's batch timestamp ran ahead of this clock",
      registers,
    }),
    viewChanges: new Counter({
      name: 'hybster_view_changes_total',
      help: 'Views entered after the first',
      registers,
    }),
    commitLatency: new Histogram({
      name: 'hybster_commit_latency_seconds',
      help: 'Time from a tx entering this mempool to its block being written',
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    mempoolSize: new Gauge({
      name: 'hybster_mempool_txs',
      help: 'Transactions waiting in the mempool',
      registers,
    }),
    mempoolBytes: new Gauge({
      name: 'hybster_mempool_bytes',
      help: 'Bytes waiting in the mempool',
      registers,
    }),
    peers: new Gauge({ name: 'hybster_peers', help: 'Validators with an authenticated channel', registers }),
    transportErrors: new Counter({
      name: 'hybster_transport_errors_total',
      help: 'Replica channel failures by kind',
      labelNames: ['code'],
      registers,
    }),
    txsCommitted: new Counter({
      name: 'hybster_txs_committed_total',
      help: 'Transactions in written blocks',
      registers,
    }),
    batchesCommitted: new Counter({
      name: 'hybster_blocks_written_total',
      help: 'Blocks written',
      registers,
    }),
    blockSignaturesVerified: new Counter({
      name: 'hybster_block_signatures_verified_total',
      help: "Peers' block signatures verified for commit certificates (f per block when all is well)",
      registers,
    }),
    certificatesRepaired: new Counter({
      name: 'hybster_certificates_repaired_total',
      help: 'Missing commit certificates of own blocks fetched from peers, verified and stored',
      registers,
    }),
    certificatesRefused: new Counter({
      name: 'hybster_certificates_refused_total',
      help: 'Certificates peers sent for repair that did not certify our own block (dropped)',
      registers,
    }),
    certificatesUnrepairable: new Counter({
      name: 'hybster_certificates_unrepairable_total',
      help: 'Heights whose missing commit certificate no peer gave after certRepair.attemptsMax requests (given up)',
      registers,
    }),
    vouchedHeld: new Gauge({
      name: 'hybster_vouched_held',
      help: 'Gossiped txs held unverified, waiting for a batch whose leader vouches for them too',
      registers,
    }),
    vouchedTxs: new Counter({
      name: 'hybster_vouched_txs_total',
      help:
        'Held gossiped txs by outcome: executed (two other validators vouched, not verified here), ' +
        'released (handed to verification after the hold: good ones enter the mempool), stale (released, but a block had used its nonce: dropped unverified)',
      labelNames: ['outcome'],
      registers,
    }),
    gossipForged: new Counter({
      name: 'hybster_gossip_forged_total',
      help: 'Gossiped txs whose signature did not verify: a correct validator gossips none, so each is evidence against its peer',
      registers,
    }),
    stateTransferBlocks: new Counter({
      name: 'hybster_state_transfer_blocks_total',
      help: 'Blocks fetched from peers by state transfer',
      registers,
    }),
  };
}
