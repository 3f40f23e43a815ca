// Validator configuration: <home>/config.json, then HYBSTER_* environment variables,
// then command-line flags, each overriding the one before. Every setting is declared
// once in SETTINGS (path, env name, flag, parser), which drives the env/flag layers
// and the operator docs, and the merged object is validated by one zod schema so a
// mistake anywhere is reported with the setting's name and where it came from.
import { readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { z } from 'zod';
import {
  CERT_HEIGHTS_SERVED_PER_SEC,
  CERT_REPAIR_DEFAULTS,
  CERT_REQUESTS_SERVED_PER_SEC,
} from './cert-repair.js';
import { VOUCH_DEFAULTS } from './vouched-txs.js';
import { CERTS_PER_REQUEST_MAX } from './wire.js';

export const configSchema = z
  .object({
    /** Index of this validator in genesis (0..n-1); when absent it is found by matching the key file's public key. */
    validatorIndex: z.number().int().min(0).optional(),
    /** LevelDB directory, relative to home unless absolute. */
    dataDir: z.string().min(1).default('data'),
    genesisFile: z.string().min(1).default('genesis.json'),
    keyFile: z.string().min(1).default('keys/validator.key'),
    /**
     * The software TrInX's key, shared by all validators of the network and by nobody else
     * (not in genesis: genesis is public). A hardware TrInX keeps it sealed instead.
     */
    trinxKeyFile: z.string().min(1).default('keys/trinx.key'),
    transport: z
      .object({
        kind: z.enum(['tcp', 'rdma']).default('tcp'),
        /**
         * Where the replica transport listens: host:port (tcp, or rdma with `provider`), or a
         * full rdma+<provider>://host:port. Port 0 picks a free one (published through discovery).
         */
        listen: z.string().min(1).max(256).default('127.0.0.1:0'),
        /** libfabric provider for kind=rdma (e.g. "tcp;ofi_rxm", "verbs;ofi_rxm", "shm"). */
        provider: z.string().min(1).default('tcp;ofi_rxm'),
        /**
         * kind=rdma: one-sided writes into a per-peer ring (rma) or two-sided send/recv (msg).
         * Over tcp;ofi_rxm the transport runs msg whatever is asked (rdma-native rmaSafe).
         */
        dataPath: z.enum(['rma', 'msg']).default('rma'),
        /**
         * kind=rdma: how completions reach the node. event-loop (libuv watches the completion
         * queue's fd: one wake-up per burst, nothing when idle), thread (a native progress
         * thread), busy-poll (lowest latency, burns a core while busy).
         */
        completion: z.enum(['event-loop', 'thread', 'busy-poll']).default('event-loop'),
        /** kind=rdma: µs to keep spinning after the last completion before parking (busy-poll, thread). */
        spinUs: z.number().int().min(0).max(1_000_000).optional(),
        messageBytesMax: z
          .number()
          .int()
          .min(64 * 1024)
          .max(256 * 1024 * 1024)
          .default(16 * 1024 * 1024),
        sendQueueBytesMax: z
          .number()
          .int()
          .min(64 * 1024)
          .default(64 * 1024 * 1024),
        /** A peer sending more than this (over a one-second burst) is cut off and penalized. */
        peerMessagesPerSecondMax: z.number().int().min(100).default(100_000),
        peerBytesPerSecondMax: z
          .number()
          .int()
          .min(1024 * 1024)
          .default(256 * 1024 * 1024),
      })
      .strict()
      .prefault({}),
    api: z
      .object({
        enabled: z.boolean().default(true),
        host: z.string().min(1).default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(7000),
        /** Requests per second per client IP; 0 disables the limit (benchmarks on one host). */
        rateLimitMax: z.number().int().min(0).default(2000),
        /** Open API connections at once (keep-alive and SSE included); more are closed on arrival. */
        connectionsMax: z.number().int().min(1).max(1_000_000).default(1024),
      })
      .strict()
      .prefault({}),
    p2p: z
      .object({
        enabled: z.boolean().default(true),
        /** libp2p listen multiaddr (TCP). */
        listen: z.string().min(1).default('/ip4/127.0.0.1/tcp/0'),
        /** libp2p multiaddrs of other validators (with /p2p/<peerId>). */
        bootstrap: z.array(z.string().min(1)).max(256).default([]),
        mdns: z.boolean().default(true),
        /** How often an endpoint is re-asked from connected peers, ms. */
        refreshMs: z.number().int().min(100).max(600_000).default(2000),
        /** The same once every validator is connected and has answered (steady state), ms. */
        settledRefreshMs: z.number().int().min(100).max(3_600_000).default(30_000),
      })
      .strict()
      .prefault({}),
    mempool: z
      .object({
        txCountMax: z.number().int().min(1).max(10_000_000).default(100_000),
        bytesMax: z
          .number()
          .int()
          .min(1024)
          .default(64 * 1024 * 1024),
      })
      .strict()
      .prefault({}),
    batch: z
      .object({
        /** How long the leader waits for more txs before cutting a non-full batch, ms. */
        delayMs: z.number().min(0).max(1000).default(0),
        /** Batches the leader keeps in flight (proposed, not yet committed). */
        inflightMax: z.number().int().min(1).max(1024).default(8),
        /**
         * A follower at low load writes a committed batch up to this size together with its
         * consensus state, one fsync instead of two (0: never), bytes.
         */
        fusedWriteBytesMax: z
          .number()
          .int()
          .min(0)
          .max(64 * 1024 * 1024)
          .default(8 * 1024),
        /**
         * The leader sends its PREPARE while the write of it is still in flight (one pillar
         * in the main thread only). Off by default: a crashed leader then restarts unable to
         * help form a view change until it caught up, so a leader crash beside one faulty
         * replica stalls the network; docs/consensus.md, "Sending ahead of the write".
         */
        sendAhead: z.boolean().default(false),
      })
      .strict()
      .prefault({}),
    stateTransfer: z
      .object({
        /** Blocks asked for in one request. */
        blocksPerRequest: z.number().int().min(1).max(1024).default(64),
        /** Block requests served at once for one peer; more are dropped (the peer retries). */
        servingPerPeerMax: z.number().int().min(1).max(64).default(2),
      })
      .strict()
      .prefault({}),
    certRepair: z
      .object({
        /** On start, how many heights below the tip are checked for a missing certificate. */
        startScanHeights: z
          .number()
          .int()
          .min(0)
          .max(1_000_000)
          .default(CERT_REPAIR_DEFAULTS.startScanHeights),
        /** Heights checked per 100 ms tick (each may be a synchronous point read). */
        scanPerTickMax: z.number().int().min(1).max(4096).default(CERT_REPAIR_DEFAULTS.scanPerTickMax),
        /** Heights known to lack a certificate, at most (the scan waits while full). */
        missingMax: z.number().int().min(1).max(65_536).default(CERT_REPAIR_DEFAULTS.missingMax),
        /** Heights asked for in one certs-request. */
        heightsPerRequestMax: z
          .number()
          .int()
          .min(1)
          .max(CERTS_PER_REQUEST_MAX)
          .default(CERT_REPAIR_DEFAULTS.heightsPerRequestMax),
        /** Shortest time between two certs-requests, ms. */
        requestIntervalMs: z
          .number()
          .int()
          .min(10)
          .max(60_000)
          .default(CERT_REPAIR_DEFAULTS.requestIntervalMs),
        /** Requests that did not bring a height before it is given up. */
        attemptsMax: z.number().int().min(1).max(1000).default(CERT_REPAIR_DEFAULTS.attemptsMax),
        /** certs-requests served per peer and second; more are dropped. */
        servedRequestsPerSecMax: z.number().int().min(1).max(1000).default(CERT_REQUESTS_SERVED_PER_SEC),
        /** Heights looked up for one peer per second; the rest go unanswered. */
        servedHeightsPerSecMax: z.number().int().min(1).max(100_000).default(CERT_HEIGHTS_SERVED_PER_SEC),
      })
      .strict()
      .prefault({}),
    vouch: z
      .object({
        /**
         * With f = 1, a follower holds a tx gossiped by another follower unverified and
         * executes it without verifying once the leader's own batch orders it: the gossiping
         * follower and the leader both vouch for it (docs/consensus.md, "Vouched signatures").
         */
        enabled: z.boolean().default(VOUCH_DEFAULTS.enabled),
        /** How long a held tx waits for a batch before it is verified after all, ms. */
        holdMs: z.number().int().min(10).max(60_000).default(VOUCH_DEFAULTS.holdMs),
        /** Held txs at most (past it gossip is verified at once). */
        txCountMax: z.number().int().min(1).max(10_000_000).default(VOUCH_DEFAULTS.txCountMax),
        /** Held bytes at most. */
        bytesMax: z
          .number()
          .int()
          .min(1024)
          .max(1024 * 1024 * 1024)
          .default(VOUCH_DEFAULTS.bytesMax),
      })
      .strict()
      .prefault({}),
    log: z
      .object({
        level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
        /** pretty = one readable line per event (terminals); json = pino's structured lines. */
        format: z.enum(['json', 'pretty']).default('json'),
      })
      .strict()
      .prefault({}),
    metrics: z
      .object({
        enabled: z.boolean().default(true),
      })
      .strict()
      .prefault({}),
    shutdown: z
      .object({
        /** Longest wait for the block being written before exiting anyway, ms. */
        graceMs: z.number().int().min(0).max(120_000).default(10_000),
      })
      .strict()
      .prefault({}),
    consensus: z
      .object({
        /**
         * auto: with P > 1 pillars (from genesis) each pillar runs in a worker thread and the
         * coordinator on the main thread; off: all pillars in the main thread. P = 1 never uses one.
         */
        pillarThreads: z.enum(['auto', 'off']).default('auto'),
      })
      .strict()
      .prefault({}),
  })
  // Unknown top-level keys are tolerated (the genesis generator may add fields of its
  // own); unknown keys in known sections are refused, since they are most likely typos.
  .loose();

export type NodeConfig = z.output<typeof configSchema>;

/** The listen endpoint in the form the configured transport expects. */
export function transportListenEndpoint(c: NodeConfig): string {
  const l = c.transport.listen;
  if (c.transport.kind === 'rdma')
    return l.startsWith('rdma+') ? l : `rdma+${c.transport.provider}://${l.replace(/^tcp:\/\//, '')}`;
  return l;
}
export type NodeConfigInput = z.input<typeof configSchema>;

type Kind = 'int' | 'number' | 'bool' | 'string' | 'list' | 'enum';

export interface SettingSpec {
  /** Dotted path in config.json. */
  path: string;
  kind: Kind;
  description: string;
}

/** Every setting an operator can change by env or flag; config.json accepts the same paths. */
export const SETTINGS: readonly SettingSpec[] = [
  { path: 'validatorIndex', kind: 'int', description: 'index of this validator in genesis' },
  { path: 'dataDir', kind: 'string', description: 'LevelDB directory (relative to home)' },
  { path: 'genesisFile', kind: 'string', description: 'genesis file (relative to home)' },
  { path: 'keyFile', kind: 'string', description: 'validator key file (relative to home)' },
  { path: 'trinxKeyFile', kind: 'string', description: 'software TrInX key file (relative to home)' },
  { path: 'transport.kind', kind: 'enum', description: 'replica transport: tcp or rdma' },
  { path: 'transport.listen', kind: 'string', description: 'replica transport listen host:port' },
  { path: 'transport.provider', kind: 'string', description: 'libfabric provider for rdma' },
  { path: 'transport.messageBytesMax', kind: 'int', description: 'largest replica message, bytes' },
  { path: 'transport.dataPath', kind: 'enum', description: 'rdma data path: rma|msg' },
  {
    path: 'transport.completion',
    kind: 'enum',
    description: 'rdma completions: event-loop|thread|busy-poll',
  },
  { path: 'transport.spinUs', kind: 'int', description: 'rdma spin before parking, µs' },
  { path: 'transport.sendQueueBytesMax', kind: 'int', description: 'send queue limit per peer, bytes' },
  {
    path: 'transport.peerMessagesPerSecondMax',
    kind: 'int',
    description: 'replica messages/s a peer may send before it is cut off',
  },
  {
    path: 'transport.peerBytesPerSecondMax',
    kind: 'int',
    description: 'replica bytes/s a peer may send before it is cut off',
  },
  { path: 'api.enabled', kind: 'bool', description: 'serve the REST API and explorer' },
  { path: 'api.host', kind: 'string', description: 'API listen host' },
  { path: 'api.port', kind: 'int', description: 'API listen port' },
  { path: 'api.connectionsMax', kind: 'int', description: 'open API connections at once' },
  { path: 'api.rateLimitMax', kind: 'int', description: 'API requests/s per client IP (0 = off)' },
  { path: 'p2p.enabled', kind: 'bool', description: 'run libp2p discovery' },
  { path: 'p2p.listen', kind: 'string', description: 'libp2p listen multiaddr' },
  { path: 'p2p.bootstrap', kind: 'list', description: 'libp2p bootstrap multiaddrs (comma separated)' },
  { path: 'p2p.mdns', kind: 'bool', description: 'mDNS discovery on the LAN' },
  { path: 'p2p.refreshMs', kind: 'int', description: 'endpoint refresh period, ms' },
  {
    path: 'p2p.settledRefreshMs',
    kind: 'int',
    description: 'endpoint refresh period once all peers answered, ms',
  },
  { path: 'mempool.txCountMax', kind: 'int', description: 'mempool capacity, transactions' },
  { path: 'mempool.bytesMax', kind: 'int', description: 'mempool capacity, bytes' },
  { path: 'batch.delayMs', kind: 'number', description: 'leader batch timer, ms' },
  { path: 'batch.inflightMax', kind: 'int', description: 'batches in flight at the leader' },
  {
    path: 'batch.fusedWriteBytesMax',
    kind: 'int',
    description: 'largest batch a follower writes with its consensus state in one fsync (0 = never)',
  },
  {
    path: 'batch.sendAhead',
    kind: 'bool',
    description: "the leader's PREPARE leaves while its write is in flight (one pillar; trades liveness)",
  },
  { path: 'stateTransfer.blocksPerRequest', kind: 'int', description: 'blocks per state-transfer request' },
  {
    path: 'stateTransfer.servingPerPeerMax',
    kind: 'int',
    description: 'block requests served at once for one peer',
  },
  {
    path: 'certRepair.startScanHeights',
    kind: 'int',
    description: 'heights below the tip checked for a missing commit certificate on start',
  },
  { path: 'certRepair.scanPerTickMax', kind: 'int', description: 'heights checked per 100 ms tick' },
  { path: 'certRepair.missingMax', kind: 'int', description: 'heights known to lack a certificate, at most' },
  { path: 'certRepair.heightsPerRequestMax', kind: 'int', description: 'heights per certs-request' },
  {
    path: 'certRepair.requestIntervalMs',
    kind: 'int',
    description: 'shortest time between certs-requests, ms',
  },
  {
    path: 'certRepair.attemptsMax',
    kind: 'int',
    description: 'requests that did not bring a certificate before its height is given up',
  },
  {
    path: 'certRepair.servedRequestsPerSecMax',
    kind: 'int',
    description: 'certs-requests served per peer and second',
  },
  {
    path: 'certRepair.servedHeightsPerSecMax',
    kind: 'int',
    description: 'heights looked up for one peer per second',
  },
  {
    path: 'vouch.enabled',
    kind: 'bool',
    description: 'f = 1: execute a tx another follower gossiped and the leader proposed without verifying it',
  },
  { path: 'vouch.holdMs', kind: 'int', description: 'longest hold of an unverified gossiped tx, ms' },
  { path: 'vouch.txCountMax', kind: 'int', description: 'unverified gossiped txs held at most' },
  { path: 'vouch.bytesMax', kind: 'int', description: 'unverified gossiped bytes held at most' },
  { path: 'log.level', kind: 'enum', description: 'trace|debug|info|warn|error|fatal|silent' },
  { path: 'log.format', kind: 'enum', description: 'json or pretty' },
  { path: 'metrics.enabled', kind: 'bool', description: 'Prometheus metrics at /metrics' },
  { path: 'shutdown.graceMs', kind: 'int', description: 'longest graceful-shutdown wait, ms' },
  {
    path: 'consensus.pillarThreads',
    kind: 'enum',
    description: 'auto: one worker thread per pillar when P > 1; off: pillars in the main thread',
  },
];

/** `transport.messageBytesMax` -> `HYBSTER_TRANSPORT_MESSAGE_BYTES_MAX`. */
export function envName(path: string): string {
  return `HYBSTER_${path
    .split('.')
    .map((p) => p.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase())
    .join('_')}`;
}

/** `transport.messageBytesMax` -> `transport-message-bytes-max` (used as `--transport-message-bytes-max`). */
export function flagName(path: string): string {
  return path
    .split('.')
    .map((p) => p.replace(/([a-z0-9])([A-Z])/g, '$1-$2').toLowerCase())
    .join('-');
}

/** A configuration problem, with every issue named by setting and source. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    message: string,
    readonly issues: string[],
  ) {
    super(issues.length > 0 ? `${message}:\n  - ${issues.join('\n  - ')}` : message);
  }
}

type Source = 'file' | 'env' | 'flag';
type Plain = Record<string, unknown>;

function parseScalar(spec: SettingSpec, raw: string, where: string): unknown {
  switch (spec.kind) {
    case 'int':
    case 'number': {
      const v = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(v)) {
        throw new ConfigError('invalid configuration', [`${where}: "${raw}" is not a number`]);
      }
      return v;
    }
    case 'bool': {
      const t = raw.trim().toLowerCase();
      if (['1', 'true', 'yes', 'on'].includes(t)) return true;
      if (['0', 'false', 'no', 'off'].includes(t)) return false;
      throw new ConfigError('invalid configuration', [`${where}: "${raw}" is not true/false`]);
    }
    case 'list':
      return raw
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s.length > 0);
    default:
      return raw;
  }
}

function setPath(obj: Plain, path: string, value: unknown): void {
  const parts = path.split('.');
  let cur = obj;
  for (const p of parts.slice(0, -1)) {
    const next = cur[p];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) cur[p] = {};
    cur = cur[p] as Plain;
  }
  cur[parts[parts.length - 1] as string] = value;
}

function getPath(obj: Plain, path: string): unknown {
  let cur: unknown = obj;
  for (const p of path.split('.')) {
    if (typeof cur !== 'object' || cur === null) return undefined;
    cur = (cur as Plain)[p];
  }
  return cur;
}

export interface LoadConfigOptions {
  home: string;
  /** Defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  /** Flag values keyed by setting path (strings as typed, or already-typed values). */
  flags?: Record<string, unknown>;
  /** When false a missing config.json is an error; when true defaults apply. */
  allowMissingFile?: boolean;
}

