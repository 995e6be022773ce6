/**
 * Trust bundles between the wire (the server API's `spire.api.types.Bundle`, which the
 * datastore stores in the same shape), the SDK (`X509Bundle`, `JwtBundle`, `SpiffeBundle`)
 * and JWKS, as SPIRE's `pkg/server/api/bundle.go` and `pkg/common/bundleutil` do. Every
 * SPKI DER <-> JWK conversion of the tree is here.
 *
 * The wire types are structural (a proto `Bundle` message is a `WireBundle`, so is the
 * datastore's `Bundle`, whose integers are numbers), so this layer needs no generated code.
 */
import { createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { JwtBundle, SpiffeBundle, TrustDomain, X509Bundle, concatDer } from '@ztwim/spiffe';
import { orderJwkMembers, publicJwkFromKey } from '@ztwim/spiffe/internal';
import { invalidArgument, isZtwimError } from '../errors.ts';

/** `spire.api.types.X509Certificate`: one DER CA certificate. */
export interface WireX509Authority {
  readonly asn1: Uint8Array;
  readonly tainted?: boolean;
}

/** `spire.api.types.JWTKey`: a PKIX (SPKI) DER public key, its key ID and expiry (Unix seconds). */
export interface WireJwtAuthority {
  readonly publicKey: Uint8Array;
  readonly keyId: string;
  readonly expiresAt: bigint | number;
  readonly tainted?: boolean;
}

/** `spire.api.types.Bundle` (integers as bigint on the wire, as number in the datastore). */
export interface WireBundle {
  readonly trustDomain: string;
  readonly x509Authorities: readonly WireX509Authority[];
  readonly jwtAuthorities: readonly WireJwtAuthority[];
  readonly refreshHint: bigint | number;
  readonly sequenceNumber: bigint;
}

/** A `WireBundle` with the proto's integer types: assignable to `MessageInitShape<typeof BundleSchema>`. */
export interface WireBundleInit {
  trustDomain: string;
  x509Authorities: { asn1: Uint8Array; tainted: boolean }[];
  jwtAuthorities: { publicKey: Uint8Array; keyId: string; expiresAt: bigint; tainted: boolean }[];
  refreshHint: bigint;
  sequenceNumber: bigint;
}

/** A JWT authority as the CA holds it: a public key (node key or JWK), its key ID and expiry. */
export interface JwtAuthorityKey {
  readonly kid: string;
  readonly publicKey: KeyObject | JsonWebKey;
  readonly expiresAt: Date | bigint;
}

function keyObjectOf(key: KeyObject | JsonWebKey): KeyObject {
  if (typeof (key as KeyObject).export === 'function' && typeof (key as KeyObject).type === 'string') return key as KeyObject;
  return createPublicKey({ key: key as JsonWebKey, format: 'jwk' });
}

/**
 * The public JWK (key members only, go-jose order: kty, crv, x, y / kty, n, e) of a PKIX DER
 * public key. An unparsable key is an ERR_INVALID_ARGUMENT naming the cause.
 */
export function jwkFromSpki(spki: Uint8Array): JsonWebKey {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(spki.buffer, spki.byteOffset, spki.byteLength), format: 'der', type: 'spki' });
  } catch (e) {
    throw invalidArgument(`malformed public key: ${(e as Error).message}`, { cause: e });
  }
  return publicJwkFromKey(key);
}

/** The public JWK of a node key (key members only). */
export function jwkFromKey(key: KeyObject): JsonWebKey {
  return publicJwkFromKey(key);
}

/** The PKIX DER of a public key given as a node key or a JWK; an unusable JWK is an ERR_INVALID_ARGUMENT. */
export function spkiFromKey(key: KeyObject | JsonWebKey): Uint8Array {
  let k: KeyObject;
  try {
    k = keyObjectOf(key);
  } catch (e) {
    throw invalidArgument(`malformed public key: ${(e as Error).message}`, { cause: e });
  }
  return new Uint8Array(k.export({ type: 'spki', format: 'der' }));
}

function seconds(t: Date | bigint): bigint {
  return typeof t === 'bigint' ? t : BigInt(Math.floor(t.getTime() / 1000));
}

/** The wire form of one CA JWT authority, as the CA publishes it into its bundle. */
export function jwtAuthorityToWire(a: JwtAuthorityKey): WireBundleInit['jwtAuthorities'][number] {
  return { publicKey: spkiFromKey(a.publicKey), keyId: a.kid, expiresAt: seconds(a.expiresAt), tainted: false };
}

/** A copy of a wire or stored bundle with the proto's integer types (SPIRE's `api.BundleToProto`). */
export function bundleToWire(b: WireBundle): WireBundleInit {
  return {
    trustDomain: b.trustDomain,
    x509Authorities: b.x509Authorities.map((a) => ({ asn1: a.asn1, tainted: a.tainted ?? false })),
    jwtAuthorities: b.jwtAuthorities.map((k) => ({ publicKey: k.publicKey, keyId: k.keyId, expiresAt: BigInt(k.expiresAt), tainted: k.tainted ?? false })),
    refreshHint: BigInt(b.refreshHint),
    sequenceNumber: b.sequenceNumber,
  };
}

