import { isAbsolute, join, resolve } from 'node:path';
import type { Problems, Section } from '@ztwim/core';
import { SpiffeId, TrustDomain } from '@ztwim/spiffe';
import type { RelationshipConfig } from './refresher.ts';

/** SPIRE's `profile "https_web" { acme {...} }`: a certificate from an ACME CA (tls-alpn-01 on the endpoint's port). */
export interface BundleEndpointAcmeConfig {
  readonly domainName: string;
  readonly email: string;
  /** Default Let's Encrypt's. */
  readonly directoryUrl: string;
  readonly tosAccepted: boolean;
  /** `<data_dir>/bundle-acme`, as SPIRE. */
  readonly cacheDir: string;
}

export const LETS_ENCRYPT_DIRECTORY_URL = 'https://acme-v02.api.letsencrypt.org/directory';

export type BundleEndpointProfileConfig =
  | { readonly kind: 'https_spiffe' }
  | {
      readonly kind: 'https_web';
      readonly servingCertFile: { readonly certFilePath: string; readonly keyFilePath: string; readonly fileSyncIntervalMs: number };
    }
  | { readonly kind: 'https_web'; readonly acme: BundleEndpointAcmeConfig };

export interface BundleEndpointConfig {
  readonly address: string;
  readonly port: number;
  /** Seconds (SPIRE's refresh_hint, default 5m). */
  readonly refreshHintSeconds: number;
  readonly profile: BundleEndpointProfileConfig;
}

/** SPIRE's `server { federation { bundle_endpoint {...} federates_with "<td>" {...} } }`. */
export interface FederationConfig {
  readonly bundleEndpoint?: BundleEndpointConfig;
  readonly federatesWith: readonly RelationshipConfig[];
}

const AT = 'server.federation';

