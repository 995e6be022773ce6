import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isZtwimError } from '@ztwim/core';
import { resolveCaConfig, type CaConfig } from './config.ts';
import type { KeyType } from '../keymanager/key-manager.ts';

describe('resolveCaConfig', () => {
  it('fills SPIRE defaults', () => {
    const c = resolveCaConfig({ trustDomain: 'example.org' });
    assert.equal(c.trustDomain.name, 'example.org');
    assert.equal(c.caKeyType, 'ec-p256');
    assert.equal(c.jwtKeyType, 'ec-p256');
    assert.equal(c.caTtlMs, 24 * 3_600_000);
    assert.equal(c.x509SvidTtlMs, 3_600_000);
    assert.equal(c.jwtSvidTtlMs, 300_000);
    assert.deepEqual(c.caSubject, { country: ['US'], organization: ['SPIFFE'] });
    assert.equal(c.jwtIssuer, undefined);
    assert.ok(Object.isFrozen(c));
  });

  it('jwtKeyType defaults to caKeyType; explicit values win', () => {
    assert.equal(resolveCaConfig({ trustDomain: 'td', caKeyType: 'rsa-2048' }).jwtKeyType, 'rsa-2048');
    const c = resolveCaConfig({ trustDomain: 'td', caKeyType: 'rsa-2048', jwtKeyType: 'ec-p384', caSubject: { commonName: 'X', country: ['DE'] } });
    assert.equal(c.jwtKeyType, 'ec-p384');
    assert.deepEqual(c.caSubject, { country: ['DE'], commonName: 'X' });
  });

  it('accepts https issuers, and http only when allowed', () => {
    assert.equal(resolveCaConfig({ trustDomain: 'td', jwtIssuer: 'https://oidc.example.org/path' }).jwtIssuer, 'https://oidc.example.org/path');
    assert.equal(resolveCaConfig({ trustDomain: 'td', jwtIssuer: 'http://localhost:8080', allowInsecureIssuer: true }).jwtIssuer, 'http://localhost:8080');
  });

  const bad: Array<{ name: string; config: CaConfig; field: string }> = [
    { name: 'bad trust domain', config: { trustDomain: 'Bad TD' }, field: 'trustDomain:' },
    { name: 'zero CA TTL', config: { trustDomain: 'td', caTtlMs: 0 }, field: 'caTtlMs:' },
    { name: 'negative x509 TTL', config: { trustDomain: 'td', x509SvidTtlMs: -5 }, field: 'x509SvidTtlMs:' },
    { name: 'fractional jwt TTL', config: { trustDomain: 'td', jwtSvidTtlMs: 1.5 }, field: 'jwtSvidTtlMs:' },
    { name: 'NaN jwt TTL', config: { trustDomain: 'td', jwtSvidTtlMs: Number.NaN }, field: 'jwtSvidTtlMs:' },
    { name: 'unknown CA key type', config: { trustDomain: 'td', caKeyType: 'ed25519' as KeyType }, field: 'caKeyType:' },
    { name: 'unknown JWT key type', config: { trustDomain: 'td', jwtKeyType: 'rsa-1024' as KeyType }, field: 'jwtKeyType:' },
    { name: 'issuer not a URL', config: { trustDomain: 'td', jwtIssuer: 'oidc.example.org' }, field: 'jwtIssuer: must be a URL' },
    { name: 'http issuer', config: { trustDomain: 'td', jwtIssuer: 'http://oidc.example.org' }, field: 'jwtIssuer: scheme must be https' },
    { name: 'ftp issuer even if insecure allowed', config: { trustDomain: 'td', jwtIssuer: 'ftp://x', allowInsecureIssuer: true }, field: 'jwtIssuer: scheme' },
    { name: 'issuer with query', config: { trustDomain: 'td', jwtIssuer: 'https://x/?a=b' }, field: 'jwtIssuer: must not have a query' },
    { name: 'country not a list', config: { trustDomain: 'td', caSubject: { country: 'US' as unknown as string[] } }, field: 'caSubject.country:' },
  ];
  for (const c of bad) {
    it(`rejects ${c.name}, naming the field`, () => {
      assert.throws(
        () => resolveCaConfig(c.config),
        (e: unknown) => isZtwimError(e, 'ERR_CONFIG') && e.message.startsWith(c.field),
      );
    });
  }
});
