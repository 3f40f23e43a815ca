// The message transport between validators: one socket-like interface, two
// implementations (TCP over node:net in node/transport/tcp.ts; RDMA over libfabric
// in rdma-native/). Messages are opaque byte strings; framing, bounds and
// backpressure are the transport's job, authentication is the secure channel's
// (node/transport/secure-channel.ts), which layers on top of either.

export type TransportKind = 'tcp' | 'rdma';

export interface TransportLimits {
  /** Largest message accepted or sent; larger ones are refused (sender) or close the connection (receiver). */
  messageBytesMax: number;
  /** Bytes queued for sending before `send` reports backpressure (returns false). */
  sendQueueBytesMax: number;
}

export type TransportErrorCode =
  | 'oversized'
  | 'malformed-frame'
  | 'ring-violation'
  | 'peer-lost'
  | 'connect-failed'
  | 'closed'
  | 'internal';

export class TransportError extends Error {
  override readonly name = 'TransportError';
  constructor(
    readonly code: TransportErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface TransportConnection {
  /** The remote endpoint as the transport names it (for logs, never for identity: the secure channel proves identity). */
  readonly remote: string;
  /**
   * Queues one message. Returns false when the send queue is above its limit: the message
   * is still queued, and the caller should wait for the drain callback before sending more.
   * Throws TransportError('oversized') for a message above `messageBytesMax`, and
   * TransportError('closed') after close.
   */
  send(message: Uint8Array): boolean;
  /** Receives messages in arrival order, in batches (one callback per batch, not per message). */
  onMessages(cb: (batch: Uint8Array[]) => void): void;
  /** The send queue fell below its limit again. */
  onDrain(cb: () => void): void;
  /** The connection ended; `error` says why when it was not a local close(). */
  onClose(cb: (error?: TransportError) => void): void;
  close(): Promise<void>;
}

export interface Transport {
  readonly kind: TransportKind;
  /** Starts accepting connections; resolves to the endpoint string peers use with `connect`. */
  listen(endpoint: string): Promise<string>;
  onConnection(cb: (conn: TransportConnection) => void): void;
  connect(endpoint: string): Promise<TransportConnection>;
  /** Closes the listener and every connection; releases every resource. */
  close(): Promise<void>;
}