/** Parses the federation block; every problem is reported to p (with its line). */
export function parseFederationConfig(f: Section, p: Problems, baseDir: string, ownTrustDomain: string | undefined, dataDir: string): FederationConfig {
  let bundleEndpoint: BundleEndpointConfig | undefined;
  const be = f.section('bundle_endpoint');
  if (be !== undefined) {
    const address = be.string('address') ?? '0.0.0.0';
    const port = be.number('port', { integer: true, min: 0, max: 65535 }) ?? 443;
    const hintMs = be.duration('refresh_hint') ?? 5 * 60_000;
    if (hintMs < 60_000)
      p.warn(`${AT}.bundle_endpoint.refresh_hint`, be.lineOf('refresh_hint'), 'is below 1m: federated servers never refresh faster than every minute');
    let profile: BundleEndpointProfileConfig = { kind: 'https_spiffe' };
    const profiles = be.labelled('profile');
    if (profiles.length > 1) p.add(`${AT}.bundle_endpoint.profile`, profiles[1]?.line ?? 0, 'only one profile may be configured');
    for (const { label, section, line } of profiles) {
      if (label === 'https_spiffe') section.done();
      else if (label === 'https_web') {
        const at = `${AT}.bundle_endpoint.profile.https_web`;
        const scf = section.section('serving_cert_file');
        const acme = section.section('acme');
        section.done();
        if (scf !== undefined && acme !== undefined) {
          p.add(at, line, 'acme and serving_cert_file are mutually exclusive');
          continue;
        }
        if (acme !== undefined) {
          profile = { kind: 'https_web', acme: parseAcme(acme, p, `${at}.acme`, line, dataDir) };
          continue;
        }
        if (scf === undefined) {
          p.add(at, line, 'needs acme or serving_cert_file');
          continue;
        }
        const cert = scf.string('cert_file_path');
        const key = scf.string('key_file_path');
        if (cert === undefined) p.add(`${at}.serving_cert_file.cert_file_path`, line, 'is required');
        if (key === undefined) p.add(`${at}.serving_cert_file.key_file_path`, line, 'is required');
        const sync = scf.duration('file_sync_interval') ?? 60_000;
        scf.done();
        const abs = (x: string): string => (isAbsolute(x) ? x : resolve(baseDir, x));
        profile = {
          kind: 'https_web',
          servingCertFile: { certFilePath: abs(cert ?? ''), keyFilePath: abs(key ?? ''), fileSyncIntervalMs: Math.max(sync, 1000) },
        };
      } else p.add(`${AT}.bundle_endpoint.profile.${label}`, line, 'unknown profile (use https_spiffe or https_web)');
    }
    // SPIRE still reads the older `bundle_endpoint { acme {...} }` (https_web with ACME), with a warning.
    const oldAcme = be.section('acme');
    if (oldAcme !== undefined) {
      const at = `${AT}.bundle_endpoint.acme`;
      if (profiles.length > 0) p.add(at, be.lineOf('acme'), "either bundle endpoint 'acme' or 'profile' can be set, but not both");
      else {
        p.warn(at, be.lineOf('acme'), 'within the bundle_endpoint is deprecated: put acme in the https_web profile instead');
        profile = { kind: 'https_web', acme: parseAcme(oldAcme, p, at, be.lineOf('acme'), dataDir) };
      }
    }
    be.done();
    bundleEndpoint = { address, port, refreshHintSeconds: Math.ceil(hintMs / 1000), profile };
  }
  const federatesWith: RelationshipConfig[] = [];
  for (const { label, section, line } of f.labelled('federates_with')) {
    const at = `${AT}.federates_with.${label}`;
    let td: string | undefined;
    try {
      td = TrustDomain.parse(label).name;
    } catch (e) {
      p.add(at, line, (e as Error).message);
    }
    if (td !== undefined && td === ownTrustDomain) p.add(at, line, 'cannot federate with the server trust domain');
    const url = section.string('bundle_endpoint_url');
    if (url === undefined) p.add(`${at}.bundle_endpoint_url`, line, 'is required');
    else {
      let u: URL | undefined;
      try {
        u = new URL(url);
      } catch {
        /* reported below */
      }
      if (u === undefined || u.protocol !== 'https:' || u.host === '' || u.username !== '') {
        p.add(`${at}.bundle_endpoint_url`, section.lineOf('bundle_endpoint_url'), `must be an https URL with a host and no user info, got "${url}"`);
      }
    }
    const profs = section.labelled('bundle_endpoint_profile');
    let profile: RelationshipConfig['bundleEndpointProfile'] | undefined;
    let endpointSpiffeId = '';
    if (profs.length !== 1) p.add(`${at}.bundle_endpoint_profile`, line, 'exactly one of "https_spiffe" or "https_web" is required');
    for (const { label: pl, section: ps, line: pline } of profs) {
      if (pl === 'https_web') profile = 'https_web';
      else if (pl === 'https_spiffe') {
        profile = 'https_spiffe';
        const id = ps.string('endpoint_spiffe_id');
        if (id === undefined) p.add(`${at}.bundle_endpoint_profile.https_spiffe.endpoint_spiffe_id`, pline, 'is required');
        else {
          try {
            endpointSpiffeId = SpiffeId.parse(id).toString();
          } catch (e) {
            p.add(`${at}.bundle_endpoint_profile.https_spiffe.endpoint_spiffe_id`, ps.lineOf('endpoint_spiffe_id'), (e as Error).message);
          }
        }
      } else p.add(`${at}.bundle_endpoint_profile.${pl}`, pline, 'unknown profile (use https_spiffe or https_web)');
      ps.done();
    }
    section.done();
    if (td !== undefined && url !== undefined && profile !== undefined) {
      federatesWith.push({ trustDomain: td, bundleEndpointUrl: url, bundleEndpointProfile: profile, endpointSpiffeId });
    }
  }
  f.done();
  return { ...(bundleEndpoint === undefined ? {} : { bundleEndpoint }), federatesWith };
}

/** SPIRE's acme keys: domain_name and email required, directory_url defaults to Let's Encrypt. */
function parseAcme(a: Section, p: Problems, at: string, line: number, dataDir: string): BundleEndpointAcmeConfig {
  const domainName = a.string('domain_name') ?? '';
  const email = a.string('email') ?? '';
  const directoryUrl = a.string('directory_url') ?? LETS_ENCRYPT_DIRECTORY_URL;
  const tosAccepted = a.bool('tos_accepted') ?? false;
  a.done();
  if (domainName === '') p.add(`${at}.domain_name`, line, 'must be configured');
  else if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/i.test(domainName)) {
    p.add(`${at}.domain_name`, a.lineOf('domain_name'), `"${domainName}" is not a DNS name`);
  }
  if (email === '') p.add(`${at}.email`, line, 'must be configured');
  let u: URL | undefined;
  try {
    u = new URL(directoryUrl);
  } catch {
    /* reported below */
  }
  if (u?.protocol !== 'https:') p.add(`${at}.directory_url`, a.lineOf('directory_url'), `must be an https URL, got "${directoryUrl}"`);
  // SPIRE starts and warns; the CA then refuses the account (ztwim logs that at each attempt).
  if (!tosAccepted)
    p.warn(`${at}.tos_accepted`, line, 'ACME Terms of Service have not been accepted: the CA will refuse the account (set tos_accepted = true)');
  return { domainName, email, directoryUrl, tosAccepted, cacheDir: join(dataDir, 'bundle-acme') };
}
