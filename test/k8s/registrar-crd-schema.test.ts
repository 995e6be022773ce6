// The registrar's CRDs (deploy/k8s/registrar/crds) on the real kube-apiserver: applied with
// server-side apply, resources written for SPIRE's controller manager accepted unchanged, bad
// ones refused by the OpenAPI schema and CEL rules with the field named, printer columns served.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT } from '../interop/lib/peers.js';
import { ensureCluster, kubectl, type ClusterEnv } from './lib/cluster.ts';

const CRD_DIR = join(REPO_ROOT, 'deploy', 'k8s', 'registrar', 'crds');
const CRDS = ['clusterspiffeids.spire.spiffe.io', 'clusterstaticentries.spire.spiffe.io', 'clusterfederatedtrustdomains.spire.spiffe.io'];
const PREFIX = `registrar-crd-${process.pid}`;

let env: ClusterEnv;
const created: string[] = [];

before(async () => {
  env = await ensureCluster();
  assert.deepEqual(readdirSync(CRD_DIR).sort(), ['clusterfederatedtrustdomains.yaml', 'clusterspiffeids.yaml', 'clusterstaticentries.yaml']);
  await kubectl(env, ['apply', '--server-side', '--field-manager=ztwim-registrar-crd-test', '--force-conflicts', '-f', CRD_DIR]);
  await kubectl(env, ['wait', '--for=condition=Established', '--timeout=60s', ...CRDS.map((c) => `crd/${c}`)]);
});

after(async () => {
  if (env !== undefined && created.length > 0) await kubectl(env, ['delete', '--ignore-not-found', '--wait=false', ...created]);
});

/** Creates the object; resolves with kubectl's output or rejects with its error text. */
async function create(obj: { kind: string; metadata: { name: string } }): Promise<string> {
  const out = await kubectl(env, ['create', '-f', '-'], { input: JSON.stringify(obj) });
  created.push(`${obj.kind.toLowerCase()}/${obj.metadata.name}`);
  return out;
}

async function refused(obj: { kind: string; metadata: { name: string } }): Promise<string> {
  try {
    await create(obj);
  } catch (e) {
    return (e as Error).message;
  }
  assert.fail(`${obj.kind} ${obj.metadata.name} was accepted`);
}

const csid = (name: string, spec: Record<string, unknown>) => ({
  apiVersion: 'spire.spiffe.io/v1alpha1',
  kind: 'ClusterSPIFFEID',
  metadata: { name: `${PREFIX}-${name}` },
  spec,
});
const cse = (name: string, spec: Record<string, unknown>) => ({
  apiVersion: 'spire.spiffe.io/v1alpha1',
  kind: 'ClusterStaticEntry',
  metadata: { name: `${PREFIX}-${name}` },
  spec,
});
const cftd = (name: string, spec: Record<string, unknown>) => ({
  apiVersion: 'spire.spiffe.io/v1alpha1',
  kind: 'ClusterFederatedTrustDomain',
  metadata: { name: `${PREFIX}-${name}` },
  spec,
});

const TEMPLATE = 'spiffe://{{ .TrustDomain }}/ns/{{ .PodMeta.Namespace }}/sa/{{ .PodSpec.ServiceAccountName }}';

