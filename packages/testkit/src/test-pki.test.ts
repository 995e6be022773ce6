import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { rmSync } from 'node:fs';
import { makeCa, opensslCert, OpensslError, tempDir } from './test-pki.ts';

test('makeCa: a CA certificate valid for two days from now', () => {
  const ca = makeCa();
  try {
    const cert = new X509Certificate(ca.certPem);
    assert.equal(cert.ca, true);
    const lifeMs = Date.parse(cert.validTo) - Date.parse(cert.validFrom);
    assert.equal(lifeMs, 2 * 24 * 3600 * 1000);
  } finally {
    rmSync(ca.dir, { recursive: true, force: true });
  }
});

test('a failing openssl command throws an OpensslError naming the subcommand and carrying its stderr', () => {
  const dir = tempDir();
  try {
    assert.throws(
      () => opensslCert({ dir, file: 'bad', subject: '/CN=x', extensions: ['basicConstraints=not-a-value'] }),
      (e: unknown) => {
        assert.ok(e instanceof OpensslError, String(e));
        assert.equal(e.name, 'OpensslError');
        assert.equal(e.subcommand, 'req');
        assert.notEqual(e.stderr, '');
        assert.match(e.message, /^openssl req failed: /);
        return true;
      },
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
