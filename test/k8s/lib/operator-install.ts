// The operator on the shared test cluster, as the operator tests install it: deploy/manifests/
// install.yaml with the test's own namespace, its cluster-scoped RBAC renamed
// after that namespace, the branch's image, and the test-only host-network settings
// (docs/operator.md): pods on the host network, the apiserver at 127.0.0.1, distinct host ports.
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { REPO_ROOT } from '../../interop/lib/peers.ts';
import { freePort } from '../../interop/lib/net.ts';
import { supervise } from '../../interop/lib/spire-admin.ts';
import { applyManifest, holdFileLock, kubectl, waitFor, type ClusterEnv } from './cluster.ts';
import { ZTWIM_IMAGE } from './image.ts';

interface Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  [k: string]: unknown;
}

/** kubectl apply of every CRD the operator needs (shared by everyone: apply only, never delete). */
export async function applyOperatorCrds(env: ClusterEnv): Promise<void> {
  const crds = docs(readFileSync(join(REPO_ROOT, 'deploy', 'manifests', 'install.yaml'), 'utf8')).filter((o) => o.kind === 'CustomResourceDefinition');
  await kubectl(env, ['apply', '--server-side', '--force-conflicts', '-f', '-'], { input: crds.map((o) => `---\n${stringify(o)}`).join('') });
  for (const c of crds) await kubectl(env, ['wait', '--for=condition=Established', `crd/${c.metadata.name}`, '--timeout=60s']);
}

function docs(text: string): Obj[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as Obj)
    .filter((o) => o !== null);
}

export interface InstalledOperator {
  readonly ns: string;
  /** The manifest applied (install.yaml as adapted for this node): `kubectl delete -f` of it uninstalls. */
  readonly manifest: string;
  /** Name of the ClusterRole/ClusterRoleBinding (renamed after the namespace). */
  readonly clusterRbac: string;
  /** The operand ports (host network). */
  readonly ports: Record<string, number>;
  readonly healthPort: number;
  uninstall(): Promise<void>;
}

/**
 * install.yaml minus the CRDs (shared by everyone on the test cluster) into `ns`, for the test
 * node. The Namespace object too with `namespace: true` (renamed to `ns`; else `ns` must exist).
 * `extraEnv` goes on the operator container (e.g. CREATE_ONLY_MODE). The kubelet's root dir and
 * port come from the cluster env (KUBELET_ROOT_DIR, KUBELET_SECURE_PORT).
 */
