import { constants, verify, type KeyObject } from 'node:crypto';

/** Hash of each JWT-SVID algorithm (RFC 7518 §3.1). */
const HASH: Readonly<Record<string, string>> = {
  RS256: 'sha256',
  RS384: 'sha384',
  RS512: 'sha512',
  PS256: 'sha256',
  PS384: 'sha384',
  PS512: 'sha512',
  ES256: 'sha256',
  ES384: 'sha384',
  ES512: 'sha512',
};

/** RFC 7518 §3.4: an ECDSA JWS signature is R || S, each the curve's coordinate size. */
const EC_SIGNATURE_LENGTH: Readonly<Record<string, number>> = { ES256: 64, ES384: 96, ES512: 132 };

/** RFC 7518 §3.3, §3.5: RSA keys of at least 2048 bits. */
const MIN_RSA_BITS = 2048;

/**
 * Whether `signature` is a valid signature of the compact JWS `token`'s signing input (the
 * header and payload parts) under `key` with `alg`. The caller has checked the token's form,
 * that `alg` is a JWT-SVID algorithm and that `key` fits it (RSA for RS and PS, the curve of an ES).
 *
 * One synchronous node:crypto `verify` per token. Written here instead of calling jose's
 * compactVerify: jose 6 verifies through WebCrypto (an async job on the libuv pool per
 * signature) and parses the header and signature again, which took 2–4× the CPU of the signature
 * check itself per JWT-SVID (bench/sdk.ts, bench/results/sdk.md).
 */
export function verifyJwsSignature(token: string, alg: string, key: KeyObject, signature: Uint8Array): boolean {
  const hash = HASH[alg];
  if (hash === undefined) return false;
  const input = Buffer.from(token.slice(0, token.lastIndexOf('.')), 'latin1');
  try {
    if (alg.startsWith('ES')) {
      if (signature.length !== EC_SIGNATURE_LENGTH[alg]) return false;
      return verify(hash, input, { key, dsaEncoding: 'ieee-p1363' }, signature);
    }
    if ((key.asymmetricKeyDetails?.modulusLength ?? 0) < MIN_RSA_BITS) return false;
    if (alg.startsWith('PS')) {
      // RFC 7518 §3.5: MGF1 with the same hash, salt as long as the hash output.
      return verify(hash, input, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }, signature);
    }
    return verify(hash, input, key, signature);
  } catch {
    return false;
  }
}
