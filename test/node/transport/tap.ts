// A TransportConnection wrapper for tests that play a hostile peer: it records every
// frame the secure channel above it sends, so a test can replay or tamper with one.
import type { TransportConnection } from '../../../node/transport/types.js';

/** Records what a channel sends through it; with `hold` set, keeps frames back instead of forwarding them. */
export function tap(conn: TransportConnection) {
  const sent: Uint8Array[] = [];
  let hold = false;
  const proxy: TransportConnection = {
    remote: conn.remote,
    get queuedBytes() {
      return conn.queuedBytes;
    },
    send(m) {
      sent.push(Uint8Array.from(m));
      return hold ? true : conn.send(m);
    },
    onMessages: (cb) => conn.onMessages(cb),
    onDrain: (cb) => conn.onDrain(cb),
    onClose: (cb) => conn.onClose(cb),
    close: () => conn.close(),
  };
  return {
    proxy,
    sent,
    setHold(v: boolean) {
      hold = v;
    },
  };
}