export async function installOperator(
  env: ClusterEnv,
  ns: string,
  extraEnv: Record<string, string> = {},
  opts: { deployment?: boolean; namespace?: boolean } = {},
): Promise<InstalledOperator> {
  const clusterRbac = `ztwim-operator-${ns}`;
  const ports: Record<string, number> = {};
  for (const k of [
    'serverGrpc',
    'serverHealth',
    'serverMetrics',
    'serverFederation',
    'registrarWebhook',
    'registrarMetrics',
    'registrarHealth',
    'agentHealth',
    'agentMetrics',
    'csiHealth',
    'oidcHttps',
    'oidcHealth',
  ])
    ports[k] = await freePort();
  const healthPort = await freePort();
  const apiPort = new URL(env.apiserver).port;
  const objs = docs(readFileSync(join(REPO_ROOT, 'deploy', 'manifests', 'install.yaml'), 'utf8'))
    .filter(
      (o) =>
        (opts.namespace === true || o.kind !== 'Namespace') && o.kind !== 'CustomResourceDefinition' && (opts.deployment !== false || o.kind !== 'Deployment'),
    )
    .map((o) => {
      const j = JSON.parse(JSON.stringify(o).replaceAll('"namespace":"zero-trust-workload-identity-manager"', `"namespace":"${ns}"`)) as Obj;
      if (o.kind === 'Namespace') j.metadata.name = ns;
      if (o.kind === 'ClusterRole' || o.kind === 'ClusterRoleBinding') j.metadata.name = clusterRbac;
      if (o.kind === 'ClusterRoleBinding') (j['roleRef'] as { name: string }).name = clusterRbac;
      if (o.kind === 'Deployment') {
        const pod = (j['spec'] as { template: { spec: Record<string, unknown> } }).template.spec;
        pod['hostNetwork'] = true;
        pod['dnsPolicy'] = 'ClusterFirstWithHostNet';
        const c = (pod['containers'] as Array<Record<string, unknown>>)[0] as Record<string, unknown>;
        c['image'] = ZTWIM_IMAGE;
        c['imagePullPolicy'] = 'Never';
        c['args'] = ['operator', '-health-port', String(healthPort), '-log-level', 'debug'];
        c['ports'] = [{ name: 'health', containerPort: healthPort }];
        const envs = (c['env'] as Array<{ name: string; value?: string }>).map((e) =>
          e.name.startsWith('RELATED_IMAGE_') ? { name: e.name, value: ZTWIM_IMAGE } : e,
        );
        envs.push(
          { name: 'KUBERNETES_SERVICE_HOST', value: '127.0.0.1' },
          { name: 'KUBERNETES_SERVICE_PORT', value: apiPort },
          { name: 'ZTWIM_OPERATOR_TEST_HOST_NETWORK', value: 'true' },
          { name: 'ZTWIM_OPERATOR_TEST_PORTS', value: JSON.stringify(ports) },
          { name: 'KUBELET_ROOT_DIR', value: env.kubeletRoot },
          { name: 'KUBELET_SECURE_PORT', value: new URL(env.kubeletUrl).port },
          ...Object.entries(extraEnv).map(([name, value]) => ({ name, value })),
        );
        c['env'] = envs;
      }
      return j;
    });
  const manifest = objs.map((o) => `---\n${stringify(o)}`).join('');
  await applyManifest(env, manifest);
  return {
    ns,
    manifest,
    clusterRbac,
    ports,
    healthPort,
    async uninstall() {
      await kubectl(env, ['delete', 'deployment', '-n', ns, 'ztwim-operator', '--ignore-not-found', '--wait=false']).catch(() => '');
      await kubectl(env, ['delete', 'clusterrolebinding,clusterrole', clusterRbac, '--ignore-not-found']).catch(() => '');
      if (opts.namespace === true) await kubectl(env, ['delete', 'namespace', ns, '--ignore-not-found', '--wait=false']).catch(() => '');
    },
  };
}

/**
 * The five CRs of docs/operator.md for the test node: k8s_psat, the k8s workload attestor
 * (kubelet verification skipped), and the OIDC provider serving TLS from `oidcTlsSecret` when given.
 */
export function operatorCrs(o: { trustDomain: string; issuer: string; oidcTlsSecret?: string }): string {
  return `
apiVersion: operator.openshift.io/v1alpha1
kind: ZeroTrustWorkloadIdentityManager
metadata: {name: cluster}
spec: {trustDomain: ${o.trustDomain}, clusterName: test}
---
apiVersion: operator.openshift.io/v1alpha1
kind: SpireServer
metadata: {name: cluster}
spec:
  jwtIssuer: ${o.issuer}
  caSubject: {country: US, organization: ztwim, commonName: ${o.trustDomain}}
---
apiVersion: operator.openshift.io/v1alpha1
kind: SpireAgent
metadata: {name: cluster}
spec:
  nodeAttestor: {k8sPSATEnabled: "true"}
  workloadAttestors: {k8sEnabled: "true", workloadAttestorsVerification: {type: skip}}
---
apiVersion: operator.openshift.io/v1alpha1
kind: SpiffeCSIDriver
metadata: {name: cluster}
spec: {}
---
apiVersion: operator.openshift.io/v1alpha1
kind: SpireOIDCDiscoveryProvider
metadata: {name: cluster}
spec: {jwtIssuer: ${o.issuer}${o.oidcTlsSecret === undefined ? '' : `, externalSecretRef: ${o.oidcTlsSecret}`}}
`;
}

/**
 * Deletes the five CRs in the order docs/operator.md gives (the OIDC provider first, and its pod
 * gone, while the CSI driver still runs to unmount its volume; then the rest), so no pod is left
 * in Terminating with a csi.spiffe.io volume the kubelet cannot unmount. Pods of the caller's that
 * mount the volume must be gone before. Never throws (cleanup paths).
 */
