/**
 * Parsers for the three custom resources: JSON (from the API server or a static manifest) in,
 * validated specs with templates and selectors parsed out, or a RegistrarError naming the field
 * path (`spec.dnsNameTemplates[1]: template: ...`). The checks are those of the controller
 * manager's webhook (ParseClusterSPIFFEIDSpec, ParseClusterFederatedTrustDomainSpec) and of its
 * static-entry renderer, plus the types the CRD schema declares (a static manifest bypasses the
 * API server's schema).
 */
import { parseDuration } from '@ztwim/core';
import { SpiffeBundle, SpiffeId, TrustDomain } from '@ztwim/spiffe';
import { RegistrarError, isRegistrarError } from '../errors.ts';
import { parseLabelSelector, type LabelSelector } from '../labels.ts';
import { Template } from '../template/template.ts';
import type {
  ParsedBundleEndpointProfile,
  ParsedClusterFederatedTrustDomain,
  ParsedClusterSPIFFEID,
  ParsedClusterSPIFFEIDSpec,
  ParsedClusterStaticEntry,
  ParsedClusterFederatedTrustDomainSpec,
  ParsedMeta,
  ParsedSelector,
} from './types.ts';

type Json = Readonly<Record<string, unknown>>;

const isRecord = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function invalid(field: string, message: string, cause?: unknown): RegistrarError {
  return new RegistrarError('crd_invalid', `${field}: ${message}`, cause === undefined ? { field } : { field, cause });
}

/** Reads typed fields of one JSON object, naming `<path>.<key>` in errors. */
class Fields {
  private readonly obj: Json;
  readonly path: string;

  constructor(obj: Json, path: string) {
    this.obj = obj;
    this.path = path;
  }

  at(key: string): string {
    return `${this.path}.${key}`;
  }

  has(key: string): boolean {
    return this.obj[key] !== undefined && this.obj[key] !== null;
  }

  string(key: string, required = false): string {
    const v = this.obj[key];
    if (v === undefined || v === null) {
      if (required) throw invalid(this.at(key), 'is required');
      return '';
    }
    if (typeof v !== 'string') throw invalid(this.at(key), `must be a string, got ${typeof v}`);
    if (required && v === '') throw invalid(this.at(key), 'must not be empty');
    return v;
  }

  bool(key: string): boolean {
    const v = this.obj[key];
    if (v === undefined || v === null) return false;
    if (typeof v !== 'boolean') throw invalid(this.at(key), `must be a boolean, got ${typeof v}`);
    return v;
  }

  strings(key: string, required = false): string[] {
    const v = this.obj[key];
    if (v === undefined || v === null) {
      if (required) throw invalid(this.at(key), 'is required');
      return [];
    }
    if (!Array.isArray(v)) throw invalid(this.at(key), 'must be a list of strings');
    return v.map((e: unknown, i) => {
      if (typeof e !== 'string') throw invalid(`${this.at(key)}[${i}]`, 'must be a string');
      return e;
    });
  }

  object(key: string, required = false): Fields | undefined {
    const v = this.obj[key];
    if (v === undefined || v === null) {
      if (required) throw invalid(this.at(key), 'is required');
      return undefined;
    }
    if (!isRecord(v)) throw invalid(this.at(key), 'must be an object');
    return new Fields(v, this.at(key));
  }

  raw(key: string): unknown {
    return this.obj[key];
  }

  /** A metav1.Duration (Go duration text) as whole seconds, truncated as the controller manager does. */
  durationSeconds(key: string): number {
    const s = this.string(key);
    if (s === '') return 0;
    // Go's time.ParseDuration: core's parser also takes "d", which Go does not.
    const ms = /d/.test(s) ? undefined : parseDuration(s);
    if (ms === undefined) throw invalid(this.at(key), `invalid duration ${JSON.stringify(s)} (want a Go duration such as "1h30m" or "90s")`);
    return Math.trunc(ms / 1000);
  }
}

