import assert from 'node:assert/strict';

describe('toolchain', () => {
  it('runs TypeScript tests compiled to ESM', () => {
    assert.equal(typeof import.meta.url, 'string');
  });
});
