/**
 * Test PKI made with the openssl CLI (a missing openssl fails the test, never skips it): a CA and
 * server certificates signed by it, as PEM files in a temp dir.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeTmpDir } from './tmp-dir.ts';

export interface TestCa {
  readonly dir: string;
  readonly certPath: string;
  readonly keyPath: string;
  readonly certPem: string;
}

export interface TestCert {
  readonly certPath: string;
  readonly keyPath: string;
  readonly certPem: string;
  readonly keyPem: string;
}

function openssl(args: readonly string[], cwd: string): void {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as Error & { stderr?: Buffer };
    throw new Error(`openssl ${args[0] ?? ''} failed: ${err.stderr?.toString() ?? err.message}`);
  }
}

/** A new temp dir for PEM files (the caller removes it). */
export function tempDir(prefix = 'ztwim-pki-'): string {
  return makeTmpDir(prefix).path;
}

/** A self-signed P-256 CA valid for a day. */
export function makeCa(dir: string = tempDir(), name = 'ztwim test ca'): TestCa {
  openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      'ca.key',
      '-out',
      'ca.pem',
      '-days',
      '2',
      '-subj',
      `/CN=${name}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  );
  return {
    dir,
    certPath: join(dir, 'ca.pem'),
    keyPath: join(dir, 'ca.key'),
    certPem: readFileSync(join(dir, 'ca.pem'), 'utf8'),
  };
}

let serial = 0;

/** A server certificate for the given DNS names and IPs, signed by ca, written as <name>.pem/.key. */
export function issueServerCert(
  ca: TestCa,
  name: string,
  dnsNames: readonly string[] = ['localhost'],
  ips: readonly string[] = ['127.0.0.1'],
  dir: string = ca.dir,
): TestCert {
  serial++;
  const san = [...dnsNames.map((d) => `DNS:${d}`), ...ips.map((i) => `IP:${i}`)].join(',');
  const ext = join(dir, `${name}.ext`);
  writeFileSync(
    ext,
    [`subjectAltName=${san}`, 'basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=serverAuth'].join('\n'),
  );
  openssl(
    [
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.csr`,
      '-subj',
      `/CN=${dnsNames[0] ?? name}`,
    ],
    dir,
  );
  openssl(
    [
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      ca.certPath,
      '-CAkey',
      ca.keyPath,
      '-set_serial',
      String(Date.now() * 1000 + serial),
      '-days',
      '1',
      '-out',
      `${name}.pem`,
      '-extfile',
      ext,
    ],
    dir,
  );
  return {
    certPath: join(dir, `${name}.pem`),
    keyPath: join(dir, `${name}.key`),
    certPem: readFileSync(join(dir, `${name}.pem`), 'utf8'),
    keyPem: readFileSync(join(dir, `${name}.key`), 'utf8'),
  };
}
