// SPIRE's UpstreamAuthorityID (LocalAuthority API): the subject key ID of the upstream
// certificate that signs this server's CA, i.e. the first certificate of the upstream chain.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { makeCa, tempDir } from '@ztwim/testkit';
import { upstreamAuthorityIdOf, type UpstreamAuthority } from './x509-ca.ts';

const der = (pem: string): Uint8Array => new Uint8Array(Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64'));
const skiOf = (certPath: string): string => {
  const text = execFileSync('openssl', ['x509', '-in', certPath, '-noout', '-ext', 'subjectKeyIdentifier'], { encoding: 'utf8' });
  return (text.trim().split('\n').at(-1) ?? '').replace(/[\s:]/g, '').toLowerCase();
};

describe('upstreamAuthorityIdOf', () => {
  const dir = tempDir('ztwim-upstream-id-');
  const first = makeCa(dir, 'upstream signer');
  const second = makeCa(tempDir('ztwim-upstream-id-2-'), 'upstream root');
  const privateKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const upstream = (certChain: Uint8Array[]): UpstreamAuthority => ({ certChain, privateKey, roots: [der(second.certPem)] });

  it("is the subject key ID openssl reads from the chain's first certificate, not a later one", () => {
    const id = upstreamAuthorityIdOf(upstream([der(first.certPem), der(second.certPem)]));
    assert.match(id, /^[0-9a-f]{40}$/);
    assert.equal(id, skiOf(first.certPath));
    assert.notEqual(id, skiOf(second.certPath));
  });

  it('refuses an upstream authority without a certificate, naming it', () => {
    assert.throws(() => upstreamAuthorityIdOf(upstream([])), { code: 'ERR_INVALID_ARGUMENT', message: 'ca: upstream authority has no certificate' });
  });
});
