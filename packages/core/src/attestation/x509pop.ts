import { createHash, sign as cryptoSign, verify as cryptoVerify, constants, type KeyObject } from 'node:crypto';
import { invalidArgument, permissionDenied } from '../errors.ts';

/**
 * The x509pop node attestation wire format shared by server and agent (SPIRE-compatible JSON):
 * the agent sends its certificate chain, the server answers with a random nonce, the agent
 * signs SHA-256(challengeNonce ‖ responseNonce) with the certificate's key
 * (ECDSA: r, s as minimal big-endian bytes; RSA: PSS with SHA-256 and maximal salt).
 */
export interface X509PopPayload {
  /** DER certificates, leaf first. */
  readonly certificates: readonly Uint8Array[];
}

export interface X509PopChallenge {
  readonly kind: 'ecdsa' | 'rsa';
  readonly nonce: Uint8Array;
}

export const X509POP_NONCE_SIZE = 32;

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');

function unb64(s: unknown, what: string): Buffer {
  if (typeof s !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) throw invalidArgument(`x509pop: ${what} must be base64`);
  return Buffer.from(s, 'base64');
}

function parseJson(data: Uint8Array, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(data).toString('utf8'));
  } catch {
    throw invalidArgument(`x509pop: malformed ${what}: not JSON`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw invalidArgument(`x509pop: malformed ${what}: not an object`);
  return v as Record<string, unknown>;
}

export function marshalX509PopPayload(p: X509PopPayload): Uint8Array {
  return Buffer.from(JSON.stringify({ certificates: p.certificates.map(b64) }));
}

export function parseX509PopPayload(data: Uint8Array): X509PopPayload {
  const o = parseJson(data, 'attestation data');
  const certs = o.certificates;
  if (!Array.isArray(certs) || certs.length === 0) throw invalidArgument('x509pop: malformed attestation data: no certificates');
  return { certificates: certs.map((c, i) => unb64(c, `certificate ${i}`)) };
}

export function marshalX509PopChallenge(c: X509PopChallenge): Uint8Array {
  const inner = { nonce: b64(c.nonce) };
  return Buffer.from(JSON.stringify(c.kind === 'rsa' ? { rsa_signature: inner, ecdsa_signature: null } : { rsa_signature: null, ecdsa_signature: inner }));
}

export function parseX509PopChallenge(data: Uint8Array): X509PopChallenge {
  const o = parseJson(data, 'challenge');
  const rsa = o.rsa_signature as Record<string, unknown> | null | undefined;
  const ec = o.ecdsa_signature as Record<string, unknown> | null | undefined;
  const inner = rsa ?? ec;
  if (typeof inner !== 'object' || inner === null) throw invalidArgument('x509pop: malformed challenge: no signature challenge');
  const nonce = unb64(inner.nonce, 'challenge nonce');
  if (nonce.length !== X509POP_NONCE_SIZE) throw invalidArgument('x509pop: challenge nonce must be 32 bytes');
  return { kind: rsa ? 'rsa' : 'ecdsa', nonce };
}

function digestInput(challengeNonce: Uint8Array, responseNonce: Uint8Array): Buffer {
  return Buffer.concat([challengeNonce, responseNonce]);
}

/** Agent side: answers a challenge with the private key of the attested certificate. */
export function answerX509PopChallenge(challenge: X509PopChallenge, key: KeyObject, responseNonce: Uint8Array): Uint8Array {
  const data = digestInput(challenge.nonce, responseNonce);
  if (challenge.kind === 'rsa') {
    if (key.asymmetricKeyType !== 'rsa') throw invalidArgument('x509pop: RSA challenge needs an RSA key');
    const sig = cryptoSign('sha256', data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_MAX_SIGN });
    return Buffer.from(JSON.stringify({ rsa_signature: { nonce: b64(responseNonce), signature: b64(sig) }, ecdsa_signature: null }));
  }
  if (key.asymmetricKeyType !== 'ec') throw invalidArgument('x509pop: ECDSA challenge needs an EC key');
  const sig = cryptoSign('sha256', data, { key, dsaEncoding: 'ieee-p1363' });
  const half = sig.length / 2;
  const minimal = (b: Buffer): Buffer => {
    let i = 0;
    while (i < b.length - 1 && b[i] === 0) i++;
    return b.subarray(i);
  };
  return Buffer.from(
    JSON.stringify({
      rsa_signature: null,
      ecdsa_signature: { nonce: b64(responseNonce), r: b64(minimal(sig.subarray(0, half))), s: b64(minimal(sig.subarray(half))) },
    }),
  );
}

/** Server side: checks the agent's answer against the certificate's public key. */
export function verifyX509PopResponse(challenge: X509PopChallenge, publicKey: KeyObject, response: Uint8Array): void {
  const o = parseJson(response, 'challenge response');
  if (challenge.kind === 'rsa') {
    const r = o.rsa_signature as Record<string, unknown> | null | undefined;
    if (typeof r !== 'object' || r === null) throw permissionDenied('x509pop: expected an RSA signature response');
    const nonce = unb64(r.nonce, 'response nonce');
    if (nonce.length !== X509POP_NONCE_SIZE) throw permissionDenied('x509pop: response nonce must be 32 bytes');
    const ok = cryptoVerify(
      'sha256',
      digestInput(challenge.nonce, nonce),
      { key: publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO },
      unb64(r.signature, 'signature'),
    );
    if (!ok) throw permissionDenied('x509pop: challenge response verification failed');
    return;
  }
  const e = o.ecdsa_signature as Record<string, unknown> | null | undefined;
  if (typeof e !== 'object' || e === null) throw permissionDenied('x509pop: expected an ECDSA signature response');
  const nonce = unb64(e.nonce, 'response nonce');
  if (nonce.length !== X509POP_NONCE_SIZE) throw permissionDenied('x509pop: response nonce must be 32 bytes');
  const size = { 'P-256': 32, 'P-384': 48, 'P-521': 66 }[
    String(publicKey.asymmetricKeyDetails?.namedCurve ?? '')
      .replace('prime256v1', 'P-256')
      .replace('secp384r1', 'P-384')
      .replace('secp521r1', 'P-521')
  ];
  if (size === undefined || publicKey.asymmetricKeyType !== 'ec') throw permissionDenied('x509pop: certificate key is not a supported EC key');
  const r = unb64(e.r, 'r');
  const s = unb64(e.s, 's');
  if (r.length > size || s.length > size) throw permissionDenied('x509pop: challenge response verification failed');
  const sig = Buffer.concat([Buffer.alloc(size - r.length), r, Buffer.alloc(size - s.length), s]);
  const ok = cryptoVerify('sha256', digestInput(challenge.nonce, nonce), { key: publicKey, dsaEncoding: 'ieee-p1363' }, sig);
  if (!ok) throw permissionDenied('x509pop: challenge response verification failed');
}

/** Hex SHA-1 fingerprint of a DER certificate (how SPIRE names x509pop agents and CAs). */
export function sha1Fingerprint(der: Uint8Array): string {
  return createHash('sha1').update(der).digest('hex');
}
