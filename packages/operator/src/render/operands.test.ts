import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import { TESTDATA_DIR, crs0_2, crs1_0, minimalSet } from '../testdata/fixtures.ts';
import type { CrSet } from '../api/normalize.ts';
import { renderOperands, type RenderResult } from './operands.ts';
import { HASH_ANNOTATIONS, configHash, type KubeObject } from './objects-common.ts';
import type { RenderContext } from './context.ts';

const NS = 'zero-trust-workload-identity-manager';
const find = (r: RenderResult, kind: string, name: string): KubeObject => {
  const o = r.objects.find((x) => x.object.kind === kind && x.object.metadata.name === name);
  assert.ok(o, `${kind}/${name} not rendered`);
  return o.object;
};
type J = Record<string, any>;
const podSpec = (o: KubeObject): J => (o['spec'] as J)['template']['spec'];

/** Golden files: testdata/golden-<shape>.yaml; UPDATE_GOLDEN=1 rewrites them. */
function golden(name: string, set: CrSet, ctx: RenderContext): void {
  const r = renderOperands(set, ctx);
  const text = stringify({ conditions: r.conditions, configHashes: r.configHashes, objects: r.objects }, { lineWidth: 0, aliasDuplicateObjects: false });
  const path = `${TESTDATA_DIR}${name}`;
  if (process.env['UPDATE_GOLDEN'] === '1') writeFileSync(path, text);
  assert.equal(text, readFileSync(path, 'utf8'), `${name} differs: rerun with UPDATE_GOLDEN=1 and review the diff`);
}

test('golden: the 1.0 CR set', () => golden('golden-1.0.yaml', crs1_0(), { namespace: NS }));
test('golden: the 0.2 CR set', () => golden('golden-0.2.yaml', crs0_2(), { namespace: NS }));
test('golden: the 1.0 CR set for SPIRE images on OpenShift', () =>
  golden('golden-1.0-spire-openshift.yaml', crs1_0(), { namespace: NS, variant: 'spire', hasOpenShiftGroups: true }));

test('every object carries the standard labels and an owner; namespaced ones are in the operand namespace', () => {
  const r = renderOperands(crs1_0(), { namespace: NS });
  assert.ok(r.objects.length >= 30);
  for (const { object: o, owner, clusterScoped } of r.objects) {
    const l = o.metadata.labels;
    assert.equal(l['app.kubernetes.io/instance'], 'cluster-zero-trust-workload-identity-manager', `${o.kind}/${o.metadata.name}`);
    assert.equal(l['app.kubernetes.io/part-of'], 'zero-trust-workload-identity-manager');
    assert.equal(l['app.kubernetes.io/managed-by'], 'zero-trust-workload-identity-manager');
    assert.ok(['control-plane', 'node-agent', 'csi', 'discovery'].includes(l['app.kubernetes.io/component'] ?? ''));
    assert.ok(l['app.kubernetes.io/version']);
    assert.ok(['SpireServer', 'SpireAgent', 'SpiffeCSIDriver', 'SpireOIDCDiscoveryProvider'].includes(owner));
    assert.equal(o.metadata.namespace === undefined, clusterScoped, `${o.kind}/${o.metadata.name}`);
    if (!clusterScoped) assert.equal(o.metadata.namespace, NS);
  }
});

test('user labels are added; the standard labels win over them', () => {
  const r = renderOperands(minimalSet({ agent: { labels: { team: 'id', 'app.kubernetes.io/name': 'mine' } } }), { namespace: NS });
  const ds = find(r, 'DaemonSet', 'spire-agent');
  assert.equal(ds.metadata.labels['team'], 'id');
  assert.equal(ds.metadata.labels['app.kubernetes.io/name'], 'spire-agent');
});

