import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SpiffeBundle, SpiffeId, TrustDomain, splitConcatenatedDer } from '@ztwim/spiffe';
import { isZtwimError } from '../errors.ts';
import { spiffeIdFromWire, spiffeIdToWire, trustDomainIdString, wireSpiffeIdString } from './spiffe-id.ts';
import {
  bundleToWire,
  jwkFromSpki,
  jwksDocument,
  jwtAuthoritiesToJwks,
  jwtAuthorityToWire,
  jwtBundleFromWire,
  spiffeBundleFromWire,
  spiffeBundleToWire,
  spkiFromKey,
  x509AuthoritiesDer,
  x509BundleFromWire,
  type WireBundle,
} from './bundle.ts';

/** A self-signed CA certificate (DER) made by openssl, so the fixture is not made by the code under test. */
function caCert(cn: string): Uint8Array {
  const dir = mkdtempSync(join(tmpdir(), 'ztwim-wire-'));
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        join(dir, 'k.pem'),
        '-out',
        join(dir, 'c.der'),
        '-outform',
        'DER',
        '-days',
        '1',
        '-subj',
        `/CN=${cn}`,
        '-addext',
        'basicConstraints=critical,CA:TRUE',
        '-addext',
        'keyUsage=critical,keyCertSign,cRLSign',
        '-addext',
        'subjectAltName=URI:spiffe://example.org',
      ],
      { stdio: 'ignore' },
    );
    return new Uint8Array(readFileSync(join(dir, 'c.der')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey;
const ecSpki = new Uint8Array(ec.export({ type: 'spki', format: 'der' }));
const rsaSpki = new Uint8Array(rsa.export({ type: 'spki', format: 'der' }));
const ca1 = caCert('ca1');
const ca2 = caCert('ca2');

function wire(over: Partial<WireBundle> = {}): WireBundle {
  return {
    trustDomain: 'example.org',
    x509Authorities: [{ asn1: ca1 }, { asn1: ca2 }],
    jwtAuthorities: [
      { keyId: 'ec', publicKey: ecSpki, expiresAt: 1_900_000_000n },
      { keyId: 'rsa', publicKey: rsaSpki, expiresAt: 1_900_000_100 },
    ],
    refreshHint: 300n,
    sequenceNumber: 7n,
    ...over,
  };
}

function invalidArg(re: RegExp): (e: unknown) => boolean {
  return (e) => isZtwimError(e, 'ERR_INVALID_ARGUMENT') && re.test(e.message);
}

test('wire SPIFFE IDs: validated into SpiffeId and back; printed unvalidated', () => {
  const id = spiffeIdFromWire({ trustDomain: 'example.org', path: '/ns/a' });
  assert.equal(id.toString(), 'spiffe://example.org/ns/a');
  assert.deepEqual(spiffeIdToWire(SpiffeId.parse('spiffe://td.test/x/y')), { trustDomain: 'td.test', path: '/x/y' });
  assert.equal(spiffeIdFromWire({ trustDomain: 'example.org', path: '' }).toString(), 'spiffe://example.org');
  assert.throws(() => spiffeIdFromWire(undefined), invalidArg(/^request must specify SPIFFE ID$/));
  assert.throws(() => spiffeIdFromWire({ trustDomain: '', path: '/a' }, 'invalid parent ID'), invalidArg(/^invalid parent ID: trust domain is missing$/));
  assert.deepEqual(spiffeIdToWire('spiffe://td.test/z'), { trustDomain: 'td.test', path: '/z' });
  assert.throws(() => spiffeIdFromWire({ trustDomain: 'Bad Domain', path: '/a' }), invalidArg(/^trustdomain/));
  assert.throws(() => spiffeIdFromWire({ trustDomain: 'example.org', path: '/a/../b' }), invalidArg(/dot segments/));
  assert.equal(wireSpiffeIdString({ trustDomain: 'example.org', path: '/a' }), 'spiffe://example.org/a');
  assert.equal(wireSpiffeIdString(undefined), '');
  assert.equal(trustDomainIdString('example.org'), 'spiffe://example.org');
});

test('SPKI DER and JWK convert both ways, go-jose member order, bad keys named', () => {
  const jwk = jwkFromSpki(ecSpki);
  assert.deepEqual(Object.keys(jwk), ['kty', 'crv', 'x', 'y']);
  assert.deepEqual(Object.keys(jwkFromSpki(rsaSpki)), ['kty', 'n', 'e']);
  assert.deepEqual(spkiFromKey(jwk), ecSpki);
  assert.deepEqual(spkiFromKey(ec), ecSpki);
  assert.throws(() => jwkFromSpki(new Uint8Array([0x30, 0x03, 1, 2, 3])), invalidArg(/malformed public key/));
  assert.throws(() => spkiFromKey({ kty: 'EC', crv: 'P-256', x: 'AA', y: 'AA' }), invalidArg(/malformed public key/));
});

test('Workload API forms: concatenated DER and a JWKS document with kid and use', () => {
  assert.deepEqual(splitConcatenatedDer(x509AuthoritiesDer(wire())), [ca1, ca2]);
  const doc = JSON.parse(new TextDecoder().decode(jwksDocument(wire(), { use: 'jwt-svid' }))) as { keys: Record<string, string>[] };
  assert.equal(doc.keys.length, 2);
  assert.deepEqual(Object.keys(doc.keys[0] ?? {}), ['use', 'kty', 'kid', 'crv', 'x', 'y']);
  assert.equal(doc.keys[1]?.['kid'], 'rsa');
  assert.equal(doc.keys[1]?.['use'], 'jwt-svid');
  assert.equal(jwtAuthoritiesToJwks(wire())[0]?.['use'], undefined);
  assert.throws(() => jwtAuthoritiesToJwks(wire({ jwtAuthorities: [{ keyId: '', publicKey: ecSpki, expiresAt: 0 }] })), invalidArg(/no key ID/));
});

test('SDK bundles from a wire bundle', () => {
  const x = x509BundleFromWire(wire());
  assert.equal(x.trustDomain.name, 'example.org');
  assert.deepEqual(x.authorities(), [ca1, ca2]);
  const j = jwtBundleFromWire(wire());
  assert.deepEqual([...j.authorities().keys()], ['ec', 'rsa']);
  assert.ok(j.findKeyObject('ec')?.equals(ec));
  assert.throws(() => x509BundleFromWire(wire({ trustDomain: 'Bad Domain' })), invalidArg(/malformed trust domain/));
  assert.throws(() => x509BundleFromWire(wire({ x509Authorities: [{ asn1: new Uint8Array([1, 2, 3]) }] })), invalidArg(/invalid bundle: .*certificate/));
  assert.throws(
    () => jwtBundleFromWire(wire({ jwtAuthorities: [{ keyId: 'k', publicKey: new Uint8Array([9]), expiresAt: 0 }] })),
    invalidArg(/malformed public key/),
  );
});

test('SPIFFE bundle JSON round trip through the wire form', () => {
  const sb = spiffeBundleFromWire(wire());
  assert.equal(sb.sequenceNumber, 7n);
  assert.equal(sb.refreshHintSeconds, 300);
  const parsed = SpiffeBundle.parse(TrustDomain.parse('example.org'), sb.marshal(), { strict: true });
  assert.ok(parsed.equals(sb));
  const expiries = new Map([
    ['ec', 1_900_000_000n],
    ['rsa', 1_900_000_100n],
  ]);
  const back = spiffeBundleToWire(parsed, (kid) => expiries.get(kid));
  assert.deepEqual(back, bundleToWire(wire()));
  // zero sequence number and refresh hint are absent from the JSON (go-spiffe's omitempty)
  const doc = JSON.parse(spiffeBundleFromWire(wire({ sequenceNumber: 0n, refreshHint: 0 })).marshal()) as Record<string, unknown>;
  assert.deepEqual(Object.keys(doc), ['keys']);
  assert.equal(spiffeBundleToWire(SpiffeBundle.fromParts(TrustDomain.parse('a.test'), { x509: [ca1] })).sequenceNumber, 0n);
});

test('stored bundles (number integers) and CA keys take the proto integer types', () => {
  const stored = { ...wire(), refreshHint: 60, jwtAuthorities: [{ keyId: 'ec', publicKey: ecSpki, expiresAt: 1_900_000_000, tainted: true }] };
  const w = bundleToWire(stored);
  assert.equal(w.refreshHint, 60n);
  assert.deepEqual(w.jwtAuthorities[0], { keyId: 'ec', publicKey: ecSpki, expiresAt: 1_900_000_000n, tainted: true });
  assert.deepEqual(w.x509Authorities[0], { asn1: ca1, tainted: false });
  const a = jwtAuthorityToWire({ kid: 'k1', publicKey: jwkFromSpki(ecSpki), expiresAt: new Date(1_900_000_000_500) });
  assert.deepEqual(a, { publicKey: ecSpki, keyId: 'k1', expiresAt: 1_900_000_000n, tainted: false });
  assert.deepEqual(jwtAuthorityToWire({ kid: 'k2', publicKey: ec, expiresAt: 5n }).publicKey, ecSpki);
});
