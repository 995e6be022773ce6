// SpiffeId.fromSegments checks its segments in order, as go-spiffe's FromSegments does
// (spire-core.md §1.2 API: each segment through ValidatePathSegment: empty, then dot, then
// characters), so the first bad segment names the error even when a later one breaks another rule.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { SpiffeId, TrustDomain, isSpiffeError } from '../index.ts';

function refused(segments: string[], message: string): void {
  const td = TrustDomain.parse('example.org');
  assert.throws(
    () => SpiffeId.fromSegments(td, ...segments),
    (e: unknown) => isSpiffeError(e, 'ERR_SPIFFEID_INVALID') && e.message === `spiffeid: ${message}`,
    `${JSON.stringify(segments)}: ${message}`,
  );
}

test('SPIFFE ID §1.2 FromSegments: a dot segment before a bad character is a dot-segment error', () => {
  refused(['.', 'b?'], 'path cannot contain dot segments');
  refused(['..', 'b?'], 'path cannot contain dot segments');
  refused(['a', '..', 'b?'], 'path cannot contain dot segments');
});

test('SPIFFE ID §1.2 FromSegments: an empty segment before a bad character is an empty-segment error', () => {
  refused(['', 'b?'], 'path cannot contain empty segments');
});

test('SPIFFE ID §1.2 FromSegments: a bad character before a dot segment is a character error', () => {
  refused(['b?', '.'], 'path segment characters are limited to letters, numbers, dots, dashes, and underscores');
  assert.equal(SpiffeId.fromSegments(TrustDomain.parse('example.org'), '...', '.a', 'a.').toString(), 'spiffe://example.org/.../.a/a.');
});
