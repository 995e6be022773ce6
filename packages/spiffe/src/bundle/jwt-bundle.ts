import type { JsonWebKey, KeyObject } from 'node:crypto';
import { SpiffeError } from '../errors.ts';
import type { TrustDomain } from '../id/trust-domain.ts';
import { JsonError, isJsonObject, parseJson, type JsonValue } from '../internal/json.ts';
import { JwkError, JwkUnusableError, normalizePublicJwk, orderJwkMembers } from '../internal/jwk.ts';
import type { JwtBundleSource } from './source.ts';

function bundleError(message: string, cause?: unknown): SpiffeError {
  return new SpiffeError('ERR_BUNDLE_INVALID', `jwtbundle: ${message}`, { cause });
}

export interface JwtBundleParseOptions {
  /**
   * The document is a plain JWKS whose keys may omit `use`, such as SPIRE's Workload API JWT
   * bundles or an OIDC `/keys` document without `set_key_use`: keys without `use` (or with the
   * RFC 7517 `sig`) count as JWT authorities too. Keys marked for anything else still do not.
   */
  readonly plainJwks?: boolean;
}

/** `use` values whose keys may validate JWT-SVIDs. */
const SPIFFE_JWT_USES: ReadonlySet<unknown> = new Set(['jwt-svid']);
const PLAIN_JWKS_USES: ReadonlySet<unknown> = new Set(['jwt-svid', 'sig', undefined]);

interface Authority {
  readonly jwk: JsonWebKey;
  readonly key: KeyObject;
}

/**
 * The JWT authorities (public keys by key ID) of one trust domain. A bundle is also a
 * JwtBundleSource for its own trust domain.
 */
export class JwtBundle implements JwtBundleSource {
  readonly trustDomain: TrustDomain;
  #authorities = new Map<string, Authority>();

  constructor(trustDomain: TrustDomain) {
    this.trustDomain = trustDomain;
  }

  static fromAuthorities(td: TrustDomain, authorities: ReadonlyMap<string, JsonWebKey>): JwtBundle {
    const b = new JwtBundle(td);
    for (const [kid, jwk] of authorities) b.addAuthority(kid, jwk);
    return b;
  }

  /**
   * Parses a JWKS document (`{"keys":[...]}`) into the JWT authorities of `td`. A key counts only
   * when its `use` is `jwt-svid` (JWT-SVID §6.2, Trust Domain and Bundle §4.2.2): keys for X.509
   * (`x509-svid`) or anything else are skipped, and so are keys without `use` unless
   * `opts.plainJwks` is set. A key this SDK cannot use (unknown `kty`, unsupported curve, key
   * material that is no valid public key) is skipped, not fatal (Trust Domain and Bundle §4.1.3,
   * §4.2.1). Malformed input still fails the whole parse: invalid JSON, `keys` not an array, a key
   * that is not an object, a member of the wrong type (`kty`, `use`, `kid`, `crv`, key parameters),
   * private key members. Every counted key needs a unique `kid`.
   */
  static parse(td: TrustDomain, jwksJson: string | Uint8Array, opts: JwtBundleParseOptions = {}): JwtBundle {
    let doc: JsonValue;
    try {
      doc = parseJson(jwksJson);
    } catch (e) {
      if (e instanceof JsonError) throw bundleError(`unable to parse JWKS: ${e.message}`, e);
      throw bundleError('unable to parse JWKS', e);
    }
    if (!isJsonObject(doc)) throw bundleError('unable to parse JWKS: document must be an object');
    const keys = doc['keys'];
    if (keys === undefined || keys === null) return new JwtBundle(td);
    if (!Array.isArray(keys)) throw bundleError('unable to parse JWKS: "keys" must be an array');
    const uses = opts.plainJwks === true ? PLAIN_JWKS_USES : SPIFFE_JWT_USES;
    const b = new JwtBundle(td);
    keys.forEach((k, i) => {
      if (!isJsonObject(k)) throw bundleError(`error adding authority ${i} of JWKS: key must be an object`);
      const use = k['use'];
      if (use !== undefined && typeof use !== 'string') throw bundleError(`error adding authority ${i} of JWKS: "use" must be a string`);
      if (!uses.has(use)) return;
      const kid = k['kid'];
      if (kid !== undefined && typeof kid !== 'string') {
        throw bundleError(`error adding authority ${i} of JWKS: keyID must be a string`);
      }
      try {
        b.#add(kid ?? '', k, true);
      } catch (e) {
        if (e instanceof SpiffeError) {
          throw bundleError(`error adding authority ${i} of JWKS: ${e.message.replace(/^jwtbundle: /, '')}`, e);
        }
        throw e;
      }
    });
    return b;
  }

