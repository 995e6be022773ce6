import type { JsonWebKey } from 'node:crypto';
import { SpiffeError } from '../errors.ts';
import { TrustDomain } from '../id/trust-domain.ts';
import { bytesEqual, decodeStdBase64, encodeStdBase64 } from '../internal/base64.ts';
import { JsonError, isJsonObject, parseJson, type JsonObject, type JsonValue } from '../internal/json.ts';
import { JwkError, JwkUnusableError, isSupportedKty, normalizePublicJwk, orderJwkMembers, publicJwkFromKey, sameKeyMaterial } from '../internal/jwk.ts';
import { parseCertificate } from '../internal/x509.ts';
import { JwtBundle } from './jwt-bundle.ts';
import type { JwtBundleSource, X509BundleSource } from './source.ts';
import { X509Bundle } from './x509-bundle.ts';

const USE_X509 = 'x509-svid';
const USE_JWT = 'jwt-svid';
const MAX_UINT64 = (1n << 64n) - 1n;

function bundleError(message: string, cause?: unknown): SpiffeError {
  return new SpiffeError('ERR_BUNDLE_INVALID', `spiffebundle: ${message}`, { cause });
}

export interface SpiffeBundleParseOptions {
  /**
   * SPIRE bundleutil.Decode rules: every key needs a known `use`; a key of unknown `kty`, an
   * unsupported curve or invalid key material fails the parse (default: that key is ignored).
   */
  readonly strict?: boolean;
}

export interface SpiffeBundleParts {
  readonly x509?: readonly Uint8Array[];
  readonly jwt?: ReadonlyMap<string, JsonWebKey>;
  readonly sequenceNumber?: bigint;
  readonly refreshHintSeconds?: number;
}

/**
 * A SPIFFE trust domain bundle (SPIFFE_Trust_Domain_and_Bundle.md): X.509 and JWT
 * authorities of one trust domain, plus the optional sequence number and refresh hint.
 */
export class SpiffeBundle implements X509BundleSource, JwtBundleSource {
  readonly trustDomain: TrustDomain;
  sequenceNumber?: bigint;
  refreshHintSeconds?: number;
  #x509: X509Bundle;
  #jwt: JwtBundle;

  constructor(trustDomain: TrustDomain) {
    this.trustDomain = trustDomain;
    this.#x509 = new X509Bundle(trustDomain);
    this.#jwt = new JwtBundle(trustDomain);
  }

  static fromParts(td: TrustDomain, parts: SpiffeBundleParts): SpiffeBundle {
    const b = new SpiffeBundle(td);
    for (const d of parts.x509 ?? []) b.addX509Authority(d);
    for (const [kid, jwk] of parts.jwt ?? new Map<string, JsonWebKey>()) b.addJwtAuthority(kid, jwk);
    if (parts.sequenceNumber !== undefined) b.setSequenceNumber(parts.sequenceNumber);
    if (parts.refreshHintSeconds !== undefined) b.setRefreshHintSeconds(parts.refreshHintSeconds);
    return b;
  }

  static fromX509Bundle(b: X509Bundle): SpiffeBundle {
    return SpiffeBundle.fromParts(b.trustDomain, { x509: b.authorities() });
  }

  static fromJwtBundle(b: JwtBundle): SpiffeBundle {
    return SpiffeBundle.fromParts(b.trustDomain, { jwt: b.authorities() });
  }

  /**
   * Parses SPIFFE bundle JSON (a JWK Set with `use` on each key). By default a key with a missing
   * or unknown `use`, or one this SDK cannot use (unknown `kty`, unsupported curve, invalid key
   * material), is ignored and the rest kept (Trust Domain and Bundle §4.1.3, §4.2.1, §4.2.2);
   * malformed JSON, members of the wrong type and private key members fail the whole parse.
   */
  static parse(td: TrustDomain, json: string | Uint8Array, opts: SpiffeBundleParseOptions = {}): SpiffeBundle {
    let doc: JsonValue;
    try {
      doc = parseJson(json);
    } catch (e) {
      if (e instanceof JsonError) throw bundleError(`unable to parse JWKS: ${e.message}`, e);
      throw bundleError('unable to parse JWKS', e);
    }
    return SpiffeBundle.#fromDoc(td, doc, opts.strict === true);
  }

