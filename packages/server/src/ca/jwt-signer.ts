import { sign, type JsonWebKey, type KeyObject } from 'node:crypto';
import { cryptoRandom, failedPrecondition, invalidArgument, randomUuid, type Clock, type Random } from '@ztwim/core';
import type { SpiffeId, TrustDomain } from '@ztwim/spiffe';
import type { KeyType } from '../keymanager/key-manager.ts';

export type JwtAlg = 'ES256' | 'ES384' | 'RS256';

/** SPIRE's choice of JWS algorithm per key type. */
export function jwtAlgFor(type: KeyType): JwtAlg {
  switch (type) {
    case 'ec-p256':
      return 'ES256';
    case 'ec-p384':
      return 'ES384';
    case 'rsa-2048':
    case 'rsa-4096':
      return 'RS256';
  }
}

/** A public JWT authority as published in the bundle. */
export interface PublishedJwtKey {
  readonly kid: string;
  /** Public JWK with kid and alg; EC coordinates padded to the field size. */
  readonly publicKey: JsonWebKey;
  readonly expiresAt: Date;
}

export interface JwtSignerConfig {
  readonly trustDomain: TrustDomain;
  readonly kid: string;
  readonly keyType: KeyType;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** The signing key's end of life; tokens never outlive it. */
  readonly notAfter: Date;
  readonly clock: Clock;
  readonly random?: Random;
  /** Default JWT-SVID TTL (5m unless configured). */
  readonly jwtSvidTtlMs: number;
  /** `iss` claim, when configured. */
  readonly issuer?: string;
}

export interface SignJwtSvidParams {
  readonly spiffeId: SpiffeId;
  readonly audience: readonly string[];
  /** 0 or absent: the default TTL. */
  readonly ttlMs?: number;
  /** Adds a `jti` claim (base64url of a random UUIDv4). */
  readonly withJti?: boolean;
}

export interface JwtSvidResult {
  readonly token: string;
  readonly spiffeId: SpiffeId;
  readonly audience: string[];
  readonly issuedAt: Date;
  readonly expiresAt: Date;
  readonly kid: string;
}

/** Signs JWT-SVIDs with one key (the manager decides which key is current). */
export class JwtSigner {
  readonly kid: string;
  readonly alg: JwtAlg;
  readonly notAfter: Date;
  readonly authority: PublishedJwtKey;
  private readonly config: JwtSignerConfig;
  private readonly random: Random;
  /** base64url of the protected header `{alg, kid, typ}`, fixed per key. */
  private readonly encodedHeader: string;
  private readonly hash: string;
  private readonly signKey: KeyObject | { key: KeyObject; dsaEncoding: 'ieee-p1363' };

  constructor(config: JwtSignerConfig) {
    if (!Number.isInteger(config.jwtSvidTtlMs) || config.jwtSvidTtlMs <= 0) throw invalidArgument('ca: jwtSvidTtlMs must be a positive integer');
    if (config.kid === '') throw invalidArgument('ca: empty JWT key id');
    this.config = config;
    this.kid = config.kid;
    this.alg = jwtAlgFor(config.keyType);
    this.notAfter = config.notAfter;
    this.random = config.random ?? cryptoRandom;
    this.encodedHeader = b64url(JSON.stringify({ alg: this.alg, kid: this.kid, typ: 'JWT' }));
    this.hash = this.alg === 'ES384' ? 'sha384' : 'sha256';
    // JWS wants the raw r||s form of ECDSA signatures (RFC 7518 §3.4), not DER
    this.signKey = this.alg === 'RS256' ? config.privateKey : { key: config.privateKey, dsaEncoding: 'ieee-p1363' };
    this.authority = Object.freeze({ kid: this.kid, publicKey: publicJwk(config.publicKey, this.kid, this.alg), expiresAt: config.notAfter });
  }

  /** Signs a JWT-SVID; invalid parameters reject with ERR_INVALID_ARGUMENT. */
  signJwtSvid(params: SignJwtSvidParams): Promise<JwtSvidResult> {
    try {
      return Promise.resolve(this.signNow(params));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  private signNow(params: SignJwtSvidParams): JwtSvidResult {
    const { spiffeId } = params;
    if (!spiffeId.memberOf(this.config.trustDomain)) {
      throw invalidArgument(`ca: ${spiffeId.toString()} is not in trust domain ${this.config.trustDomain.name}`);
    }
    const audience = params.audience.filter((a) => a !== '');
    if (audience.length === 0) throw invalidArgument('invalid JWT-SVID audience: cannot be empty');
    const ttlMs = params.ttlMs ?? 0;
    if (!Number.isInteger(ttlMs) || ttlMs < 0) throw invalidArgument('ca: ttl must be a non-negative integer');
    const nowMs = this.config.clock.nowMs();
    const iat = Math.floor(nowMs / 1000);
    const exp = Math.floor(Math.min(nowMs + (ttlMs || this.config.jwtSvidTtlMs), this.notAfter.getTime()) / 1000);
    if (exp <= iat) throw failedPrecondition('ca: JWT signing key has expired');
    // the claims JSON, written out in a fixed member order: sub, aud, iat, exp, iss, jti
    let claims = `{"sub":${JSON.stringify(spiffeId.toString())},"aud":${JSON.stringify(audience)},"iat":${iat},"exp":${exp}`;
    if (this.config.issuer !== undefined) claims += `,"iss":${JSON.stringify(this.config.issuer)}`;
    if (params.withJti) claims += `,"jti":"${Buffer.from(randomUuid(this.random).replaceAll('-', ''), 'hex').toString('base64url')}"`;
    const token = this.compact(`${claims}}`);
    return { token, spiffeId, audience, issuedAt: new Date(iat * 1000), expiresAt: new Date(exp * 1000), kid: this.kid };
  }

  /**
   * JWS compact serialization, signed synchronously with node:crypto. (jose's SignJWT gives the same
   * bytes, but on Node 20 it signs through WebCrypto's thread-pool round trip, ~7x slower per token;
   * the tests check our output against jose.)
   */
  private compact(claimsJson: string): string {
    const input = `${this.encodedHeader}.${b64url(claimsJson)}`;
    const signature = sign(this.hash, Buffer.from(input, 'latin1'), this.signKey);
    return `${input}.${signature.toString('base64url')}`;
  }
}

function b64url(s: string): string {
  return Buffer.from(s, 'utf8').toString('base64url');
}

/** The public JWK of a key with kid and alg set (node pads EC coordinates to the field size). */
export function publicJwk(publicKey: KeyObject, kid: string, alg: JwtAlg): JsonWebKey {
  const jwk = publicKey.export({ format: 'jwk' });
  if (jwk.kty === 'EC') return { kty: 'EC', kid, alg, crv: jwk.crv, x: jwk.x, y: jwk.y } as JsonWebKey;
  return { kty: 'RSA', kid, alg, n: jwk.n, e: jwk.e } as JsonWebKey;
}
