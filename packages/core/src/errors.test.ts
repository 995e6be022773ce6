import { test } from 'node:test';
import assert from 'node:assert/strict';
import { asError, isZtwimError } from './errors.ts';

test('asError keeps an Error and wraps any other thrown value as an internal ZtwimError', () => {
  const e = new RangeError('out of range');
  assert.equal(asError(e), e);
  for (const v of ['text', 42, null, { reason: 'x' }]) {
    const w = asError(v);
    assert.ok(isZtwimError(w, 'ERR_INTERNAL'), String(v));
    assert.equal(w.message, String(v));
    assert.equal(w.cause, v);
  }
});