describe('resources written for SPIRE are accepted unchanged', () => {
  it('ZTWIM 1.0 default (fallback) and OIDC ClusterSPIFFEIDs', async () => {
    await create(
      csid('ztwim-default', {
        className: 'zero-trust-workload-identity-manager-spire',
        fallback: true,
        hint: 'default',
        namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['zero-trust-workload-identity-manager'] }] },
        spiffeIDTemplate: TEMPLATE,
      }),
    );
    await create(
      csid('ztwim-oidc', {
        className: 'zero-trust-workload-identity-manager-spire',
        hint: 'oidc-discovery-provider',
        spiffeIDTemplate: TEMPLATE,
        dnsNameTemplates: ['oidc-discovery.{{ .TrustDomain }}'],
        autoPopulateDNSNames: true,
        podSelector: {
          matchLabels: {
            'app.kubernetes.io/name': 'spiffe-oidc-discovery-provider',
            'app.kubernetes.io/instance': 'spire',
            'app.kubernetes.io/component': 'discovery',
          },
        },
        namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: ['zero-trust-workload-identity-manager'] }] },
      }),
    );
  });

  it('a ClusterSPIFFEID using every field', async () => {
    const out = await create(
      csid('full', {
        spiffeIDTemplate: 'spiffe://{{ .TrustDomain }}/k8s/{{ .ClusterName }}/{{ index .PodMeta.Labels "app.kubernetes.io/name" }}',
        ttl: '1h30m',
        jwtTtl: '5m',
        dnsNameTemplates: ['{{ index .PodMeta.Labels "app" }}.{{ .PodMeta.Namespace }}.svc'],
        workloadSelectorTemplates: ['k8s:ns:{{ .PodMeta.Namespace }}'],
        federatesWith: ['cluster2.demo'],
        podSelector: { matchLabels: { app: 'greeter-server' }, matchExpressions: [{ key: 'tier', operator: 'Exists' }] },
        admin: false,
        downstream: false,
        autoPopulateDNSNames: true,
        className: 'c',
        hint: 'greeter',
      }),
    );
    assert.match(out, /clusterspiffeid\.spire\.spiffe\.io\/registrar-crd-\d+-full created/);
    const stored = JSON.parse(await kubectl(env, ['get', 'clusterspiffeid', `${PREFIX}-full`, '-o', 'json'])) as { spec: Record<string, unknown> };
    // Nothing pruned: every field SPIRE knows is in the schema.
    assert.deepEqual(Object.keys(stored.spec).sort(), [
      'admin',
      'autoPopulateDNSNames',
      'className',
      'dnsNameTemplates',
      'downstream',
      'federatesWith',
      'hint',
      'jwtTtl',
      'podSelector',
      'spiffeIDTemplate',
      'ttl',
      'workloadSelectorTemplates',
    ]);
  });

  it('a ClusterStaticEntry and a ClusterFederatedTrustDomain', async () => {
    await create(
      cse('static', {
        spiffeID: 'spiffe://example.org/static/db',
        parentID: 'spiffe://example.org/spire/agent/x509pop/abc',
        selectors: ['unix:uid:1000', 'k8s:pod-label:app:db'],
        x509SVIDTTL: '2h',
        dnsNames: ['db.example.org'],
        storeSVID: true,
      }),
    );
    await create(
      cftd('ftd', {
        trustDomain: 'cluster2.demo',
        bundleEndpointURL: 'https://172.18.0.3:8443',
        bundleEndpointProfile: { type: 'https_spiffe', endpointSPIFFEID: 'spiffe://cluster2.demo/spire/server' },
        trustDomainBundle: '{"keys":[]}',
      }),
    );
    await create(
      cftd('ftd-web', { trustDomain: 'web.example', bundleEndpointURL: 'https://web.example/bundle', bundleEndpointProfile: { type: 'https_web' } }),
    );
  });

  it('status is a subresource: a spec update leaves it alone, the status endpoint writes it', async () => {
    const name = `${PREFIX}-ztwim-default`;
    const stats = {
      namespacesSelected: 3,
      namespacesIgnored: 1,
      podsSelected: 5,
      podEntryRenderFailures: 1,
      entriesMasked: 0,
      entriesToSet: 4,
      entryFailures: 0,
    };
    await kubectl(env, ['patch', 'clusterspiffeid', name, '--type=merge', '-p', JSON.stringify({ status: { stats } })]);
    let got = JSON.parse(await kubectl(env, ['get', 'clusterspiffeid', name, '-o', 'json'])) as { status?: { stats?: unknown } };
    assert.equal(got.status?.stats, undefined, 'a patch of the main resource must not write status');
    await kubectl(env, ['patch', 'clusterspiffeid', name, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: { stats } })]);
    got = JSON.parse(await kubectl(env, ['get', 'clusterspiffeid', name, '-o', 'json'])) as { status?: { stats?: unknown } };
    assert.deepEqual(got.status?.stats, stats);
    const table = await kubectl(env, ['get', 'clusterspiffeid', name]);
    assert.match(table, /^NAME\s+SPIFFE ID TEMPLATE\s+FALLBACK\s+PODS\s+ENTRIES\s+RENDER FAILURES\s+AGE/m);
    assert.match(table, new RegExp(`^${name}\\s+${TEMPLATE.replace(/[.{}]/g, '\\$&')}\\s+true\\s+5\\s+4\\s+1\\s+`, 'm'));
  });

  it('printer columns of ClusterStaticEntry and ClusterFederatedTrustDomain', async () => {
    const ftd = await kubectl(env, ['get', 'clusterfederatedtrustdomain', `${PREFIX}-ftd`]);
    assert.match(ftd, /^NAME\s+TRUST DOMAIN\s+ENDPOINT URL\s*$/m);
    assert.match(ftd, new RegExp(`^${PREFIX}-ftd\\s+cluster2\\.demo\\s+https://172\\.18\\.0\\.3:8443\\s*$`, 'm'));
    const st = await kubectl(env, ['get', 'clusterstaticentry', `${PREFIX}-static`]);
    assert.match(st, /^NAME\s+SPIFFE ID\s+PARENT ID\s+RENDERED\s+MASKED\s+SET\s+AGE/m);
  });
});

