import { X509Certificate, type JsonWebKey } from 'node:crypto';
import { jwkFromKey, jwkFromSpki } from '@ztwim/core';
import type { Bundle } from '@ztwim/proto';
import { splitConcatenatedDer } from '@ztwim/spiffe';
import { goQuote } from './go-format.ts';

/** Go `pem.Encode` of one block. */
export function pemEncode(type: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return `-----BEGIN ${type}-----\n${lines.map((l) => l + '\n').join('')}-----END ${type}-----\n`;
}

/** Splits possibly concatenated DER certificates, as Go's x509.ParseCertificates. */
function parseCertificates(der: Uint8Array, what: string): Uint8Array[] {
  try {
    const parts = splitConcatenatedDer(der);
    for (const p of parts) new X509Certificate(p);
    return parts;
  } catch (e) {
    throw new Error(`${what}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** The bundle's X.509 authorities as PEM blocks. */
export function formatBundlePem(b: Bundle): string {
  let out = '';
  for (const a of b.x509Authorities) {
    for (const c of parseCertificates(a.asn1, 'unable to parse certificates ASN.1 DER data')) out += pemEncode('CERTIFICATE', c);
  }
  return out;
}

type Jwk = Record<string, string | string[]>;

/** go-jose field order: use, kty, kid, crv, x, y, n, e, x5c. */
function jwk(k: JsonWebKey, use: string, kid: string | undefined, x5c: string[] | undefined): Jwk {
  const out: Jwk = { use };
  if (k.kty !== undefined) out['kty'] = k.kty;
  if (kid !== undefined && kid !== '') out['kid'] = kid;
  for (const f of ['crv', 'x', 'y', 'n', 'e'] as const) {
    const v = k[f];
    if (typeof v === 'string') out[f] = v;
  }
  if (x5c !== undefined) out['x5c'] = x5c;
  return out;
}

/** The bundle as a SPIFFE bundle document (JWKS), indented with 4 spaces, newline-terminated. */
export function formatBundleSpiffe(b: Bundle): string {
  const keys: Jwk[] = [];
  b.x509Authorities.forEach((a, i) => {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(a.asn1);
    } catch (e) {
      throw new Error(`unable to parse root CA ${i}: ${e instanceof Error ? e.message : String(e)}`);
    }
    keys.push(jwk(jwkFromKey(cert.publicKey), 'x509-svid', undefined, [Buffer.from(a.asn1).toString('base64')]));
  });
  for (const k of b.jwtAuthorities) {
    keys.push(jwk(jwkFromSpki(k.publicKey), 'jwt-svid', k.keyId, undefined));
  }
  const doc: Record<string, unknown> = { keys: keys.length === 0 ? null : keys };
  if (b.sequenceNumber > 0n) doc['spiffe_sequence'] = Number(b.sequenceNumber);
  if (b.refreshHint > 0n) doc['spiffe_refresh_hint'] = Number(b.refreshHint);
  return JSON.stringify(doc, null, 4) + '\n';
}

export type BundleFormat = 'pem' | 'spiffe';

/** spire-server's validateFormat: "" ⇒ pem; case-insensitive. */
export function parseBundleFormat(format: string): BundleFormat {
  const f = format === '' ? 'pem' : format.toLowerCase();
  if (f === 'pem' || f === 'spiffe') return f;
  throw new Error(`invalid format: ${goQuote(f)}`);
}

const HEADER_BAR = '*'.repeat(40);

/** A bundle in the given format, optionally under the `bundle list` header. */
export function formatBundle(b: Bundle, format: BundleFormat, header: boolean): string {
  const head = header ? `${HEADER_BAR}\n* ${b.trustDomain}\n${HEADER_BAR}\n` : '';
  return head + (format === 'pem' ? formatBundlePem(b) : formatBundleSpiffe(b));
}

/** `N bundles` / `1 bundle`. */
export function formatBundleCount(n: number): string {
  return `${n} ${n === 1 ? 'bundle' : 'bundles'}\n`;
}
