// Test helper: a self-signed agent X509-SVID made with openssl (valid one day from now, leaf rules
// of the SDK's X509Svid), for agent tests that need real certificates without a server.
import { X509Svid } from '@ztwim/spiffe';
import { makeTmpDir, opensslCert } from '@ztwim/testkit';

export function opensslAgentSvid(id = 'spiffe://example.org/spire/agent/join_token/t'): X509Svid {
  const dir = makeTmpDir('ztwim-svid-');
  try {
    const { certPem, keyPem } = opensslCert({
      dir: dir.path,
      file: 'agent',
      subject: '/CN=agent',
      extensions: [`subjectAltName=URI:${id}`, 'basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature'],
    });
    return X509Svid.parse(certPem, keyPem);
  } finally {
    dir.cleanup();
  }
}
