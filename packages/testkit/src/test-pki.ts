/**
 * Test PKI made with the openssl CLI (a missing openssl fails the test, never skips it): a CA,
 * server certificates signed by it and certificates of any shape (`opensslCert`), as PEM files in
 * a temp dir.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
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

/** `openssl req` arguments for a fresh P-256 key, written unencrypted. */
const NEW_P256_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'] as const;

/** An openssl command that failed (or could not run): its subcommand and what it wrote to stderr. */
export class OpensslError extends Error {
  override readonly name = 'OpensslError';
  readonly subcommand: string;
  readonly stderr: string;
  constructor(subcommand: string, stderr: string, options?: ErrorOptions) {
    super(`openssl ${subcommand} failed: ${stderr}`, options);
    this.subcommand = subcommand;
    this.stderr = stderr;
  }
}

function openssl(args: readonly string[], cwd: string): void {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as Error & { stderr?: Buffer };
    throw new OpensslError(args[0] ?? '', err.stderr?.toString() || err.message, { cause: e });
  }
}

/** A new temp dir for PEM files (the caller removes it). */
export function tempDir(prefix = 'ztwim-pki-'): string {
  return makeTmpDir(prefix).path;
}

/** A self-signed P-256 CA valid for two days (outliving the one-day certificates it signs). */
export function makeCa(dir: string = tempDir(), name = 'ztwim test ca'): TestCa {
  const { certPath, keyPath, certPem } = opensslCert({
    dir,
    file: 'ca',
    subject: `/CN=${name}`,
    days: 2,
    extensions: ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign'],
  });
  return { dir, certPath, keyPath, certPem };
}

export interface OpensslCertOptions {
  /** Where `<file>.pem` and `<file>.key` are written. */
  readonly dir: string;
  readonly file: string;
  /** openssl's `-subj`, e.g. `/CN=agent`. */
  readonly subject: string;
  /** Validity from now (default 1). */
  readonly days?: number;
  /** Each one an `-addext`, e.g. `subjectAltName=URI:spiffe://example.org/w`. */
  readonly extensions?: readonly string[];
  /** Signs with this CA (`-CA`/`-CAkey`) instead of self-signing. */
  readonly issuer?: { readonly certPath: string; readonly keyPath: string };
}

/** A P-256 certificate from one `openssl req -x509`: self-signed, or signed by `issuer`. */
export function opensslCert(o: OpensslCertOptions): TestCert & { readonly certDer: Uint8Array } {
  const certPath = join(o.dir, `${o.file}.pem`);
  const keyPath = join(o.dir, `${o.file}.key`);
  const args = ['req', '-x509', ...NEW_P256_KEY, '-keyout', keyPath, '-out', certPath, '-days', String(o.days ?? 1), '-subj', o.subject];
  for (const ext of o.extensions ?? []) args.push('-addext', ext);
  if (o.issuer !== undefined) args.push('-CA', o.issuer.certPath, '-CAkey', o.issuer.keyPath);
  openssl(args, o.dir);
  const certPem = readFileSync(certPath, 'utf8');
  return { certPath, keyPath, certPem, keyPem: readFileSync(keyPath, 'utf8'), certDer: new Uint8Array(new X509Certificate(certPem).raw) };
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
  openssl(['req', ...NEW_P256_KEY, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${dnsNames[0] ?? name}`], dir);
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