  static #fromDoc(td: TrustDomain, doc: JsonValue, strict: boolean): SpiffeBundle {
    if (!isJsonObject(doc)) throw bundleError('unable to parse JWKS: document must be an object');
    const b = new SpiffeBundle(td);
    const seq = doc['spiffe_sequence'];
    if (seq !== undefined) {
      if (!(typeof seq === 'bigint' || (typeof seq === 'number' && Number.isInteger(seq)))) {
        throw bundleError('spiffe_sequence must be an unsigned integer');
      }
      const big = BigInt(seq);
      if (big < 0n || big > MAX_UINT64) throw bundleError('spiffe_sequence must be an unsigned 64-bit integer');
      b.sequenceNumber = big;
    }
    const hint = doc['spiffe_refresh_hint'];
    if (hint !== undefined) {
      if (typeof hint !== 'number' || !Number.isSafeInteger(hint) || hint < 0) {
        throw bundleError('spiffe_refresh_hint must be a non-negative integer number of seconds');
      }
      b.refreshHintSeconds = hint;
    }
    const keys = doc['keys'];
    if (keys === undefined || keys === null) throw bundleError('no authorities found');
    if (!Array.isArray(keys)) throw bundleError('unable to parse JWKS: "keys" must be an array');
    keys.forEach((k, i) => b.#addEntry(k, i, strict));
    return b;
  }