  /** The authorities as public JWKs (each carrying its `kid`), by key ID. */
  authorities(): ReadonlyMap<string, JsonWebKey> {
    const m = new Map<string, JsonWebKey>();
    for (const [kid, a] of this.#authorities) m.set(kid, { ...a.jwk });
    return m;
  }

  findAuthority(kid: string): JsonWebKey | undefined {
    const a = this.#authorities.get(kid);
    return a === undefined ? undefined : { ...a.jwk };
  }

  /** @internal the verified node public key for a key ID. */
  findKeyObject(kid: string): KeyObject | undefined {
    return this.#authorities.get(kid)?.key;
  }

  /** @internal the verified node public keys of every authority. */
  keyObjects(): KeyObject[] {
    return [...this.#authorities.values()].map((a) => a.key);
  }

  hasAuthority(kid: string): boolean {
    return this.#authorities.has(kid);
  }

  /** Adds or replaces the authority for `kid`. The JWK must be a usable public key. */
  addAuthority(kid: string, jwk: JsonWebKey): void {
    this.#add(kid, jwk, false);
  }

  /**
   * `fromDocument`: a key of a parsed JWKS, skipped when unusable (unknown `kty`, unsupported
   * curve, invalid key material) and refused when its kid repeats an earlier key's.
   */
  #add(kid: string, jwk: unknown, fromDocument: boolean): void {
    // A parsed key's kid is checked once the key proved usable: an unusable key is skipped whole.
    if (typeof kid !== 'string' || (kid === '' && !fromDocument)) throw bundleError('keyID cannot be empty');
    let norm: { jwk: JsonWebKey; key: KeyObject };
    try {
      norm = normalizePublicJwk(jwk as JsonWebKey, kid);
    } catch (e) {
      // Trust Domain and Bundle §4.1.3, §4.2.1: ignore that key only, keep the rest of the set.
      if (fromDocument && e instanceof JwkUnusableError) return;
      if (e instanceof JwkError) throw bundleError(`invalid JWK${kid === '' ? '' : ` for keyID "${kid}"`}: ${e.message}`, e);
      throw e;
    }
    if (kid === '') throw bundleError('keyID cannot be empty');
    if (fromDocument && this.#authorities.has(kid)) throw bundleError(`duplicate keyID "${kid}"`);
    this.#authorities.set(kid, norm);
  }

  removeAuthority(kid: string): void {
    this.#authorities.delete(kid);
  }

  empty(): boolean {
    return this.#authorities.size === 0;
  }

  /** Plain JWKS `{"keys":[...]}` with `kid` on each key and no `use` (Workload API form). */
  marshal(): string {
    const keys = [...this.#authorities.values()].map((a) => orderJwkMembers({ ...a.jwk }));
    return JSON.stringify({ keys });
  }

  equals(other: JwtBundle): boolean {
    if (!this.trustDomain.equals(other.trustDomain)) return false;
    if (this.#authorities.size !== other.#authorities.size) return false;
    for (const [kid, a] of this.#authorities) {
      const b = other.#authorities.get(kid);
      if (b === undefined || JSON.stringify(orderJwkMembers({ ...a.jwk })) !== JSON.stringify(orderJwkMembers({ ...b.jwk }))) {
        return false;
      }
    }
    return true;
  }

  clone(): JwtBundle {
    const b = new JwtBundle(this.trustDomain);
    for (const [kid, a] of this.#authorities) b.#authorities.set(kid, a);
    return b;
  }

  getJwtBundleForTrustDomain(td: TrustDomain): JwtBundle {
    if (!td.equals(this.trustDomain)) {
      throw new SpiffeError('ERR_BUNDLE_NOT_FOUND', `jwtbundle: no JWT bundle for trust domain "${td.name}"`);
    }
    return this;
  }
}
