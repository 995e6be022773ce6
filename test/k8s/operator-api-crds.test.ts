// The operator's generated CRDs and rendered objects on the project's real API server
// (scripts/k8s/cluster.sh):
//   - deploy/operator/crds/ applies server-side and every CRD becomes Established;
//   - CRs of both shapes (0.2 of Red Hat's documentation, 1.0) are accepted, with the defaults;
//   - the API server refuses a name other than `cluster`, a bad trust domain, a changed immutable
//     field, a non-URL jwtIssuer and the other CEL rules, naming the field;
//   - every object renderOperands produces passes a server-side dry run with strict field
//     validation (ztwim and SPIRE images, federation, PostgreSQL, hostNetwork).
// The cluster is shared and the operator.openshift.io CRs are singletons named `cluster` that the
// operator-runtime tests create for real, so the CR checks run against a copy of the same CRDs
// under this test's own group (operator-api.ztwim.test), deleted afterwards.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { ALL_CRDS, KINDS, crdFor, renderOperands, type CrSet, type RenderContext } from '@ztwim/operator';
import { crs0_2, crs1_0, minimalSet, TESTDATA_DIR } from '../../packages/operator/src/testdata/fixtures.ts';
import { REPO_ROOT } from '../interop/lib/peers.ts';
import { applyManifest, createNamespace, ensureCluster, kubectl, type ClusterEnv } from './lib/cluster.ts';

const TEST_GROUP = 'operator-api.ztwim.test';
const testCrds = Object.values(KINDS).map((d) => crdFor(d, TEST_GROUP));
type J = Record<string, any>;

/** A CR (object or YAML fixture document) moved to the test group. */
const inTestGroup = (o: unknown): J => ({ ...(o as J), apiVersion: `${TEST_GROUP}/v1alpha1` });

