import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fc from 'fast-check';
import { FrameMac } from '../../../node/transport/frame-mac.js';

const hmac = (key: Buffer, direction: Uint8Array, body: Uint8Array): Buffer =>
  crypto.createHmac('sha256', key).update(direction).update(body).digest();

describe('frame MAC', () => {
  it('is HMAC-SHA256 of direction and body for any key and body, small frames and large', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 100 }),
        fc.uint8Array({ maxLength: 1 }),
        fc.oneof(fc.uint8Array({ maxLength: 1100 }), fc.uint8Array({ minLength: 1020, maxLength: 5000 })),
        (keyBytes, direction, body) => {
          const key = Buffer.from(keyBytes);
          const mac = new FrameMac(crypto.createSecretKey(key), direction);
          assert.deepEqual(mac.tag(body), hmac(key, direction, body));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('gives each frame its own tag when one MAC tags many frames in a row', () => {
    const key = crypto.randomBytes(32);
    const mac = new FrameMac(crypto.createSecretKey(key), Uint8Array.of(1));
    // A long frame then short ones: the scratch buffer must not leak an earlier body.
    const bodies = [
      crypto.randomBytes(3000),
      crypto.randomBytes(900),
      crypto.randomBytes(10),
      Buffer.alloc(0),
    ];
    const tags = bodies.map((b) => mac.tag(b));
    for (const [i, b] of bodies.entries()) assert.deepEqual(tags[i], hmac(key, Uint8Array.of(1), b));
    assert.equal(new Set(tags.map((t) => t.toString('hex'))).size, bodies.length);
  });
});
