// A throwaway PKI for the TLS tests of this package (CA, server and client certificates).
import 'reflect-metadata';
import { KeyObject, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };

export interface Issued {
  certPem: string;
  keyPem: string;
  cert: x509.X509Certificate;
  keys: webcrypto.CryptoKeyPair;
}

export async function issue(subject: string, opts: { ca?: Issued; isCa?: boolean; sans?: x509.JsonGeneralNames }): Promise<Issued> {
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const now = Date.now();
  const extensions: x509.Extension[] = [new x509.BasicConstraintsExtension(opts.isCa === true, undefined, true)];
  if (opts.sans) extensions.push(new x509.SubjectAlternativeNameExtension(opts.sans));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: Math.floor(Math.random() * 1e9)
      .toString(16)
      .padStart(8, '1'),
    subject,
    issuer: opts.ca ? opts.ca.cert.subject : subject,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 3_600_000),
    publicKey: keys.publicKey,
    signingKey: opts.ca ? opts.ca.keys.privateKey : keys.privateKey,
    signingAlgorithm: alg,
    extensions,
  });
  const keyPem = KeyObject.from(keys.privateKey).export({ type: 'pkcs8', format: 'pem' }).toString();
  return { certPem: cert.toString('pem'), keyPem, cert, keys };
}
