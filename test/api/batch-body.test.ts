// api/batch-body.ts: the hand-written fast paths of POST /v1/txs/batch answer exactly what
// the zod schema, a hex regex with Buffer.from, and JSON.stringify of result objects would.
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  batchAnswerJson,
  batchBodyValidatorCompiler,
  hexBytes,
  plainBatchBody,
  refusedJson,
  takenJson,
} from '../../api/batch-body.js';
import { ApiError } from '../../api/errors.js';
import { SubmitTxsBody } from '../../api/schemas.js';

const hexRe = /^[0-9a-fA-F]*$/;

describe('api/batch-body', () => {
  describe('hexBytes', () => {
    it('decodes any even-length hex, either case, to the bytes Buffer.from gives', () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 400 }), fc.boolean(), (bytes, upper) => {
          const h = Buffer.from(bytes).toString('hex');
          const out = hexBytes(upper ? h.toUpperCase() : h);
          assert.ok(out !== null);
          assert.deepEqual(Buffer.from(out), Buffer.from(bytes));
        }),
      );
    });

    it('refuses a string with a non-hex character anywhere, as the regex does', () => {
      fc.assert(
        fc.property(
          fc.uint8Array({ minLength: 1, maxLength: 200 }),
          fc.nat(),
          fc.oneof(
            fc.string({ minLength: 1, maxLength: 1, unit: 'binary' }),
            fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)),
          ),
          (bytes, at, ch) => {
            const h = Buffer.from(bytes).toString('hex');
            const i = at % h.length;
            const s = h.slice(0, i) + ch + h.slice(i + 1);
            if (s.length % 2 !== 0) return; // an astral character is two UTF-16 units
            assert.equal(hexBytes(s) !== null, hexRe.test(s), JSON.stringify(s));
          },
        ),
      );
      const good = 'ab'.repeat(82);
      for (const bad of [
        `${good.slice(0, 80)}zz${good.slice(82)}`,
        `${good.slice(0, 81)}g${good.slice(82)}`,
        `${good.slice(0, -1)}G`,
        `g${good.slice(1)}`,
        `${good.slice(0, 80)} ${good.slice(81)}`,
        `0x${good}`,
        `${good.slice(0, 80)}\u00e9${good.slice(81)}`,
      ]) {
        assert.equal(hexBytes(bad), null, bad);
      }
    });

    it('refuses a character above U+00FF whose low byte is a hex digit (the decoder reads only that byte)', () => {
      const digits = '0123456789abcdefABCDEF';
      fc.assert(
        fc.property(
          fc.constantFrom(...digits),
          fc.integer({ min: 1, max: 0xff }),
          fc.nat(40),
          (d, high, at) => {
            const wide = String.fromCharCode((high << 8) | d.charCodeAt(0));
            const h = 'ab'.repeat(21);
            const s = h.slice(0, at) + wide + h.slice(at + 1);
            assert.equal(hexBytes(s), null, JSON.stringify(s));
          },
        ),
      );
      for (const s of ['\u0161b', 'a\u0162', '\u3031\u3032', '\uff10\uff11', '\u0130\u0130', 'ab\ud800a']) {
        assert.equal(hexBytes(s), null, JSON.stringify(s));
      }
    });

    it('refuses odd lengths and answers the empty string with no bytes', () => {
      assert.equal(hexBytes('abc'), null);
      assert.equal(hexBytes('a'), null);
      assert.deepEqual(hexBytes(''), new Uint8Array(0));
    });

    it('gives a plain Uint8Array over an ArrayBuffer of its own (not a view into the shared pool)', () => {
      const out = hexBytes('00ff10');
      assert.ok(out !== null);
      assert.equal(Object.getPrototypeOf(out), Uint8Array.prototype);
      assert.equal(out.byteOffset, 0);
      assert.equal(out.buffer.byteLength, 3);
      const copy = out.slice(0, 2);
      copy[0] = 9;
      assert.equal(out[0], 0, 'slice copies, as for any Uint8Array');
    });
  });

  describe('plainBatchBody', () => {
    const item = fc.oneof(
      fc.string({ maxLength: 8 }),
      fc.integer(),
      fc.constant(null),
      fc.constant({}),
      fc.constant([]),
      fc.dictionary(fc.string({ maxLength: 3 }), fc.string({ maxLength: 3 }), { maxKeys: 2 }),
    );
    const value = fc.oneof(
      fc.array(item, { maxLength: 4 }),
      fc.array(fc.string({ maxLength: 8 }), { maxLength: 4 }),
      fc.constantFrom('hex', 'base64', 'async', 'commit', 'HEX', ''),
      fc.integer(),
      fc.constant(null),
    );
    const body = fc.oneof(
      fc.record({ txs: value, encoding: value, mode: value, extra: value }, { requiredKeys: [] }),
      fc.record(
        {
          txs: fc.array(fc.string({ maxLength: 8 }), { minLength: 1, maxLength: 4 }),
          encoding: fc.constantFrom('hex', 'base64'),
          mode: fc.constant('async'),
        },
        { requiredKeys: ['txs'] },
      ),
      fc.array(fc.string(), { maxLength: 2 }),
      fc.constantFrom(null, 7, 'txs', true),
    );

    it('takes only bodies the zod schema takes, and outputs what the schema outputs', () => {
      fc.assert(
        fc.property(body, (data) => {
          const plain = plainBatchBody(data);
          const zod = SubmitTxsBody.safeParse(data);
          if (plain !== null) {
            assert.ok(zod.success, JSON.stringify(data));
            assert.deepEqual(plain, zod.data);
          }
          const allStrings = zod.success && zod.data.txs.every((t) => typeof t === 'string');
          // Every valid body of strings takes the fast path; the rest goes to zod.
          assert.equal(plain !== null, allStrings, JSON.stringify(data));
        }),
        { numRuns: 1000 },
      );
    });

    it('leaves a body with an inherited or unusual key to the schema', () => {
      const proto = Object.create({ surprise: 1 }) as Record<string, unknown>;
      proto['txs'] = ['ab'];
      assert.equal(plainBatchBody(proto), null);
      assert.equal(plainBatchBody(JSON.parse('{"txs":["ab"],"__proto__":{"x":1}}')), null);
      assert.deepEqual(plainBatchBody(JSON.parse('{"txs":["ab"]}')), {
        txs: ['ab'],
        encoding: 'hex',
        mode: 'async',
      });
    });

    it('the route validator answers the schema error (with its path) for a body it does not take', () => {
      const validate = batchBodyValidatorCompiler({
        schema: SubmitTxsBody,
        method: 'POST',
        url: '/v1/txs/batch',
        httpPart: 'body',
      });
      for (const [data, path] of [
        [{ txs: [] }, '/txs'],
        [{ txs: [7] }, '/txs/0'],
        [{ txs: ['ab'], encoding: 'utf8' }, '/encoding'],
        [{ txs: ['ab'], mode: 'commit' }, '/mode'],
      ] as const) {
        const r = validate(data) as { error?: { instancePath: string }[]; value?: unknown };
        assert.ok(Array.isArray(r.error), JSON.stringify(data));
        assert.equal(r.error[0]?.instancePath, path, JSON.stringify(data));
      }
      assert.deepEqual((validate({ txs: ['ab'] }) as { value?: unknown }).value, {
        txs: ['ab'],
        encoding: 'hex',
        mode: 'async',
      });
    });
  });

  describe('the rendered answer', () => {
    it('is byte for byte JSON.stringify of the result objects', () => {
      const e1 = new ApiError('malformed', 'tx: not hex "quoted" \\ \u0001', 'tx');
      const e2 = new ApiError('mempool-full', 'full', undefined, 500);
      const hash = 'ab'.repeat(32);
      const objects = [{ hash, status: 'accepted' }, e1.toBody(), { hash, status: 'known' }, e2.toBody()];
      const rendered = [
        takenJson(hash, 'accepted'),
        refusedJson(e1),
        takenJson(hash, 'known'),
        refusedJson(e2),
      ];
      assert.equal(batchAnswerJson(rendered, undefined), JSON.stringify({ results: objects }));
      assert.equal(batchAnswerJson(rendered, 1500), JSON.stringify({ results: objects, retryAfterMs: 1500 }));
      assert.equal(batchAnswerJson([], undefined), JSON.stringify({ results: [] }));
    });
  });
});