describe('bad resources are refused with the field named', () => {
  const cases: Array<[name: string, obj: { kind: string; metadata: { name: string } }, want: RegExp[]]> = [
    ['ClusterSPIFFEID without template', csid('bad-1', { hint: 'x' }), [/spec\.spiffeIDTemplate: Required value/]],
    [
      'empty template',
      csid('bad-2', { spiffeIDTemplate: '' }),
      [/spec\.spiffeIDTemplate: Invalid value: "": spec\.spiffeIDTemplate in body should be at least 1 chars long/],
    ],
    [
      'bad operator',
      csid('bad-3', { spiffeIDTemplate: TEMPLATE, podSelector: { matchExpressions: [{ key: 'a', operator: 'Gt', values: ['1'] }] } }),
      [/spec\.podSelector\.matchExpressions\[0\]\.operator: Unsupported value: "Gt"/],
    ],
    [
      'In without values',
      csid('bad-4', { spiffeIDTemplate: TEMPLATE, namespaceSelector: { matchExpressions: [{ key: 'a', operator: 'In' }] } }),
      [/spec\.namespaceSelector\.matchExpressions\[0\]\.values: Invalid value: .*values must be non-empty for In and NotIn/],
    ],
    [
      'Exists with values',
      csid('bad-5', { spiffeIDTemplate: TEMPLATE, podSelector: { matchExpressions: [{ key: 'a', operator: 'Exists', values: ['x'] }] } }),
      [/spec\.podSelector\.matchExpressions\[0\]\.values: Invalid value/],
    ],
    [
      'ttl not a Go duration',
      csid('bad-6', { spiffeIDTemplate: TEMPLATE, ttl: '1d', jwtTtl: 'soon' }),
      [/spec\.ttl: Invalid value: "1d"/, /spec\.jwtTtl: Invalid value: "soon"/],
    ],
    [
      'wrong type',
      csid('bad-7', { spiffeIDTemplate: TEMPLATE, fallback: 'yes' }),
      [/spec\.fallback: Invalid value: "string": spec\.fallback in body must be of type boolean/],
    ],
    [
      'static entry without selectors and bad IDs',
      cse('bad-8', { spiffeID: 'example.org/x', parentID: 'spiffe://example.org/p' }),
      [/spec\.selectors: Required value/, /spec\.spiffeID: Invalid value: "example\.org\/x"/],
    ],
    [
      'static entry selector without value',
      cse('bad-9', { spiffeID: 'spiffe://example.org/x', parentID: 'spiffe://example.org/p', selectors: ['unix:'] }),
      [/spec\.selectors\[0\]: Invalid value: "unix:"/],
    ],
    [
      'trust domain with capitals and a path',
      cftd('bad-10', { trustDomain: 'Other.org/x', bundleEndpointURL: 'https://o.org', bundleEndpointProfile: { type: 'https_web' } }),
      [/spec\.trustDomain: Invalid value: "Other\.org\/x"/],
    ],
    [
      'http bundle endpoint',
      cftd('bad-11', { trustDomain: 'o.org', bundleEndpointURL: 'http://o.org/b', bundleEndpointProfile: { type: 'https_web' } }),
      [/spec\.bundleEndpointURL: Invalid value: .*must be an https URL/],
    ],
    [
      'userinfo in bundle endpoint',
      cftd('bad-12', { trustDomain: 'o.org', bundleEndpointURL: 'https://user:pw@o.org/b', bundleEndpointProfile: { type: 'https_web' } }),
      [/spec\.bundleEndpointURL: Invalid value: .*cannot contain userinfo/],
    ],
    [
      'https_spiffe without endpoint ID',
      cftd('bad-13', { trustDomain: 'o.org', bundleEndpointURL: 'https://o.org/b', bundleEndpointProfile: { type: 'https_spiffe' } }),
      [/spec\.bundleEndpointProfile\.endpointSPIFFEID: Invalid value: .*required for the https_spiffe profile/],
    ],
    [
      'https_web with endpoint ID',
      cftd('bad-14', {
        trustDomain: 'o.org',
        bundleEndpointURL: 'https://o.org/b',
        bundleEndpointProfile: { type: 'https_web', endpointSPIFFEID: 'spiffe://o.org/s' },
      }),
      [/spec\.bundleEndpointProfile\.endpointSPIFFEID: Invalid value: .*not applicable to the https_web profile/],
    ],
    [
      'unknown profile type',
      cftd('bad-15', { trustDomain: 'o.org', bundleEndpointURL: 'https://o.org/b', bundleEndpointProfile: { type: 'https_other' } }),
      [/spec\.bundleEndpointProfile\.type: Unsupported value: "https_other"/],
    ],
  ];
  for (const [name, obj, want] of cases) {
    it(name, async () => {
      const msg = await refused(obj);
      for (const re of want) assert.match(msg, re);
    });
  }
});
