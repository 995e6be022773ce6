/**
 * Shared setup for the OIDC relying-party interop tests: a test CA and serving certificate
 * (openssl), JWT-SVID signing keys and tokens (jose), and the provider serving them over TLS.
 */
import { createServer, type AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import { startOidcProvider, StaticJwksSource, type OidcProvider, type JsonWebKey } from '@ztwim/oidc';
import { makeCa, issueServerCert, type TestCa } from '@ztwim/testkit';

export const TRUST_DOMAIN = 'example.org';
export const SUBJECT = `spiffe://${TRUST_DOMAIN}/ns/demo/sa/client`;

export interface SigningKey {
  readonly alg: 'ES256' | 'RS256';
  readonly kid: string;
  readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
}

export async function makeSigningKey(alg: 'ES256' | 'RS256', kid: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { alg, kid, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid } };
}

export interface TokenOptions {
  readonly sub?: string;
  readonly aud?: string | string[];
  readonly iss?: string;
  /** Seconds relative to now. */
  readonly iatOffset?: number;
  readonly expOffset?: number;
}

/** A JWT-SVID-shaped token: header {alg, kid, typ: JWT}; sub, aud (array), iss, integer iat/exp. */
export async function mintToken(key: SigningKey, issuer: string, o: TokenOptions = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const aud = o.aud ?? 'vault';
  return new SignJWT({})
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT' })
    .setSubject(o.sub ?? SUBJECT)
    .setAudience(Array.isArray(aud) ? aud : [aud])
    .setIssuer(o.iss ?? issuer)
    .setIssuedAt(now + (o.iatOffset ?? 0))
    .setExpirationTime(now + (o.expOffset ?? 300))
    .sign(key.privateKey);
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise((resolve) => s.close(resolve));
  return port;
}

export interface InteropEnv {
  readonly ca: TestCa;
  readonly caPath: string;
  readonly issuer: string;
  readonly provider: OidcProvider;
  readonly source: StaticJwksSource;
  readonly es256: SigningKey;
  readonly rs256: SigningKey;
  /** A key of another issuer, never published here. */
  readonly foreign: SigningKey;
  /** Replaces the published keys. */
  publish(keys: readonly SigningKey[]): void;
  close(): Promise<void>;
}

/**
 * Starts the provider on TLS at https://localhost:<port>/td/example (jwtIssuer with a path,
 * serverPathPrefix to match, setKeyUse on) publishing an ES256 and an RS256 key.
 */
export async function startInteropProvider(): Promise<InteropEnv> {
  const ca = makeCa();
  const cert = issueServerCert(ca, 'oidc', ['localhost'], ['127.0.0.1']);
  const caPath = join(ca.dir, 'trust.pem');
  writeFileSync(caPath, ca.certPem);
  const es256 = await makeSigningKey('ES256', 'es256-kid-0000000000000000000001');
  const rs256 = await makeSigningKey('RS256', 'rs256-kid-0000000000000000000001');
  const foreign = await makeSigningKey('ES256', 'foreign-kid-00000000000000000001');
  const source = new StaticJwksSource([es256.publicJwk as JsonWebKey, rs256.publicJwk as JsonWebKey]);
  const port = await freePort();
  const issuer = `https://localhost:${port}/td/example`;
  const provider = await startOidcProvider(
    {
      domains: ['localhost'],
      jwtIssuer: issuer,
      serverPathPrefix: '/td/example',
      setKeyUse: true,
      servingCertFile: { certFilePath: cert.certPath, keyFilePath: cert.keyPath, addr: `127.0.0.1:${port}` },
    },
    { source },
  );
  return {
    ca,
    caPath,
    issuer,
    provider,
    source,
    es256,
    rs256,
    foreign,
    publish: (keys) => {
      source.set(keys.map((k) => k.publicJwk as JsonWebKey));
    },
    close: () => provider.close(),
  };
}
