// The CA's rules beyond the happy paths of x509-ca.test.ts, one per test (found by mutation
// testing, docs/mutation-testing.md): what createCaCertificate and X509Ca refuse, how an upstream
// authority's certificate and chain are used, the DNS name rule, TTL defaults and clamping to the
// CA's expiry, and the server/agent SVID helpers' TTLs. Rules: /work/shared/spec/spire-core.md
// (X509-SVID profile: notBefore = now - 10s, notAfter = min(now + ttl, CA notAfter); SKI/AKI).
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { describe, it } from 'node:test';
import { isZtwimError } from '@ztwim/core';
import { SpiffeId, TrustDomain } from '@ztwim/spiffe';
import { FakeClock } from '@ztwim/testkit';
import { cryptoPair, P256, P384, RSA2048, x509, type Pair } from './fixtures.test-util.ts';
import { createCaCertificate, X509Ca } from './x509-ca.ts';

const td = TrustDomain.parse('example.org');
const HOUR = 3_600_000;
const workload = SpiffeId.parse('spiffe://example.org/ns/default/sa/web');

function refusedWith(code: 'ERR_INVALID_ARGUMENT' | 'ERR_INTERNAL', message: string | RegExp) {
  return (e: unknown): boolean => {
    assert.ok(isZtwimError(e, code), String(e));
    if (typeof message === 'string') assert.equal(e.message, message);
    else assert.match(e.message, message);
    return true;
  };
}

function newCa(clock: FakeClock, opts: { ttlMs?: number; svidTtlMs?: number } = {}): X509Ca {
  const chain = createCaCertificate({ trustDomain: td, key: P256, ttlMs: opts.ttlMs ?? 24 * HOUR, now: clock.now() });
  return new X509Ca({ trustDomain: td, key: P256, chain, clock, x509SvidTtlMs: opts.svidTtlMs ?? HOUR });
}

const leafOf = (chain: readonly Uint8Array[]): X509Certificate => new X509Certificate(chain[0] as Uint8Array);
const notAfterOf = (der: Uint8Array | undefined): number => new x509.X509Certificate(der as Uint8Array).notAfter.getTime();
/** The authority key identifier's keyIdentifier, hex, read by @peculiar/x509 (an independent parser). */
const akiOf = (der: Uint8Array): string | undefined => new x509.X509Certificate(der).getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId;
/** RFC 5280 method 1 key ID: SHA-1 of the subjectPublicKey bits (the SPKI's BIT STRING contents after the unused-bits byte). */
function keyIdOf(pair: Pair): string {
  const spki = new x509.PublicKey(pair.publicKey.export({ type: 'spki', format: 'der' }));
  const bits = new Uint8Array(spki.rawData).subarray(-bitsLength(pair));
  return createHash('sha1').update(bits).digest('hex');
}
function bitsLength(pair: Pair): number {
  if (pair.publicKey.asymmetricKeyType === 'rsa') return pair.publicKey.export({ type: 'pkcs1', format: 'der' }).length;
  return pair.publicKey.asymmetricKeyDetails?.namedCurve === 'secp384r1' ? 97 : 65;
}

describe('createCaCertificate: what it refuses', () => {
  it('the TTL is a positive whole number of milliseconds', () => {
    const clock = new FakeClock();
    for (const ttlMs of [0, -1, 1.5, Number.NaN]) {
      assert.throws(
        () => createCaCertificate({ trustDomain: td, key: P256, ttlMs, now: clock.now() }),
        refusedWith('ERR_INVALID_ARGUMENT', 'ca: ttlMs must be a positive integer'),
        String(ttlMs),
      );
    }
    assert.equal(notAfterOf(createCaCertificate({ trustDomain: td, key: P256, ttlMs: 1000, now: clock.now() })[0]), clock.nowMs() + 1000);
  });

  it('an upstream authority without a certificate is refused', () => {
    assert.throws(
      () =>
        createCaCertificate({
          trustDomain: td,
          key: P256,
          ttlMs: HOUR,
          now: new Date(0),
          upstream: { certChain: [], privateKey: RSA2048.privateKey, roots: [] },
        }),
      refusedWith('ERR_INVALID_ARGUMENT', 'ca: upstream authority has no certificate'),
    );
  });

  it("an upstream certificate that does not parse is an internal error naming the parser's complaint", () => {
    assert.throws(
      () =>
        createCaCertificate({
          trustDomain: td,
          key: P256,
          ttlMs: HOUR,
          now: new Date(0),
          upstream: { certChain: [Uint8Array.from([0x30, 0x03, 0x02, 0x01, 0x00])], privateKey: RSA2048.privateKey, roots: [] },
        }),
      (e: unknown) => refusedWith('ERR_INTERNAL', /^ca: cannot parse certificate: \S/)(e) && (e as Error).cause instanceof Error,
    );
  });
});