/** The X.509 authorities as one concatenated DER blob (the Workload API's bundle form). */
export function x509AuthoritiesDer(b: Pick<WireBundle, 'x509Authorities'>): Uint8Array {
  return concatDer(b.x509Authorities.map((a) => a.asn1));
}

export interface JwksOptions {
  /** `use` member on every key (the Workload API publishes `jwt-svid`); none when absent. */
  readonly use?: string;
}

/**
 * The JWT authorities as JWKs with `kid` (and `use` when asked), in bundle order, go-jose
 * member order. A key without an ID or with an unparsable public key is an ERR_INVALID_ARGUMENT.
 */
export function jwtAuthoritiesToJwks(b: Pick<WireBundle, 'jwtAuthorities'>, opts: JwksOptions = {}): JsonWebKey[] {
  return b.jwtAuthorities.map((k) => {
    if (k.keyId === '') throw invalidArgument('JWT authority has no key ID');
    const jwk = { ...jwkFromSpki(k.publicKey), kid: k.keyId, ...(opts.use === undefined ? {} : { use: opts.use }) };
    return orderJwkMembers(jwk) as JsonWebKey;
  });
}

/** `{"keys":[...]}` of the JWT authorities, as UTF-8 JSON (the Workload API's JWT bundle form). */
export function jwksDocument(b: Pick<WireBundle, 'jwtAuthorities'>, opts: JwksOptions = {}): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ keys: jwtAuthoritiesToJwks(b, opts) }));
}

function trustDomainOf(name: string): TrustDomain {
  try {
    return TrustDomain.parse(name);
  } catch (e) {
    throw invalidArgument(`malformed trust domain: ${(e as Error).message}`, { cause: e });
  }
}

function wrapBundleError<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (isZtwimError(e)) throw e;
    throw invalidArgument(`invalid bundle: ${(e as Error).message}`, { cause: e });
  }
}

/** The SDK X.509 bundle of a wire bundle; a malformed trust domain or certificate is an ERR_INVALID_ARGUMENT. */
export function x509BundleFromWire(b: WireBundle): X509Bundle {
  const td = trustDomainOf(b.trustDomain);
  return wrapBundleError(() =>
    X509Bundle.fromAuthorities(
      td,
      b.x509Authorities.map((a) => a.asn1),
    ),
  );
}

/** The SDK JWT bundle of a wire bundle; a malformed trust domain or key is an ERR_INVALID_ARGUMENT. */
export function jwtBundleFromWire(b: WireBundle): JwtBundle {
  const td = trustDomainOf(b.trustDomain);
  return wrapBundleError(() => JwtBundle.fromAuthorities(td, jwtAuthorityMap(b)));
}

function jwtAuthorityMap(b: WireBundle): Map<string, JsonWebKey> {
  const m = new Map<string, JsonWebKey>();
  for (const k of b.jwtAuthorities) {
    if (k.keyId === '') throw invalidArgument('JWT authority has no key ID');
    m.set(k.keyId, jwkFromSpki(k.publicKey));
  }
  return m;
}

/**
 * The SDK SPIFFE bundle (X.509 and JWT authorities, sequence number, refresh hint) of a wire
 * bundle, as SPIRE's `bundleutil.SPIFFEBundleFromProto`; marshal it for the SPIFFE bundle JSON.
 * A zero sequence number or refresh hint is left unset.
 */
export function spiffeBundleFromWire(b: WireBundle): SpiffeBundle {
  const td = trustDomainOf(b.trustDomain);
  return wrapBundleError(() =>
    SpiffeBundle.fromParts(td, {
      x509: b.x509Authorities.map((a) => a.asn1),
      jwt: jwtAuthorityMap(b),
      // go-spiffe omits both from the JSON when zero (omitempty)
      ...(b.sequenceNumber > 0n ? { sequenceNumber: b.sequenceNumber } : {}),
      ...(BigInt(b.refreshHint) > 0n ? { refreshHintSeconds: Number(b.refreshHint) } : {}),
    }),
  );
}

/**
 * The wire bundle of an SDK SPIFFE bundle (SPIRE's `bundleutil.SPIFFEBundleToProto`). JWT keys
 * carry no expiry in SPIFFE bundle JSON: `jwtExpiresAt` gives it by key ID (0 when absent).
 */
export function spiffeBundleToWire(b: SpiffeBundle, jwtExpiresAt?: (kid: string) => bigint | undefined): WireBundleInit {
  const jwtAuthorities: WireBundleInit['jwtAuthorities'] = [];
  for (const [kid, jwk] of b.jwtAuthorities()) {
    jwtAuthorities.push({ publicKey: spkiFromKey(jwk), keyId: kid, expiresAt: jwtExpiresAt?.(kid) ?? 0n, tainted: false });
  }
  return {
    trustDomain: b.trustDomain.name,
    x509Authorities: b.x509Authorities().map((asn1) => ({ asn1, tainted: false })),
    jwtAuthorities,
    refreshHint: BigInt(b.refreshHintSeconds ?? 0),
    sequenceNumber: b.sequenceNumber ?? 0n,
  };
}