  #addEntry(k: JsonValue, i: number, strict: boolean): void {
    if (!isJsonObject(k)) throw bundleError(`key entry ${i} must be an object`);
    const use = k['use'];
    if (use !== undefined && typeof use !== 'string') throw bundleError(`use must be a string in key entry ${i}`);
    if (strict) {
      if (use === undefined || use === '') throw bundleError(`missing use for key entry ${i}`);
      if (use !== USE_X509 && use !== USE_JWT) throw bundleError(`unrecognized use "${use}" for key entry ${i}`);
    }
    const kty = k['kty'];
    if (typeof kty !== 'string' || kty === '') throw bundleError(`missing or invalid kty for key entry ${i}`);
    if (!isSupportedKty(kty)) {
      // The SPIFFE spec says to ignore JWKs of unknown type; go-jose (and so SPIRE) fails.
      if (strict) throw bundleError(`unsupported key type for key entry ${i}`);
      return;
    }
    if (use !== USE_X509 && use !== USE_JWT) return; // any other or missing `use`: ignored (spec; go-spiffe)
    let jwk: JsonWebKey;
    try {
      jwk = normalizePublicJwk(k).jwk;
    } catch (e) {
      // Trust Domain and Bundle §4.1.3, §4.2.1: a key this SDK cannot use (unsupported curve,
      // invalid key material) is ignored, the rest of the bundle kept; SPIRE's rules fail.
      if (e instanceof JwkUnusableError && !strict) return;
      if (e instanceof JwkError) throw bundleError(`invalid JWK in ${use} entry ${i}: ${e.message}`, e);
      throw e;
    }
    if (use === USE_X509) this.#addX509Entry(k, jwk, i);
    else this.#addJwtEntry(k, i, strict);
  }

  #addX509Entry(k: JsonObject, jwk: JsonWebKey, i: number): void {
    const x5c = k['x5c'];
    const n = Array.isArray(x5c) ? x5c.length : 0;
    if (!Array.isArray(x5c) || n !== 1) {
      throw bundleError(`expected a single certificate in ${USE_X509} entry ${i}; got ${n}`);
    }
    const b64 = x5c[0];
    if (typeof b64 !== 'string') throw bundleError(`invalid x5c in ${USE_X509} entry ${i}`);
    const der = decodeStdBase64(b64, 'ERR_BUNDLE_INVALID', `spiffebundle: invalid base64 x5c in ${USE_X509} entry ${i}`);
    let cert;
    try {
      cert = parseCertificate(der);
    } catch (e) {
      throw bundleError(`invalid certificate in ${USE_X509} entry ${i}: ${(e as Error).message}`, e);
    }
    if (!sameKeyMaterial(jwk, publicJwkFromKey(cert.publicKey))) {
      throw bundleError(`${USE_X509} entry ${i}: x5c public key does not match the JWK`);
    }
    this.addX509Authority(der);
  }

  #addJwtEntry(k: JsonObject, i: number, strict: boolean): void {
    const kid = k['kid'];
    if (kid === undefined || kid === '') {
      if (strict) throw bundleError(`missing key ID in ${USE_JWT} entry ${i}`);
      throw bundleError(`error adding authority ${i} of JWKS: keyID cannot be empty`);
    }
    if (typeof kid !== 'string') throw bundleError(`error adding authority ${i} of JWKS: keyID must be a string`);
    if (this.#jwt.hasAuthority(kid)) throw bundleError(`error adding authority ${i} of JWKS: duplicate keyID "${kid}"`);
    try {
      this.#jwt.addAuthority(kid, k as JsonWebKey);
    } catch (e) {
      throw bundleError(`error adding authority ${i} of JWKS: ${(e as Error).message.replace(/^jwtbundle: /, '')}`, e);
    }
  }

  x509Authorities(): Uint8Array[] {
    return this.#x509.authorities();
  }

  jwtAuthorities(): ReadonlyMap<string, JsonWebKey> {
    return this.#jwt.authorities();
  }

  addX509Authority(der: Uint8Array): void {
    try {
      this.#x509.addAuthority(der);
    } catch (e) {
      throw bundleError((e as Error).message.replace(/^x509bundle: /, ''), e);
    }
  }

  removeX509Authority(der: Uint8Array): void {
    this.#x509.removeAuthority(der);
  }

  hasX509Authority(der: Uint8Array): boolean {
    return this.#x509.hasAuthority(der);
  }

  addJwtAuthority(kid: string, jwk: JsonWebKey): void {
    try {
      this.#jwt.addAuthority(kid, jwk);
    } catch (e) {
      throw bundleError((e as Error).message.replace(/^jwtbundle: /, ''), e);
    }
  }

  removeJwtAuthority(kid: string): void {
    this.#jwt.removeAuthority(kid);
  }

  findJwtAuthority(kid: string): JsonWebKey | undefined {
    return this.#jwt.findAuthority(kid);
  }

  setSequenceNumber(n: bigint): void {
    if (typeof n !== 'bigint' || n < 0n || n > MAX_UINT64) throw bundleError('sequence number must be an unsigned 64-bit integer');
    this.sequenceNumber = n;
  }

  setRefreshHintSeconds(s: number): void {
    if (!Number.isFinite(s) || s < 0) throw bundleError('refresh hint must be a non-negative number of seconds');
    this.refreshHintSeconds = Math.ceil(s);
  }

  /** A copy of the X.509 authorities as an X509Bundle. */
  x509Bundle(): X509Bundle {
    return this.#x509.clone();
  }

  /** A copy of the JWT authorities as a JwtBundle. */
  jwtBundle(): JwtBundle {
    return this.#jwt.clone();
  }

  empty(): boolean {
    return this.#x509.empty() && this.#jwt.empty();
  }

  /**
   * SPIFFE bundle JSON: `keys` (x509-svid entries with `x5c`, then jwt-svid entries with
   * `kid`, members in go-jose order), then `spiffe_sequence` and `spiffe_refresh_hint` when set.
   */
  marshal(opts: { indent?: number } = {}): string {
    const keys: Record<string, unknown>[] = [];
    for (const der of this.#x509.authorities()) {
      const jwk = publicJwkFromKey(parseCertificate(der).publicKey) as Record<string, unknown>;
      keys.push(orderJwkMembers({ ...jwk, use: USE_X509, x5c: [encodeStdBase64(der)] }));
    }
    for (const jwk of this.#jwt.authorities().values()) {
      keys.push(orderJwkMembers({ ...(jwk as Record<string, unknown>), use: USE_JWT }));
    }
    const SEQ = '\u0000seq\u0000';
    const doc: Record<string, unknown> = { keys };
    if (this.sequenceNumber !== undefined) doc['spiffe_sequence'] = SEQ;
    if (this.refreshHintSeconds !== undefined) doc['spiffe_refresh_hint'] = this.refreshHintSeconds;
    const text = JSON.stringify(doc, null, opts.indent);
    // bigint is not JSON-serialisable; splice the exact decimal digits in.
    return this.sequenceNumber === undefined ? text : text.replace(JSON.stringify(SEQ), this.sequenceNumber.toString());
  }

  equals(other: SpiffeBundle): boolean {
    return (
      this.trustDomain.equals(other.trustDomain) &&
      this.sequenceNumber === other.sequenceNumber &&
      this.refreshHintSeconds === other.refreshHintSeconds &&
      this.#x509.equals(other.#x509) &&
      this.#jwt.equals(other.#jwt)
    );
  }

  clone(): SpiffeBundle {
    const b = new SpiffeBundle(this.trustDomain);
    b.#x509 = this.#x509.clone();
    b.#jwt = this.#jwt.clone();
    if (this.sequenceNumber !== undefined) b.sequenceNumber = this.sequenceNumber;
    if (this.refreshHintSeconds !== undefined) b.refreshHintSeconds = this.refreshHintSeconds;
    return b;
  }

  getX509BundleForTrustDomain(td: TrustDomain): X509Bundle {
    if (!td.equals(this.trustDomain)) {
      throw new SpiffeError('ERR_BUNDLE_NOT_FOUND', `x509bundle: no X.509 bundle for trust domain "${td.name}"`);
    }
    return this.#x509;
  }

  getJwtBundleForTrustDomain(td: TrustDomain): JwtBundle {
    if (!td.equals(this.trustDomain)) {
      throw new SpiffeError('ERR_BUNDLE_NOT_FOUND', `jwtbundle: no JWT bundle for trust domain "${td.name}"`);
    }
    return this.#jwt;
  }

  /** @internal used by parseBundleMap. */
  static fromJsonValue(td: TrustDomain, doc: JsonValue, strict: boolean): SpiffeBundle {
    return SpiffeBundle.#fromDoc(td, doc, strict);
  }
}

