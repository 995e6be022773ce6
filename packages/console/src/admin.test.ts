import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { subjectKeyIdOf } from './admin.ts';

const dir = mkdtempSync(join(tmpdir(), 'ztwim-console-ski-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A self-signed certificate made by openssl, and the subject key ID openssl put in it (method 1). */
function opensslCert(name: string, keyArgs: readonly string[]): { cert: X509Certificate; ski: string } {
  const out = join(dir, `${name}.pem`);
  execFileSync(
    '/usr/bin/openssl',
    ['req', '-x509', ...keyArgs, '-nodes', '-keyout', join(dir, `${name}.key`), '-out', out, '-subj', `/CN=${name}`, '-days', '1'],
    {
      stdio: 'ignore',
    },
  );
  const text = execFileSync('/usr/bin/openssl', ['x509', '-in', out, '-noout', '-ext', 'subjectKeyIdentifier'], { encoding: 'utf8' });
  const ski = (text.trim().split('\n').at(-1) ?? '').replace(/[\s:]/g, '').toLowerCase();
  return { cert: new X509Certificate(readFileSync(out)), ski };
}

describe('subjectKeyIdOf: the authority ID SPIRE names an X.509 CA by', () => {
  for (const [name, args] of [
    ['ec-p256', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']],
    ['ec-p384', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384']],
    ['rsa-2048', ['-newkey', 'rsa:2048']],
  ] as const) {
    it(`equals the subject key identifier openssl computes (${name})`, () => {
      const { cert, ski } = opensslCert(name, args);
      assert.match(ski, /^[0-9a-f]{40}$/);
      assert.equal(subjectKeyIdOf(cert), ski);
    });
  }
});
