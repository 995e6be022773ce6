/**
 * A fresh P-256 key and a PKCS#10 request carrying an SVID's SANs (the SPIFFE ID as URI SAN, DNS
 * names), signed with ECDSA-SHA256: what the SVID API's MintX509SVID takes (`spire-server x509
 * mint`, the registrar's webhook certificate). @peculiar/x509 (and the reflect-metadata it needs)
 * is imported on the first call only, so importing the SDK does not load it.
 */
import { webcrypto } from 'node:crypto';

export interface SvidCsr {
  /** PKCS#8 DER of the private key. */
  readonly pkcs8: Uint8Array;
  /** DER PKCS#10 request. */
  readonly csr: Uint8Array;
}

export async function createSvidCsr(uri: string, dnsNames: readonly string[]): Promise<SvidCsr> {
  await import('reflect-metadata');
  const x509 = await import('@peculiar/x509');
  type CreateParams = Parameters<typeof x509.Pkcs10CertificateRequestGenerator.create>;
  const alg = { name: 'ECDSA', namedCurve: 'P-256' };
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const sans: import('@peculiar/x509').JsonGeneralName[] = [{ type: 'url', value: uri }, ...dnsNames.map((d) => ({ type: 'dns' as const, value: d }))];
  const csr = await x509.Pkcs10CertificateRequestGenerator.create(
    {
      keys: keys as unknown as CreateParams[0]['keys'],
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } as CreateParams[0]['signingAlgorithm'],
      extensions: [new x509.SubjectAlternativeNameExtension(sans)],
    },
    webcrypto as unknown as CreateParams[1],
  );
  const pkcs8 = new Uint8Array(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  return { pkcs8, csr: new Uint8Array(csr.rawData) };
}
