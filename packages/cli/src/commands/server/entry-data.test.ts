import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseEntryData } from './entry-data.ts';

describe('parseEntryData (-data registration JSON)', () => {
  it('converts the documented example, keys case-insensitive', () => {
    const [a, b] = parseEntryData(
      JSON.stringify({
        entries: [
          {
            spiffe_id: 'spiffe://example.org/Blog',
            parent_id: 'spiffe://example.org/spire/agent/x',
            selectors: [{ type: 'unix', value: 'uid:1111' }],
            x509_svid_ttl: 200,
          },
          {
            SPIFFE_ID: 'spiffe://example.org/db',
            Parent_ID: 'spiffe://example.org/p',
            Selectors: [{ TYPE: 'k8s', Value: 'ns:a' }],
            entry_id: 'custom',
            dns_names: ['db.example.org'],
            federates_with: ['spiffe://fed.org', 'other.org'],
            admin: true,
            downstream: true,
            entryExpiry: 1999999999,
            store_svid: true,
            jwt_svid_ttl: 30,
            hint: 'h',
          },
        ],
      }),
    );
    assert.deepEqual(a?.spiffeId, { $typeName: 'spire.api.types.SPIFFEID', trustDomain: 'example.org', path: '/Blog' });
    assert.equal(a?.x509SvidTtl, 200);
    assert.equal(a?.id, '');
    assert.deepEqual(
      b?.selectors.map((s) => `${s.type}:${s.value}`),
      ['k8s:ns:a'],
    );
    assert.equal(b?.id, 'custom');
    assert.deepEqual(b?.federatesWith, ['fed.org', 'other.org']);
    assert.equal(b?.expiresAt, 1999999999n);
    assert.equal(b?.storeSvid, true);
    assert.equal(b?.jwtSvidTtl, 30);
    assert.equal(b?.admin && b.downstream, true);
  });

  const errors: [string, string, RegExp][] = [
    ['bad SPIFFE ID', '{"entries":[{"spiffe_id":"bad","parent_id":"spiffe://a/b"}]}', /^invalid SPIFFE ID: scheme is missing or invalid$/],
    ['bad parent ID', '{"entries":[{"spiffe_id":"spiffe://a/b","parent_id":""}]}', /^invalid parent ID: cannot be empty$/],
    ['bad federated TD', '{"entries":[{"spiffe_id":"spiffe://a/b","parent_id":"spiffe://a/c","federates_with":["A"]}]}', /^invalid federated trust domain: /],
    [
      'wrong type',
      '{"entries":[{"spiffe_id":"spiffe://a/b","parent_id":"spiffe://a/c","x509_svid_ttl":"1"}]}',
      /^json: cannot unmarshal string into Go struct field RegistrationEntry\.entries\.x509_svid_ttl of type int32$/,
    ],
  ];
  for (const [name, input, re] of errors) it(name, () => assert.throws(() => parseEntryData(input), { message: re }));

  it('no entries', () => {
    assert.deepEqual(parseEntryData('{}'), []);
    assert.deepEqual(parseEntryData('{"entries":[]}'), []);
  });
});
