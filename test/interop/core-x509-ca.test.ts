// X509-SVIDs minted by our CA (X509Ca, from openssl-made CSRs) are accepted by openssl verify
// (-x509_strict, -purpose sslclient and sslserver, with intermediates, -partial_chain),
// go-spiffe x509svid.Verify / x509svid.Parse, py-spiffe X509Svid.parse and our own verifier;
// wrong roots, expiry and a CA certificate used as a leaf are rejected by all of them.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { FakeClock } from '@ztwim/testkit';
import { SpiffeId, TrustDomain, X509Bundle, X509Svid, verifyX509Svid } from './lib/sdk.ts';
import { createCaCertificate, X509Ca, type KeyPair } from './lib/server.ts';
import { genKey, opensslCsr, privatePem, type KeyKind } from './lib/keys.ts';
import { openssl, opensslVerify } from './lib/openssl.ts';
import { dersToPem } from './lib/pem.ts';
import { pyBundleCheck } from './lib/python.ts';
import { checkBatch } from './lib/spiffecheck.ts';
import { makeTmpDir, type TmpDir } from './lib/tmp.ts';

const TD = TrustDomain.parse('example.org');
const DAY = 24 * 3600_000;
const HOUR = 3600_000;

interface Minted {
  name: string;
  id: string;
  chain: Uint8Array[];
  key: KeyPair;
  /** Trust anchors for the chain. */
  roots: Uint8Array[];
  /** Files: leaf only, intermediates (untrusted), chain (leaf first), key, roots. */
  leafFile: string;
  untrustedFile?: string;
  chainFile: string;
  keyFile: string;
  rootsFile: string;
}

function selfSignedCa(kind: KeyKind, clock: FakeClock, ttlMs = DAY): X509Ca {
  const key = genKey(kind);
  const chain = createCaCertificate({ trustDomain: TD, key, ttlMs, now: clock.now() });
  return new X509Ca({ trustDomain: TD, key, chain, clock, x509SvidTtlMs: HOUR });
}

