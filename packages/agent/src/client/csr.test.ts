import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { derToPem } from '@ztwim/spiffe';
import { newKeyAndCsr, newKeyAndCsrSync, p1363ToDer } from './csr.ts';

test('p1363ToDer: the DER node:crypto produces for the same signature (leading zeros, high bits)', () => {
  const key = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  for (let i = 0; i < 200; i++) {
    const data = crypto.randomBytes(32);
    const raw = crypto.sign('sha256', data, { key: key.privateKey, dsaEncoding: 'ieee-p1363' });
    const der = p1363ToDer(raw);
    assert.ok(crypto.verify('sha256', data, key.publicKey, der), `signature ${i}`);
    assert.ok(crypto.verify('sha256', data, { key: key.publicKey, dsaEncoding: 'der' }, der));
  }
  // Edge values: r with a leading zero byte, s with its high bit set.
  const r = Buffer.alloc(32);
  r[1] = 0x7f;
  r[31] = 1;
  const s = Buffer.alloc(32, 0xff);
  assert.equal(p1363ToDer(Buffer.concat([r, s])).toString('hex'), `3044021f${r.subarray(1).toString('hex')}022100${s.toString('hex')}`);
});

test('newKeyAndCsr / newKeyAndCsrSync: a CSR openssl verifies, for the returned PKCS#8 key', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ztwim-csr-'));
  try {
    for (const made of [await newKeyAndCsr(), newKeyAndCsrSync()]) {
      const key = crypto.createPrivateKey({ key: Buffer.from(made.keyDer), format: 'der', type: 'pkcs8' });
      assert.equal(key.asymmetricKeyDetails?.namedCurve, 'prime256v1');
      const file = join(dir, 'req.pem');
      writeFileSync(file, derToPem(made.csr, 'CERTIFICATE REQUEST'));
      const out = execFileSync('openssl', ['req', '-in', file, '-verify', '-noout', '-pubkey'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      assert.equal(
        crypto.createPublicKey(out).export({ type: 'spki', format: 'der' }).toString('hex'),
        crypto.createPublicKey(key).export({ type: 'spki', format: 'der' }).toString('hex'),
        "the CSR carries the key's public half",
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
