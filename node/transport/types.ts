// The message transport between validators: one socket-like interface, two
// implementations (TCP over node:net in node/transport/tcp.ts; RDMA over libfabric
// in rdma-native/). Messages are opaque byte strings; framing, bounds and
// backpressure are the transport's job, authentication is the secure channel's
// (node/transport/secure-channel.ts), which layers on top of either.
//
// Changes since the first version (all backward compatible, for rdma-native/):
// - `TransportConnection.queuedBytes` (optional): bytes accepted by `send` and not yet
//   handed to the kernel/NIC. The conformance suite (test/node/transport/conformance.ts)
//   asserts it exists and stays within sendQueueBytesMax + one message, so implement it.
// - Listener semantics are now written down: onClose/onDrain accept several listeners
//   (the dialer and the secure channel both watch a connection's close); onMessages has
//   exactly one handler (a later call replaces it), and batches that arrive before it is
//   set are held, not dropped.
// - `send` takes ownership of the message bytes: the caller must not modify them after
//   the call (the TCP transport copies small messages lazily, at flush time).
// - Error code 'refused' (listener over its connection limit, or the peer is banned).
// - `TransportConnection.restrictNextMessages` (optional): a tighter size limit for the next
//   few received messages, used by the secure channel during its handshake. Implement it if
//   you can (a per-connection counter checked where you check messageBytesMax).
// - onClose: a listener added after the connection ended fires at once (in a microtask).
// - `TransportConnection.flush` (optional): write what send queued now, not at the end of the turn.

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
  | 'refused'
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
  /** Bytes accepted by `send` and not yet handed to the kernel/NIC (what backpressure is measured on). */
  readonly queuedBytes?: number;
  /**
   * Queues one message. Returns false when the send queue is above its limit: the message
   * is still queued, and the caller should wait for the drain callback before sending more.
   * Throws TransportError('oversized') for a message above `messageBytesMax`, and
   * TransportError('closed') after close. The transport owns `message` after the call:
   * do not modify it.
   */
  send(message: Uint8Array): boolean;
  /**
   * Receives messages in arrival order, in batches (one callback per batch, not per message).
   * One handler: a later call replaces the earlier one. Batches that arrive before a handler
   * is set are held and delivered once it is.
   */
  onMessages(cb: (batch: Uint8Array[]) => void): void;
  /**
   * Optional: the next `count` received messages may be at most `bytesMax` bytes; a larger
   * one closes the connection with 'oversized'. Later messages get messageBytesMax again.
   * The secure channel calls it before its handshake so an unauthenticated peer cannot make
   * us buffer megabytes per connection.
   */
  restrictNextMessages?(count: number, bytesMax: number): void;
  /**
   * Optional: hands the queued messages to the kernel/NIC now instead of at the end of the
   * current turn. A caller about to do synchronous work that a peer's progress does not
   * depend on (executing a block) flushes first, so its messages do not wait for that work.
   */
  flush?(): void;
  /** The send queue fell below its limit again (after a `send` returned false). Several listeners allowed. */
  onDrain(cb: () => void): void;
  /**
   * The connection ended; `error` says why when it was not a local close(). Several listeners
   * allowed; each fires once, and one added after the end fires at once (in a microtask).
   */
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
