// Peer discovery with libp2p, and nothing else: each validator runs a libp2p node
// (TCP, noise, yamux, identify; bootstrap list and optionally mDNS) whose peer id is
// derived from its Ed25519 validator key, and answers a tiny protocol that returns
// its current replica transport endpoint. Because noise authenticates the peer id
// and the peer id is the validator key, an endpoint learned this way is known to
// come from that validator. Consensus traffic never goes through libp2p.
import './polyfills.js';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { bootstrap } from '@libp2p/bootstrap';
import { generateKeyPairFromSeed, publicKeyFromRaw } from '@libp2p/crypto/keys';
import { identify } from '@libp2p/identify';
import type { PeerId, Stream } from '@libp2p/interface';
import { mdns } from '@libp2p/mdns';
import { peerIdFromPublicKey, peerIdFromString } from '@libp2p/peer-id';
import { tcp } from '@libp2p/tcp';
import { createLibp2p, type Libp2p } from 'libp2p';
import type { Logger } from './logging.js';

export const ENDPOINT_PROTOCOL = '/hybster/endpoint/1.0.0';
const ANSWER_BYTES_MAX = 4096;
const SETTLED_REFRESH_MS_DEFAULT = 30_000;

export interface EndpointAnswer {
  chainId: string;
  validator: number;
  transport: string;
  endpoint: string;
}

export interface DiscoveryOptions {
  /** 32-byte Ed25519 seed of the validator key. */
  seed: Uint8Array;
  selfIndex: number;
  chainId: string;
  /** Validator public keys (32-byte Ed25519) in genesis order. */
  validatorKeys: readonly Uint8Array[];
  transportKind: string;
  /** The endpoint this validator's replica transport listens on (host:port). */
  endpoint: () => string;
  listen: string;
  bootstrap: readonly string[];
  mdns: boolean;
  /** Endpoint refresh period while some validator is not connected or has not answered yet. */
  refreshMs: number;
  /**
   * Refresh period once every other validator is connected and has answered (default
   * max(refreshMs, 30 s)): at steady state asking each peer every refreshMs cost each
   * validator ~6 ms of CPU per second (a third of its idle load, measured). A lost
   * connection goes back to refreshMs at once, and a reconnect is asked on identify.
   */
  settledRefreshMs?: number;
  log: Logger;
  /** Called whenever a validator reports an endpoint (may repeat; callers dedupe). */
  onEndpoint: (validator: number, endpoint: string) => void;
}

/** The libp2p peer id a validator key maps to (genesis records it; this recomputes it). */
export function peerIdForValidatorKey(publicKey: Uint8Array): string {
  return peerIdFromPublicKey(publicKeyFromRaw(ed25519ProtobufFree(publicKey))).toString();
}

function ed25519ProtobufFree(publicKey: Uint8Array): Uint8Array {
  if (publicKey.length !== 32) throw new RangeError('validator public key must be 32 bytes');
  return publicKey;
}

/**
 * Reads one u32-length-prefixed answer. Listens for 'message' events directly: the
 * stream buffers data until a listener is attached, while its async iterator ends
 * early when the remote already half-closed, losing a short answer.
 */
function readAnswer(stream: Stream, limit: number, timeoutMs: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const chunks: Uint8Array[] = [];
    let total = 0;
    const done = (e: Error | null, v?: Uint8Array): void => {
      clearTimeout(timer);
      stream.removeEventListener('message', onMessage);
      stream.removeEventListener('close', onClose);
      if (e) reject(e);
      else resolve(v as Uint8Array);
    };
    const timer = setTimeout(() => done(new Error('endpoint answer timed out')), timeoutMs);
    const onMessage = (evt: { data: Uint8Array | { subarray(): Uint8Array } }): void => {
      const bytes = evt.data instanceof Uint8Array ? evt.data : evt.data.subarray();
      chunks.push(bytes);
      total += bytes.length;
      if (total > limit + 4) {
        done(new Error(`endpoint answer above ${limit} bytes`));
        return;
      }
      if (total < 4) return;
      const all = Buffer.concat(chunks);
      const len = all.readUInt32BE(0);
      if (len > limit) done(new Error(`endpoint answer above ${limit} bytes`));
      else if (all.length >= 4 + len) done(null, new Uint8Array(all.subarray(4, 4 + len)));
    };
    const onClose = (): void => done(new Error('stream closed before the answer'));
    stream.addEventListener('message', onMessage);
    stream.addEventListener('close', onClose);
  });
}

export function parseEndpointAnswer(bytes: Uint8Array): EndpointAnswer | null {
  try {
    const o = JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>;
    if (
      typeof o.chainId === 'string' &&
      typeof o.validator === 'number' &&
      Number.isInteger(o.validator) &&
      typeof o.transport === 'string' &&
      typeof o.endpoint === 'string' &&
      o.endpoint.length < 256
    ) {
      return { chainId: o.chainId, validator: o.validator, transport: o.transport, endpoint: o.endpoint };
    }
  } catch {
    // fall through: malformed
  }
  return null;
}

export class Discovery {
  private node: Libp2p | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly peerToValidator = new Map<string, number>();
  private readonly bootstrapAddrs = new Map<string, string>();
  /** Validators that answered since they (last) connected. */
  private readonly answered = new Set<number>();
  private refreshes = 0;
  private stopped = false;

  constructor(private readonly opts: DiscoveryOptions) {
    opts.validatorKeys.forEach((k, i) => {
      this.peerToValidator.set(peerIdForValidatorKey(k), i);
    });
  }

  get peerId(): string {
    return this.node?.peerId.toString() ?? '';
  }

  get addresses(): string[] {
    return this.node?.getMultiaddrs().map((a) => a.toString()) ?? [];
  }

