// SPIFFE ID and trust domain rules (spire-core.md §1.1, §1.2: SPIFFE-ID.md and go-spiffe
// spiffeid) that spiffe-id.test.ts does not pin down: written for the survivors of the mutation
// run of spiffe-id.ts and trust-domain.ts (docs/mutation-testing.md). A separate file, so the
// mutants that spiffe-id.test.ts kills keep their incremental results.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpiffeId, TrustDomain, isSpiffeError, validatePath } from '../index.ts';

const td = TrustDomain.parse('example.org');

function refusedId(f: () => unknown, message: string): void {
  assert.throws(f, (e: unknown) => isSpiffeError(e, 'ERR_SPIFFEID_INVALID') && e.message === `spiffeid: ${message}`, message);
}

function refusedTd(f: () => unknown, message: string): void {
  assert.throws(f, (e: unknown) => isSpiffeError(e, 'ERR_TRUST_DOMAIN_INVALID') && e.message === `trustdomain: ${message}`, message);
}

test('SPIFFE ID §1.1 rule 4: a trust domain of exactly 255 bytes and an ID of exactly 2048 bytes are accepted', () => {
  const name = 'a'.repeat(255);
  assert.equal(SpiffeId.parse(`spiffe://${name}/w`).trustDomain.name, name);
  assert.equal(TrustDomain.parse(name).name, name);
  const id = 'spiffe://td/' + 'a'.repeat(2048 - 'spiffe://td/'.length);
  assert.equal(SpiffeId.parse(id).toString(), id);
});

test('SPIFFE ID §1.1 rule 4: TrustDomain.parse refuses a name longer than 255 bytes', () => {
  refusedTd(() => TrustDomain.parse('a'.repeat(256)), 'trust domain is longer than 255 bytes');
  refusedId(() => TrustDomain.parse(`spiffe://${'a'.repeat(256)}/w`), 'trust domain is longer than 255 bytes');
});

test('SPIFFE ID §1.2 step 5: a path without its leading slash is refused by validatePath and fromPath', () => {
  refusedId(() => validatePath('path'), 'path must have a leading slash');
  refusedId(() => SpiffeId.fromPath(td, 'path'), 'path must have a leading slash');
  validatePath('');
  validatePath('/a/b');
  assert.equal(SpiffeId.fromPath(td, '').toString(), 'spiffe://example.org');
  assert.equal(SpiffeId.fromPath(td, '/a/b').toString(), 'spiffe://example.org/a/b');
});

test('SPIFFE ID §1.2 step 5: validatePath names each broken rule', () => {
  refusedId(() => validatePath('/a//b'), 'path cannot contain empty segments');
  refusedId(() => validatePath('/a/./b'), 'path cannot contain dot segments');
  refusedId(() => validatePath('/a/.'), 'path cannot contain dot segments');
  refusedId(() => validatePath('/a/'), 'path cannot have a trailing slash');
  refusedId(() => validatePath('/a b'), 'path segment characters are limited to letters, numbers, dots, dashes, and underscores');
});

test('SPIFFE ID §1.2: FromSegments refuses "." and ".." as dot segments and an empty one as an empty segment', () => {
  refusedId(() => SpiffeId.fromSegments(td, 'a', '.'), 'path cannot contain dot segments');
  refusedId(() => SpiffeId.fromSegments(td, '..', 'a'), 'path cannot contain dot segments');
  refusedId(() => SpiffeId.fromSegments(td, 'a', ''), 'path cannot contain empty segments');
  refusedId(() => SpiffeId.fromSegments(td, 'a?'), 'path segment characters are limited to letters, numbers, dots, dashes, and underscores');
  assert.equal(SpiffeId.fromSegments(td).toString(), 'spiffe://example.org');
});

test('SPIFFE ID §1.2 step 1: a value that is not a string is an empty ID; tryParse returns undefined for it', () => {
  refusedId(() => SpiffeId.parse(undefined as unknown as string), 'cannot be empty');
  assert.equal(SpiffeId.tryParse(42 as unknown as string), undefined);
  refusedTd(() => TrustDomain.parse(''), 'trust domain is missing');
});

test('SPIFFE ID §1.1: IDs are equal only with the same trust domain and the same path', () => {
  const a = SpiffeId.parse('spiffe://example.org/a');
  assert.equal(a.equals(SpiffeId.parse('spiffe://example.org/a')), true);
  assert.equal(a.equals(SpiffeId.parse('spiffe://example.org/b')), false);
  assert.equal(a.equals(SpiffeId.parse('spiffe://example.com/a')), false);
  assert.equal(a.equals(SpiffeId.parse('spiffe://example.org/A')), false);
  assert.equal(a.memberOf(td), true);
  assert.equal(a.memberOf(TrustDomain.parse('example.com')), false);
  assert.equal(a.isTrustDomainId(), false);
  assert.equal(SpiffeId.parse('spiffe://example.org').isTrustDomainId(), true);
  assert.equal(JSON.stringify({ id: a }), '{"id":"spiffe://example.org/a"}');
});

test('SPIFFE ID §1.2 API: a trust domain prints as its name and names its own ID', () => {
  assert.equal(td.equals(TrustDomain.parse('spiffe://example.org/x')), true);
  assert.equal(td.equals(TrustDomain.parse('example.com')), false);
  assert.equal(String(td), 'example.org');
  assert.equal(JSON.stringify({ td }), '{"td":"example.org"}');
  const id = td.id();
  assert.equal(id.toString(), 'spiffe://example.org');
  assert.equal(id.isTrustDomainId(), true);
  assert.equal(id.trustDomain.equals(td), true);
});