describe('operator CRDs and rendered objects on a real API server', () => {
  let env: ClusterEnv;
  let ns: string;
  const k = (args: string[], input?: string): Promise<string> => kubectl(env, args, input === undefined ? {} : { input });
  /** kubectl's error text, or '' when it succeeded. */
  const refusal = async (args: string[], input?: string): Promise<string> => {
    try {
      await k(args, input);
      return '';
    } catch (e) {
      return (e as Error).message;
    }
  };
  const established = async (names: string[]): Promise<void> => {
    await k(['wait', '--for=condition=Established', '--timeout=60s', ...names.map((n) => `crd/${n}`)]);
  };

  before(async () => {
    env = await ensureCluster();
    await k(['apply', '--server-side', '--force-conflicts', '--field-manager=ztwim-operator-crds', '-f', join(REPO_ROOT, 'deploy', 'operator', 'crds')]);
    await established(ALL_CRDS.map((c) => c.metadata.name));
    await k(['apply', '--server-side', '--field-manager=operator-api-test', '-f', '-'], stringify({ apiVersion: 'v1', kind: 'List', items: testCrds }));
    await established(testCrds.map((c) => c.metadata.name));
    ns = await createNamespace(env, 'operator-api');
  });
  after(async () => {
    if (env === undefined) return;
    await k(['delete', '--ignore-not-found', '--wait=false', ...testCrds.map((c) => `crd/${c.metadata.name}`)]).catch(() => '');
  });

  test('the five generated CRDs are served by operator.openshift.io/v1alpha1, cluster-scoped', async () => {
    const out = await k(['api-resources', '--api-group=operator.openshift.io', '-o', 'name']);
    for (const d of Object.values(KINDS)) assert.ok(out.includes(`${d.plural}.operator.openshift.io`), `${d.plural}: ${out}`);
    const crd = JSON.parse(await k(['get', 'crd', 'spireservers.operator.openshift.io', '-o', 'json'])) as J;
    assert.equal(crd['spec']['scope'], 'Cluster');
  });

  const dryRun = async (objects: unknown[]): Promise<J[]> => {
    const out = await k(
      ['apply', '--server-side', '--dry-run=server', '--field-manager=operator-api-test', '-o', 'json', '-f', '-'],
      stringify({ apiVersion: 'v1', kind: 'List', items: objects }),
    );
    const parsed = JSON.parse(out) as J;
    return (parsed['kind'] === 'List' ? parsed['items'] : [parsed]) as J[];
  };
  const fixture = (name: string): unknown[] =>
    parseAllDocuments(readFileSync(`${TESTDATA_DIR}${name}`, 'utf8'))
      .map((d) => d.toJS() as unknown)
      .filter((o) => o !== null);

  test('valid CRs of the 1.0 shape are accepted, with the CRD defaults', async () => {
    const out = await dryRun(fixture('crs-1.0.yaml').map(inTestGroup));
    assert.equal(out.length, 5);
    const byKind = Object.fromEntries(out.map((o) => [o['kind'], o['spec']]));
    assert.equal(byKind['SpireServer']['datastore']['maxOpenConns'], 100);
    assert.equal(byKind['SpireServer']['keyManager']['diskEnabled'], 'true');
    assert.equal(byKind['SpireServer']['replicas'], 1);
    assert.equal(byKind['SpireAgent']['workloadAttestors']['workloadAttestorsVerification']['type'], 'hostCert');
    assert.equal(byKind['SpireOIDCDiscoveryProvider']['managedRoute'], 'true');
  });

  test('valid CRs of the 0.2 shape (Red Hat 0.2 documentation) are accepted', async () => {
    const out = await dryRun(fixture('crs-0.2.yaml').map(inTestGroup));
    assert.equal(out.length, 4);
    const server = out.find((o) => o['kind'] === 'SpireServer')?.['spec'] as J;
    assert.equal(server['trustDomain'], 'apps.example.com');
    assert.equal(server['persistence']['type'], 'pvc');
    assert.equal(server['datastore']['connMaxLifetime'], 3600);
    // an empty ZTWIM (the 0.2 operator created it with no spec) is accepted too
    const z = await dryRun([inTestGroup({ apiVersion: '', kind: 'ZeroTrustWorkloadIdentityManager', metadata: { name: 'cluster' } })]);
    assert.equal(z[0]?.['spec']['bundleConfigMap'], 'spire-bundle');
  });

  const set = (over: Parameters<typeof minimalSet>[0] = {}): CrSet => minimalSet(over);
  const refused = async (obj: unknown, ...want: RegExp[]): Promise<void> => {
    const msg = await refusal(['apply', '--server-side', '--dry-run=server', '--field-manager=operator-api-test', '-f', '-'], stringify(inTestGroup(obj)));
    assert.notEqual(msg, '', 'accepted');
    for (const w of want) assert.match(msg, w);
  };

  test('a name other than cluster is refused', async () => {
    await refused({ ...set().ztwim, metadata: { name: 'other' } }, /metadata\.name must be 'cluster'/);
    await refused({ ...set().server, metadata: { name: 'second' } }, /metadata\.name must be 'cluster'/);
  });

  test('a bad trust domain is refused naming spec.trustDomain', async () => {
    await refused(set({ ztwim: { trustDomain: 'Example_Org' } }).ztwim, /spec\.trustDomain/, /should match/);
    await refused(set({ ztwim: { trustDomain: 'a'.repeat(256) } }).ztwim, /spec\.trustDomain/, /255/);
    await refused(set({ server: { trustDomain: 'spiffe://x' } }).server, /spec\.trustDomain/);
  });

  test('a non-URL jwtIssuer is refused naming spec.jwtIssuer', async () => {
    for (const bad of ['oidc.example.org', 'https://oidc.example.org/?x=1', 'https://oidc.example.org/#f', 'ftp://oidc.example.org']) {
      await refused(set({ server: { jwtIssuer: bad } }).server, /spec\.jwtIssuer/);
      await refused(set({ oidc: { jwtIssuer: bad } }).oidc, /spec\.jwtIssuer/);
    }
    await refused({ ...set().server, spec: { caSubject: {} } }, /spec\.jwtIssuer: Required value/);
  });

  test('enums, string toggles, limits and the other CEL rules are enforced', async () => {
    await refused(set({ server: { logLevel: 'trace' } }).server, /spec\.logLevel/, /Unsupported value/);
    await refused(set({ oidc: { managedRoute: 'yes' } }).oidc, /spec\.managedRoute/);
    await refused(set({ oidc: { replicaCount: 6 } }).oidc, /spec\.replicaCount/);
    await refused(set({ server: { persistence: { size: '5G' } } }).server, /spec\.persistence\.size/);
    await refused(
      set({ agent: { workloadAttestors: { workloadAttestorsVerification: { type: 'hostCert' } } } }).agent,
      /hostCert requires hostCertBasePath and hostCertFileName/,
    );
    await refused(
      set({ server: { federation: { federatesWith: [{ trustDomain: 'a.org', bundleEndpointUrl: 'https://a.org', bundleEndpointProfile: 'https_spiffe' }] } } })
        .server,
      /endpointSpiffeId is required for https_spiffe/,
    );
    await refused(set({ server: { federation: { bundleEndpoint: { profile: 'https_web' } } } }).server, /httpsWeb is required when profile is https_web/);
    await refused(
      set({
        server: {
          federation: {
            federatesWith: [
              { trustDomain: 'a.org', bundleEndpointUrl: 'https://a.org', bundleEndpointProfile: 'https_web' },
              { trustDomain: 'a.org', bundleEndpointUrl: 'https://b.org', bundleEndpointProfile: 'https_web' },
            ],
          },
        },
      }).server,
      /spec\.federation\.federatesWith: duplicate entries for key \[trustDomain="a\.org"\]/,
    );
  });

  test('changed immutable fields are refused naming the field; mutable ones are not', async () => {
    const z = inTestGroup(set().ztwim);
    const s = inTestGroup(set({ server: { federation: { bundleEndpoint: { profile: 'https_spiffe' } } } }).server);
    await k(['apply', '--server-side', '--field-manager=operator-api-test', '-f', '-'], stringify({ apiVersion: 'v1', kind: 'List', items: [z, s] }));
    try {
      const patch = async (kind: string, p: unknown): Promise<string> =>
        await refusal(['patch', `${kind}.${TEST_GROUP}`, 'cluster', '--type=merge', '-p', JSON.stringify(p)]);
      assert.match(
        await patch('zerotrustworkloadidentitymanagers', { spec: { trustDomain: 'other.org' } }),
        /spec\.trustDomain: Invalid value: [^\n]*is immutable/,
      );
      assert.match(
        await patch('zerotrustworkloadidentitymanagers', { spec: { clusterName: 'other' } }),
        /spec\.clusterName: Invalid value: [^\n]*is immutable/,
      );
      assert.match(
        await patch('zerotrustworkloadidentitymanagers', { spec: { bundleConfigMap: 'other' } }),
        /spec\.bundleConfigMap: Invalid value: [^\n]*is immutable/,
      );
      assert.match(
        await patch('zerotrustworkloadidentitymanagers', { spec: { trustDomain: null } }),
        /spec\.trustDomain.*trustDomain cannot be removed once set/,
      );
      assert.match(await patch('spireservers', { spec: { persistence: { size: '9Gi' } } }), /spec\.persistence\.size: Invalid value: [^\n]*is immutable/);
      assert.match(await patch('spireservers', { spec: { persistence: { accessMode: 'ReadWriteMany' } } }), /spec\.persistence\.accessMode/);
      assert.match(
        await patch('spireservers', { spec: { federation: { bundleEndpoint: { profile: 'https_web', httpsWeb: { servingCert: {} } } } } }),
        /spec\.federation\.bundleEndpoint\.profile: Invalid value: [^\n]*is immutable/,
      );
      assert.match(await patch('spireservers', { spec: { federation: null } }), /spec\.federation.*federation cannot be removed once set/);
      assert.equal(await patch('spireservers', { spec: { logLevel: 'debug', caValidity: '48h' } }), '', 'mutable fields change');
    } finally {
      await k(['delete', '--ignore-not-found', `zerotrustworkloadidentitymanagers.${TEST_GROUP}/cluster`, `spireservers.${TEST_GROUP}/cluster`]);
    }
  });

  /** Every rendered object through a server-side dry run with strict field validation. */
  const dryRunRendered = async (crs: CrSet, ctx: Omit<RenderContext, 'namespace'>): Promise<void> => {
    const r = renderOperands(crs, { namespace: ns, ...ctx });
    for (const [key, cs] of Object.entries(r.conditions))
      assert.equal(
        cs.find((c) => c.status === 'False'),
        undefined,
        `${key} not valid`,
      );
    assert.ok(r.objects.length > 25);
    const out = await k(
      ['apply', '--server-side', '--dry-run=server', '--validate=strict', '--field-manager=ztwim-operator', '-f', '-'],
      stringify({ apiVersion: 'v1', kind: 'List', items: r.objects.map((o) => o.object) }),
    );
    const lines = out.trim().split('\n');
    assert.equal(lines.length, r.objects.length, out);
    for (const l of lines) assert.match(l, /serverside-applied \(server dry run\)$/);
  };

  test('the strict dry run refuses an unknown field (so the checks below can fail)', async () => {
    const r = renderOperands(crs1_0(), { namespace: ns });
    const sts = r.objects.find((o) => o.object.kind === 'StatefulSet')?.object as J;
    const bad = { ...sts, spec: { ...sts['spec'], replicass: 2 } };
    const msg = await refusal(['apply', '--server-side', '--dry-run=server', '--validate=strict', '--field-manager=ztwim-operator', '-f', '-'], stringify(bad));
    assert.match(msg, /\.spec\.replicass: field not declared in schema/);
  });

  test('every rendered object passes a strict server-side dry run: the 1.0 set, ztwim images, hostNetwork', async () => {
    // The default ClusterSPIFFEIDs need the registrar's spire.spiffe.io CRDs: installed here
    // (idempotent), not left to whichever test happened to install them first.
    const crdDir = join(REPO_ROOT, 'deploy', 'k8s', 'registrar', 'crds');
    for (const f of readdirSync(crdDir)) await applyManifest(env, readFileSync(join(crdDir, f), 'utf8'));
    await k(['wait', '--for=condition=Established', 'crd/clusterspiffeids.spire.spiffe.io', '--timeout=60s']);
    await dryRunRendered(crs1_0(), { hostNetwork: true, kubeletRoot: env.vars['ZTWIM_K8S_KUBELET_ROOT'] ?? '/var/lib/kubelet' });
  });

  test('every rendered object passes a strict server-side dry run: the 0.2 set, SPIRE images', async () => {
    await dryRunRendered(crs0_2(), { variant: 'spire' });
  });

  test('every rendered object passes a strict server-side dry run: federation, postgres from a Secret, replicas, memory keys', async () => {
    await dryRunRendered(
      minimalSet({
        server: {
          replicas: 2,
          keyManager: { diskEnabled: 'false', memoryEnabled: 'true' },
          datastore: { databaseType: 'postgres', connectionStringSecretRef: { name: 'spire-db' }, tlsSecretName: 'db-tls' },
          federation: {
            bundleEndpoint: { profile: 'https_web', httpsWeb: { servingCert: { externalSecretRef: 'fed-tls' } } },
            federatesWith: [{ trustDomain: 'partner.org', bundleEndpointUrl: 'https://partner.org', bundleEndpointProfile: 'https_web' }],
          },
          labels: { team: 'identity' },
          nodeSelector: { 'kubernetes.io/os': 'linux' },
          tolerations: [{ key: 'node-role.kubernetes.io/control-plane', operator: 'Exists', effect: 'NoSchedule' }],
          resources: { requests: { cpu: '50m', memory: '64Mi' } },
        },
        oidc: { externalSecretRef: 'oidc-tls', replicaCount: 3 },
      }),
      {},
    );
  });
});