  /** Endpoint refresh rounds run so far (tests: the settled period is in effect). */
  get refreshRounds(): number {
    return this.refreshes;
  }

  /** Validators currently connected over libp2p. */
  connectedValidators(): number[] {
    if (!this.node) return [];
    const out: number[] = [];
    for (const p of this.node.getPeers()) {
      const v = this.peerToValidator.get(p.toString());
      if (v !== undefined) out.push(v);
    }
    return out.sort((a, b) => a - b);
  }

  async start(): Promise<void> {
    const o = this.opts;
    const privateKey = await generateKeyPairFromSeed('Ed25519', o.seed);
    const peerDiscovery = [];
    if (o.bootstrap.length > 0) peerDiscovery.push(bootstrap({ list: [...o.bootstrap], timeout: 100 }));
    if (o.mdns) peerDiscovery.push(mdns({ interval: 5000 }));
    const node = await createLibp2p({
      start: false,
      privateKey,
      addresses: { listen: [o.listen] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      peerDiscovery,
      services: { identify: identify() },
      // Only validators matter; refuse everyone else at the connection level.
      connectionGater: {
        denyInboundEncryptedConnection: (peer: PeerId) => !this.peerToValidator.has(peer.toString()),
        denyOutboundEncryptedConnection: (peer: PeerId) => !this.peerToValidator.has(peer.toString()),
      },
    });
    this.node = node;
    for (const addr of o.bootstrap) {
      const m = /\/p2p\/([^/]+)$/.exec(addr);
      if (m?.[1]) this.bootstrapAddrs.set(m[1], addr);
    }
    await node.handle(
      ENDPOINT_PROTOCOL,
      async (stream: Stream) => {
        const answer: EndpointAnswer = {
          chainId: o.chainId,
          validator: o.selfIndex,
          transport: o.transportKind,
          endpoint: o.endpoint(),
        };
        try {
          const body = new TextEncoder().encode(JSON.stringify(answer));
          const frame = new Uint8Array(4 + body.length);
          new DataView(frame.buffer).setUint32(0, body.length);
          frame.set(body, 4);
          stream.send(frame);
          await stream.close();
        } catch (e) {
          stream.abort(e as Error);
        }
      },
      { runOnLimitedConnection: false },
    );
    node.addEventListener('peer:discovery', (evt) => {
      const id = evt.detail.id.toString();
      if (!this.peerToValidator.has(id) || id === node.peerId.toString()) return;
      void node.dial(evt.detail.id).catch(() => {});
    });
    node.addEventListener('peer:identify', (evt) => {
      void this.ask(evt.detail.peerId);
    });
    node.addEventListener('peer:disconnect', (evt) => {
      const v = this.peerToValidator.get(evt.detail.toString());
      if (v === undefined || !this.answered.delete(v)) return;
      // Settled no more: look for it (and its new endpoint) at the fast period again.
      this.schedule(o.refreshMs);
    });
    await node.start();
    this.schedule(o.refreshMs);
    o.log.info({ peerId: node.peerId.toString(), addrs: this.addresses }, 'libp2p discovery started');
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.refreshes++;
      void this.refresh();
      this.schedule(this.settled() ? this.settledRefreshMs : this.opts.refreshMs);
    }, ms);
    this.timer.unref();
  }

  private get settledRefreshMs(): number {
    return this.opts.settledRefreshMs ?? Math.max(this.opts.refreshMs, SETTLED_REFRESH_MS_DEFAULT);
  }

  /** Every other validator connected and answered since. */
  private settled(): boolean {
    const others = this.opts.validatorKeys.length - 1;
    if (this.answered.size < others) return false;
    return (
      (this.node?.getPeers() ?? []).filter((p) => this.peerToValidator.has(p.toString())).length >= others
    );
  }

  /** Asks every connected validator for its endpoint; redials bootstrap validators we lost. */
  private async refresh(): Promise<void> {
    const node = this.node;
    if (!node || this.stopped) return;
    const connected = new Set(node.getPeers().map((p) => p.toString()));
    for (const p of node.getPeers()) void this.ask(p);
    for (const pid of this.bootstrapAddrs.keys()) {
      if (connected.has(pid) || pid === node.peerId.toString()) continue;
      // The bootstrap module put the address in the peer store; dialing the id uses it.
      void node
        .dial(peerIdFromString(pid), { signal: AbortSignal.timeout(2000) })
        .catch((e: Error) => this.opts.log.debug({ peer: pid, err: e.message }, 'discovery: dial failed'));
    }
  }

  private async ask(peer: PeerId): Promise<void> {
    const node = this.node;
    const validator = this.peerToValidator.get(peer.toString());
    if (!node || this.stopped || validator === undefined || validator === this.opts.selfIndex) return;
    try {
      const stream = await node.dialProtocol(peer, ENDPOINT_PROTOCOL, { signal: AbortSignal.timeout(3000) });
      const bytes = await readAnswer(stream, ANSWER_BYTES_MAX, 3000);
      void stream.close().catch(() => {});
      const answer = parseEndpointAnswer(bytes);
      // The peer id was proven by noise, so the answer must speak for that validator.
      if (
        !answer ||
        answer.validator !== validator ||
        answer.chainId !== this.opts.chainId ||
        answer.transport !== this.opts.transportKind
      ) {
        this.opts.log.warn(
          { validator, peer: peer.toString(), answer: new TextDecoder().decode(bytes).slice(0, 200) },
          'discovery: ignoring bad endpoint answer',
        );
        return;
      }
      this.answered.add(validator);
      this.opts.onEndpoint(validator, answer.endpoint);
    } catch (e) {
      this.opts.log.debug({ validator, err: (e as Error).message }, 'discovery: endpoint query failed');
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const node = this.node;
    this.node = null;
    if (node) await node.stop();
  }
}
