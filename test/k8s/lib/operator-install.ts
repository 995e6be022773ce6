// The operator on the shared test cluster, as the operator tests install it: deploy/manifests/
// install.yaml with the test's own namespace (operator-runtime-*), its cluster-scoped RBAC renamed
// after that namespace, the branch's image, and the test-only host-network settings
// (docs/operator.md): pods on the host network, the apiserver at 127.0.0.1, distinct host ports.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { REPO_ROOT } from '../../interop/lib/peers.ts';
import { freePort } from '../../interop/lib/net.ts';
import { lockDataDir, ZtwimError } from '@ztwim/core';
import { applyManifest, kubectl, run, waitFor, type ClusterEnv } from './cluster.ts';

/** The branch's image on the node (scripts/k8s/image.sh with ZTWIM_IMAGE_TAG). */
export const OPERATOR_TEST_IMAGE = 'ztwim:operator-runtime';

interface Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  [k: string]: unknown;
}

/** Builds ztwim:operator-runtime from this tree and imports it into the node (skipped when current). */
export async function importBranchImage(env: ClusterEnv): Promise<void> {
  await run('bash', [join(REPO_ROOT, 'scripts', 'k8s', 'image.sh'), '--import'], {
    env: { ...process.env, ...env.vars, ZTWIM_IMAGE_TAG: 'operator-runtime' },
    timeoutMs: 900_000,
  });
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
  /** Name of the ClusterRole/ClusterRoleBinding (renamed after the namespace). */
  readonly clusterRbac: string;
  /** The operand ports (host network). */
  readonly ports: Record<string, number>;
  readonly healthPort: number;
  uninstall(): Promise<void>;
}

/**
 * install.yaml minus the Namespace and the CRDs, into `ns` (which exists), for the test node.
 * `extraEnv` goes on the operator container (e.g. CREATE_ONLY_MODE).
 */
export async function installOperator(
  env: ClusterEnv,
  ns: string,
  extraEnv: Record<string, string> = {},
  opts: { deployment?: boolean } = {},
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
    .filter((o) => o.kind !== 'Namespace' && o.kind !== 'CustomResourceDefinition' && (opts.deployment !== false || o.kind !== 'Deployment'))
    .map((o) => {
      const j = JSON.parse(JSON.stringify(o).replaceAll('"namespace":"zero-trust-workload-identity-manager"', `"namespace":"${ns}"`)) as Obj;
      if (o.kind === 'ClusterRole' || o.kind === 'ClusterRoleBinding') j.metadata.name = clusterRbac;
      if (o.kind === 'ClusterRoleBinding') (j['roleRef'] as { name: string }).name = clusterRbac;
      if (o.kind === 'Deployment') {
        const pod = (j['spec'] as { template: { spec: Record<string, unknown> } }).template.spec;
        pod['hostNetwork'] = true;
        pod['dnsPolicy'] = 'ClusterFirstWithHostNet';
        const c = (pod['containers'] as Array<Record<string, unknown>>)[0] as Record<string, unknown>;
        c['image'] = OPERATOR_TEST_IMAGE;
        c['imagePullPolicy'] = 'Never';
        c['args'] = ['operator', '-health-port', String(healthPort), '-log-level', 'debug'];
        c['ports'] = [{ name: 'health', containerPort: healthPort }];
        const envs = (c['env'] as Array<{ name: string; value?: string }>).map((e) =>
          e.name.startsWith('RELATED_IMAGE_') ? { name: e.name, value: OPERATOR_TEST_IMAGE } : e,
        );
        envs.push(
          { name: 'KUBERNETES_SERVICE_HOST', value: '127.0.0.1' },
          { name: 'KUBERNETES_SERVICE_PORT', value: apiPort },
          { name: 'ZTWIM_OPERATOR_TEST_HOST_NETWORK', value: 'true' },
          { name: 'ZTWIM_OPERATOR_TEST_PORTS', value: JSON.stringify(ports) },
          { name: 'KUBELET_ROOT_DIR', value: env.kubeletRoot },
          ...Object.entries(extraEnv).map(([name, value]) => ({ name, value })),
        );
        c['env'] = envs;
      }
      return j;
    });
  await applyManifest(env, objs.map((o) => `---\n${stringify(o)}`).join(''));
  return {
    ns,
    clusterRbac,
    ports,
    healthPort,
    async uninstall() {
      await kubectl(env, ['delete', 'deployment', '-n', ns, 'ztwim-operator', '--ignore-not-found', '--wait=false']).catch(() => '');
      await kubectl(env, ['delete', 'clusterrolebinding,clusterrole', clusterRbac, '--ignore-not-found']).catch(() => '');
    },
  };
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
  const dir = join(env.dir, 'locks');
  const release = await waitFor(
    'the lock on the operator.openshift.io singletons',
    () => {
      try {
        const l = lockDataDir(dir, { what: 'the operator.openshift.io cluster CRs', moveWith: 'another cluster', file: 'operator-singletons.lock' });
        return () => l.release();
      } catch (e) {
        if (e instanceof ZtwimError && e.code === 'ERR_FAILED_PRECONDITION') return undefined;
        throw e;
      }
    },
    ms,
  );
  await waitFor(
    'no operator.openshift.io CR left by someone else',
    async () => ((await kubectl(env, ['get', OPERATOR_KINDS.join(','), '-o', 'name'])).trim() === '' ? true : undefined),
    120_000,
  );
  return release;
}
