import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isLogField, LOG_FIELDS } from './names.ts';

test('log field names are snake_case, listed once, in order', () => {
  for (const n of LOG_FIELDS) assert.match(n, /^[a-z][a-z0-9]*(_[a-z0-9]+)*$/, n);
  assert.equal(new Set(LOG_FIELDS).size, LOG_FIELDS.length, 'a name is listed twice');
  assert.deepEqual([...LOG_FIELDS], [...LOG_FIELDS].sort(), 'keep the table sorted');
});

test('isLogField knows the table and nothing else', () => {
  assert.equal(isLogField('spiffe_id'), true);
  assert.equal(isLogField('spiffeId'), false);
  assert.equal(isLogField(''), false);
});
