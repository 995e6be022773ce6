import { configError } from '@ztwim/core';
import { TrustDomain } from '@ztwim/spiffe';
import { isKeyType, KEY_TYPES, type KeyType } from '../keymanager/key-manager.ts';
import type { CaSubject } from './cert-builder.ts';
import { DEFAULT_CA_SUBJECT } from './x509-ca.ts';

/** CA settings (SPIRE server: trust_domain, ca_subject, ca_key_type, ca_ttl, default_*_svid_ttl, jwt_*). */
export interface CaConfig {
  readonly trustDomain: string | TrustDomain;
  readonly caSubject?: CaSubject | undefined;
  /** Default ec-p256. */
  readonly caKeyType?: KeyType;
  /** Default 24h. */
  readonly caTtlMs?: number;
  /** Default 1h. */
  readonly x509SvidTtlMs?: number;
  /** Default 5m. */
  readonly jwtSvidTtlMs?: number;
  /** Default: the CA key type. */
  readonly jwtKeyType?: KeyType;
  /** `iss` of JWT-SVIDs: an https URL (http only with allowInsecureIssuer). */
  readonly jwtIssuer?: string | undefined;
  readonly allowInsecureIssuer?: boolean;
}

export interface ResolvedCaConfig {
  readonly trustDomain: TrustDomain;
  readonly caSubject: CaSubject;
  readonly caKeyType: KeyType;
  readonly caTtlMs: number;
  readonly x509SvidTtlMs: number;
  readonly jwtSvidTtlMs: number;
  readonly jwtKeyType: KeyType;
  readonly jwtIssuer: string | undefined;
}

export const CA_DEFAULTS = Object.freeze({
  caKeyType: 'ec-p256' as KeyType,
  caTtlMs: 24 * 3_600_000,
  x509SvidTtlMs: 3_600_000,
  jwtSvidTtlMs: 5 * 60_000,
});

function positiveMs(field: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0)
    throw configError(`${field}: must be a positive whole number of milliseconds, got ${String(v)}`);
  return v;
}

function keyType(field: string, v: unknown, dflt: KeyType): KeyType {
  if (v === undefined) return dflt;
  if (!isKeyType(v)) throw configError(`${field}: must be one of ${KEY_TYPES.join(', ')}, got ${JSON.stringify(v)}`);
  return v;
}

function strings(field: string, v: unknown): string[] | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string' || s === '')) throw configError(`${field}: must be a list of non-empty strings`);
  return [...(v as string[])];
}

function issuer(v: string | undefined, allowInsecure: boolean): string | undefined {
  if (v === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    throw configError(`jwtIssuer: must be a URL, got ${JSON.stringify(v)}`);
  }
  if (url.protocol !== 'https:' && !(allowInsecure && url.protocol === 'http:')) {
    throw configError(`jwtIssuer: scheme must be https${allowInsecure ? ' or http' : ''}, got ${JSON.stringify(url.protocol.slice(0, -1))}`);
  }
  if (url.hostname === '') throw configError('jwtIssuer: must have a host');
  if (url.search !== '' || url.hash !== '') throw configError('jwtIssuer: must not have a query or fragment');
  if (url.username !== '' || url.password !== '') throw configError('jwtIssuer: must not carry user info');
  return v;
}

/** Validates the CA config, fills defaults and freezes the result. Errors (ERR_CONFIG) name the field. */
export function resolveCaConfig(c: CaConfig): ResolvedCaConfig {
  let trustDomain: TrustDomain;
  try {
    trustDomain = typeof c.trustDomain === 'string' ? TrustDomain.parse(c.trustDomain) : c.trustDomain;
  } catch (cause) {
    throw configError(`trustDomain: ${(cause as Error).message}`, { cause });
  }
  const caKeyType = keyType('caKeyType', c.caKeyType, CA_DEFAULTS.caKeyType);
  const subj = c.caSubject;
  if (subj !== undefined && (typeof subj !== 'object' || subj === null)) throw configError('caSubject: must be an object');
  if (subj?.commonName !== undefined && typeof subj.commonName !== 'string') throw configError('caSubject.commonName: must be a string');
  const country = strings('caSubject.country', subj?.country);
  const organization = strings('caSubject.organization', subj?.organization);
  const caSubject: CaSubject =
    subj === undefined
      ? DEFAULT_CA_SUBJECT
      : Object.freeze({
          ...(country ? { country } : {}),
          ...(organization ? { organization } : {}),
          ...(subj.commonName ? { commonName: subj.commonName } : {}),
        });
  return Object.freeze({
    trustDomain,
    caSubject,
    caKeyType,
    caTtlMs: positiveMs('caTtlMs', c.caTtlMs, CA_DEFAULTS.caTtlMs),
    x509SvidTtlMs: positiveMs('x509SvidTtlMs', c.x509SvidTtlMs, CA_DEFAULTS.x509SvidTtlMs),
    jwtSvidTtlMs: positiveMs('jwtSvidTtlMs', c.jwtSvidTtlMs, CA_DEFAULTS.jwtSvidTtlMs),
    jwtKeyType: keyType('jwtKeyType', c.jwtKeyType, caKeyType),
    jwtIssuer: issuer(c.jwtIssuer, c.allowInsecureIssuer === true),
  });
}
