import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { describe, it } from 'node:test';
import { isZtwimError } from '@ztwim/core';
import { SpiffeId, TrustDomain } from '@ztwim/spiffe';
import { FakeClock } from '@ztwim/testkit';
import { makeCsr, opensslVerify, P256, P384, RSA2048, x509, type Pair } from './fixtures.test-util.ts';
import { createCaCertificate, X509Ca } from './x509-ca.ts';

const td = TrustDomain.parse('example.org');
const HOUR = 3_600_000;
const workload = SpiffeId.parse('spiffe://example.org/ns/default/sa/web');
const invalid = (frag: string) => (e: unknown) => isZtwimError(e, 'ERR_INVALID_ARGUMENT') && e.message.includes(frag);

function newCa(clock: FakeClock, key: Pair = P256, ttlMs = 24 * HOUR): X509Ca {
  const chain = createCaCertificate({ trustDomain: td, key, ttlMs, now: clock.now() });
  return new X509Ca({ trustDomain: td, key, chain, clock, x509SvidTtlMs: HOUR });
}

const cert = (der: Uint8Array): x509.X509Certificate => new x509.X509Certificate(der);
/** Independent SKI: SHA-1 of the subjectPublicKey bits, i.e. the tail of the SPKI DER. */
const skiOf = (pair: Pair): string =>
  createHash('sha1')
    .update(Buffer.from(pair.publicKey.export({ type: 'spki', format: 'der' })).subarray(-keyBitsLen(pair)))
    .digest('hex');