function root(obj: unknown, kind: string): { meta: ParsedMeta; spec: Fields } {
  if (!isRecord(obj)) throw invalid('$', `${kind} must be an object`);
  if (obj['kind'] !== undefined && obj['kind'] !== kind) throw invalid('kind', `must be ${kind}, got ${JSON.stringify(obj['kind'])}`);
  const apiVersion = obj['apiVersion'];
  if (apiVersion !== undefined && apiVersion !== 'spire.spiffe.io/v1alpha1') {
    throw invalid('apiVersion', `must be spire.spiffe.io/v1alpha1, got ${JSON.stringify(apiVersion)}`);
  }
  const top = new Fields(obj, '');
  const md = top.object('metadata') ?? new Fields({}, 'metadata');
  const meta: ParsedMeta = {
    name: md.string('name'),
    uid: md.string('uid'),
    resourceVersion: md.string('resourceVersion'),
    creationTimestamp: md.string('creationTimestamp'),
  };
  const spec = new Fields(isRecord(obj['spec']) ? obj['spec'] : {}, 'spec');
  if (!isRecord(obj['spec'])) throw invalid('spec', 'is required');
  return { meta, spec };
}

function template(text: string, field: string): Template {
  try {
    return Template.parse(text);
  } catch (e) {
    if (isRegistrarError(e)) throw new RegistrarError('template_parse', `${field}: ${e.message}`, { field, cause: e });
    throw e;
  }
}

function selector(f: Fields, key: string): LabelSelector | undefined {
  if (!f.has(key)) return undefined;
  return parseLabelSelector(f.raw(key), f.at(key));
}

function trustDomains(f: Fields, key: string): TrustDomain[] {
  return f.strings(key).map((s, i) => {
    try {
      return TrustDomain.parse(s);
    } catch (e) {
      throw invalid(`${f.at(key)}[${i}]`, `invalid trust domain ${JSON.stringify(s)}: ${(e as Error).message}`, e);
    }
  });
}

function spiffeId(f: Fields, key: string): SpiffeId {
  const s = f.string(key, true);
  try {
    return SpiffeId.parse(s);
  } catch (e) {
    throw invalid(f.at(key), `invalid SPIFFE ID ${JSON.stringify(s)}: ${(e as Error).message}`, e);
  }
}

/** SPIRE's `type:value` selector syntax. */
export function parseSelector(s: string, field: string): ParsedSelector {
  const i = s.indexOf(':');
  if (i < 0) throw invalid(field, `invalid selector ${JSON.stringify(s)}: expected at least one colon separate the type from the value`);
  if (i === 0) throw invalid(field, `invalid selector ${JSON.stringify(s)}: type cannot be empty`);
  if (i === s.length - 1) throw invalid(field, `invalid selector ${JSON.stringify(s)}: value cannot be empty`);
  return { type: s.slice(0, i), value: s.slice(i + 1) };
}

/** The spec of a ClusterSPIFFEID (what the `vclusterspiffeid.kb.io` webhook checks). */
export function parseClusterSPIFFEIDSpec(spec: unknown, path = 'spec'): ParsedClusterSPIFFEIDSpec {
  if (!isRecord(spec)) throw invalid(path, 'is required');
  const f = new Fields(spec, path);
  return {
    spiffeIDTemplate: template(f.string('spiffeIDTemplate', true), f.at('spiffeIDTemplate')),
    namespaceSelector: selector(f, 'namespaceSelector'),
    podSelector: selector(f, 'podSelector'),
    ttlSeconds: f.durationSeconds('ttl'),
    jwtTtlSeconds: f.durationSeconds('jwtTtl'),
    federatesWith: trustDomains(f, 'federatesWith'),
    dnsNameTemplates: f.strings('dnsNameTemplates').map((t, i) => template(t, `${f.at('dnsNameTemplates')}[${i}]`)),
    workloadSelectorTemplates: f.strings('workloadSelectorTemplates').map((t, i) => template(t, `${f.at('workloadSelectorTemplates')}[${i}]`)),
    admin: f.bool('admin'),
    downstream: f.bool('downstream'),
    autoPopulateDNSNames: f.bool('autoPopulateDNSNames'),
    className: f.string('className'),
    fallback: f.bool('fallback'),
    hint: f.string('hint'),
  };
}