export interface LoadedConfig {
  config: NodeConfig;
  home: string;
  /** Where each overridden setting came from (for the startup log). */
  sources: Record<string, Source>;
  resolve(rel: string): string;
}

export function loadConfig(opts: LoadConfigOptions): LoadedConfig {
  const env = opts.env ?? process.env;
  const file = join(opts.home, 'config.json');
  let merged: Plain = {};
  const sources: Record<string, Source> = {};
  let text: string | undefined;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' || !opts.allowMissingFile) {
      throw new ConfigError(`cannot read ${file}`, [
        code === 'ENOENT'
          ? 'file not found (run `hybster init --home DIR` or `hybster testnet` first)'
          : String(e),
      ]);
    }
  }
  if (text !== undefined) {
    try {
      const parsed: unknown = JSON.parse(text);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
        throw new ConfigError(`invalid ${file}`, ['top level must be a JSON object']);
      }
      merged = parsed as Plain;
    } catch (e) {
      if (e instanceof ConfigError) throw e;
      throw new ConfigError(`invalid ${file}`, [`not JSON: ${(e as Error).message}`]);
    }
    for (const s of SETTINGS) if (getPath(merged, s.path) !== undefined) sources[s.path] = 'file';
  }
  for (const s of SETTINGS) {
    const name = envName(s.path);
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    setPath(merged, s.path, parseScalar(s, raw, `env ${name}`));
    sources[s.path] = 'env';
  }
  for (const s of SETTINGS) {
    const raw = opts.flags?.[s.path];
    if (raw === undefined) continue;
    const v = typeof raw === 'string' ? parseScalar(s, raw, `flag --${flagName(s.path)}`) : raw;
    setPath(merged, s.path, v);
    sources[s.path] = 'flag';
  }
  const result = configSchema.safeParse(merged);
  if (!result.success) {
    const issues = result.error.issues.map((i) => {
      const path = i.path.map(String).join('.');
      const src = sources[path];
      const where =
        src === 'env'
          ? ` (from env ${envName(path)})`
          : src === 'flag'
            ? ` (from flag --${flagName(path)})`
            : src === 'file'
              ? ` (from ${file})`
              : '';
      return `${path || '(root)'}: ${i.message}${where}`;
    });
    throw new ConfigError('invalid configuration', issues);
  }
  const home = opts.home;
  return {
    config: result.data,
    home,
    sources,
    resolve: (rel: string) => (isAbsolute(rel) ? rel : join(home, rel)),
  };
}
