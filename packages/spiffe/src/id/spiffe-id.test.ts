import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpiffeId, TrustDomain, isSpiffeError } from '../index.ts';

const ok = [
  'spiffe://trustdomain',
  'spiffe://trustdomain/path',
  'spiffe://trustdomain/path/.path',
  'spiffe://trustdomain/..path',
  'spiffe://trustdomain/...',
  'spiffe://td-1.example_org/A-z_0.9',
  'spiffe://1.2.3.4/ipv4-is-fine',
];
const bad: Array<[string, string]> = [
  ['', 'cannot be empty'],
  ['s', 'scheme is missing or invalid'],
  ['spiffe:/td', 'scheme is missing or invalid'],
  ['Spiffe://td', 'scheme is missing or invalid'],
  ['https://td/path', 'scheme is missing or invalid'],
  ['spiffe://', 'trust domain is missing'],
  ['spiffe:///', 'trust domain is missing'],
  ['spiffe:///path', 'trust domain is missing'],
  ['spiffe://Upper/path', 'trust domain characters are limited'],
  ['spiffe://td:8080/path', 'trust domain characters are limited'],
  ['spiffe://user@td/path', 'trust domain characters are limited'],
  ['spiffe://td?q=1', 'trust domain characters are limited'],
  ['spiffe://td#frag', 'trust domain characters are limited'],
  ['spiffe://%62%61%64/path', 'trust domain characters are limited'],
  ['spiffe://[::1]/path', 'trust domain characters are limited'],
  ['spiffe://trustdomain/', 'path cannot have a trailing slash'],
  ['spiffe://trustdomain/path/', 'path cannot have a trailing slash'],
  ['spiffe://trustdomain//', 'path cannot contain empty segments'],
  ['spiffe://trustdomain//path', 'path cannot contain empty segments'],
  ['spiffe://trustdomain/.', 'path cannot contain dot segments'],
  ['spiffe://trustdomain/./path', 'path cannot contain dot segments'],
  ['spiffe://trustdomain/path/./other', 'path cannot contain dot segments'],
  ['spiffe://trustdomain/path/..', 'path cannot contain dot segments'],
  ['spiffe://trustdomain/..', 'path cannot contain dot segments'],
  ['spiffe://trustdomain/../path', 'path cannot contain dot segments'],
  ['spiffe://trustdomain/%62%61%64', 'path segment characters are limited'],
  ['spiffe://trustdomain/path?query', 'path segment characters are limited'],
  ['spiffe://trustdomain/path#frag', 'path segment characters are limited'],
  ['spiffe://trustdomain/sp ace', 'path segment characters are limited'],
  ['spiffe://trustdomain/ünicode', 'path segment characters are limited'],
  ['spiffe://' + 'a'.repeat(256), 'trust domain is longer than 255 bytes'],
  ['spiffe://td/' + 'a'.repeat(2048), 'SPIFFE ID is longer than 2048 bytes'],
];

test('SpiffeId.parse accepts valid IDs and round-trips them', () => {
  for (const s of ok) {
    const id = SpiffeId.parse(s);
    assert.equal(id.toString(), s, s);
  }
});

test('SpiffeId.parse rejects every rule violation with a message naming the rule', () => {
  for (const [input, rule] of bad) {
    assert.throws(
      () => SpiffeId.parse(input),
      (e: unknown) => isSpiffeError(e, 'ERR_SPIFFEID_INVALID') && e.message.includes(rule),
      `${JSON.stringify(input)} should fail with "${rule}"`,
    );
  }
});

test('byte sweep: trust domain allows only [a-z0-9._-], path only [a-zA-Z0-9._-]', () => {
  for (let c = 0; c < 256; c++) {
    const ch = String.fromCharCode(c);
    if (ch === '/') continue;
    const tdOk = /[a-z0-9._-]/.test(ch);
    const pathOk = /[a-zA-Z0-9._-]/.test(ch) && ch !== '.';
    assert.equal(SpiffeId.tryParse(`spiffe://t${ch}d/p`) !== undefined, tdOk, `td byte ${c}`);
    if (ch !== '.') assert.equal(SpiffeId.tryParse(`spiffe://td/p${ch}`) !== undefined, pathOk, `path byte ${c}`);
  }
});

test('TrustDomain.parse accepts a name or a full SPIFFE ID', () => {
  assert.equal(TrustDomain.parse('example.org').name, 'example.org');
  assert.equal(TrustDomain.parse('spiffe://example.org/ns/x').name, 'example.org');
  assert.equal(TrustDomain.parse('example.org').idString(), 'spiffe://example.org');
  assert.throws(() => TrustDomain.parse(''), /trust domain is missing/);
  assert.throws(() => TrustDomain.parse('Example.org'), /trust domain characters are limited/);
});

test('fromSegments validates each segment', () => {
  const td = TrustDomain.parse('example.org');
  assert.equal(SpiffeId.fromSegments(td, 'ns', 'demo').toString(), 'spiffe://example.org/ns/demo');
  assert.throws(() => SpiffeId.fromSegments(td, ''), /empty segments/);
  assert.throws(() => SpiffeId.fromSegments(td, '..'), /dot segments/);
  assert.throws(() => SpiffeId.fromSegments(td, 'a/b'), /path segment characters/);
});