describe('createCaCertificate under an upstream authority', () => {
  const clock = new FakeClock();
  const upstreamTd = TrustDomain.parse('upstream.example');
  const [root] = createCaCertificate({ trustDomain: upstreamTd, key: RSA2048, ttlMs: 48 * HOUR, now: clock.now() }) as [Uint8Array];
  const upstreamInter = createCaCertificate({
    trustDomain: upstreamTd,
    key: P384,
    ttlMs: 36 * HOUR,
    now: clock.now(),
    upstream: { certChain: [root], privateKey: RSA2048.privateKey, roots: [root] },
  });

  it('a CA that ends before the upstream keeps its own TTL (only a later end is clamped)', () => {
    const [ours] = createCaCertificate({
      trustDomain: td,
      key: P256,
      ttlMs: 24 * HOUR,
      now: clock.now(),
      upstream: { certChain: [root], privateKey: RSA2048.privateKey, roots: [root] },
    });
    assert.equal(notAfterOf(ours), clock.nowMs() + 24 * HOUR);
  });

  it('the chain carries the upstream intermediates but not its trust anchors', () => {
    const [inter] = upstreamInter as [Uint8Array];
    const chain = createCaCertificate({
      trustDomain: td,
      key: P256,
      ttlMs: HOUR,
      now: clock.now(),
      upstream: { certChain: [inter, root], privateKey: P384.privateKey, roots: [root] },
    });
    assert.equal(chain.length, 2);
    assert.deepEqual(chain[1], inter);
    assert.ok(leafOf(chain).verify(P384.publicKey), 'signed by the upstream signing key');
    assert.equal(leafOf(chain).issuer, new X509Certificate(inter).subject);
    assert.equal(akiOf(chain[0] as Uint8Array), keyIdOf(P384), "AKI = the upstream certificate's SKI");
    // With no roots named, the whole upstream chain is sent.
    const all = createCaCertificate({
      trustDomain: td,
      key: P256,
      ttlMs: HOUR,
      now: clock.now(),
      upstream: { certChain: [inter, root], privateKey: P384.privateKey, roots: [] },
    });
    assert.deepEqual(all.slice(1), [inter, root]);
  });

  /** A self-signed upstream root made by @peculiar/x509, with the given extra extensions. */
  async function upstreamRoot(extensions: x509.Extension[]): Promise<Uint8Array> {
    const root = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: '01',
      name: 'CN=Upstream Root',
      notBefore: new Date(clock.nowMs() - HOUR),
      notAfter: new Date(clock.nowMs() + 48 * HOUR),
      keys: (await cryptoPair(RSA2048)) as never,
      signingAlgorithm: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
      extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true), ...extensions],
    });
    return new Uint8Array(root.rawData);
  }
  const signedBy = (upstream: Uint8Array): Uint8Array =>
    createCaCertificate({
      trustDomain: td,
      key: P256,
      ttlMs: HOUR,
      now: clock.now(),
      upstream: { certChain: [upstream], privateKey: RSA2048.privateKey, roots: [upstream] },
    })[0] as Uint8Array;

  it("the AKI is the upstream certificate's own SKI, whatever method made it", async () => {
    const ski = '0123456789abcdef0123456789abcdef01234567';
    assert.notEqual(ski, keyIdOf(RSA2048));
    assert.equal(akiOf(signedBy(await upstreamRoot([new x509.SubjectKeyIdentifierExtension(ski)]))), ski);
  });

  it('an upstream subject key identifier that is not an OCTET STRING is refused by name', async () => {
    const badSki = new x509.Extension('2.5.29.14', false, Uint8Array.from([0x02, 0x01, 0x01]));
    const upstream = await upstreamRoot([badSki]);
    assert.throws(() => signedBy(upstream), refusedWith('ERR_INTERNAL', 'ca: cannot parse certificate: unexpected tag for subject key identifier'));
  });

  it("an upstream certificate without a subject key identifier: the AKI is the SHA-1 of the upstream's key", async () => {
    const upstream = await upstreamRoot([]);
    assert.equal(new x509.X509Certificate(upstream).getExtension(x509.SubjectKeyIdentifierExtension), null);
    assert.equal(akiOf(signedBy(upstream)), keyIdOf(RSA2048));
  });
});

