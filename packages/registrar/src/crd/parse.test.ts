import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isRegistrarError, type RegistrarErrorCode } from '../errors.ts';
import { templateDataFor } from '../template/template-data.ts';
import { parseClusterFederatedTrustDomain, parseClusterSPIFFEID, parseClusterStaticEntry } from './parse.ts';

const META = { name: 'x', uid: 'u-1', resourceVersion: '7', creationTimestamp: '2026-12-07T00:00:00Z' };

/** A ClusterSPIFFEID as ZTWIM 1.0 writes its default one (digest §4.4). */
const ZTWIM_DEFAULT = {
  apiVersion: 'spire.spiffe.io/v1alpha1',
  kind: 'ClusterSPIFFEID',
  metadata: { ...META, name: 'zero-trust-workload-identity-manager-spire-default' },
  spec: {
    className: 'zero-trust-workload-identity-manager-spire',
    fallback: true,
    hint: 'default',
    spiffeIDTemplate: 'spiffe://{{ .TrustDomain }}/ns/{{ .PodMeta.Namespace }}/sa/{{ .PodSpec.ServiceAccountName }}',
    namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['zero-trust-workload-identity-manager'] }] },
    dnsNameTemplates: ['{{ .PodMeta.Name }}.{{ .PodMeta.Namespace }}.svc'],
    workloadSelectorTemplates: ['k8s:ns:{{ .PodMeta.Namespace }}'],
    federatesWith: ['other.org', 'spiffe://third.org'],
    ttl: '1h30m',
    jwtTtl: '90.5s',
    autoPopulateDNSNames: true,
  },
};

const withSpec = (base: { spec: object }, patch: Record<string, unknown>): unknown => ({ ...base, spec: { ...base.spec, ...patch } });

