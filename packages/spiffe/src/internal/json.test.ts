import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JsonError, parseJson } from './json.ts';

test('parseJson matches JSON.parse on valid documents', () => {
  const docs = ['{"a":[1,2.5,-3e2,true,false,null,"x\\u00e9\\n"]}', '[]', '"s"', ' 0 ', '{"__proto__":{"x":1}}'];
  for (const d of docs) assert.deepEqual(parseJson(d), JSON.parse(d), d);
  const proto = parseJson('{"__proto__":{"x":1}}') as Record<string, unknown>;
  assert.equal(Object.getPrototypeOf(proto), Object.prototype);
  assert.deepEqual(Object.keys(proto), ['__proto__']);
});

test('parseJson keeps 64-bit integers exact as bigint', () => {
  assert.equal(parseJson('18446744073709551615'), 18446744073709551615n);
  assert.equal(parseJson('9007199254740991'), 9007199254740991);
});

test('parseJson rejects duplicates, bad syntax, deep nesting and invalid UTF-8', () => {
  const bad: Array<string | Uint8Array> = [
    '{"a":1,"a":2}',
    '{"a":{"b":1,"b":1}}',
    '',
    '{',
    '[1,]',
    '{"a":1,}',
    '01',
    '1.',
    '"\u0001"',
    '"\\x"',
    'nul',
    '1 2',
    '['.repeat(100) + ']'.repeat(100),
    Uint8Array.from([0x22, 0xff, 0x22]),
    'NaN',
    '1e999',
  ];
  for (const d of bad) assert.throws(() => parseJson(d), JsonError, String(d));
});