describe('X509Ca: what the constructor refuses', () => {
  const clock = new FakeClock();
  const chain = createCaCertificate({ trustDomain: td, key: P256, ttlMs: HOUR, now: clock.now() });

  it('an empty chain', () => {
    assert.throws(
      () => new X509Ca({ trustDomain: td, key: P256, chain: [], clock, x509SvidTtlMs: HOUR }),
      refusedWith('ERR_INVALID_ARGUMENT', 'ca: empty CA chain'),
    );
  });

  it('a default SVID TTL that is not a positive whole number of milliseconds', () => {
    for (const x509SvidTtlMs of [0, -HOUR, 0.5]) {
      assert.throws(
        () => new X509Ca({ trustDomain: td, key: P256, chain, clock, x509SvidTtlMs }),
        refusedWith('ERR_INVALID_ARGUMENT', 'ca: x509SvidTtlMs must be a positive integer'),
        String(x509SvidTtlMs),
      );
    }
  });

  it('keeps the chain it was given: [CA certificate, ...upstream intermediates]', () => {
    const ca = new X509Ca({ trustDomain: td, key: P256, chain, clock, x509SvidTtlMs: HOUR });
    assert.deepEqual(ca.chain, chain);
    assert.deepEqual(ca.certificate, chain[0]);
  });

  it('a key that is not the CA certificate key', () => {
    assert.throws(
      () => new X509Ca({ trustDomain: td, key: P384, chain, clock, x509SvidTtlMs: HOUR }),
      refusedWith('ERR_INVALID_ARGUMENT', 'ca: CA key does not match the CA certificate'),
    );
  });
});