export async function deleteOperatorCrs(env: ClusterEnv, ns: string): Promise<void> {
  const ms = { timeoutMs: 360_000 };
  await kubectl(env, ['delete', OPERATOR_KINDS[0] as string, 'cluster', '--ignore-not-found'], ms).catch(() => '');
  await kubectl(env, ['wait', '--for=delete', 'pod', '-l', 'app.kubernetes.io/name=spiffe-oidc-discovery-provider', '-n', ns, '--timeout=300s'], ms).catch(
    () => '',
  );
  await kubectl(env, ['delete', ...OPERATOR_KINDS.slice(1).map((k) => `${k}/cluster`), '--ignore-not-found', '--wait=false'], ms).catch(() => '');
}

/** The operator pod's name once it runs. */
export async function operatorPod(env: ClusterEnv, ns: string, ms = 180_000): Promise<string> {
  return await waitFor(
    `the operator pod in ${ns} Running`,
    async () => {
      const out = await kubectl(env, [
        'get',
        'pods',
        '-n',
        ns,
        '-l',
        'app.kubernetes.io/name=ztwim-operator',
        '-o',
        'jsonpath={range .items[?(@.status.phase=="Running")]}{.metadata.name}{"\\n"}{end}',
      ]).catch(() => '');
      return out
        .trim()
        .split('\n')
        .filter((l) => l !== '')[0];
    },
    ms,
  );
}

/** The five kinds, fully qualified (other tests install kinds of the same names in their own groups). */
export const OPERATOR_KINDS = ['spireoidcdiscoveryproviders', 'spiffecsidrivers', 'spireagents', 'spireservers', 'zerotrustworkloadidentitymanagers'].map(
  (k) => `${k}.operator.openshift.io`,
);

/**
 * Holds the cluster's operator.openshift.io singletons (`cluster`) for one test file: a lock in
 * the cluster dir, then no such CR left by anyone else. Returns the release.
 */
export async function holdOperatorSingletons(env: ClusterEnv, ms = 600_000): Promise<() => void> {
  const release = await holdFileLock(join(env.dir, 'locks'), 'operator-singletons.lock', 'the operator.openshift.io cluster CRs', ms);
  await waitFor(
    'no operator.openshift.io CR left by someone else',
    async () => ((await kubectl(env, ['get', OPERATOR_KINDS.join(','), '-o', 'name'])).trim() === '' ? true : undefined),
    120_000,
  );
  return release;
}

/** An operator run on the host (`ztwim operator` of this tree) by a test: its exit, stop and logs. */
export type HostOperator = ReturnType<typeof supervise>;

/**
 * `ztwim operator -kubeconfig <kubeconfig> -namespace <ns> -health-port 0 -log-level debug
 * <extraArgs>` as a host process (POD_NAME `podName`, its leader-election identity), for tests
 * that run the controllers outside a pod under the operator's own RBAC (serviceAccountKubeconfig).
 */
export function startHostOperator(o: { kubeconfig: string; ns: string; podName: string; extraArgs?: readonly string[] }): HostOperator {
  const args = ['operator', '-kubeconfig', o.kubeconfig, '-namespace', o.ns, '-health-port', '0', '-log-level', 'debug', ...(o.extraArgs ?? [])];
  return supervise(
    spawn(process.execPath, [join(REPO_ROOT, 'packages', 'cli', 'bin', 'ztwim.js'), ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, POD_NAME: o.podName },
    }),
  );
}

/**
 * The test cluster has no volume provisioner: a hostPath PersistentVolume `name` in `dir` (made
 * writable by the server's non-root user) bound to the server's claim in `ns`
 * (spire-data-spire-server-0).
 */
export async function serverDataVolume(env: ClusterEnv, ns: string, name: string, dir: string, labels = ''): Promise<void> {
  mkdirSync(dir, { recursive: true, mode: 0o777 });
  chmodSync(dir, 0o777);
  await applyManifest(
    env,
    `
apiVersion: v1
kind: PersistentVolume
metadata: {name: ${name}${labels === '' ? '' : `, labels: {${labels}}`}}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: ""
  claimRef: {namespace: ${ns}, name: spire-data-spire-server-0}
  hostPath: {path: ${dir}, type: Directory}
`,
  );
}
