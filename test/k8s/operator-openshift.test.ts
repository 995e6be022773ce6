// OpenShift objects (Routes, SecurityContextConstraints, service-CA annotations) and ServiceMonitors
// on the real test cluster, the operator run as a host process (`ztwim operator` from this tree)
// under exactly its own RBAC, as in operator-controllers.test.ts:
//   - without route.openshift.io, security.openshift.io and monitoring.coreos.com: none of those
//     objects, and conditions saying they were skipped and which group is missing;
//   - the three CRDs installed (test/k8s/fixtures/: OpenShift's and the Prometheus operator's
//     schemas, trimmed) while the operator runs: on its next discovery check the objects exist,
//     owned and labelled, the service-CA annotation is on the OIDC Service, the skip conditions
//     are gone, and nothing is written at rest; the rendered objects pass a strict server-side
//     dry run against those schemas;
//   - the CR turns them off (OIDC managedRoute "false", serviceMonitor disabled): deleted;
//   - the CRDs removed again: the skip conditions come back; the ZTWIM CR deleted: nothing left.
// The three CRDs are this file's fixtures (label ztwim.test/fixture=op-openshift): installed and
// removed here, under the operator-singletons lock, so no other operator test sees them.
// The operand pods are kept off the shared node (a nodeSelector no node has).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import { renderOperands, type CrSet } from '@ztwim/operator';
import { REPO_ROOT } from '../interop/lib/peers.ts';
import { holdsFor } from '@ztwim/testkit';
import { makeTmpDir, type TmpDir } from '../interop/lib/tmp.ts';
import { applyManifest, createNamespace, ensureCluster, kubectl, serviceAccountKubeconfig, waitFor, type ClusterEnv } from './lib/cluster.ts';
import {
  applyOperatorCrds,
  holdOperatorSingletons,
  installOperator,
  OPERATOR_KINDS,
  startHostOperator,
  type HostOperator,
  type InstalledOperator,
} from './lib/operator-install.ts';

const TD = 'op-openshift.test';
const Q = (k: string): string => `${k}s.operator.openshift.io`;
const FIXTURES = join(REPO_ROOT, 'test', 'k8s', 'fixtures');
const FIXTURE_LABEL = 'ztwim.test/fixture=op-openshift';
const FIXTURE_CRDS = ['routes.route.openshift.io', 'securitycontextconstraints.security.openshift.io', 'servicemonitors.monitoring.coreos.com'];
const MANAGED_BY = 'zero-trust-workload-identity-manager';
const OFF_NODE = { 'op-openshift.test/never': 'true' };

interface Cond {
  type: string;
  status: string;
  reason: string;
  message: string;
}
interface Obj {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    uid: string;
    resourceVersion: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: Array<{ kind: string; uid: string; controller?: boolean }>;
  };
  spec?: Record<string, unknown>;
  status?: { conditions?: Cond[] };
  [k: string]: unknown;
}

const specs = {
  ztwim: { trustDomain: TD, clusterName: 'test' },
  server: {
    jwtIssuer: `https://oidc.${TD}`,
    caSubject: { country: 'US', organization: 'ztwim', commonName: TD },
    nodeSelector: OFF_NODE,
    serviceMonitor: { enabled: 'true', interval: '45s' },
  },
  agent: { nodeSelector: OFF_NODE, serviceMonitor: { enabled: 'true' } },
  csi: { nodeSelector: OFF_NODE },
  oidc: { jwtIssuer: `https://oidc.${TD}`, nodeSelector: OFF_NODE },
};
const KIND_OF = {
  ztwim: 'ZeroTrustWorkloadIdentityManager',
  server: 'SpireServer',
  agent: 'SpireAgent',
  csi: 'SpiffeCSIDriver',
  oidc: 'SpireOIDCDiscoveryProvider',
} as const;
const crYaml = Object.entries(specs)
  .map(([k, spec]) =>
    stringify({ apiVersion: 'operator.openshift.io/v1alpha1', kind: KIND_OF[k as keyof typeof KIND_OF], metadata: { name: 'cluster' }, spec }),
  )
  .join('---\n');

