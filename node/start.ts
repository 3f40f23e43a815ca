// `hybster start`: runs one validator from its home directory until SIGINT/SIGTERM.
// Order matters: refuse bad config, keys and data before opening anything; listen on
// the replica transport before discovery publishes the endpoint; start the API last,
// so the node answers only once it can work; shut down in reverse, letting the block
// being written finish.
import { existsSync, readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { createApiServer } from '../api/server.js';
import { assertMessagesFit } from '../consensus/index.js';
import { assertDataDirIntact } from '../ledger/integrity.js';
import { keyPairFromSeed } from '../ledger/keys.js';
import { LedgerStore } from '../ledger/store.js';
import { loadChainSpec, parseTrinxKey, parseValidatorKey } from './chain-spec.js';
import { ConfigError, type LoadedConfig, loadConfig, transportListenEndpoint } from './config.js';
import { Discovery } from './discovery.js';
import { createLogger, type Logger } from './logging.js';
import { createMetrics } from './metrics.js';
import { ReplicaNetwork } from './replicas.js';
import { readKeyFile } from './security/keyfile.js';
import { FRAME_OVERHEAD_BYTES, TcpTransport } from './transport/index.js';
import type { Transport } from './transport/types.js';
import { Validator } from './validator.js';
import { WIRE_TAG_BYTES } from './wire.js';

export class StartError extends Error {
  override readonly name = 'StartError';
}

export interface RunningValidator {
  validator: Validator;
  log: Logger;
  apiUrl: string | null;
  transportEndpoint: string;
  p2pAddrs: string[];
  /** Graceful stop: API, consensus (finishing the block being written), network, store. */
  stop(): Promise<void>;
}

async function makeTransport(loaded: LoadedConfig): Promise<Transport> {
  const t = loaded.config.transport;
  const limits = { messageBytesMax: t.messageBytesMax, sendQueueBytesMax: t.sendQueueBytesMax };
  if (t.kind === 'tcp') return new TcpTransport({ limits });
  const rdma = await import('../rdma-native/index.js');
  const avail = rdma.rdmaAvailable();
  if (!avail.ok)
    throw new StartError(`transport.kind is rdma but the RDMA addon is unavailable: ${avail.reason}`);
  return new rdma.RdmaTransport({
    provider: t.provider as 'tcp;ofi_rxm' | 'shm' | 'verbs;ofi_rxm' | 'auto',
    dataPath: t.dataPath,
    completion: t.completion,
    ...(t.spinUs !== undefined ? { spinUs: t.spinUs } : {}),
    limits,
  });
}

/** Starts a validator; resolves once it is running (API listening when enabled). */
export async function startValidator(opts: {
  home: string;
  flags?: Record<string, unknown>;
  env?: NodeJS.ProcessEnv;
  /** Log destination (default stdout). */
  logDestination?: NodeJS.WritableStream;
  /** The validator stopped itself on an error it cannot continue past (see Validator onFatal). */
  onFatal?: (reason: string) => void;
}): Promise<RunningValidator> {
  const loaded = loadConfig({
    home: opts.home,
    flags: opts.flags ?? {},
    ...(opts.env ? { env: opts.env } : {}),
  });
  const cfg = loaded.config;
  const genesisPath = loaded.resolve(cfg.genesisFile);
  if (!existsSync(genesisPath)) throw new StartError(`genesis file not found: ${genesisPath}`);
  const spec = loadChainSpec(readFileSync(genesisPath, 'utf8'), genesisPath);
  const trinxKeyPath = loaded.resolve(cfg.trinxKeyFile);
  if (!existsSync(trinxKeyPath)) {
    throw new StartError(
      `TrInX key not found: ${trinxKeyPath}. Every validator of a network holds the same software TrInX key ` +
        '(`hybster testnet` writes it to each home); copy it from the network operator over a private channel.',
    );
  }
  spec.trinxKey = parseTrinxKey(await readKeyFile(trinxKeyPath), trinxKeyPath);

  const keyPath = loaded.resolve(cfg.keyFile);
  // Refuses a key file others can read (node/security), before it is parsed.
  const keyBytes = await readKeyFile(keyPath);
  const seed = parseValidatorKey(keyBytes, keyPath);
  const kp = keyPairFromSeed(seed);
  const byKey = spec.validators.findIndex(
    (v) => Buffer.compare(Buffer.from(v.publicKey), Buffer.from(kp.publicKey)) === 0,
  );
  if (byKey < 0) throw new StartError(`the key in ${keyPath} is not a validator key of this genesis`);
  if (cfg.validatorIndex !== undefined && cfg.validatorIndex !== byKey) {
    throw new StartError(
      `config validatorIndex ${cfg.validatorIndex} does not match the key file (validator ${byKey})`,
    );
  }
  const selfId = byKey;

  const log = createLogger({
    level: cfg.log.level,
    format: cfg.log.format,
    base: { validator: selfId },
    ...(opts.logDestination ? { destination: opts.logDestination } : {}),
  });

  // The largest consensus message (a NEW-VIEW at a full window of full batches) must fit
  // one replica frame, or a view change could need a message no transport can carry.
  try {
    assertMessagesFit(spec.consensus, cfg.transport.messageBytesMax - FRAME_OVERHEAD_BYTES - WIRE_TAG_BYTES);
  } catch (e) {
    throw new StartError(
      `genesis consensus parameters do not fit transport.messageBytesMax (${cfg.transport.messageBytesMax}): ${(e as Error).message}`,
    );
  }
  const dataDir = loaded.resolve(cfg.dataDir);
  if (existsSync(dataDir)) {
    // Refuses a damaged database with the recovery commands in the message (ledger/integrity).
    await assertDataDirIntact(dataDir, { genesisHash: spec.hash, home: opts.home });
  }
  const store = await LedgerStore.open(dataDir, {
    genesisHash: spec.hash,
    genesisAccounts: spec.accounts,
    genesisTimeMs: spec.genesisTimeMs,
  });

  const metrics = createMetrics({ labels: { validator: String(selfId) } });
  let transport: Transport;
  try {
    transport = await makeTransport(loaded);
  } catch (e) {
    await store.close();
    throw e;
  }
  let validator: Validator | null = null;
  const net = new ReplicaNetwork({
    selfId,
    secretKey: kp.secretKey,
    validators: spec.validators.map((v) => ({ id: v.id, publicKey: v.publicKey })),
    genesisHash: spec.hash,
    transport,
    payloadBytesMax: cfg.transport.messageBytesMax - FRAME_OVERHEAD_BYTES,
    rateLimit: {
      messagesPerSecondMax: cfg.transport.peerMessagesPerSecondMax,
      bytesPerSecondMax: cfg.transport.peerBytesPerSecondMax,
    },
    log,
    metrics,
    onMessages: (from, batch) => validator?.onReplicaMessages(from, batch),
  });
  const transportEndpoint = await net.listen(transportListenEndpoint(cfg));
  validator = new Validator({
    spec,
    selfId,
    secretKey: kp.secretKey,
    store,
    network: net,
    log,
    metrics,
    mempool: cfg.mempool,
    vouch: cfg.vouch,
    batch: cfg.batch,
    blocksPerRequest: cfg.stateTransfer.blocksPerRequest,
    servingPerPeerMax: cfg.stateTransfer.servingPerPeerMax,
    pillarThreads: cfg.consensus.pillarThreads,
    fusedWriteBatchBytesMax: cfg.batch.fusedWriteBytesMax,
    sendAhead: cfg.batch.sendAhead,
    certRepair: {
      startScanHeights: cfg.certRepair.startScanHeights,
      scanPerTickMax: cfg.certRepair.scanPerTickMax,
      missingMax: cfg.certRepair.missingMax,
      heightsPerRequestMax: cfg.certRepair.heightsPerRequestMax,
      requestIntervalMs: cfg.certRepair.requestIntervalMs,
      attemptsMax: cfg.certRepair.attemptsMax,
    },
    certRequestsServedPerSecMax: cfg.certRepair.servedRequestsPerSecMax,
    certHeightsServedPerSecMax: cfg.certRepair.servedHeightsPerSecMax,
    onFatal: (reason) => opts.onFatal?.(reason),
  });
  await validator.start();
  for (const v of spec.validators) {
    const e = v.endpoints[cfg.transport.kind];
    if (v.id !== selfId && e) net.setEndpoint(v.id, e);
  }

  let discovery: Discovery | null = null;
  if (cfg.p2p.enabled) {
    discovery = new Discovery({
      seed,
      selfIndex: selfId,
      chainId: spec.chainId,
      validatorKeys: spec.validators.map((v) => v.publicKey),
      transportKind: cfg.transport.kind,
      endpoint: () => transportEndpoint,
      listen: cfg.p2p.listen,
      // Genesis lists each validator's libp2p addresses; config may add more.
      bootstrap: [
        ...cfg.p2p.bootstrap,
        ...spec.validators
          .filter((v) => v.id !== selfId && v.peerId)
          .flatMap((v) => v.libp2p.map((a) => `${a}/p2p/${v.peerId}`)),
      ],
      mdns: cfg.p2p.mdns,
      refreshMs: cfg.p2p.refreshMs,
      settledRefreshMs: cfg.p2p.settledRefreshMs,
      log,
      onEndpoint: (v, e) => net.setEndpoint(v, e),
    });
    await discovery.start();
  }

  let api: FastifyInstance | null = null;
  let apiUrl: string | null = null;
  if (cfg.api.enabled) {
    api = await createApiServer({
      node: validator,
      logger: log.child({ component: 'api' }, { level: 'warn' }),
      rateLimit: cfg.api.rateLimitMax > 0 ? { max: cfg.api.rateLimitMax, windowMs: 1000 } : false,
      limits: { connectionsMax: cfg.api.connectionsMax },
    });
    await api.listen({ host: cfg.api.host, port: cfg.api.port });
    const addr = api.server.address();
    const port = typeof addr === 'object' && addr ? addr.port : cfg.api.port;
    apiUrl = `http://${cfg.api.host}:${port}`;
  }

  log.info(
    {
      name: spec.validators[selfId]?.name,
      chainId: spec.chainId,
      transport: cfg.transport.kind,
      endpoint: transportEndpoint,
      peerId: discovery?.peerId,
      p2p: discovery?.addresses,
      api: apiUrl,
      explorer: apiUrl ? `${apiUrl}/` : undefined,
      height: Number(store.latestHeight()),
      sources: loaded.sources,
    },
    `validator ${selfId} of ${spec.validators.length} running`,
  );

  let stopping: Promise<void> | null = null;
  const v = validator;
  const stop = (): Promise<void> => {
    if (stopping) return stopping;
    stopping = (async () => {
      log.info('shutting down: finishing the block being written');
      if (api) await api.close().catch(() => {});
      await v.stop(cfg.shutdown.graceMs);
      if (discovery) await discovery.stop().catch(() => {});
      await net.close().catch(() => {});
      // close() writes the certificates no block batch carried yet: a failure loses them.
      await store
        .close()
        .catch((e: Error) => log.error({ err: e.message }, 'closing the ledger store failed'));
      log.info({ height: Number(store.latestHeight()) }, 'stopped');
    })();
    return stopping;
  };
  return {
    validator,
    log,
    apiUrl,
    transportEndpoint,
    p2pAddrs: discovery?.addresses ?? [],
    stop,
  };
}

/** Runs until a signal; exits the process. Prints config errors plainly (no stack). */
export async function runStart(home: string, flags: Record<string, unknown>): Promise<void> {
  let running: RunningValidator | undefined;
  // Exit non-zero so a supervisor (systemd, Docker's restart policy) starts it again: a
  // restart resumes from the durable state, e.g. once a full disk has space again.
  const onFatal = (): void => {
    setTimeout(() => process.exit(1), 10_000).unref(); // a stop stuck on a broken disk
    void (running?.stop() ?? Promise.resolve()).finally(() => process.exit(1));
  };
  try {
    running = await startValidator({ home, flags, onFatal });
  } catch (e) {
    const known = e instanceof ConfigError || e instanceof StartError || (e as Error).name?.endsWith('Error');
    process.stderr.write(
      `hybster start: ${known ? (e as Error).message : String((e as Error).stack ?? e)}\n`,
    );
    process.exit(1);
  }
  const started = running;
  const onSignal = (sig: NodeJS.Signals): void => {
    started.log.info({ signal: sig }, 'signal received');
    // A second signal while stopping exits at once.
    process.once(sig, () => process.exit(130));
    void started.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
}