function refuses(fn: () => unknown, code: RegistrarErrorCode, field: string, message: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isRegistrarError(e), `not a RegistrarError: ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.equal(e.field, field, e.message);
    assert.match(e.message, message);
    assert.ok(e.message.startsWith(`${field}: `), e.message);
    return true;
  });
}

describe('parseClusterSPIFFEID', () => {
  it('parses ZTWIM default identity with templates and selectors ready to use', () => {
    const p = parseClusterSPIFFEID(ZTWIM_DEFAULT);
    assert.deepEqual(p.meta, { ...META, name: 'zero-trust-workload-identity-manager-spire-default' });
    const s = p.spec;
    assert.equal(s.fallback, true);
    assert.equal(s.hint, 'default');
    assert.equal(s.className, 'zero-trust-workload-identity-manager-spire');
    assert.equal(s.autoPopulateDNSNames, true);
    assert.equal(s.admin, false);
    assert.equal(s.downstream, false);
    assert.equal(s.ttlSeconds, 5400);
    assert.equal(s.jwtTtlSeconds, 90);
    assert.deepEqual(
      s.federatesWith.map((t) => t.name),
      ['other.org', 'third.org'],
    );
    assert.deepEqual(s.namespaceSelector, ZTWIM_DEFAULT.spec.namespaceSelector);
    assert.equal(s.podSelector, undefined);
    const data = templateDataFor(
      { trustDomain: 'example.org', clusterName: 'c', clusterDomain: 'cluster.local' },
      { metadata: { name: 'p', namespace: 'ns' }, spec: { serviceAccountName: 'sa' } },
      {},
    );
    assert.equal(s.spiffeIDTemplate.render(data), 'spiffe://example.org/ns/ns/sa/sa');
    assert.deepEqual(
      s.dnsNameTemplates.map((t) => t.render(data)),
      ['p.ns.svc'],
    );
    assert.deepEqual(
      s.workloadSelectorTemplates.map((t) => t.render(data)),
      ['k8s:ns:ns'],
    );
  });

  it('a minimal spec takes the zero values', () => {
    const s = parseClusterSPIFFEID({ metadata: { name: 'm' }, spec: { spiffeIDTemplate: 'spiffe://x/y' } }).spec;
    assert.equal(s.ttlSeconds, 0);
    assert.deepEqual([s.dnsNameTemplates, s.workloadSelectorTemplates, s.federatesWith], [[], [], []]);
    assert.equal(s.namespaceSelector, undefined);
    assert.equal(s.fallback, false);
    assert.equal(s.hint, '');
  });

  const bad: Array<[name: string, obj: unknown, code: RegistrarErrorCode, field: string, message: RegExp]> = [
    ['no spec', { metadata: {} }, 'crd_invalid', 'spec', /is required/],
    ['no template', withSpec(ZTWIM_DEFAULT, { spiffeIDTemplate: undefined }), 'crd_invalid', 'spec.spiffeIDTemplate', /is required/],
    ['empty template', withSpec(ZTWIM_DEFAULT, { spiffeIDTemplate: '' }), 'crd_invalid', 'spec.spiffeIDTemplate', /must not be empty/],
    [
      'template does not parse',
      withSpec(ZTWIM_DEFAULT, { spiffeIDTemplate: 'spiffe://{{ .TrustDomain }/x' }),
      'template_parse',
      'spec.spiffeIDTemplate',
      /unrecognized character in action: "}" at line 1 col 26/,
    ],
    [
      'unknown function',
      withSpec(ZTWIM_DEFAULT, { spiffeIDTemplate: 'spiffe://{{ lower .TrustDomain }}' }),
      'template_parse',
      'spec.spiffeIDTemplate',
      /function "lower" not defined/,
    ],
    [
      'bad DNS template',
      withSpec(ZTWIM_DEFAULT, { dnsNameTemplates: ['ok', '{{ if }}'] }),
      'template_parse',
      'spec.dnsNameTemplates[1]',
      /missing value for command/,
    ],
    [
      'bad selector template',
      withSpec(ZTWIM_DEFAULT, { workloadSelectorTemplates: ['k8s:ns:{{ .PodMeta.Namespace'] }),
      'template_parse',
      'spec.workloadSelectorTemplates[0]',
      /unclosed action/,
    ],
    [
      'bad pod selector',
      withSpec(ZTWIM_DEFAULT, { podSelector: { matchExpressions: [{ key: 'a', operator: 'Gt', values: ['1'] }] } }),
      'label_selector',
      'spec.podSelector.matchExpressions[0].operator',
      /not a valid label selector operator/,
    ],
    [
      'bad namespace selector',
      withSpec(ZTWIM_DEFAULT, { namespaceSelector: { matchLabels: { a: 'b c' } } }),
      'label_selector',
      'spec.namespaceSelector.matchLabels["a"]',
      /invalid label value/,
    ],
    [
      'bad federatesWith',
      withSpec(ZTWIM_DEFAULT, { federatesWith: ['ok.org', 'Bad.Org'] }),
      'crd_invalid',
      'spec.federatesWith[1]',
      /invalid trust domain "Bad.Org"/,
    ],
    ['bad ttl', withSpec(ZTWIM_DEFAULT, { ttl: '1d' }), 'crd_invalid', 'spec.ttl', /invalid duration "1d"/],
    ['bad jwtTtl', withSpec(ZTWIM_DEFAULT, { jwtTtl: 'soon' }), 'crd_invalid', 'spec.jwtTtl', /invalid duration/],
    ['wrong type', withSpec(ZTWIM_DEFAULT, { admin: 'yes' }), 'crd_invalid', 'spec.admin', /must be a boolean/],
    ['wrong kind', { ...ZTWIM_DEFAULT, kind: 'ClusterStaticEntry' }, 'crd_invalid', 'kind', /must be ClusterSPIFFEID/],
    ['wrong apiVersion', { ...ZTWIM_DEFAULT, apiVersion: 'spire.spiffe.io/v1' }, 'crd_invalid', 'apiVersion', /v1alpha1/],
  ];
  for (const [name, obj, code, field, message] of bad) {
    it(`refuses: ${name}`, () => refuses(() => parseClusterSPIFFEID(obj), code, field, message));
  }
});

const STATIC = {
  apiVersion: 'spire.spiffe.io/v1alpha1',
  kind: 'ClusterStaticEntry',
  metadata: META,
  spec: {
    spiffeID: 'spiffe://example.org/static/db',
    parentID: 'spiffe://example.org/spire/agent/x509pop/abc',
    selectors: ['unix:uid:1000', 'k8s:pod-label:app:db'],
    federatesWith: ['other.org'],
    x509SVIDTTL: '2h',
    jwtSVIDTTL: '5m',
    dnsNames: ['db.example.org'],
    hint: 'db',
    admin: true,
    downstream: false,
    storeSVID: true,
    className: 'c',
  },
};

describe('parseClusterStaticEntry', () => {
  it('parses every field', () => {
    const s = parseClusterStaticEntry(STATIC).spec;
    assert.equal(s.spiffeId.toString(), 'spiffe://example.org/static/db');
    assert.equal(s.parentId.toString(), 'spiffe://example.org/spire/agent/x509pop/abc');
    assert.deepEqual(s.selectors, [
      { type: 'unix', value: 'uid:1000' },
      { type: 'k8s', value: 'pod-label:app:db' },
    ]);
    assert.deepEqual(
      s.federatesWith.map((t) => t.name),
      ['other.org'],
    );
    assert.deepEqual([s.x509SvidTtlSeconds, s.jwtSvidTtlSeconds], [7200, 300]);
    assert.deepEqual(s.dnsNames, ['db.example.org']);
    assert.deepEqual([s.hint, s.admin, s.downstream, s.storeSvid, s.className], ['db', true, false, true, 'c']);
  });
  const bad: Array<[name: string, patch: Record<string, unknown>, field: string, message: RegExp]> = [
    ['bad spiffeID', { spiffeID: 'spiffe://example.org/a//b' }, 'spec.spiffeID', /invalid SPIFFE ID/],
    ['missing parentID', { parentID: undefined }, 'spec.parentID', /is required/],
    ['missing selectors', { selectors: undefined }, 'spec.selectors', /is required/],
    ['selector without colon', { selectors: ['unix:uid:1', 'nocolon'] }, 'spec.selectors[1]', /expected at least one colon/],
    ['selector without type', { selectors: [':x'] }, 'spec.selectors[0]', /type cannot be empty/],
    ['selector without value', { selectors: ['unix:'] }, 'spec.selectors[0]', /value cannot be empty/],
    ['bad ttl', { x509SVIDTTL: '-' }, 'spec.x509SVIDTTL', /invalid duration/],
    ['dnsNames not strings', { dnsNames: [1] }, 'spec.dnsNames[0]', /must be a string/],
  ];
  for (const [name, patch, field, message] of bad) {
    it(`refuses: ${name}`, () => refuses(() => parseClusterStaticEntry(withSpec(STATIC, patch)), 'crd_invalid', field, message));
  }
});

const FTD = {
  apiVersion: 'spire.spiffe.io/v1alpha1',
  kind: 'ClusterFederatedTrustDomain',
  metadata: META,
  spec: {
    trustDomain: 'other.org',
    bundleEndpointURL: 'https://bundle.other.org:8443/bundle',
    bundleEndpointProfile: { type: 'https_spiffe', endpointSPIFFEID: 'spiffe://other.org/spire/server' },
    trustDomainBundle: '{"keys":[]}',
    className: 'c',
  },
};

describe('parseClusterFederatedTrustDomain', () => {
  it('parses https_spiffe with its endpoint ID and bundle', () => {
    const s = parseClusterFederatedTrustDomain(FTD).spec;
    assert.equal(s.trustDomain.name, 'other.org');
    assert.equal(s.bundleEndpointUrl, 'https://bundle.other.org:8443/bundle');
    assert.equal(s.bundleEndpointProfile.type, 'https_spiffe');
    assert.equal(s.bundleEndpointProfile.type === 'https_spiffe' && s.bundleEndpointProfile.endpointSpiffeId.toString(), 'spiffe://other.org/spire/server');
    assert.equal(s.trustDomainBundle, '{"keys":[]}');
  });
  it('parses https_web without an endpoint ID', () => {
    const s = parseClusterFederatedTrustDomain(withSpec(FTD, { bundleEndpointProfile: { type: 'https_web' }, trustDomainBundle: undefined })).spec;
    assert.deepEqual(s.bundleEndpointProfile, { type: 'https_web' });
    assert.equal(s.trustDomainBundle, undefined);
  });
  const bad: Array<[name: string, patch: Record<string, unknown>, field: string, message: RegExp]> = [
    ['bad trust domain', { trustDomain: 'Other.org' }, 'spec.trustDomain', /invalid trust domain/],
    ['http URL', { bundleEndpointURL: 'http://other.org/b' }, 'spec.bundleEndpointURL', /scheme must be https/],
    ['URL with userinfo', { bundleEndpointURL: 'https://user:pw@other.org/b' }, 'spec.bundleEndpointURL', /cannot contain userinfo/],
    ['URL with user only', { bundleEndpointURL: 'https://user@other.org/b' }, 'spec.bundleEndpointURL', /cannot contain userinfo/],
    ['not a URL', { bundleEndpointURL: 'bundle' }, 'spec.bundleEndpointURL', /not a URL/],
    ['https_spiffe without ID', { bundleEndpointProfile: { type: 'https_spiffe' } }, 'spec.bundleEndpointProfile.endpointSPIFFEID', /is required/],
    [
      'https_web with ID',
      { bundleEndpointProfile: { type: 'https_web', endpointSPIFFEID: 'spiffe://other.org/x' } },
      'spec.bundleEndpointProfile.endpointSPIFFEID',
      /not applicable/,
    ],
    [
      'unknown profile',
      { bundleEndpointProfile: { type: 'https_other' } },
      'spec.bundleEndpointProfile.type',
      /invalid bundle endpoint profile type "https_other"/,
    ],
    ['missing profile', { bundleEndpointProfile: undefined }, 'spec.bundleEndpointProfile', /is required/],
    ['bad bundle', { trustDomainBundle: 'not json' }, 'spec.trustDomainBundle', /invalid trust domain bundle/],
  ];
  for (const [name, patch, field, message] of bad) {
    it(`refuses: ${name}`, () => refuses(() => parseClusterFederatedTrustDomain(withSpec(FTD, patch)), 'crd_invalid', field, message));
  }
});
