// The peer ID matchers (spire-core.md §1.2, go-spiffe spiffeid/match.go): each accepts exactly the
// IDs it names and refuses every other one with ERR_AUTHORIZATION and go-spiffe's text,
// `unexpected ID "<id>"` or `unexpected trust domain "<td>"`. IDs are parsed inside the tests, not
// at module level: a mutant that breaks parsing then fails a test (killed) instead of crashing the
// file, which StrykerJS would count as a runtime error, outside the score.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { isSpiffeError, matchAny, matchId, matchMemberOf, matchOneOf, matchPredicate, SpiffeId, TrustDomain } from '../index.ts';
import type { Matcher } from '../index.ts';

const id = (s: string): SpiffeId => SpiffeId.parse(s);
const web = (): SpiffeId => id('spiffe://example.org/web');
const db = (): SpiffeId => id('spiffe://example.org/db');
const other = (): SpiffeId => id('spiffe://other.org/web');

function refused(m: Matcher, peer: SpiffeId, message: string): void {
  assert.throws(
    () => m(peer),
    (e: unknown) => isSpiffeError(e, 'ERR_AUTHORIZATION') && e.message === message,
    `${peer.toString()}: ${message}`,
  );
}

test('matchAny accepts every ID', () => {
  for (const peer of [web(), db(), other(), TrustDomain.parse('x').id()]) assert.equal(matchAny()(peer), undefined);
});

test('matchId accepts only an equal ID: same trust domain and same path', () => {
  const m = matchId(web());
  assert.equal(m(id('spiffe://example.org/web')), undefined);
  refused(m, db(), 'spiffeid: unexpected ID "spiffe://example.org/db"');
  refused(m, other(), 'spiffeid: unexpected ID "spiffe://other.org/web"');
  refused(m, id('spiffe://example.org/web/x'), 'spiffeid: unexpected ID "spiffe://example.org/web/x"');
});

test('matchOneOf accepts any of its IDs and nothing else; with none it accepts nobody', () => {
  const m = matchOneOf(web(), db());
  assert.equal(m(id('spiffe://example.org/web')), undefined);
  assert.equal(m(id('spiffe://example.org/db')), undefined);
  refused(m, other(), 'spiffeid: unexpected ID "spiffe://other.org/web"');
  refused(m, id('spiffe://example.org'), 'spiffeid: unexpected ID "spiffe://example.org"');
  refused(matchOneOf(), web(), 'spiffeid: unexpected ID "spiffe://example.org/web"');
});

test('matchMemberOf accepts every ID of the trust domain and names the other trust domain', () => {
  const m = matchMemberOf(TrustDomain.parse('example.org'));
  assert.equal(m(web()), undefined);
  assert.equal(m(id('spiffe://example.org')), undefined);
  refused(m, other(), 'spiffeid: unexpected trust domain "other.org"');
  refused(m, id('spiffe://example.org.evil/web'), 'spiffeid: unexpected trust domain "example.org.evil"');
});

test('matchPredicate accepts what the predicate accepts and is given the peer ID', () => {
  const seen: string[] = [];
  const m = matchPredicate((peer) => {
    seen.push(peer.toString());
    return peer.path.startsWith('/web');
  });
  assert.equal(m(web()), undefined);
  refused(m, db(), 'spiffeid: unexpected ID "spiffe://example.org/db"');
  assert.deepEqual(seen, ['spiffe://example.org/web', 'spiffe://example.org/db']);
});