export function parseClusterSPIFFEID(obj: unknown): ParsedClusterSPIFFEID {
  const { meta } = root(obj, 'ClusterSPIFFEID');
  return { meta, spec: parseClusterSPIFFEIDSpec((obj as Json)['spec']) };
}

export function parseClusterStaticEntry(obj: unknown): ParsedClusterStaticEntry {
  const { meta, spec: f } = root(obj, 'ClusterStaticEntry');
  return {
    meta,
    spec: {
      spiffeId: spiffeId(f, 'spiffeID'),
      parentId: spiffeId(f, 'parentID'),
      selectors: f.strings('selectors', true).map((s, i) => parseSelector(s, `${f.at('selectors')}[${i}]`)),
      federatesWith: trustDomains(f, 'federatesWith'),
      x509SvidTtlSeconds: f.durationSeconds('x509SVIDTTL'),
      jwtSvidTtlSeconds: f.durationSeconds('jwtSVIDTTL'),
      dnsNames: f.strings('dnsNames'),
      hint: f.string('hint'),
      admin: f.bool('admin'),
      downstream: f.bool('downstream'),
      storeSvid: f.bool('storeSVID'),
      className: f.string('className'),
    },
  };
}

/** spireapi.ValidateBundleEndpointURL: an https URL with a host and no userinfo. */
export function bundleEndpointUrlError(s: string): string | undefined {
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    return 'not a URL';
  }
  if (u.protocol !== 'https:') return `scheme must be https, got ${JSON.stringify(u.protocol.replace(/:$/, ''))}`;
  if (u.hostname === '') return 'host is not specified';
  if (u.username !== '' || u.password !== '' || /^https:\/\/[^/]*@/i.test(s)) return 'cannot contain userinfo';
  return undefined;
}

/** The spec of a ClusterFederatedTrustDomain (what `vclusterfederatedtrustdomain.kb.io` checks). */
export function parseClusterFederatedTrustDomainSpec(spec: unknown, path = 'spec'): ParsedClusterFederatedTrustDomainSpec {
  if (!isRecord(spec)) throw invalid(path, 'is required');
  const f = new Fields(spec, path);
  const tdText = f.string('trustDomain', true);
  let trustDomain: TrustDomain;
  try {
    trustDomain = TrustDomain.parse(tdText);
  } catch (e) {
    throw invalid(f.at('trustDomain'), `invalid trust domain ${JSON.stringify(tdText)}: ${(e as Error).message}`, e);
  }
  const url = f.string('bundleEndpointURL', true);
  const urlErr = bundleEndpointUrlError(url);
  if (urlErr !== undefined) throw invalid(f.at('bundleEndpointURL'), `invalid bundle endpoint URL ${JSON.stringify(url)}: ${urlErr}`);
  const p = f.object('bundleEndpointProfile', true) as Fields;
  const type = p.string('type', true);
  let profile: ParsedBundleEndpointProfile;
  if (type === 'https_web') {
    if (p.string('endpointSPIFFEID') !== '') throw invalid(p.at('endpointSPIFFEID'), 'not applicable to the "https_web" profile');
    profile = { type };
  } else if (type === 'https_spiffe') {
    profile = { type, endpointSpiffeId: spiffeId(p, 'endpointSPIFFEID') };
  } else {
    throw invalid(p.at('type'), `invalid bundle endpoint profile type ${JSON.stringify(type)} (want https_web or https_spiffe)`);
  }
  const bundle = f.string('trustDomainBundle');
  if (bundle !== '') {
    try {
      SpiffeBundle.parse(trustDomain, bundle);
    } catch (e) {
      throw invalid(f.at('trustDomainBundle'), `invalid trust domain bundle: ${(e as Error).message}`, e);
    }
  }
  return {
    trustDomain,
    bundleEndpointUrl: url,
    bundleEndpointProfile: profile,
    trustDomainBundle: bundle === '' ? undefined : bundle,
    className: f.string('className'),
  };
}

export function parseClusterFederatedTrustDomain(obj: unknown): ParsedClusterFederatedTrustDomain {
  const { meta } = root(obj, 'ClusterFederatedTrustDomain');
  return { meta, spec: parseClusterFederatedTrustDomainSpec((obj as Json)['spec']) };
}