describe('X509-SVIDs minted by our CA interoperate', () => {
  let tmp: TmpDir;
  const clock = new FakeClock(Date.now());
  const now = (): Date => new Date();
  let minted: Minted[];
  let otherRootFile: string;

  function record(name: string, ca: X509Ca, roots: Uint8Array[], leafKind: KeyKind, dnsNames: string[] = []): Minted {
    const key = genKey(leafKind);
    const csr = opensslCsr(tmp, name, key);
    const id = SpiffeId.fromSegments(TD, 'ns', 'default', 'sa', name);
    const r = ca.signX509SvidFromCsr(csr, { spiffeId: id, dnsNames });
    const m: Minted = {
      name,
      id: id.toString(),
      chain: r.certChain,
      key,
      roots,
      leafFile: tmp.write(`${name}.leaf.pem`, dersToPem([r.certChain[0]!])),
      chainFile: tmp.write(`${name}.chain.pem`, dersToPem(r.certChain)),
      keyFile: tmp.write(`${name}.key.pem`, privatePem(key)),
      rootsFile: tmp.write(`${name}.roots.pem`, dersToPem(roots)),
    };
    if (r.certChain.length > 1) m.untrustedFile = tmp.write(`${name}.untrusted.pem`, dersToPem(r.certChain.slice(1)));
    return m;
  }

  before(() => {
    tmp = makeTmpDir();
    minted = [];
    for (const caKind of ['ec-p256', 'ec-p384', 'rsa-2048'] as const) {
      const ca = selfSignedCa(caKind, clock);
      for (const leafKind of ['ec-p256', 'ec-p384', 'rsa-2048'] as const) {
        minted.push(record(`self-${caKind}-leaf-${leafKind}`, ca, [ca.certificate], leafKind));
      }
    }
    // Upstream: root R (self-signed) -> intermediate U -> our CA -> leaf. The bundle holds R only.
    const rKey = genKey('ec-p384');
    const [r] = createCaCertificate({ trustDomain: TD, key: rKey, ttlMs: 2 * DAY, now: clock.now() });
    const uKey = genKey('ec-p256');
    const uChain = createCaCertificate({
      trustDomain: TD,
      key: uKey,
      ttlMs: 2 * DAY,
      now: clock.now(),
      upstream: { certChain: [r!], privateKey: rKey.privateKey, roots: [r!] },
    });
    const caKey = genKey('ec-p256');
    const caChain = createCaCertificate({
      trustDomain: TD,
      key: caKey,
      ttlMs: DAY,
      now: clock.now(),
      upstream: { certChain: [uChain[0]!], privateKey: uKey.privateKey, roots: [r!] },
    });
    const upCa = new X509Ca({ trustDomain: TD, key: caKey, chain: caChain, clock, x509SvidTtlMs: HOUR });
    minted.push(record('upstream-two-intermediates', upCa, [r!], 'ec-p256', ['workload.example.org']));
    const other = selfSignedCa('ec-p256', clock);
    otherRootFile = tmp.write('other-root.pem', dersToPem([other.certificate]));
  });
  after(() => tmp.cleanup());

  it('the upstream chain carries both intermediates', () => {
    const up = minted.find((m) => m.name === 'upstream-two-intermediates')!;
    assert.equal(up.chain.length, 3);
  });

  it('openssl verify -x509_strict accepts them for sslclient and sslserver', () => {
    const failures: string[] = [];
    for (const m of minted) {
      for (const purpose of ['sslclient', 'sslserver']) {
        const r = opensslVerify(m.leafFile, { trusted: m.rootsFile, ...(m.untrustedFile ? { untrusted: m.untrustedFile } : {}), purpose });
        if (!r.ok) failures.push(`${m.name} ${purpose}: ${r.output}`);
      }
    }
    assert.deepEqual(failures, []);
  });

  it('openssl: intermediates are required, -partial_chain accepts our CA as the anchor', () => {
    const m = minted.find((x) => x.name === 'upstream-two-intermediates')!;
    // Without the intermediates the path cannot be built.
    assert.equal(opensslVerify(m.leafFile, { trusted: m.rootsFile, purpose: 'sslclient' }).ok, false);
    // Our (intermediate) CA certificate as the only trust anchor: only with -partial_chain.
    const ourCa = tmp.write('our-ca.pem', dersToPem([m.chain[1]!]));
    assert.equal(opensslVerify(m.leafFile, { trusted: ourCa, purpose: 'sslserver' }).ok, false);
    assert.equal(opensslVerify(m.leafFile, { trusted: ourCa, purpose: 'sslserver', partialChain: true }).ok, true);
    // Intermediate U as anchor with our CA as untrusted, -partial_chain.
    const u = tmp.write('u.pem', dersToPem([m.chain[2]!]));
    const ourCaUntrusted = tmp.write('our-ca-untrusted.pem', dersToPem([m.chain[1]!]));
    assert.equal(opensslVerify(m.leafFile, { trusted: u, untrusted: ourCaUntrusted, purpose: 'sslclient', partialChain: true }).ok, true);
    // The CA certificates themselves verify as CAs under the root.
    const caFile = tmp.write('ca-chain-check.pem', dersToPem([m.chain[1]!]));
    assert.equal(opensslVerify(caFile, { trusted: m.rootsFile, untrusted: u, purpose: 'any' }).ok, true);
  });

  it('openssl: wrong root and expiry are rejected', () => {
    const m = minted[0]!;
    assert.equal(opensslVerify(m.leafFile, { trusted: otherRootFile, purpose: 'sslclient' }).ok, false);
    const in2h = Math.floor(Date.now() / 1000) + 2 * 3600;
    const r = opensslVerify(m.leafFile, { trusted: m.rootsFile, purpose: 'sslclient', atTime: in2h });
    assert.equal(r.ok, false);
    assert.match(r.output, /expired/);
  });

  it('the leaf carries what SPIRE puts there (openssl x509 -text)', () => {
    const text = openssl(['x509', '-in', minted[0]!.leafFile, '-noout', '-text']);
    assert.match(text, /X509v3 Key Usage: critical\s+Digital Signature, Key Encipherment, Key Agreement/);
    assert.match(text, /X509v3 Extended Key Usage:\s+TLS Web Server Authentication, TLS Web Client Authentication/);
    assert.match(text, /X509v3 Basic Constraints: critical\s+CA:FALSE/);
    assert.match(text, new RegExp(`URI:${minted[0]!.id.replace(/[/.]/g, '\\$&')}`));
    assert.doesNotMatch(text, /evil/i, 'CSR subject/SANs must be ignored');
  });

  it('go-spiffe x509svid.Verify and x509svid.Parse accept them with the right ID', () => {
    const go = checkBatch(
      minted.flatMap((m) => [
        { cmd: 'x509svid-verify', args: [m.chainFile, TD.name, m.rootsFile] },
        { cmd: 'x509svid-parse', args: [m.chainFile, m.keyFile] },
      ]),
    );
    minted.forEach((m, i) => {
      const v = go[2 * i]!;
      const p = go[2 * i + 1]!;
      assert.ok(v.ok, `${m.name} verify: ${v.error}`);
      assert.equal(v['id'], m.id);
      assert.deepEqual(v['chainLengths'], [m.chain.length + 1]);
      assert.ok(p.ok, `${m.name} parse: ${p.error}`);
      assert.equal(p['id'], m.id);
    });
  });

  it('go-spiffe rejects them under a wrong root, after expiry, and the CA certificate as a leaf', () => {
    const m = minted[0]!;
    const later = String(Math.floor(Date.now() / 1000) + 2 * 3600);
    const caAsLeaf = tmp.write('ca-as-leaf.pem', dersToPem([m.roots[0]!]));
    const go = checkBatch([
      { cmd: 'x509svid-verify', args: [m.chainFile, TD.name, otherRootFile] },
      { cmd: 'x509svid-verify', args: [m.chainFile, TD.name, m.rootsFile, later] },
      { cmd: 'x509svid-verify', args: [caAsLeaf, TD.name, m.rootsFile] },
    ]);
    assert.deepEqual(
      go.map((r) => r.ok),
      [false, false, false],
      JSON.stringify(go),
    );
    assert.match(go[0]!.error!, /signed by unknown authority/);
    assert.match(go[1]!.error!, /expired/);
    // Our CA certificate has a root URI SAN (spiffe://example.org) and CA=true.
    assert.equal(go[2]!.error, 'x509svid: leaf certificate with CA flag set to true');
  });

  it('our verifier and parser agree: accept them, reject wrong root / expiry / CA as leaf', () => {
    for (const m of minted) {
      const r = verifyX509Svid(m.chain, X509Bundle.fromAuthorities(TD, m.roots), { now: now() });
      assert.equal(r.id.toString(), m.id);
      assert.equal(r.verifiedChains[0]!.length, m.chain.length + 1);
      const s = X509Svid.parse(dersToPem(m.chain), privatePem(m.key));
      assert.equal(s.id.toString(), m.id);
    }
    const m = minted[0]!;
    const otherBundle = X509Bundle.parse(TD, readFileSync(otherRootFile, 'utf8'));
    assert.throws(() => verifyX509Svid(m.chain, otherBundle, { now: now() }), /x509svid: could not verify leaf certificate/);
    assert.throws(
      () => verifyX509Svid(m.chain, X509Bundle.fromAuthorities(TD, m.roots), { now: new Date(Date.now() + 2 * HOUR) }),
      /x509svid: could not verify leaf certificate/,
    );
    assert.throws(
      () => verifyX509Svid([m.roots[0]!], X509Bundle.fromAuthorities(TD, m.roots), { now: now() }),
      // The CA's ID is the bare trust domain, refused first (X509-SVID §3.1, §5.2; X509Svid.parse's order).
      /x509svid: leaf certificate SPIFFE ID must have a non-root path/,
    );
  });

  it('py-spiffe X509Svid.parse accepts them with the right ID', () => {
    const py = pyBundleCheck(minted.map((m) => ({ kind: 'x509svid' as const, data: dersToPem(m.chain), key: privatePem(m.key) })));
    minted.forEach((m, i) => {
      assert.ok(py[i]!.ok, `${m.name}: ${py[i]!.error}`);
      assert.equal(py[i]!.id, m.id);
      assert.equal(py[i]!.chainLength, m.chain.length);
    });
  });

  it('an SVID minted by a CA whose clock is 3h behind is expired for everyone now, valid at its time', () => {
    const pastClock = new FakeClock(Date.now() - 3 * HOUR);
    const ca = selfSignedCa('ec-p256', pastClock);
    const m = record('past', ca, [ca.certificate], 'ec-p256');
    const then = Math.floor(pastClock.nowMs() / 1000) + 60;
    assert.equal(opensslVerify(m.leafFile, { trusted: m.rootsFile, purpose: 'sslclient' }).ok, false);
    assert.equal(opensslVerify(m.leafFile, { trusted: m.rootsFile, purpose: 'sslclient', atTime: then }).ok, true);
    const go = checkBatch([
      { cmd: 'x509svid-verify', args: [m.chainFile, TD.name, m.rootsFile] },
      { cmd: 'x509svid-verify', args: [m.chainFile, TD.name, m.rootsFile, String(then)] },
    ]);
    assert.deepEqual(
      go.map((r) => r.ok),
      [false, true],
    );
    const bundle = X509Bundle.fromAuthorities(TD, m.roots);
    assert.throws(() => verifyX509Svid(m.chain, bundle, { now: now() }), /could not verify leaf certificate/);
    assert.equal(verifyX509Svid(m.chain, bundle, { now: new Date(then * 1000) }).id.toString(), m.id);
  });
});
