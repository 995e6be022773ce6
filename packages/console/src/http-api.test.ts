import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { entryInput } from './http-api.ts';

describe('console entry input', () => {
  it('reads the web app form and the `entry create -data` JSON alike', () => {
    const camel = entryInput(
      { spiffeId: 'spiffe://td/a', parentId: 'spiffe://td/host', selectors: [{ type: 'unix', value: 'uid:1' }], x509SvidTtl: 60, dnsNames: ['a.test'] },
      'e',
    );
    const snake = entryInput(
      { spiffe_id: 'spiffe://td/a', parent_id: 'spiffe://td/host', selectors: [{ type: 'unix', value: 'uid:1' }], x509_svid_ttl: 60, dns_names: ['a.test'] },
      'e',
    );
    assert.deepEqual(camel, snake);
    assert.equal(camel.x509SvidTtl, 60);
  });

  it('names the field that is wrong', () => {
    assert.throws(() => entryInput({ parentId: 'spiffe://td/host', selectors: [] }, 'entries[0]'), /entries\[0\]\.spiffeId: want a string/);
    assert.throws(
      () => entryInput({ spiffeId: 'spiffe://td/a', parentId: 'spiffe://td/h', selectors: [{ type: 'unix' }] }, 'e'),
      /e\.selectors\[0\]: want \{type, value\}/,
    );
    assert.throws(
      () => entryInput({ spiffeId: 'spiffe://td/a', parentId: 'spiffe://td/h', selectors: [], x509SvidTtl: -1 }, 'e'),
      /x509SvidTtl: want a whole number/,
    );
    assert.throws(() => entryInput({ spiffeId: 'spiffe://td/a', parentId: 'spiffe://td/h', selectors: [], admin: 'yes' }, 'e'), /e\.admin: want true or false/);
    assert.throws(() => entryInput('x', 'e'), /e: want an object/);
  });
});