/**
 * Parses a bundle map `{"trust_domains": {"<td>": <bundle>, ...}}`, rejecting duplicate
 * trust domain keys (JSON.parse would silently keep the last). Keys may be `td` or
 * `spiffe://td`; two keys naming the same trust domain are also duplicates.
 */
export function parseBundleMap(json: string | Uint8Array, opts: SpiffeBundleParseOptions = {}): Map<string, SpiffeBundle> {
  let doc: JsonValue;
  try {
    doc = parseJson(json);
  } catch (e) {
    if (e instanceof JsonError) {
      const dup = /^duplicate member "(.*)"$/.exec(e.message);
      if (dup !== null) throw bundleError(`duplicate key "${dup[1] ?? ''}" in bundle map`, e);
      throw bundleError(`unable to parse bundle map: ${e.message}`, e);
    }
    throw bundleError('unable to parse bundle map', e);
  }
  if (!isJsonObject(doc)) throw bundleError('bundle map must be an object');
  const tds = doc['trust_domains'];
  if (!isJsonObject(tds)) throw bundleError('bundle map must have a "trust_domains" object');
  const out = new Map<string, SpiffeBundle>();
  for (const key of Object.keys(tds)) {
    let td: TrustDomain;
    try {
      td = TrustDomain.parse(key);
    } catch (e) {
      throw bundleError(`invalid trust domain key "${key}": ${(e as Error).message}`, e);
    }
    if (out.has(td.name)) throw bundleError(`duplicate trust domain "${td.name}" in bundle map`);
    out.set(td.name, SpiffeBundle.fromJsonValue(td, tds[key] as JsonValue, opts.strict === true));
  }
  return out;
}
