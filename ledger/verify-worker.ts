// Worker-thread entry of the signature verify pool (ledger/verify-pool.ts): verifies a
// packed job of Ed25519 signatures with the synchronous node:crypto call and answers one
// byte per signature. Everything arrives in transferred buffers, so a job of 64
// signatures costs one message each way instead of one thread hand-off per signature.
import { parentPort } from 'node:worker_threads';
import { PUBLIC_KEY_BYTES, SIGNATURE_BYTES, verify } from './keys.js';

export interface VerifyJob {
  readonly id: number;
  /** n signatures of SIGNATURE_BYTES, back to back. */
  readonly signatures: Uint8Array;
  /** n public keys of PUBLIC_KEY_BYTES, back to back. */
  readonly keys: Uint8Array;
  /** The n messages back to back; message i is messages[ends[i-1] .. ends[i]). */
  readonly messages: Uint8Array;
  readonly ends: Uint32Array;
}

export interface VerifyAnswer {
  readonly id: number;
  /** 1 where signature i verifies, 0 where it does not. */
  readonly ok: Uint8Array;
}

const port = parentPort;
if (port !== null) {
  port.on('message', (job: VerifyJob) => {
    const n = job.ends.length;
    const ok = new Uint8Array(n);
    let start = 0;
    for (let i = 0; i < n; i++) {
      const end = job.ends[i] as number;
      const good = verify(
        job.signatures.subarray(i * SIGNATURE_BYTES, (i + 1) * SIGNATURE_BYTES),
        job.messages.subarray(start, end),
        job.keys.subarray(i * PUBLIC_KEY_BYTES, (i + 1) * PUBLIC_KEY_BYTES),
      );
      ok[i] = good ? 1 : 0;
      start = end;
    }
    const answer: VerifyAnswer = { id: job.id, ok };
    port.postMessage(answer, [ok.buffer]);
  });
}