test('the objects of §2.2 by owner, none of the OpenShift ones without OpenShift', () => {
  const r = renderOperands(minimalSet(), { namespace: NS });
  const names = r.objects.map((o) => `${o.owner}:${o.object.kind}/${o.object.metadata.name}`);
  for (const want of [
    'SpireServer:ServiceAccount/spire-server',
    'SpireServer:Service/spire-server',
    'SpireServer:Service/spire-controller-manager-webhook',
    'SpireServer:ClusterRole/spire-server',
    'SpireServer:ClusterRoleBinding/spire-server',
    'SpireServer:Role/spire-bundle',
    'SpireServer:ClusterRole/spire-controller-manager',
    'SpireServer:Role/spire-controller-manager-leader-election',
    'SpireServer:ValidatingWebhookConfiguration/spire-controller-manager-webhook',
    'SpireServer:ConfigMap/spire-server',
    'SpireServer:ConfigMap/spire-controller-manager',
    'SpireServer:ConfigMap/spire-bundle',
    'SpireServer:StatefulSet/spire-server',
    'SpireAgent:ServiceAccount/spire-agent',
    'SpireAgent:Service/spire-agent',
    'SpireAgent:ClusterRole/spire-agent',
    'SpireAgent:ConfigMap/spire-agent',
    'SpireAgent:DaemonSet/spire-agent',
    'SpiffeCSIDriver:ServiceAccount/spire-spiffe-csi-driver',
    'SpiffeCSIDriver:CSIDriver/csi.spiffe.io',
    'SpiffeCSIDriver:DaemonSet/spire-spiffe-csi-driver',
    'SpireOIDCDiscoveryProvider:ServiceAccount/spire-spiffe-oidc-discovery-provider',
    'SpireOIDCDiscoveryProvider:Service/spire-spiffe-oidc-discovery-provider',
    'SpireOIDCDiscoveryProvider:ClusterSPIFFEID/zero-trust-workload-identity-manager-spire-oidc-discovery-provider',
    'SpireOIDCDiscoveryProvider:ClusterSPIFFEID/zero-trust-workload-identity-manager-spire-default',
    'SpireOIDCDiscoveryProvider:ConfigMap/spire-spiffe-oidc-discovery-provider',
    'SpireOIDCDiscoveryProvider:Deployment/spire-spiffe-oidc-discovery-provider',
  ])
    assert.ok(names.includes(want), want);
  assert.ok(!r.objects.some((o) => ['Route', 'SecurityContextConstraints', 'ServiceMonitor'].includes(o.object.kind)));
  assert.equal(r.objects.find((o) => o.object.kind === 'ConfigMap' && o.object.metadata.name === 'spire-bundle')?.createOnly, true);
  assert.equal(r.conditions.agent?.find((c) => c.type === 'OpenShiftObjectsSkipped')?.status, 'True');
});

