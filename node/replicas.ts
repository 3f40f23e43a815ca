// The replica network: one authenticated channel per other validator, over the
// configured transport. The lower validator id dials the higher one (so each pair
// has one connection), the higher one accepts; both sides run the secure-channel
// handshake, which proves genesis keys and refuses anyone else. Endpoints come from
// genesis first and from libp2p discovery later; a changed endpoint replaces the
// dialer. Messages to a peer without a channel are dropped: consensus retransmits,
// and the mempool re-gossips what stays pending.

import type { Logger } from './logging.js';
import type { NodeMetrics } from './metrics.js';
import {
  PeerPenaltyBox,
  ReconnectingDialer,
  type SecureChannel,
  SecureChannelError,
  type SecureChannelOptions,
  secureChannel,
} from './transport/index.js';
import type { Transport, TransportConnection } from './transport/types.js';

export interface ReplicaNetworkOptions {
  selfId: number;
  secretKey: Uint8Array;
  validators: readonly { id: number; publicKey: Uint8Array }[];
  genesisHash: Uint8Array;
  transport: Transport;
  /** Largest payload on a channel. */
  payloadBytesMax: number;
  /** Per-peer flood limits; a peer above them is disconnected and sent to the penalty box. */
  rateLimit?: { messagesPerSecondMax: number; bytesPerSecondMax: number };
  log: Logger;
  metrics: NodeMetrics;
  onMessages: (from: number, batch: Uint8Array[]) => void;
  onPeerUp?: (peer: number) => void;
}

interface Peer {
  id: number;
  endpoint: string | null;
  dialer: ReconnectingDialer | null;
  channel: SecureChannel | null;
}

export class ReplicaNetwork {
  private readonly peers = new Map<number, Peer>();
  private readonly penaltyBox = new PeerPenaltyBox<number>();
  private readonly pendingInbound = new Set<TransportConnection>();
  private closed = false;
  private listenEndpoint = '';

  constructor(private readonly o: ReplicaNetworkOptions) {
    for (const v of o.validators) {
      if (v.id !== o.selfId) this.peers.set(v.id, { id: v.id, endpoint: null, dialer: null, channel: null });
    }
  }

  get payloadBytesMax(): number {
    return this.o.payloadBytesMax;
  }

  get endpoint(): string {
    return this.listenEndpoint;
  }

  private channelOptions(role: 'initiator' | 'responder'): SecureChannelOptions {
    return {
      self: { id: this.o.selfId, secretKey: this.o.secretKey },
      validators: this.o.validators,
      genesisHash: this.o.genesisHash,
      role,
      penaltyBox: this.penaltyBox,
      payloadBytesMax: this.o.payloadBytesMax,
      ...(this.o.rateLimit === undefined ? {} : { rateLimit: { ...this.o.rateLimit, burstSeconds: 1 } }),
    };
  }

  async listen(endpoint: string): Promise<string> {
    this.o.transport.onConnection((conn) => void this.accept(conn));
    this.listenEndpoint = await this.o.transport.listen(endpoint);
    return this.listenEndpoint;
  }

  private async accept(conn: TransportConnection): Promise<void> {
    if (this.closed) {
      void conn.close();
      return;
    }
    this.pendingInbound.add(conn);
    try {
      const ch = await secureChannel(conn, this.channelOptions('responder'));
      if (ch.peerId < this.o.selfId) this.attach(ch);
      else {
        // The higher id should not dial us; accept anyway when we have no channel (its
        // view of who dials may come from an older version), otherwise keep ours.
        const p = this.peers.get(ch.peerId);
        if (p && p.channel === null) this.attach(ch);
        else void ch.close();
      }
    } catch (e) {
      this.countError(e);
      this.o.log.debug({ remote: conn.remote, err: (e as Error).message }, 'inbound handshake failed');
    } finally {
      this.pendingInbound.delete(conn);
    }
  }

  private countError(e: unknown): void {
    const code = e instanceof SecureChannelError ? e.code : 'transport';
    this.o.metrics.transportErrors.inc({ code });
  }

