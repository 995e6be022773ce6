import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { goJsonMarshal, goJsonString, removeNulls, type JsonValue } from './go-json.ts';

describe('goJsonString (Go encoding/json string escaping)', () => {
  const cases: [string, string, string][] = [
    ['plain', 'abc', '"abc"'],
    ['html-safe <>&', 'a<b>&c', '"a\\u003cb\\u003e\\u0026c"'],
    ['quotes and backslash', 'say "hi" \\o/', '"say \\"hi\\" \\\\o/"'],
    ['newline tab cr', 'a\nb\tc\rd', '"a\\nb\\tc\\rd"'],
    ['\\b and \\f (Go ≥1.22)', '\b\f', '"\\b\\f"'],
    ['other control chars', '\u0000\u0001\u001f', '"\\u0000\\u0001\\u001f"'],
    ['line/paragraph separators', '\u2028\u2029', '"\\u2028\\u2029"'],
    ['DEL and non-ASCII kept', '\u007fé😀', '"\u007fé😀"'],
    ['lone surrogate ⇒ U+FFFD escape', 'a\ud800b', '"a\\ufffdb"'],
  ];
  for (const [name, input, want] of cases) {
    it(name, () => assert.equal(goJsonString(input), want));
  }
});

describe('goJsonMarshal', () => {
  const cases: [string, JsonValue, string][] = [
    ['keys sorted bytewise, compact', { b: 1, a: [true, null], C: 'x' }, '{"C":"x","a":[true,null],"b":1}'],
    ['nested objects sorted', { z: { y: 1, x: 2 }, a: {} }, '{"a":{},"z":{"x":2,"y":1}}'],
    ['numbers like Go float64', [0, 100, -3, 1.5, 1e21, 1e-7, 2147483647], '[0,100,-3,1.5,1e+21,1e-7,2147483647]'],
    ['escapes inside keys', { '<k>': '&' }, '{"\\u003ck\\u003e":"\\u0026"}'],
    ['empty array and object', { a: [], o: {} }, '{"a":[],"o":{}}'],
  ];
  for (const [name, input, want] of cases) {
    it(name, () => assert.equal(goJsonMarshal(input), want));
  }

  it('keeps insertion order with sortKeys=false (Go structs)', () => {
    assert.equal(goJsonMarshal([{ x509_svid: ['a'], private_key: 'b', root_cas: [] }], false), '[{"x509_svid":["a"],"private_key":"b","root_cas":[]}]');
  });
});

describe('removeNulls (cliprinter)', () => {
  it('drops null members and null array items recursively', () => {
    assert.deepEqual(removeNulls({ a: null, b: [null, 1, { c: null, d: 2 }, [null]], e: { f: null } }), { b: [1, { d: 2 }, []], e: {} });
  });
});