test('OpenShift: SCCs, Routes, service-CA annotations; federation Route host', () => {
  const r = renderOperands(minimalSet({ server: { federation: { bundleEndpoint: { profile: 'https_spiffe' } } } }), {
    namespace: NS,
    hasOpenShiftGroups: true,
  });
  assert.ok(find(r, 'SecurityContextConstraints', 'spire-agent'));
  assert.equal((find(r, 'SecurityContextConstraints', 'spire-spiffe-csi-driver') as J)['allowPrivilegedContainer'], true);
  assert.equal((find(r, 'Route', 'spire-server-federation')['spec'] as J)['host'], 'federation.example.org');
  assert.equal((find(r, 'Route', 'spire-oidc-discovery-provider')['spec'] as J)['host'], 'oidc.example.org');
  assert.equal(
    find(r, 'Service', 'spire-spiffe-oidc-discovery-provider').metadata.annotations?.['service.beta.openshift.io/serving-cert-secret-name'],
    'oidc-serving-cert',
  );
  assert.match(r.configs.oidcConf ?? '', /serving_cert_file \{/);
  assert.equal(podSpec(find(r, 'DaemonSet', 'spire-spiffe-csi-driver'))['initContainers'][0]['name'], 'set-context');
  const noRoute = renderOperands(minimalSet({ oidc: { managedRoute: 'false' } }), { namespace: NS, hasOpenShiftGroups: true });
  assert.ok(!noRoute.objects.some((o) => o.object.kind === 'Route'));
});

test('config hashes: pod-template annotations equal the SHA-256 of the rendered configs and change with them', () => {
  const r = renderOperands(minimalSet(), { namespace: NS });
  const sts = find(r, 'StatefulSet', 'spire-server');
  const ann = (sts['spec'] as J)['template']['metadata']['annotations'];
  assert.equal(ann[HASH_ANNOTATIONS.server], configHash(r.configs.serverConf ?? ''));
  assert.equal(ann[HASH_ANNOTATIONS.registrar], configHash(r.configs.registrarConfig ?? ''));
  assert.equal(
    (find(r, 'DaemonSet', 'spire-agent')['spec'] as J)['template']['metadata']['annotations'][HASH_ANNOTATIONS.agent],
    configHash(r.configs.agentConf ?? ''),
  );
  assert.equal(
    (find(r, 'Deployment', 'spire-spiffe-oidc-discovery-provider')['spec'] as J)['template']['metadata']['annotations'][HASH_ANNOTATIONS.oidc],
    configHash(r.configs.oidcConf ?? ''),
  );
  const r2 = renderOperands(minimalSet({ server: { logLevel: 'debug' } }), { namespace: NS });
  assert.notEqual(r2.configHashes[HASH_ANNOTATIONS.server], r.configHashes[HASH_ANNOTATIONS.server]);
  assert.equal(r2.configHashes[HASH_ANNOTATIONS.agent], r.configHashes[HASH_ANNOTATIONS.agent]);
  // rendering is deterministic
  assert.deepEqual(renderOperands(minimalSet(), { namespace: NS }), r);
});

test('workloads: ztwim commands, images, the registrar beside the server, RELATED_IMAGE overrides', () => {
  const r = renderOperands(minimalSet(), { namespace: NS, images: { agent: 'registry/ztwim:dev' } });
  const sts = podSpec(find(r, 'StatefulSet', 'spire-server'));
  assert.deepEqual(
    sts['containers'].map((c: J) => [c.name, c.image, [...c.command, ...c.args].join(' ')]),
    [
      ['spire-server', 'ztwim:0.1.0', 'ztwim server run -expandEnv -config /run/spire/config/server.conf'],
      ['spire-controller-manager', 'ztwim:0.1.0', 'ztwim registrar -config /run/spire/config/controller-manager-config.yaml -log-level info'],
    ],
  );
  assert.deepEqual(sts['securityContext'], { fsGroup: 65532 }, 'the non-root ztwim server can write its data volume');
  const agent = podSpec(find(r, 'DaemonSet', 'spire-agent'));
  assert.equal(agent['hostPID'], true);
  assert.equal(agent['hostNetwork'], undefined);
  assert.equal(agent['containers'][0]['image'], 'registry/ztwim:dev');
  assert.deepEqual(
    [...agent['containers'][0]['command'], ...agent['containers'][0]['args']],
    ['ztwim', 'agent', 'run', '-config', '/run/spire/config/agent.conf'],
  );
  assert.deepEqual(agent['volumes'].find((v: J) => v.name === 'spire-agent-socket-dir').hostPath, {
    path: '/run/spire/agent-sockets',
    type: 'DirectoryOrCreate',
  });
  assert.deepEqual(agent['volumes'].find((v: J) => v.name === 'spire-token').projected.sources[0].serviceAccountToken, {
    path: 'spire-agent',
    audience: 'spire-server',
    expirationSeconds: 7200,
  });
  const csi = podSpec(find(r, 'DaemonSet', 'spire-spiffe-csi-driver'));
  assert.equal(csi['containers'].length, 1, 'ztwim csi registers itself: no node-driver-registrar');
  assert.deepEqual(csi['containers'][0]['command'], ['ztwim', 'csi']);
  assert.equal(csi['containers'][0]['securityContext']['privileged'], true);
  const oidc = podSpec(find(r, 'Deployment', 'spire-spiffe-oidc-discovery-provider'));
  assert.deepEqual(oidc['volumes'][0], { name: 'spiffe-workload-api', csi: { driver: 'csi.spiffe.io', readOnly: true } });
  const spire = renderOperands(minimalSet(), { namespace: NS, variant: 'spire' });
  const spireCsi = podSpec(find(spire, 'DaemonSet', 'spire-spiffe-csi-driver'));
  assert.deepEqual(
    spireCsi['containers'].map((c: J) => c.name),
    ['spiffe-csi-driver', 'node-driver-registrar'],
  );
  assert.equal(podSpec(find(spire, 'StatefulSet', 'spire-server'))['containers'][0]['command'], undefined);
  assert.equal(podSpec(find(spire, 'StatefulSet', 'spire-server'))['containers'][0]['image'], 'ghcr.io/spiffe/spire-server:1.13.0');
});

test('registrar config: the ControllerManagerConfig keys (controller-runtime health/metrics) with the operand ports', () => {
  const r = renderOperands(minimalSet(), { namespace: NS, ports: { registrarHealth: 18083, registrarMetrics: 18082 } });
  const cfg = parse(r.configs.registrarConfig ?? '') as J;
  assert.equal(cfg['apiVersion'], 'spire.spiffe.io/v1alpha1');
  assert.equal(cfg['kind'], 'ControllerManagerConfig');
  assert.deepEqual(cfg['health'], { healthProbeBindAddress: '0.0.0.0:18083' });
  assert.deepEqual(cfg['metrics'], { bindAddress: '0.0.0.0:18082' });
  assert.equal(cfg['clusterName'], 'test');
  assert.equal(cfg['trustDomain'], 'example.org');
  assert.equal(cfg['entryIDPrefix'], 'test');
  assert.equal(cfg['className'], 'zero-trust-workload-identity-manager-spire');
  assert.equal(cfg['spireServerSocketPath'], '/tmp/spire-server/private/api.sock');
  assert.deepEqual(cfg['leaderElection'], { leaderElect: true, resourceName: 'spire-controller-manager-leader-election', resourceNamespace: NS });
});

test('hostNetwork (test only): every pod on the host network; agents reach the server on 127.0.0.1', () => {
  const r = renderOperands(minimalSet(), { namespace: NS, hostNetwork: true, ports: { agentMetrics: 9404 }, kubeletRoot: '/tmp/k/kubelet/' });
  for (const [kind, name] of [
    ['StatefulSet', 'spire-server'],
    ['DaemonSet', 'spire-agent'],
    ['DaemonSet', 'spire-spiffe-csi-driver'],
    ['Deployment', 'spire-spiffe-oidc-discovery-provider'],
  ] as const) {
    assert.equal(podSpec(find(r, kind, name))['hostNetwork'], true, name);
    assert.equal(podSpec(find(r, kind, name))['dnsPolicy'], 'ClusterFirstWithHostNet', name);
  }
  assert.match(r.configs.agentConf ?? '', /server_address = "127.0.0.1"\n\s*server_port = "8081"/);
  assert.match(r.configs.agentConf ?? '', /port = 9404/);
  const csi = podSpec(find(r, 'DaemonSet', 'spire-spiffe-csi-driver'));
  assert.deepEqual(
    csi['volumes'].map((v: J) => v.hostPath.path),
    ['/run/spire/agent-sockets', '/tmp/k/kubelet/plugins/csi.spiffe.io', '/tmp/k/kubelet/plugins_registry', '/tmp/k/kubelet/pods'],
  );
  assert.ok(csi['containers'][0]['args'].includes('/tmp/k/kubelet/plugins/csi.spiffe.io/csi.sock'));
});

test('kubelet port: kubelet_secure_port in the k8s WorkloadAttestor only when the kubelet is not on 10250', () => {
  const k8sAttestor = (conf: string): string =>
    /WorkloadAttestor "k8s" \{\n([\s\S]*?)\n {4}\}/.exec(conf)?.[1] ?? assert.fail(`no k8s WorkloadAttestor in\n${conf}`);
  const moved = renderOperands(minimalSet(), { namespace: NS, kubeletSecurePort: 26250 }).configs.agentConf ?? '';
  assert.match(k8sAttestor(moved), /^\s*kubelet_secure_port = 26250$/m);
  assert.equal(moved.match(/kubelet_secure_port/g)?.length, 1, 'only in the k8s attestor');
  for (const ctx of [{ namespace: NS }, { namespace: NS, kubeletSecurePort: 10250 }]) {
    assert.doesNotMatch(renderOperands(minimalSet(), ctx).configs.agentConf ?? '', /kubelet_secure_port/, "SPIRE's default is left out");
  }
  // without the k8s attestor there is nothing to point at the kubelet
  const off =
    renderOperands(minimalSet({ agent: { workloadAttestors: { k8sEnabled: 'false' } } }), { namespace: NS, kubeletSecurePort: 26250 }).configs.agentConf ?? '';
  assert.doesNotMatch(off, /kubelet_secure_port/);
});

test("OIDC domains: the issuer's host name, without its port or path", () => {
  const issuer = 'https://localhost:18443/oidc';
  const conf = renderOperands(minimalSet({ server: { jwtIssuer: issuer }, oidc: { jwtIssuer: issuer } }), { namespace: NS }).configs.oidcConf ?? '';
  const domains = /domains = \[(.*)\]/.exec(conf)?.[1] ?? assert.fail(`no domains in\n${conf}`);
  assert.deepEqual(JSON.parse(`[${domains}]`), [
    'spire-spiffe-oidc-discovery-provider',
    `spire-spiffe-oidc-discovery-provider.${NS}`,
    `spire-spiffe-oidc-discovery-provider.${NS}.svc.cluster.local`,
    'localhost',
  ]);
  assert.match(conf, /jwt_issuer = "https:\/\/localhost:18443\/oidc"/);
});

test('persistence: a PVC template by default; the 0.2 hostPath/emptyDir types; storage class', () => {
  const r = renderOperands(minimalSet({ server: { persistence: { size: '3Gi', accessMode: 'ReadWriteOncePod', storageClass: 'fast' } } }), { namespace: NS });
  const spec = find(r, 'StatefulSet', 'spire-server')['spec'] as J;
  assert.deepEqual(spec['volumeClaimTemplates'][0]['spec'], {
    accessModes: ['ReadWriteOncePod'],
    resources: { requests: { storage: '3Gi' } },
    storageClassName: 'fast',
  });
  const h = renderOperands(minimalSet({ server: { persistence: { type: 'hostPath', hostPath: '/var/lib/spire-data' } } }), { namespace: NS });
  const hs = find(h, 'StatefulSet', 'spire-server')['spec'] as J;
  assert.equal(hs['volumeClaimTemplates'], undefined);
  assert.deepEqual(
    hs['template']['spec']['volumes'].find((v: J) => v.name === 'spire-data'),
    { name: 'spire-data', hostPath: { path: '/var/lib/spire-data', type: 'DirectoryOrCreate' } },
  );
});

test('postgres from a Secret: the connection string never lands in the ConfigMap', () => {
  const r = renderOperands(
    minimalSet({
      server: { replicas: 2, datastore: { databaseType: 'postgres', connectionStringSecretRef: { name: 'spire-db', key: 'dsn' }, tlsSecretName: 'db-tls' } },
    }),
    { namespace: NS },
  );
  const server = podSpec(find(r, 'StatefulSet', 'spire-server'))['containers'][0];
  assert.deepEqual(server['env'], [{ name: 'ZTWIM_DATASTORE_CONNECTION_STRING', valueFrom: { secretKeyRef: { name: 'spire-db', key: 'dsn' } } }]);
  assert.ok(server['args'].includes('-expandEnv'));
  assert.ok(server['volumeMounts'].some((m: J) => m.mountPath === '/run/spire/db/certs'));
  assert.match(r.configs.serverConf ?? '', /connection_string = "\$\{ZTWIM_DATASTORE_CONNECTION_STRING\}"/);
  assert.equal((find(r, 'StatefulSet', 'spire-server')['spec'] as J)['replicas'], 2);
});

test("several server replicas: a headless Service, and agents pointed at its name (every server pod) on the pods' gRPC port", () => {
  const pgServer = (replicas: number) => ({ replicas, datastore: { databaseType: 'postgres', connectionStringSecretRef: { name: 'spire-db', key: 'dsn' } } });
  const three = renderOperands(minimalSet({ server: pgServer(3) }), { namespace: NS });
  const headless = find(three, 'Service', 'spire-server-headless');
  assert.equal((headless['spec'] as J)['clusterIP'], 'None');
  assert.deepEqual((headless['spec'] as J)['selector'], (find(three, 'StatefulSet', 'spire-server')['spec'] as J)['selector']['matchLabels']);
  assert.deepEqual((headless['spec'] as J)['ports'], [{ name: 'grpc', port: 8081, targetPort: 'grpc', protocol: 'TCP' }]);
  assert.equal((headless['spec'] as J)['publishNotReadyAddresses'], undefined, 'only ready servers are in the DNS answer');
  assert.match(
    three.configs.agentConf ?? '',
    new RegExp(`server_address = "spire-server-headless\\.${NS}\\.svc\\.cluster\\.local"\\n\\s*server_port = "8081"`),
  );
  assert.doesNotMatch(three.configs.agentConf ?? '', /server_address = "spire-server\./, 'not the ClusterIP Service');
  // One replica: unchanged (the ClusterIP Service, port 443), no headless Service.
  const one = renderOperands(minimalSet({ server: pgServer(1) }), { namespace: NS });
  assert.equal(
    one.objects.some((o) => o.object.metadata.name === 'spire-server-headless'),
    false,
  );
  assert.match(one.configs.agentConf ?? '', new RegExp(`server_address = "spire-server\\.${NS}"\\n\\s*server_port = "443"`));
  // An address the caller set wins; so does the host network (one node, one server port).
  const set = renderOperands(minimalSet({ server: pgServer(3) }), { namespace: NS, serverAddress: { host: 'lb.example.org', port: 9443 } });
  assert.match(set.configs.agentConf ?? '', /server_address = "lb\.example\.org"\n\s*server_port = "9443"/);
  const host = renderOperands(minimalSet({ server: pgServer(3) }), { namespace: NS, hostNetwork: true });
  assert.match(host.configs.agentConf ?? '', /server_address = "127\.0\.0\.1"/);
  // The agents' config hash follows the address: they restart onto the new one.
  assert.notEqual(three.configHashes[HASH_ANNOTATIONS.agent], one.configHashes[HASH_ANNOTATIONS.agent]);
});

test('ServiceMonitors only when asked and the Prometheus operator is there, else a skip condition', () => {
  const set = minimalSet({ server: { serviceMonitor: { enabled: 'true' } }, agent: { serviceMonitor: { enabled: 'true' } } });
  const with_ = renderOperands(set, { namespace: NS, hasPrometheusOperator: true });
  assert.ok(find(with_, 'ServiceMonitor', 'spire-server'));
  assert.ok(find(with_, 'ServiceMonitor', 'spire-agent'));
  const without = renderOperands(set, { namespace: NS });
  assert.ok(!without.objects.some((o) => o.object.kind === 'ServiceMonitor'));
  assert.equal(without.conditions.server?.find((c) => c.type === 'ServiceMonitorSkipped')?.reason, 'ServiceMonitorAPINotServed');
});

test('0.2 fields: a DeprecatedFieldsConverted condition on the operand says where each went; none for 1.0', () => {
  const r = renderOperands(crs0_2(), { namespace: NS });
  const c = r.conditions.csi?.find((x) => x.type === 'DeprecatedFieldsConverted');
  assert.equal(c?.status, 'True');
  assert.match(c?.message ?? '', /agentSocketPath names the socket file; its directory \/run\/spire\/agent-sockets is used/);
  assert.match(
    r.conditions.server?.find((x) => x.type === 'DeprecatedFieldsConverted')?.message ?? '',
    /SpireServer spec\.trustDomain "apps\.example\.com" used as ZeroTrustWorkloadIdentityManager spec\.trustDomain/,
  );
  const v1 = renderOperands(crs1_0(), { namespace: NS });
  assert.ok(
    !Object.values(v1.conditions)
      .flat()
      .some((x) => x.type === 'DeprecatedFieldsConverted'),
  );
});

test('an invalid operand renders nothing, the others still render', () => {
  const r = renderOperands(minimalSet({ oidc: { jwtIssuer: 'nope' } }), { namespace: NS });
  assert.ok(!r.objects.some((o) => o.owner === 'SpireOIDCDiscoveryProvider'));
  assert.ok(r.objects.some((o) => o.owner === 'SpireServer'));
  assert.equal(r.conditions.oidc?.[0]?.reason, 'InvalidJWTIssuerURL');
  const none = renderOperands(minimalSet({ ztwim: { trustDomain: 'BAD' } }), { namespace: NS });
  assert.equal(none.objects.length, 0);
});

test('logLevel per operand reaches server.conf, agent.conf, the OIDC config, the registrar and the CSI driver flags', () => {
  const set = minimalSet({ server: { logLevel: 'debug' }, agent: { logLevel: 'warn' }, csi: { logLevel: 'error' }, oidc: { logLevel: 'debug' } });
  const r = renderOperands(set, { namespace: NS });
  assert.match(r.configs.serverConf ?? '', /log_level = "DEBUG"/);
  assert.match(r.configs.agentConf ?? '', /log_level = "WARN"/);
  assert.match(r.configs.oidcConf ?? '', /log_level = "DEBUG"/);
  const args = (kind: string, name: string, container: string): string[] => {
    const c = podSpec(find(r, kind, name))['containers'].find((x: J) => x.name === container);
    assert.ok(c, `${kind}/${name} has a ${container} container`);
    return c['args'];
  };
  const flag = (a: string[], f: string): string | undefined => a[a.indexOf(f) + 1];
  assert.equal(flag(args('StatefulSet', 'spire-server', 'spire-controller-manager'), '-log-level'), 'debug', 'the registrar follows the SpireServer');
  const csi = podSpec(find(r, 'DaemonSet', 'spire-spiffe-csi-driver'))['containers'][0]['args'];
  assert.equal(flag(csi, '-log-level'), 'error');
  const quiet = renderOperands(minimalSet({ server: { logLevel: 'error' } }), { namespace: NS });
  assert.equal(
    flag(podSpec(find(quiet, 'StatefulSet', 'spire-server'))['containers'].find((x: J) => x.name === 'spire-controller-manager')['args'], '-log-level'),
    'error',
  );
  // SPIRE's images: spire-controller-manager takes controller-runtime's zap level (no "warn")
  const spire = (level: string) =>
    podSpec(find(renderOperands(minimalSet({ server: { logLevel: level } }), { namespace: NS, variant: 'spire' }), 'StatefulSet', 'spire-server'))[
      'containers'
    ].find((x: J) => x.name === 'spire-controller-manager')['args'];
  assert.ok(spire('debug').includes('--zap-log-level=debug'));
  assert.ok(spire('warn').includes('--zap-log-level=info'));
});
