// Re-addresses a freshly generated local testnet for other hosts: the generator writes
// 127.0.0.1 endpoints, while the namespace testnet (scripts/netns-testnet.sh) puts each
// validator on its own address and the docker testnet on its own host name. Rewrites the
// genesis endpoints (identically for every validator, so they agree on the genesis hash)
// and each validator's listen addresses and libp2p bootstrap list.
//
// Only before first start: the genesis hash changes, so a data directory made with the
// old genesis would be refused by the node; this function refuses to touch such a home.

import { readFile, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { OpsError } from './errors.js';
import { exists } from './level-dir.js';

export interface RetargetOptions {
  /** Directory holding validator0..validator<n-1> (as written by `hybster testnet`). */
  dir: string;
  /** Host (IPv4 address or DNS name) of validator i, one per validator. */
  hosts: string[];
  transportPort: number;
  p2pPort: number;
  apiPort: number;
  /** Address the API binds to (default: the validator's host). */
  apiHost?: string;
}

type Json = Record<string, unknown>;

function asObject(v: unknown, what: string): Json {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new OpsError('bad-home', `${what} is not an object`);
  return v as Json;
}

/** Replaces host and port in an endpoint, keeping a scheme such as `rdma+tcp;ofi_rxm://`. */
export function rehost(endpoint: string, host: string, port: number): string {
  const m = /^(.*:\/\/)?[^/]*$/.exec(endpoint);
  return `${m?.[1] ?? ''}${host}:${port}`;
}

function multiaddrHost(host: string): string {
  const proto = isIP(host) === 4 ? 'ip4' : isIP(host) === 6 ? 'ip6' : 'dns4';
  return `/${proto}/${host}`;
}

/** `/ip4/127.0.0.1/tcp/4001[/p2p/<id>]` -> the same on `host` and `port`, suffix kept. */
export function rehostMultiaddr(addr: string, host: string, port: number): string {
  return addr.replace(/^\/(ip4|ip6|dns4|dns6|dns)\/[^/]+\/tcp\/\d+/, `${multiaddrHost(host)}/tcp/${port}`);
}

async function readJson(path: string): Promise<Json> {
  try {
    return asObject(JSON.parse(await readFile(path, 'utf8')), path);
  } catch (e) {
    if (e instanceof OpsError) throw e;
    throw new OpsError('bad-home', `cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
}

export async function retargetTestnet(opts: RetargetOptions): Promise<{ homes: string[] }> {
  const n = opts.hosts.length;
  if (n === 0) throw new OpsError('bad-home', 'no hosts given');
  for (const p of [opts.transportPort, opts.p2pPort, opts.apiPort]) {
    if (!Number.isInteger(p) || p < 1 || p > 65535) throw new OpsError('bad-home', `bad port ${p}`);
  }
  const homes = opts.hosts.map((_, i) => join(opts.dir, `validator${i}`));
  for (const home of homes) {
    if (!(await exists(join(home, 'config.json'))))
      throw new OpsError('bad-home', `${home} has no config.json`);
    if (await exists(join(home, 'data', 'CURRENT'))) {
      throw new OpsError('target-exists', `${home} has a database already; retarget only a fresh testnet`);
    }
  }
  const genesis = await readJson(join(homes[0]!, 'genesis.json'));
  const validators = genesis['validators'];
  if (!Array.isArray(validators) || validators.length !== n) {
    throw new OpsError(
      'bad-home',
      `genesis has ${Array.isArray(validators) ? validators.length : 0} validators, ${n} hosts given`,
    );
  }
  const addrs: string[] = [];
  validators.forEach((raw, i) => {
    const v = asObject(raw, `genesis.validators[${i}]`);
    const host = opts.hosts[i]!;
    const endpoints = asObject(v['endpoints'] ?? {}, `genesis.validators[${i}].endpoints`);
    const peerId = typeof v['peerId'] === 'string' ? v['peerId'] : undefined;
    addrs.push(`${multiaddrHost(host)}/tcp/${opts.p2pPort}${peerId ? `/p2p/${peerId}` : ''}`);
    for (const [k, ep] of Object.entries(endpoints)) {
      if (typeof ep === 'string') endpoints[k] = rehost(ep, host, opts.transportPort);
      else if (Array.isArray(ep)) {
        endpoints[k] = ep.map((a) => (typeof a === 'string' ? rehostMultiaddr(a, host, opts.p2pPort) : a));
      }
    }
    v['endpoints'] = endpoints;
  });
  const genesisText = `${JSON.stringify(genesis, null, 2)}\n`;
  for (let i = 0; i < n; i++) {
    const home = homes[i]!;
    const host = opts.hosts[i]!;
    const config = await readJson(join(home, 'config.json'));
    const transport = asObject(config['transport'] ?? {}, 'config.transport');
    transport['listen'] = rehost(String(transport['listen'] ?? ''), host, opts.transportPort);
    config['transport'] = transport;
    const api = asObject(config['api'] ?? {}, 'config.api');
    api['host'] = opts.apiHost ?? host;
    api['port'] = opts.apiPort;
    config['api'] = api;
    const p2p = asObject(config['p2p'] ?? {}, 'config.p2p');
    p2p['listen'] = `/ip4/${isIP(host) === 4 ? host : '0.0.0.0'}/tcp/${opts.p2pPort}`;
    // Genesis carries every validator's libp2p address; a config bootstrap list, when the
    // generator wrote one, must point at the new addresses too.
    if (Array.isArray(p2p['bootstrap'])) p2p['bootstrap'] = addrs.filter((_, j) => j !== i);
    config['p2p'] = p2p;
    await writeFile(join(home, 'genesis.json'), genesisText);
    await writeFile(join(home, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  }
  if (await exists(join(opts.dir, 'genesis.json')))
    await writeFile(join(opts.dir, 'genesis.json'), genesisText);
  return { homes };
}