describe('createCaCertificate', () => {
  const cases: Array<{ name: string; key: Pair; sigAlg: string }> = [
    { name: 'ec-p256', key: P256, sigAlg: 'ECDSA' },
    { name: 'ec-p384', key: P384, sigAlg: 'ECDSA' },
    { name: 'rsa-2048', key: RSA2048, sigAlg: 'RSASSA-PKCS1-v1_5' },
  ];
  for (const c of cases) {
    it(`makes a self-signed ${c.name} root per the X509-SVID spec`, async () => {
      const clock = new FakeClock();
      const [der, ...rest] = createCaCertificate({ trustDomain: td, key: c.key, ttlMs: 24 * HOUR, now: clock.now() });
      assert.ok(der);
      assert.deepEqual(rest, []);
      const ca = cert(der);
      assert.equal((ca.signatureAlgorithm as unknown as { name: string }).name, c.sigAlg);
      assert.ok(await ca.isSelfSigned());
      assert.ok(new X509Certificate(der).verify(c.key.publicKey));
      const bc = ca.getExtension(x509.BasicConstraintsExtension);
      assert.ok(bc?.ca && bc.critical);
      const ku = ca.getExtension(x509.KeyUsagesExtension);
      assert.ok(ku?.critical);
      assert.equal(ku.usages, x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
      const san = ca.getExtension(x509.SubjectAlternativeNameExtension);
      assert.deepEqual(san?.names.toJSON(), [{ type: 'url', value: 'spiffe://example.org' }]);
      const ski = ca.getExtension(x509.SubjectKeyIdentifierExtension);
      assert.equal(ski?.keyId, skiOf(c.key));
      assert.match(ca.subject, /^C=US, O=SPIFFE, 2\.5\.4\.5=\d+$/);
      assert.equal(ca.notBefore.getTime(), clock.nowMs() - 10_000);
      assert.equal(ca.notAfter.getTime(), clock.nowMs() + 24 * HOUR);
    });
  }

  it('uses a configured subject', () => {
    const clock = new FakeClock();
    const [der] = createCaCertificate({
      trustDomain: td,
      key: P256,
      ttlMs: HOUR,
      now: clock.now(),
      subject: { commonName: 'Ünïcode CA', country: ['DE', 'FR'], organization: ['Acme', 'Red Hat'] },
    });
    assert.ok(der);
    const names = cert(der).subjectName.toJSON();
    assert.deepEqual(names.slice(0, 5), [{ C: ['DE'] }, { C: ['FR'] }, { O: ['Acme'] }, { O: ['Red Hat'] }, { CN: ['Ünïcode CA'] }]);
  });

  it('draws random serials in [1, 2^128]', () => {
    const clock = new FakeClock();
    const serialWith = (fill: number): bigint => {
      const [der] = createCaCertificate({ trustDomain: td, key: P256, ttlMs: HOUR, now: clock.now(), random: (n) => new Uint8Array(n).fill(fill) });
      return BigInt(`0x${new X509Certificate(der as Uint8Array).serialNumber}`);
    };
    assert.equal(serialWith(0), 1n);
    assert.equal(serialWith(0xff), 2n ** 128n);
  });
});

function keyBitsLen(pair: Pair): number {
  // length of the subjectPublicKey bits (without the unused-bits byte) at the end of the SPKI
  const d = pair.publicKey.asymmetricKeyDetails;
  if (pair.publicKey.asymmetricKeyType === 'ec') return d?.namedCurve === 'secp384r1' ? 97 : 65;
  return pair.publicKey.export({ type: 'pkcs1', format: 'der' }).length;
}

describe('X509Ca.signX509Svid', () => {
  it('mints a workload SVID from a CSR using only its public key', async () => {
    const clock = new FakeClock();
    const ca = newCa(clock);
    const csr = await makeCsr(P384, { subject: 'CN=evil, O=Evil', dnsNames: ['evil.example'], uris: ['spiffe://evil.org/x'] });
    clock.advance(5000);
    const svid = ca.signX509SvidFromCsr(csr, { spiffeId: workload, dnsNames: ['web.example.org', 'web'] });
    assert.equal(svid.certChain.length, 1);
    const leaf = cert(svid.certChain[0] as Uint8Array);
    assert.equal(leaf.subject, 'C=US, O=SPIRE, CN=web.example.org');
    assert.equal(leaf.issuer, cert(ca.certificate).subject);
    assert.ok(new X509Certificate(svid.certChain[0] as Uint8Array).publicKey.equals(P384.publicKey));
    assert.deepEqual(leaf.getExtension(x509.SubjectAlternativeNameExtension)?.names.toJSON(), [
      { type: 'url', value: 'spiffe://example.org/ns/default/sa/web' },
      { type: 'dns', value: 'web.example.org' },
      { type: 'dns', value: 'web' },
    ]);
    const ku = leaf.getExtension(x509.KeyUsagesExtension);
    assert.ok(ku?.critical);
    assert.equal(ku.usages, x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment | x509.KeyUsageFlags.keyAgreement);
    assert.deepEqual([...(leaf.getExtension(x509.ExtendedKeyUsageExtension)?.usages ?? [])], ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    const bc = leaf.getExtension(x509.BasicConstraintsExtension);
    assert.ok(bc?.critical);
    assert.equal(bc.ca, false);
    assert.equal(leaf.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId, skiOf(P384));
    assert.equal(leaf.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId, skiOf(P256));
    assert.equal(leaf.notBefore.getTime(), clock.nowMs() - 10_000);
    assert.equal(leaf.notAfter.getTime(), clock.nowMs() + HOUR);
    assert.equal(svid.notAfter.getTime(), clock.nowMs() + HOUR);
    assert.equal(BigInt(`0x${leaf.serialNumber}`), svid.serial);
    assert.ok(await leaf.verify({ publicKey: cert(ca.certificate), date: clock.now() }));
  });

  it('has no CN when there are no DNS names, and honours a TTL', () => {
    const clock = new FakeClock();
    const ca = newCa(clock);
    const svid = ca.signX509Svid({ publicKey: P256.publicKey, spiffeId: workload, ttlMs: 600_000 });
    const leaf = cert(svid.certChain[0] as Uint8Array);
    assert.equal(leaf.subject, 'C=US, O=SPIRE');
    assert.equal(leaf.notAfter.getTime(), clock.nowMs() + 600_000);
  });

  it('never outlives its CA', () => {
    const clock = new FakeClock();
    const ca = newCa(clock, P256, 2 * HOUR);
    clock.advance(90 * 60_000); // 30 minutes of CA life left
    const svid = ca.signX509Svid({ publicKey: P384.publicKey, spiffeId: workload });
    assert.equal(svid.notAfter.getTime(), ca.notAfter.getTime());
    assert.equal(cert(svid.certChain[0] as Uint8Array).notAfter.getTime(), ca.notAfter.getTime());
  });

  for (const purpose of ['sslclient', 'sslserver'] as const) {
    for (const [name, key] of [
      ['P-256', P256],
      ['RSA-2048', RSA2048],
    ] as const) {
      it(`openssl verify -x509_strict -purpose ${purpose} accepts an SVID from a ${name} CA`, () => {
        const clock = new FakeClock();
        const ca = newCa(clock, key);
        const svid = ca.signX509Svid({ publicKey: P384.publicKey, spiffeId: workload, dnsNames: ['web.example.org'] });
        const r = opensslVerify(svid.certChain[0] as Uint8Array, [ca.certificate], { purpose, atTime: clock.now() });
        assert.ok(r.ok, r.output);
        const later = opensslVerify(svid.certChain[0] as Uint8Array, [ca.certificate], { purpose, atTime: new Date(clock.nowMs() + 2 * HOUR) });
        assert.ok(!later.ok && /expired/.test(later.output), later.output);
      });
    }
  }

  it('rejects SVIDs signed by another CA (openssl)', () => {
    const clock = new FakeClock();
    const a = newCa(clock);
    const b = newCa(clock);
    const svid = a.signX509Svid({ publicKey: P384.publicKey, spiffeId: workload });
    assert.ok(!opensslVerify(svid.certChain[0] as Uint8Array, [b.certificate], { atTime: clock.now() }).ok);
  });

  it('mints the server SVID and agent SVIDs', () => {
    const clock = new FakeClock();
    const ca = newCa(clock);
    const server = ca.signServerSvid(P384.publicKey);
    assert.equal(server.spiffeId.toString(), 'spiffe://example.org/spire/server');
    assert.deepEqual(
      cert(server.certChain[0] as Uint8Array)
        .getExtension(x509.SubjectAlternativeNameExtension)
        ?.names.toJSON(),
      [{ type: 'url', value: 'spiffe://example.org/spire/server' }],
    );
    const agentId = SpiffeId.parse('spiffe://example.org/spire/agent/join_token/abc');
    const agent = ca.signAgentSvid(P384.publicKey, agentId, 2 * HOUR);
    assert.equal(cert(agent.certChain[0] as Uint8Array).notAfter.getTime(), clock.nowMs() + 2 * HOUR);
    assert.ok(opensslVerify(agent.certChain[0] as Uint8Array, [ca.certificate], { atTime: clock.now() }).ok);
    assert.throws(() => ca.signAgentSvid(P384.publicKey, workload), invalid('not an agent ID'));
  });

  const bad: Array<{ name: string; run: (ca: X509Ca) => unknown; frag: string }> = [
    {
      name: 'foreign trust domain',
      run: (ca) => ca.signX509Svid({ publicKey: P384.publicKey, spiffeId: SpiffeId.parse('spiffe://other.org/w') }),
      frag: 'not in trust domain',
    },
    { name: 'root ID', run: (ca) => ca.signX509Svid({ publicKey: P384.publicKey, spiffeId: td.id() }), frag: 'non-root path' },
    { name: 'bad DNS name', run: (ca) => ca.signX509Svid({ publicKey: P384.publicKey, spiffeId: workload, dnsNames: ['a b'] }), frag: 'invalid DNS name' },
    { name: 'negative TTL', run: (ca) => ca.signX509Svid({ publicKey: P384.publicKey, spiffeId: workload, ttlMs: -1 }), frag: 'ttl' },
    { name: 'private key given', run: (ca) => ca.signX509Svid({ publicKey: P384.privateKey, spiffeId: workload }), frag: 'public key' },
    { name: 'garbage CSR', run: (ca) => ca.signX509SvidFromCsr(Uint8Array.from([1, 2, 3]), { spiffeId: workload }), frag: 'csr:' },
  ];
  for (const c of bad) {
    it(`rejects: ${c.name}`, () => {
      assert.throws(() => c.run(newCa(new FakeClock())), invalid(c.frag));
    });
  }

  it('refuses to sign once the CA has expired', () => {
    const clock = new FakeClock();
    const ca = newCa(clock, P256, HOUR);
    clock.advance(HOUR);
    assert.throws(
      () => ca.signX509Svid({ publicKey: P384.publicKey, spiffeId: workload }),
      (e: unknown) => isZtwimError(e, 'ERR_FAILED_PRECONDITION'),
    );
  });
});

describe('X509Ca under an upstream authority', () => {
  it('returns [leaf, CA] and chains to the upstream root (openssl, also -partial_chain)', async () => {
    const clock = new FakeClock();
    const upstreamTd = TrustDomain.parse('upstream.example');
    const [root] = createCaCertificate({ trustDomain: upstreamTd, key: RSA2048, ttlMs: 12 * HOUR, now: clock.now(), subject: { commonName: 'Upstream Root' } });
    assert.ok(root);
    const chain = createCaCertificate({
      trustDomain: td,
      key: P256,
      ttlMs: 24 * HOUR,
      now: clock.now(),
      upstream: { certChain: [root], privateKey: RSA2048.privateKey, roots: [root] },
    });
    assert.equal(chain.length, 1);
    const inter = cert(chain[0] as Uint8Array);
    assert.equal(inter.issuer, cert(root).subject);
    assert.equal(inter.notAfter.getTime(), cert(root).notAfter.getTime(), 'capped at the upstream expiry');
    assert.ok(await inter.verify({ publicKey: cert(root), date: clock.now() }));
    const ca = new X509Ca({ trustDomain: td, key: P256, chain, clock, x509SvidTtlMs: HOUR });
    const svid = ca.signX509Svid({ publicKey: P384.publicKey, spiffeId: workload });
    assert.equal(svid.certChain.length, 2, 'the upstream root is not sent');
    assert.deepEqual(svid.certChain[1], chain[0]);
    const leaf = svid.certChain[0] as Uint8Array;
    for (const purpose of ['sslclient', 'sslserver'] as const) {
      const ok = opensslVerify(leaf, [root], { intermediates: [chain[0] as Uint8Array], purpose, atTime: clock.now() });
      assert.ok(ok.ok, ok.output);
    }
    assert.ok(opensslVerify(leaf, [chain[0] as Uint8Array], { partialChain: true, atTime: clock.now() }).ok);
    assert.ok(!opensslVerify(leaf, [root], { atTime: clock.now() }).ok, 'fails without the intermediate');
  });
});
