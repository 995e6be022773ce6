import { isAbsolute, resolve } from 'node:path';
import type { Problems, Section } from '@ztwim/core';
import { SpiffeId, TrustDomain } from '@ztwim/spiffe';
import type { RelationshipConfig } from './refresher.ts';

export type BundleEndpointProfileConfig =
  | { readonly kind: 'https_spiffe' }
  | {
      readonly kind: 'https_web';
      readonly servingCertFile: { readonly certFilePath: string; readonly keyFilePath: string; readonly fileSyncIntervalMs: number };
    };

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
export function parseFederationConfig(f: Section, p: Problems, baseDir: string, ownTrustDomain: string | undefined): FederationConfig {
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
        const scf = section.section('serving_cert_file');
        if (section.section('acme') !== undefined) {
          p.add(`${AT}.bundle_endpoint.profile.https_web.acme`, line, 'is not supported by ztwim yet (use serving_cert_file)');
        }
        section.done();
        if (scf === undefined) {
          p.add(`${AT}.bundle_endpoint.profile.https_web`, line, 'needs serving_cert_file');
          continue;
        }
        const cert = scf.string('cert_file_path');
        const key = scf.string('key_file_path');
        if (cert === undefined) p.add(`${AT}.bundle_endpoint.profile.https_web.serving_cert_file.cert_file_path`, line, 'is required');
        if (key === undefined) p.add(`${AT}.bundle_endpoint.profile.https_web.serving_cert_file.key_file_path`, line, 'is required');
        const sync = scf.duration('file_sync_interval') ?? 60_000;
        scf.done();
        const abs = (x: string): string => (isAbsolute(x) ? x : resolve(baseDir, x));
        profile = {
          kind: 'https_web',
          servingCertFile: { certFilePath: abs(cert ?? ''), keyFilePath: abs(key ?? ''), fileSyncIntervalMs: Math.max(sync, 1000) },
        };
      } else p.add(`${AT}.bundle_endpoint.profile.${label}`, line, 'unknown profile (use https_spiffe or https_web)');
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
