import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { findSecrets, secretRedactPaths } from '../../../node/security/redact.js';

function capture(): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  return { stream, text: () => chunks.join('') };
}

describe('secret redaction', () => {
  const secret = new Uint8Array(randomBytes(32));
  const hex = Buffer.from(secret).toString('hex');

  it('removes secret fields from pino lines at every nesting level it covers', () => {
    const out = capture();
    const log = pino({ redact: { paths: secretRedactPaths(), censor: '[redacted]' } }, out.stream);
    log.info({ secretKey: hex }, 'top');
    log.info({ cfg: { seed: hex } }, 'one level');
    log.info({ a: { b: { sessionKey: hex } } }, 'two levels');
    log.info({ a: { b: { c: { privateKey: hex } } } }, 'three levels');
    assert.deepEqual(findSecrets(out.text(), { secret }), []);
    assert.equal(out.text().split('[redacted]').length - 1, 4);
  });

  it('finds a secret in hex, base64, a Buffer dump or a truncated slice', () => {
    const b = Buffer.from(secret);
    const forms = [
      hex,
      hex.toUpperCase(),
      b.toString('base64'),
      `<Buffer ${Array.from(b.subarray(0, 20), (x) => x.toString(16).padStart(2, '0')).join(' ')} ...>`,
      hex.slice(16, 40),
      JSON.stringify(Array.from(b)),
    ];
    for (const form of forms) {
      const leaks = findSecrets(`line one\nsomething ${form} here\n`, { validator: secret });
      assert.ok(leaks.length > 0, `missed ${form}`);
      assert.equal(leaks[0]!.line, 2);
    }
  });

  it('does not mistake other keys for the secret', () => {
    const other = Buffer.from(randomBytes(32));
    const text = `${other.toString('hex')} ${other.toString('base64')}`;
    assert.deepEqual(findSecrets(text, { validator: secret }), []);
  });
});
