// Test helper: a self-signed agent X509-SVID made with openssl (valid one day from now, leaf rules
// of the SDK's X509Svid), for agent tests that need real certificates without a server.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Svid } from '@ztwim/spiffe';

export function opensslAgentSvid(id = 'spiffe://example.org/spire/agent/join_token/t'): X509Svid {
  const dir = mkdtempSync(join(tmpdir(), 'ztwim-svid-'));
  try {
    const k = join(dir, 'k.pem');
    const c = join(dir, 'c.pem');
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
        k,
        '-out',
        c,
        '-days',
        '1',
        '-subj',
        '/CN=agent',
        '-addext',
        `subjectAltName=URI:${id}`,
        '-addext',
        'basicConstraints=critical,CA:FALSE',
        '-addext',
        'keyUsage=critical,digitalSignature',
      ],
      { stdio: 'ignore' },
    );
    return X509Svid.parse(readFileSync(c, 'utf8'), readFileSync(k, 'utf8'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