describe('OpenShift objects and ServiceMonitors follow the API groups the apiserver serves', { timeout: 900_000 }, () => {
  let env: ClusterEnv;
  let ns: string;
  let tmp: TmpDir;
  let kubeconfig: string;
  let installed: InstalledOperator | undefined;
  let release: (() => void) | undefined;
  let operator: HostOperator | undefined;

  const json = async <T = Obj>(args: string[]): Promise<T | undefined> => {
    try {
      return JSON.parse(await kubectl(env, [...args, '-o', 'json'])) as T;
    } catch {
      return undefined;
    }
  };
  const cr = (kind: string) => json(['get', Q(kind), 'cluster']);
  const cond = async (kind: string, type: string): Promise<Cond | undefined> => (await cr(kind))?.status?.conditions?.find((c) => c.type === type);
  const withLogs = (e: unknown): never => {
    throw new Error(`${(e as Error).message}\noperator log:\n${operator?.logs().slice(-5000) ?? ''}`);
  };
  const waitCond = (kind: string, type: string, pred: (c: Cond | undefined) => boolean, ms = 90_000) =>
    waitFor(
      `${kind} ${type}`,
      async () => {
        const c = await cond(kind, type);
        return pred(c) ? (c ?? true) : undefined;
      },
      ms,
    ).catch(withLogs);
  const fixtureCrdsPresent = async (): Promise<string[]> =>
    (await kubectl(env, ['get', 'crd', '-l', FIXTURE_LABEL, '-o', 'name'])).split('\n').filter((l) => l !== '');
  const removeFixtureCrds = async (): Promise<void> => {
    await kubectl(env, ['delete', 'crd', '-l', FIXTURE_LABEL, '--ignore-not-found', '--wait=true', '--timeout=120s']);
    await waitFor('the fixture CRDs gone', async () => ((await fixtureCrdsPresent()).length === 0 ? true : undefined), 120_000);
  };
  /** kubectl get of a kind the apiserver does not serve fails: that is "absent" too. */
  const absent = async (what: string): Promise<boolean> =>
    (await json(['get', what, ...(what.startsWith('securitycontextconstraints') ? [] : ['-n', ns])])) === undefined;

  before(async () => {
    env = await ensureCluster();
    tmp = makeTmpDir('ztwim-op-openshift-');
    await applyOperatorCrds(env);
    release = await holdOperatorSingletons(env);
    for (const name of FIXTURE_CRDS) {
      const other = await json(['get', 'crd', name]);
      assert.ok(
        other === undefined || other.metadata.labels?.['ztwim.test/fixture'] === 'op-openshift',
        `CRD ${name} exists and is not this test's fixture: refusing to touch it`,
      );
    }
    await removeFixtureCrds(); // left by an interrupted run
    ns = await createNamespace(env, 'op-openshift');
    installed = await installOperator(env, ns, {}, { deployment: false });
    kubeconfig = await serviceAccountKubeconfig(env, ns, 'ztwim-operator', tmp.file('operator.kubeconfig'));
    operator = startHostOperator({ kubeconfig, ns, podName: 'op-openshift-test', extraArgs: ['-discovery-interval', '1s'] });
  });

  after(async () => {
    await operator?.stop();
    if (env !== undefined) {
      await kubectl(env, ['delete', ...OPERATOR_KINDS.map((k) => `${k}/cluster`), '--ignore-not-found', '--wait=false']).catch(() => '');
      await removeFixtureCrds().catch(() => undefined);
    }
    await installed?.uninstall();
    release?.();
    tmp?.cleanup();
  });

  it('without the groups: no Route, SCC or ServiceMonitor, and conditions naming the missing group', async () => {
    await applyManifest(env, crYaml);
    const oidc = await waitCond('spireoidcdiscoveryprovider', 'OpenShiftObjectsSkipped', (c) => c?.status === 'True');
    assert.equal((oidc as Cond).reason, 'RouteAPINotServed');
    assert.match((oidc as Cond).message, /route\.openshift\.io is not served/);
    for (const kind of ['spireagent', 'spiffecsidriver']) {
      const c = (await waitCond(kind, 'OpenShiftObjectsSkipped', (x) => x?.status === 'True')) as Cond;
      assert.equal(c.reason, 'SecurityContextConstraintsAPINotServed', kind);
      assert.match(c.message, /security\.openshift\.io\/v1/, `${kind}: ${JSON.stringify(c)} (another operator writing these CRs would show here)`);
    }
    for (const kind of ['spireserver', 'spireagent']) {
      const c = (await waitCond(kind, 'ServiceMonitorSkipped', (x) => x?.status === 'True')) as Cond;
      assert.equal(c.reason, 'ServiceMonitorAPINotServed', kind);
      assert.match(c.message, /monitoring\.coreos\.com\/v1 is not served/);
    }
    await waitFor('the OIDC Service', async () => json(['get', '-n', ns, 'service/spire-spiffe-oidc-discovery-provider']), 60_000);
    const svc = await json(['get', '-n', ns, 'service/spire-spiffe-oidc-discovery-provider']);
    assert.equal(svc?.metadata.annotations?.['service.beta.openshift.io/serving-cert-secret-name'], undefined, 'no service-CA annotation off OpenShift');
    for (const what of [
      'routes.route.openshift.io/spire-oidc-discovery-provider',
      'securitycontextconstraints.security.openshift.io/spire-agent',
      'servicemonitors.monitoring.coreos.com/spire-server',
    ])
      assert.ok(await absent(what), what);
    for (const kind of ['spireserver', 'spireagent', 'spiffecsidriver', 'spireoidcdiscoveryprovider']) {
      assert.notEqual(
        (await cond(kind, 'Ready'))?.reason,
        'Failed',
        `${kind}: a skipped group is not a failure: ${JSON.stringify((await cr(kind))?.status?.conditions)}`,
      );
    }
  });

  it('the CRDs installed: on the next discovery check every object exists, owned and labelled; skip conditions gone', async () => {
    const crds = readdirSync(FIXTURES)
      .filter((f) => f.endsWith('.yaml'))
      .map((f) => readFileSync(join(FIXTURES, f), 'utf8'));
    await applyManifest(env, crds.join('\n---\n'));
    for (const name of FIXTURE_CRDS) await kubectl(env, ['wait', '--for=condition=Established', `crd/${name}`, '--timeout=60s']);
    const expected: Array<[string, string, boolean]> = [
      ['routes.route.openshift.io/spire-oidc-discovery-provider', 'SpireOIDCDiscoveryProvider', true],
      ['securitycontextconstraints.security.openshift.io/spire-agent', 'SpireAgent', false],
      ['securitycontextconstraints.security.openshift.io/spire-spiffe-csi-driver', 'SpiffeCSIDriver', false],
      ['servicemonitors.monitoring.coreos.com/spire-server', 'SpireServer', true],
      ['servicemonitors.monitoring.coreos.com/spire-agent', 'SpireAgent', true],
    ];
    for (const [what, owner, namespaced] of expected) {
      const o: Obj = await waitFor<Obj>(what, async () => json(['get', what, ...(namespaced ? ['-n', ns] : [])]), 90_000).catch(withLogs);
      const ownerCr = await json(['get', `${owner.toLowerCase()}s.operator.openshift.io`, 'cluster']);
      assert.deepEqual(
        o.metadata.ownerReferences?.map((r) => [r.kind, r.uid, r.controller]),
        [[owner, ownerCr?.metadata.uid, true]],
        `${what} is owned by the ${owner}`,
      );
      assert.equal(o.metadata.labels?.['app.kubernetes.io/managed-by'], MANAGED_BY, what);
      assert.ok(o.metadata.labels?.['app.kubernetes.io/component'], `${what} has its component label`);
    }
    const route = await json(['get', '-n', ns, 'routes.route.openshift.io/spire-oidc-discovery-provider']);
    assert.equal(route?.spec?.['host'], `oidc.${TD}`, 'Route host = the jwtIssuer host');
    assert.deepEqual(route?.spec?.['tls'], { termination: 'reencrypt', insecureEdgeTerminationPolicy: 'Redirect' });
    const sm = await json(['get', '-n', ns, 'servicemonitors.monitoring.coreos.com/spire-server']);
    assert.deepEqual((sm?.spec?.['endpoints'] as unknown[])[0], { port: 'metrics', interval: '45s', path: '/metrics' });
    const svc = await waitFor(
      'the service-CA annotation on the OIDC Service',
      async () => {
        const s = await json(['get', '-n', ns, 'service/spire-spiffe-oidc-discovery-provider']);
        return s?.metadata.annotations?.['service.beta.openshift.io/serving-cert-secret-name'] === undefined ? undefined : s;
      },
      90_000,
    ).catch(withLogs);
    assert.equal(svc.metadata.annotations?.['service.beta.openshift.io/serving-cert-secret-name'], 'oidc-serving-cert');
    await waitCond('spireoidcdiscoveryprovider', 'RouteAvailable', (c) => c?.status === 'True');
    await waitCond('spireagent', 'SecurityContextConstraintsAvailable', (c) => c?.status === 'True');
    await waitCond('spiffecsidriver', 'SecurityContextConstraintsAvailable', (c) => c?.status === 'True');
    await waitCond('spireserver', 'ServiceMonitorAvailable', (c) => c?.status === 'True');
    await waitCond('spireagent', 'ServiceMonitorAvailable', (c) => c?.status === 'True');
    for (const kind of ['spireagent', 'spiffecsidriver', 'spireoidcdiscoveryprovider']) await waitCond(kind, 'OpenShiftObjectsSkipped', (c) => c === undefined);
    for (const kind of ['spireserver', 'spireagent']) await waitCond(kind, 'ServiceMonitorSkipped', (c) => c === undefined);
  });

  it('at rest the Route, SCCs and ServiceMonitors are not written again (they match what the schemas keep)', async () => {
    const snapshot = async (): Promise<string> =>
      [
        await kubectl(env, [
          'get',
          'routes.route.openshift.io,servicemonitors.monitoring.coreos.com,services',
          '-n',
          ns,
          '-l',
          `app.kubernetes.io/managed-by=${MANAGED_BY}`,
          '-o',
          'jsonpath={range .items[*]}{.kind}/{.metadata.name}={.metadata.resourceVersion} {end}',
        ]),
        await kubectl(env, [
          'get',
          'securitycontextconstraints.security.openshift.io',
          '-l',
          `app.kubernetes.io/managed-by=${MANAGED_BY}`,
          '-o',
          'jsonpath={range .items[*]}{.metadata.name}={.metadata.resourceVersion} {end}',
        ]),
      ].join('\n');
    await new Promise((r) => setTimeout(r, 5_000)); // the last passes of the previous step
    const a = await snapshot();
    assert.match(a, /Route\/spire-oidc-discovery-provider=\d+/);
    // Real time: the operator runs on the real clock; 15 s is 15 discovery checks.
    let last = a;
    await holdsFor('no managed object changes', async () => (last = await snapshot()) === a, { forMs: 15_000, intervalMs: 2_000 }).catch(() =>
      assert.equal(last, a),
    );
  });

  it('the rendered OpenShift objects and ServiceMonitors pass a strict server-side dry run against those schemas', async () => {
    const cr = (kind: string, spec: unknown) => ({ apiVersion: 'operator.openshift.io/v1alpha1', kind, metadata: { name: 'cluster' }, spec });
    const set = {
      ztwim: cr(KIND_OF.ztwim, specs.ztwim),
      server: cr(KIND_OF.server, {
        ...specs.server,
        federation: { bundleEndpoint: { profile: 'https_web', httpsWeb: { servingCert: { externalSecretRef: 'federation-tls' } } }, managedRoute: 'true' },
      }),
      agent: cr(KIND_OF.agent, specs.agent),
      csi: cr(KIND_OF.csi, specs.csi),
      oidc: cr(KIND_OF.oidc, { ...specs.oidc, externalSecretRef: 'oidc-tls' }),
    } as unknown as CrSet;
    for (const variant of ['ztwim', 'spire'] as const) {
      const r = renderOperands(set, { namespace: ns, variant, hasOpenShiftGroups: true, hasPrometheusOperator: true });
      const picked = r.objects.map((o) => o.object).filter((o) => ['Route', 'SecurityContextConstraints', 'ServiceMonitor'].includes(o.kind ?? ''));
      assert.deepEqual(picked.map((o) => `${o.kind}/${o.metadata.name}`).sort(), [
        'Route/spire-oidc-discovery-provider',
        'Route/spire-server-federation',
        'SecurityContextConstraints/spire-agent',
        'SecurityContextConstraints/spire-spiffe-csi-driver',
        'ServiceMonitor/spire-agent',
        'ServiceMonitor/spire-server',
      ]);
      const out = await kubectl(
        env,
        ['apply', '--server-side', '--dry-run=server', '--validate=strict', '--field-manager=ztwim-operator', '--force-conflicts', '-f', '-'],
        { input: stringify({ apiVersion: 'v1', kind: 'List', items: picked }) },
      );
      const lines = out.trim().split('\n');
      assert.equal(lines.length, picked.length, out);
      for (const l of lines) assert.match(l, /serverside-applied \(server dry run\)$/);
    }
    // the check can fail: a field OpenShift's SCC schema lacks is refused
    const scc = renderOperands(set, { namespace: ns, hasOpenShiftGroups: true }).objects.find((o) => o.object.kind === 'SecurityContextConstraints')?.object;
    const bad = await kubectl(env, ['apply', '--server-side', '--dry-run=server', '--validate=strict', '--field-manager=ztwim-operator', '-f', '-'], {
      input: stringify({ ...scc, allowHostUsers: true }),
    }).then(
      () => '',
      (e: unknown) => (e as Error).message,
    );
    assert.match(bad, /allowHostUsers: field not declared in schema/);
    const noPriority = { ...scc } as Record<string, unknown>;
    delete noPriority['priority'];
    const missing = await kubectl(env, ['apply', '--server-side', '--dry-run=server', '--field-manager=ztwim-operator', '-f', '-'], {
      input: stringify(noPriority),
    }).then(
      () => '',
      (e: unknown) => (e as Error).message,
    );
    assert.match(missing, /priority: Required value/, 'OpenShift requires priority (null is fine)');
  });

  it('turned off in the CR: the Route and the ServiceMonitors are deleted; RouteAvailable says ManagedRouteDisabled', async () => {
    await kubectl(env, ['patch', Q('spireoidcdiscoveryprovider'), 'cluster', '--type=merge', '-p', '{"spec":{"managedRoute":"false"}}']);
    await kubectl(env, ['patch', Q('spireserver'), 'cluster', '--type=merge', '-p', '{"spec":{"serviceMonitor":{"enabled":"false"}}}']);
    await kubectl(env, ['patch', Q('spireagent'), 'cluster', '--type=merge', '-p', '{"spec":{"serviceMonitor":{"enabled":"false"}}}']);
    for (const what of [
      'routes.route.openshift.io/spire-oidc-discovery-provider',
      'servicemonitors.monitoring.coreos.com/spire-server',
      'servicemonitors.monitoring.coreos.com/spire-agent',
    ]) {
      await waitFor(`${what} deleted`, async () => ((await absent(what)) ? true : undefined), 90_000).catch(withLogs);
    }
    const c = (await waitCond('spireoidcdiscoveryprovider', 'RouteAvailable', (x) => x?.reason === 'ManagedRouteDisabled')) as Cond;
    assert.equal(c.status, 'False');
    assert.notEqual((await cond('spireoidcdiscoveryprovider', 'Ready'))?.reason, 'Failed', 'a Route turned off is not a failure');
    for (const kind of ['spireserver', 'spireagent']) await waitCond(kind, 'ServiceMonitorAvailable', (x) => x === undefined);
    assert.ok(!(await absent('securitycontextconstraints.security.openshift.io/spire-agent')), 'the SCCs stay');
  });

  it('the CRDs removed: the skip conditions come back; deleting the ZTWIM CR leaves nothing of ours', async () => {
    await removeFixtureCrds();
    await waitCond('spireagent', 'OpenShiftObjectsSkipped', (c) => c?.reason === 'SecurityContextConstraintsAPINotServed');
    await waitCond('spireagent', 'SecurityContextConstraintsAvailable', (c) => c === undefined);
    await waitFor(
      'the service-CA annotation gone',
      async () =>
        (await json(['get', '-n', ns, 'service/spire-spiffe-oidc-discovery-provider']))?.metadata.annotations?.[
          'service.beta.openshift.io/serving-cert-secret-name'
        ] === undefined
          ? true
          : undefined,
      90_000,
    ).catch(withLogs);
    assert.match(operator?.logs() ?? '', /Optional kind no longer served: not watched/);
    await kubectl(env, ['delete', Q('zerotrustworkloadidentitymanager'), 'cluster']);
    await waitFor(
      'every managed object gone',
      async () => {
        const left = await kubectl(env, [
          'get',
          'serviceaccounts,services,configmaps,statefulsets,daemonsets,deployments,roles,rolebindings',
          '-n',
          ns,
          '-l',
          `app.kubernetes.io/managed-by=${MANAGED_BY}`,
          '-o',
          'name',
        ]);
        return left.trim() === '' ? true : undefined;
      },
      180_000,
    );
    assert.equal(operator?.exited(), undefined, 'the operator is still running');
  });
});
