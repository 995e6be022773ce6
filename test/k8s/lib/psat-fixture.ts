// What k8s_psat needs on the project's test cluster, for test/k8s/k8s-psat.test.ts and
// bench/k8s-psat.ts: a namespace with the agent's ServiceAccounts, a server ServiceAccount bound
// to exactly the RBAC SPIRE documents for k8s_psat (tokenreviews create, pods and nodes get) and a
// kubeconfig for it, hostNetwork busybox pods, and pod-bound tokens from the TokenRequest API.
import { randomBytes } from 'node:crypto';
import { apiJson, applyManifest, kubectl, serviceAccountKubeconfig, waitFor, waitPodRunning, type ClusterEnv, type Pod } from './cluster.ts';

export interface PsatFixture {
  readonly env: ClusterEnv;
  readonly ns: string;
  /** The kubeconfig of `<ns>:spire-server` (only SPIRE's documented RBAC), for kube_config_file. */
  readonly serverKubeconfig: string;
  /** Starts a hostNetwork busybox pod running as `serviceAccount` and waits until it runs. */
  runPod(name: string, serviceAccount: string, opts?: { labels?: Record<string, string>; nodeName?: string; wait?: boolean }): Promise<Pod>;
  /** A token bound to the pod (TokenRequest of its ServiceAccount), for the audiences. */
  podToken(pod: Pod, audiences: readonly string[], expirationSeconds?: number): Promise<string>;
  /** Whether the apiserver still authenticates the token for the audiences (TokenReview as admin). */
  tokenValid(token: string, audiences: readonly string[]): Promise<boolean>;
  getNode(name: string): Promise<{ metadata: { name: string; uid: string; labels?: Record<string, string> } }>;
  /** Registers a Node object with no kubelet behind it (a node "elsewhere"); removed by cleanup(). */
  addGhostNode(name: string): Promise<{ name: string; uid: string }>;
  /** Deletes the namespace and the cluster-scoped objects made here (RBAC, extra nodes). */
  cleanup(): Promise<void>;
}

interface TokenRequestStatus {
  status: { token: string };
}

/** Sets the fixture up in a new namespace `<prefix>-<random>`; `kubeconfigPath` is where the server's kubeconfig goes. */
export async function psatFixture(env: ClusterEnv, prefix: string, kubeconfigPath: string): Promise<PsatFixture> {
  const ns = `${prefix}-${randomBytes(4).toString('hex')}`;
  const rbacName = `ztwim-${ns}`;
  const extraNodes: string[] = [];
  const cleanup = async (): Promise<void> => {
    await kubectl(env, ['delete', 'namespace', ns, '--wait=false', '--ignore-not-found']).catch(() => '');
    await kubectl(env, ['delete', 'clusterrolebinding,clusterrole', rbacName, '--ignore-not-found']).catch(() => '');
    for (const n of extraNodes) await kubectl(env, ['delete', 'node', n, '--ignore-not-found', '--wait=false']).catch(() => '');
  };
  try {
    await applyManifest(
      env,
      `
apiVersion: v1
kind: Namespace
metadata: {name: ${ns}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: spire-agent, namespace: ${ns}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: other, namespace: ${ns}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: spire-server, namespace: ${ns}}
---
# SPIRE's k8s_psat server RBAC (its docs' spire-server-trust-role): nothing else.
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: ${rbacName}}
rules:
- apiGroups: [authentication.k8s.io]
  resources: [tokenreviews]
  verbs: [create]
- apiGroups: [""]
  resources: [pods, nodes]
  verbs: [get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: ${rbacName}}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: ${rbacName}}
subjects:
- {kind: ServiceAccount, name: spire-server, namespace: ${ns}}
`,
    );
    // The server's credential: a kubeconfig with a token of its ServiceAccount.
    await serviceAccountKubeconfig(env, ns, 'spire-server', kubeconfigPath);
  } catch (e) {
    await cleanup();
    throw e;
  }
  return {
    env,
    ns,
    serverKubeconfig: kubeconfigPath,
    async runPod(name, serviceAccount, opts = {}) {
      const labels = { app: name, ...opts.labels };
      await applyManifest(
        env,
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name, namespace: ns, labels },
          spec: {
            serviceAccountName: serviceAccount,
            automountServiceAccountToken: false,
            hostNetwork: true,
            terminationGracePeriodSeconds: 0,
            ...(opts.nodeName === undefined ? {} : { nodeName: opts.nodeName }),
            containers: [{ name: 'main', image: 'busybox:local', imagePullPolicy: 'Never', command: ['sleep', '3600'] }],
          },
        }),
      );
      if (opts.wait === false) return JSON.parse(await kubectl(env, ['get', 'pod', '-n', ns, name, '-o', 'json'])) as Pod;
      return await waitPodRunning(env, ns, name);
    },
    async podToken(pod, audiences, expirationSeconds = 3600) {
      const r = await apiJson<TokenRequestStatus>(env, `/api/v1/namespaces/${ns}/serviceaccounts/${pod.spec.serviceAccountName ?? 'default'}/token`, {
        body: {
          apiVersion: 'authentication.k8s.io/v1',
          kind: 'TokenRequest',
          spec: { audiences, expirationSeconds, boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod.metadata.name, uid: pod.metadata.uid } },
        },
      });
      return r.status.token;
    },
    async tokenValid(token, audiences) {
      const r = await apiJson<{ status: { authenticated?: boolean } }>(env, '/apis/authentication.k8s.io/v1/tokenreviews', {
        body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences } },
      });
      return r.status.authenticated === true;
    },
    async getNode(name) {
      return await apiJson(env, `/api/v1/nodes/${name}`);
    },
    async addGhostNode(name) {
      const n = await apiJson<{ metadata: { name: string; uid: string } }>(env, '/api/v1/nodes', {
        // Tainted NoSchedule: a node with no kubelet must not get pods of DaemonSets that other test
        // files create meanwhile (their pod for this node stays Pending and a wait for "the DaemonSet's
        // pod" or its numberReady never ends). Pods bound by nodeName, as this file's own, ignore it.
        body: {
          apiVersion: 'v1',
          kind: 'Node',
          metadata: { name, labels: { 'kubernetes.io/hostname': name } },
          spec: { taints: [{ key: 'ztwim.test/ghost-node', value: 'true', effect: 'NoSchedule' }] },
        },
      });
      extraNodes.push(name);
      return { name: n.metadata.name, uid: n.metadata.uid };
    },
    cleanup,
  };
}
