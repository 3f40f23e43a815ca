// A small network of validators in this process: a generated testnet on disk, each validator
// started by `startValidator` (real LevelDB, real TCP replica channels, the real API on a
// free port), their JSON log lines captured, and every channel up before it is handed over.
// Tests that reach into a validator (wrap onReplicaMessages, read its store) start here.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { generateTestnet, type Testnet } from '../../genesis/generate.js';
import { fromHex } from '../../ledger/codec/binary.js';
import { txHash } from '../../ledger/tx.js';
import { loadChainSpec } from '../../node/chain-spec.js';
import { type RunningValidator, startValidator } from '../../node/start.js';
import { type Account, waitFor } from './client.js';

/**
 * A random generateTestnet basePort whose ports (up to basePort + 2000 + n) all lie below the
 * kernel's ephemeral range (32768 up, /proc/sys/net/ipv4/ip_local_port_range): a port in that
 * range can be taken by any outgoing connection of a test running beside this one (CI once
 * failed with EADDRINUSE on 40148).
 */
export const randomBasePort = (): number => 10_000 + Math.floor(Math.random() * 20_000);

export interface LogLine {
  /** Index of the validator that wrote it. */
  i: number;
  line: Record<string, unknown>;
}

export interface InProcessNetwork {
  readonly net: Testnet;
  /** Validator i's running instance, null while it is stopped. */
  readonly running: (RunningValidator | null)[];
  readonly logs: LogLine[];
  /** Genesis public keys, by validator id. */
  readonly keys: Uint8Array[];
  readonly secretKeys: Uint8Array[];
  /** Validator i, which must be running. */
  at(i: number): RunningValidator;
  /** Starts validator i (again) from its home and puts it in running[i]. */
  start(i: number): Promise<RunningValidator>;
  stop(i: number): Promise<void>;
  stopAll(): Promise<void>;
  /** An account funded at genesis: validator i's key, its next nonce 1. */
  account(i: number): Account;
}

export interface InProcessNetworkOptions {
  /** An empty directory for the testnet (removed by the caller). */
  dir: string;
  chainId: string;
  validators?: number;
  /** Waited for until every channel is up, ms. */
  connectTimeoutMs?: number;
  /** Config flags (path -> value) on top of the defaults here. */
  flags?: Record<string, string>;
}

/** Starts the validators and waits until every channel is up; on failure stops what it started. */
export async function startInProcessNetwork(o: InProcessNetworkOptions): Promise<InProcessNetwork> {
  const n = o.validators ?? 3;
  const basePort = randomBasePort();
  const net = await generateTestnet({ validators: n, outDir: o.dir, chainId: o.chainId, basePort });
  const flags = { 'api.port': '0', 'p2p.enabled': 'false', 'log.level': 'warn', ...o.flags };
  const logs: LogLine[] = [];
  const sinkFor = (i: number): Writable =>
    new Writable({
      write(chunk: Buffer, _e, cb) {
        for (const l of chunk.toString('utf8').split('\n'))
          if (l.trim() !== '') logs.push({ i, line: JSON.parse(l) as Record<string, unknown> });
        cb();
      },
    });
  const running: (RunningValidator | null)[] = Array.from({ length: n }, () => null);
  const spec = loadChainSpec(readFileSync(net.nodes[0]!.genesisPath, 'utf8'), 'genesis');
  const keyFile = (i: number) =>
    JSON.parse(readFileSync(net.nodes[i]!.keyPath, 'utf8')) as { publicKey: string; secretKey: string };
  const secretKeys = net.nodes.map((_, i) => fromHex(keyFile(i).secretKey));
  const network: InProcessNetwork = {
    net,
    running,
    logs,
    keys: spec.validators.map((v) => v.publicKey),
    secretKeys,
    at(i) {
      const r = running[i];
      assert.ok(r, `validator ${i} is not running`);
      return r;
    },
    async start(i) {
      assert.equal(running[i], null, `validator ${i} is already running`);
      const r = await startValidator({ home: net.nodes[i]!.home, flags, logDestination: sinkFor(i) });
      running[i] = r;
      return r;
    },
    async stop(i) {
      const r = running[i];
      running[i] = null;
      await r?.stop();
    },
    async stopAll() {
      for (let i = 0; i < n; i++) await network.stop(i);
    },
    account(i) {
      return { address: fromHex(keyFile(i).publicKey), secretKey: secretKeys[i]!, nonce: 1n };
    },
  };
  try {
    for (let i = 0; i < n; i++) await network.start(i);
    // Every channel up first: a validator that joins late fetches blocks by state transfer, and
    // if its peers' signatures of them were sent before it was connected it has no certificate.
    await waitFor(
      async () => running.every((r) => r?.validator.status().peers.every((p) => p.connected) ?? false),
      o.connectTimeoutMs ?? 30_000,
      'all channels up',
    );
  } catch (e) {
    await network.stopAll();
    throw e;
  }
  return network;
}

/** Waits until every one of `validators` has each tx in a written block. */
export function committedAt(
  validators: readonly RunningValidator[],
  txs: readonly Uint8Array[],
  what: string,
  timeoutMs = 30_000,
): Promise<void> {
  return waitFor(
    async () => {
      const found = await Promise.all(
        validators.flatMap((r) => txs.map((tx) => r.validator.store.getTx(txHash(tx)))),
      );
      return found.every((loc) => loc !== null);
    },
    timeoutMs,
    what,
  );
}

/** A counter or gauge of a validator's registry, read as a number. */
export async function metricValue(v: RunningValidator, name: string): Promise<number> {
  const m = v.validator.metrics.getSingleMetric(name);
  assert.ok(m !== undefined, `no metric ${name}`);
  return (await m.get()).values[0]?.value ?? 0;
}