describe('X509Ca: TTLs', () => {
  it('a TTL of 0 means the default; a fractional TTL is refused', () => {
    const clock = new FakeClock();
    const ca = newCa(clock, { svidTtlMs: 2 * HOUR });
    const svid = ca.signX509Svid({ publicKey: P384.publicKey, spiffeId: workload, ttlMs: 0 });
    assert.equal(svid.notAfter.getTime(), clock.nowMs() + 2 * HOUR);
    assert.throws(
      () => ca.signX509Svid({ publicKey: P384.publicKey, spiffeId: workload, ttlMs: 1.5 }),
      refusedWith('ERR_INVALID_ARGUMENT', 'ca: ttl must be a non-negative integer'),
    );
  });

  it('an SVID is backdated by 10 s and clamped to the CA end one millisecond before the CA expires', () => {
    const clock = new FakeClock();
    const ca = newCa(clock, { ttlMs: HOUR });
    clock.advance(HOUR - 1);
    const svid = ca.signX509Svid({ publicKey: P384.publicKey, spiffeId: workload });
    assert.equal(svid.notBefore.getTime(), clock.nowMs() - 10_000);
    assert.equal(svid.notAfter.getTime(), ca.notAfter.getTime());
  });

  it('an expired CA refuses to sign, saying so', () => {
    const clock = new FakeClock();
    const ca = newCa(clock, { ttlMs: HOUR });
    clock.advance(HOUR);
    assert.throws(
      () => ca.signX509Svid({ publicKey: P384.publicKey, spiffeId: workload }),
      (e: unknown) => isZtwimError(e, 'ERR_FAILED_PRECONDITION') && e.message === 'ca: X509 CA has expired',
    );
  });

  it('the server SVID honours a TTL and defaults to the CA default', () => {
    const clock = new FakeClock();
    const ca = newCa(clock);
    assert.equal(ca.signServerSvid(P384.publicKey, 600_000).notAfter.getTime(), clock.nowMs() + 600_000);
    assert.equal(ca.signServerSvid(P384.publicKey).notAfter.getTime(), clock.nowMs() + HOUR);
  });

  it('an agent SVID defaults to the CA default', () => {
    const clock = new FakeClock();
    const ca = newCa(clock);
    const agentId = SpiffeId.parse('spiffe://example.org/spire/agent/x509pop/abc');
    assert.equal(ca.signAgentSvid(P384.publicKey, agentId).notAfter.getTime(), clock.nowMs() + HOUR);
  });

  it('an agent ID is under /spire/agent/ (the prefix with its slash)', () => {
    const ca = newCa(new FakeClock());
    for (const id of ['spiffe://example.org/spire/agentx/a', 'spiffe://example.org/a/spire/agent/x', 'spiffe://example.org/spire/server']) {
      assert.throws(() => ca.signAgentSvid(P384.publicKey, SpiffeId.parse(id)), refusedWith('ERR_INVALID_ARGUMENT', `ca: ${id} is not an agent ID`));
    }
  });
});

describe('X509Ca: DNS names', () => {
  const ca = newCa(new FakeClock());
  const sign = (dnsNames: string[]) => ca.signX509Svid({ publicKey: P384.publicKey, spiffeId: workload, dnsNames });

  it('letters, digits, "*", "_", "-" and inner dots, up to 253 characters, are accepted', () => {
    const longest = `a${'.b'.repeat(126)}`;
    assert.equal(longest.length, 253);
    for (const name of ['web', 'WEB-1.example.org', '*.example.org', '_svc._tcp.example', '-x', '9', longest]) {
      const leaf = leafOf(sign([name]).certChain);
      assert.equal(leaf.subjectAltName, `URI:${workload.toString()}, DNS:${name}`, name);
    }
  });

  it('anything else is refused, naming the name', () => {
    for (const name of ['', '.example.org', 'a b', 'a/b', 'é.example', 'a!', '!a', 'web\n', `a${'b'.repeat(253)}`]) {
      assert.throws(
        () => sign(['ok.example', name]),
        refusedWith('ERR_INVALID_ARGUMENT', `ca: invalid DNS name ${JSON.stringify(name)}`),
        JSON.stringify(name),
      );
    }
  });

  it('the encoded subjects kept for reuse are bounded (256), however many DNS names are asked for', () => {
    const many = newCa(new FakeClock());
    // White box: the cache is private; its bound is what keeps a caller from growing it without end.
    const cached = Reflect.get(many, 'subjects') as Map<string, Buffer>;
    let largest = 0;
    for (let i = 0; i < 300; i++) {
      many.signX509Svid({ publicKey: P384.publicKey, spiffeId: workload, dnsNames: [`w${i}.example`] });
      largest = Math.max(largest, cached.size);
    }
    assert.equal(largest, 256);
  });

  it('the common name is the first DNS name, and changes with it', () => {
    const subjects = ['a.example', 'b.example', 'a.example'].map((d) => leafOf(sign([d, 'z.example']).certChain).subject);
    assert.deepEqual(subjects, ['C=US\nO=SPIRE\nCN=a.example', 'C=US\nO=SPIRE\nCN=b.example', 'C=US\nO=SPIRE\nCN=a.example']);
    assert.equal(leafOf(sign([]).certChain).subject, 'C=US\nO=SPIRE');
  });
});
