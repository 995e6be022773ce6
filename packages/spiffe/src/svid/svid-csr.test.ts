import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSvidCsr } from '../index.ts';

/** What openssl makes of a DER PKCS#10 request: its text form, the public key PEM and the verify verdict. */
function opensslReq(csr: Uint8Array): { text: string; stderr: string; status: number | null } {
  const dir = mkdtempSync(join(tmpdir(), 'ztwim-svid-csr-'));
  try {
    const file = join(dir, 'req.der');
    writeFileSync(file, csr);
    const r = spawnSync('openssl', ['req', '-inform', 'DER', '-in', file, '-verify', '-noout', '-text', '-pubkey'], { encoding: 'utf8' });
    if (r.error !== undefined) throw r.error;
    return { text: r.stdout, stderr: r.stderr, status: r.status };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('createSvidCsr: a P-256 request signed with ECDSA-SHA256 that openssl verifies, for the returned PKCS#8 key', async () => {
  const { csr, pkcs8 } = await createSvidCsr('spiffe://example.org/webhook', ['a.example.org', 'b.example.org']);
  const req = opensslReq(csr);
  assert.equal(req.status, 0, req.stderr);
  assert.match(req.stderr + req.text, /verify OK/);
  assert.match(req.text, /Signature Algorithm: ecdsa-with-SHA256/);
  assert.match(req.text, /ASN1 OID: prime256v1/);
  // The PKCS#8 key is the request's key (the SVID API's MintX509SVID certifies the request's key).
  const key = createPrivateKey({ key: Buffer.from(pkcs8), format: 'der', type: 'pkcs8' });
  assert.equal(key.asymmetricKeyType, 'ec');
  assert.equal(key.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  const pubPem = /-----BEGIN PUBLIC KEY-----[\s\S]*?-----END PUBLIC KEY-----\n/.exec(req.text)?.[0];
  assert.ok(pubPem !== undefined, req.text);
  assert.deepEqual(createPublicKey(pubPem).export({ format: 'jwk' }), createPublicKey(key).export({ format: 'jwk' }));
});

test('createSvidCsr: the SPIFFE ID is the URI SAN and the DNS names follow it in order', async () => {
  const { csr } = await createSvidCsr('spiffe://example.org/ns/default/sa/registrar', ['webhook.svc', 'webhook.svc.cluster.local']);
  const req = opensslReq(csr);
  assert.equal(req.status, 0, req.stderr);
  assert.match(
    req.text,
    /X509v3 Subject Alternative Name:\s*\n\s*URI:spiffe:\/\/example\.org\/ns\/default\/sa\/registrar, DNS:webhook\.svc, DNS:webhook\.svc\.cluster\.local\n/,
  );
  const bare = opensslReq((await createSvidCsr('spiffe://example.org/x', [])).csr);
  assert.match(bare.text, /X509v3 Subject Alternative Name:\s*\n\s*URI:spiffe:\/\/example\.org\/x\n/);
});

test('createSvidCsr: a fresh key for every request', async () => {
  const a = await createSvidCsr('spiffe://example.org/x', []);
  const b = await createSvidCsr('spiffe://example.org/x', []);
  assert.notDeepEqual(a.pkcs8, b.pkcs8);
  assert.notDeepEqual(a.csr, b.csr);
});