  private attach(ch: SecureChannel): void {
    const p = this.peers.get(ch.peerId);
    if (!p || this.closed) {
      void ch.close();
      return;
    }
    const old = p.channel;
    p.channel = ch;
    if (old && old !== ch) void old.close();
    ch.onMessages((batch) => this.o.onMessages(ch.peerId, batch));
    ch.onClose((error) => {
      if (p.channel === ch) p.channel = null;
      if (error) this.countError(error);
      this.updatePeerGauge();
      if (!this.closed) {
        this.o.log.info({ peer: ch.peerId, reason: error?.message ?? 'closed' }, 'replica channel down');
      }
    });
    this.updatePeerGauge();
    this.o.log.info({ peer: ch.peerId, remote: ch.remote }, 'replica channel up');
    this.o.onPeerUp?.(ch.peerId);
  }

  private updatePeerGauge(): void {
    this.o.metrics.peers.set(this.connectedPeers().length);
  }

  /** Sets (or changes) where a peer listens; the lower id dials. Idempotent for an unchanged endpoint. */
  setEndpoint(peer: number, endpoint: string): void {
    const p = this.peers.get(peer);
    // Genesis may write a tcp endpoint without the scheme the transport reports; same place.
    const same = (a: string | null, b: string): boolean =>
      a !== null && a.replace(/^tcp:\/\//, '') === b.replace(/^tcp:\/\//, '');
    if (!p || this.closed || same(p.endpoint, endpoint)) return;
    const previous = p.endpoint;
    p.endpoint = endpoint;
    if (this.o.selfId > peer) return;
    const old = p.dialer;
    p.dialer = null;
    if (old) void old.close();
    if (previous !== null) this.o.log.info({ peer, endpoint, previous }, 'peer endpoint changed');
    const dialer = new ReconnectingDialer(
      this.o.transport,
      endpoint,
      async (conn) => {
        const ch = await secureChannel(conn, this.channelOptions('initiator'));
        if (ch.peerId !== peer) {
          void ch.close();
          throw new Error(`endpoint ${endpoint} belongs to validator ${ch.peerId}, not ${peer}`);
        }
        this.attach(ch);
      },
      { backoff: { delayMsMin: 50, delayMsMax: 2000 } },
    );
    dialer.onEvent((e) => {
      if (e.type === 'failed') {
        this.countError(e.error);
        this.o.log.debug({ peer, endpoint, attempt: e.attempt, err: String(e.error) }, 'dial failed');
      }
    });
    p.dialer = dialer;
    dialer.start();
  }

  peerEndpoint(peer: number): string | null {
    return this.peers.get(peer)?.endpoint ?? null;
  }

  isConnected(peer: number): boolean {
    return this.peers.get(peer)?.channel != null;
  }

  connectedPeers(): number[] {
    return [...this.peers.values()].filter((p) => p.channel !== null).map((p) => p.id);
  }

  /** Returns false when the peer has no channel (the message is dropped) or is above its send queue limit. */
  send(peer: number, bytes: Uint8Array): boolean {
    const ch = this.peers.get(peer)?.channel;
    if (!ch) return false;
    try {
      return ch.send(bytes);
    } catch (e) {
      this.countError(e);
      this.o.log.debug({ peer, err: (e as Error).message }, 'send failed');
      return false;
    }
  }

  /**
   * Sends to every connected peer; to `first` before the others when given. A channel is
   * written at the end of the turn in the order of its first send, so on a machine with fewer
   * cores than processes `first` runs its part a process switch sooner.
   */
  broadcast(bytes: Uint8Array, first?: number): void {
    if (first !== undefined && this.peers.get(first)?.channel) this.send(first, bytes);
    for (const p of this.peers.values()) if (p.channel && p.id !== first) this.send(p.id, bytes);
  }

  /**
   * Hands every message sent so far to the transports now. Sends are otherwise written at
   * the end of the turn, after whatever synchronous work follows them.
   */
  flush(): void {
    for (const p of this.peers.values()) {
      try {
        p.channel?.flush();
      } catch (e) {
        this.countError(e);
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const work: Promise<unknown>[] = [];
    for (const p of this.peers.values()) {
      if (p.dialer) work.push(p.dialer.close());
      if (p.channel) work.push(p.channel.close());
      p.dialer = null;
      p.channel = null;
    }
    for (const c of this.pendingInbound) work.push(c.close());
    await Promise.allSettled(work);
    await this.o.transport.close();
  }
}
