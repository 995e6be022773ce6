// The project's Kubernetes test cluster (scripts/k8s/cluster.sh) does what the k8s tests rely on:
// apiserver v1.37.2, pod-bound service account tokens with audience spire-server and their
// TokenReview, a hostNetwork busybox pod on the real node, logs/exec through the kubelet, the
// kubelet's authenticated /pods, and a `down` that leaves nothing behind.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { controlPlaneVars } from './lib/own-control-plane.ts';
import {
  apiJson,
  applyManifest,
  clusterSh,
  controlPlaneEnvFrom,
  createNamespace,
  ensureCluster,
  httpCall,
  kubectl,
  parseEnvLines,
  waitPodRunning,
  type ClusterEnv,
  type Pod,
} from './lib/cluster.js';

const VERSION = 'v1.37.2';

interface TokenRequestStatus {
  status: { token: string; expirationTimestamp: string };
}
interface TokenReviewStatus {
  status: {
    authenticated?: boolean;
    error?: string;
    audiences?: string[];
    user?: { username?: string; uid?: string; groups?: string[]; extra?: Record<string, string[]> };
  };
}

function jwtPayload(token: string): Record<string, unknown> {
  const part = token.split('.')[1];
  assert.ok(part !== undefined, 'token is not a JWT');
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<string, unknown>;
}

function tokenReview(env: ClusterEnv, token: string, audiences: string[]): Promise<TokenReviewStatus> {
  return apiJson<TokenReviewStatus>(env, '/apis/authentication.k8s.io/v1/tokenreviews', {
    body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences } },
  });
}

describe('k8s test cluster (shared, with node)', () => {
  let env: ClusterEnv;
  let ns: string;
  let pod: Pod;

  before(async () => {
    env = await ensureCluster();
    ns = await createNamespace(env, 'cluster-test');
    await applyManifest(
      env,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'box', namespace: ns, labels: { app: 'box' } },
        spec: {
          hostNetwork: true,
          terminationGracePeriodSeconds: 0,
          containers: [
            {
              name: 'box',
              image: 'docker.io/library/busybox:local',
              imagePullPolicy: 'Never',
              command: ['/bin/sh', '-c', 'echo hello-from-box; exec sleep 3600'],
            },
          ],
        },
      }),
    );
    pod = await waitPodRunning(env, ns, 'box');
  });

  it('serves /readyz and reports version v1.37.2 for the apiserver, kubectl and the kubelet', async () => {
    const ready = await httpCall(env, `${env.apiserver}/readyz`);
    assert.equal(ready.status, 200, ready.body);
    assert.equal(ready.body, 'ok');
    const anon = await httpCall(env, `${env.apiserver}/api/v1/namespaces`, { token: null });
    assert.equal(anon.status, 403, 'anonymous requests are not allowed to list namespaces');
    const v = JSON.parse(await kubectl(env, ['version', '-o', 'json'])) as {
      clientVersion: { gitVersion: string };
      serverVersion: { gitVersion: string };
    };
    assert.equal(v.clientVersion.gitVersion, VERSION);
    assert.equal(v.serverVersion.gitVersion, VERSION);
    const node = await apiJson<{ status: { nodeInfo: { kubeletVersion: string; containerRuntimeVersion: string } } }>(env, `/api/v1/nodes/${env.nodeName}`);
    assert.equal(node.status.nodeInfo.kubeletVersion, VERSION);
    assert.match(node.status.nodeInfo.containerRuntimeVersion, /^containerd:\/\//);
  });

  it('runs a busybox:local pod with hostNetwork on node localhost', () => {
    assert.equal(pod.spec.nodeName, 'localhost');
    assert.equal(env.nodeName, 'localhost');
    assert.equal(pod.status.phase, 'Running');
    assert.match(pod.status.containerStatuses?.[0]?.containerID ?? '', /^containerd:\/\/[0-9a-f]{64}$/);
  });

  it('gives pod logs and exec through the kubelet', async () => {
    const logs = await kubectl(env, ['logs', '-n', ns, 'box']);
    assert.equal(logs, 'hello-from-box\n');
    const out = await kubectl(env, ['exec', '-n', ns, 'box', '--', '/bin/sh', '-c', 'echo exec-in-$(hostname)']);
    assert.match(out, /^exec-in-\S+\n$/);
  });

  it('issues a pod-bound token for audience spire-server that TokenReview accepts with pod and node claims', async () => {
    const node = await apiJson<{ metadata: { uid: string } }>(env, `/api/v1/nodes/${env.nodeName}`);
    const tr = await apiJson<TokenRequestStatus>(env, `/api/v1/namespaces/${ns}/serviceaccounts/default/token`, {
      body: {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenRequest',
        spec: {
          audiences: ['spire-server'],
          expirationSeconds: 600,
          boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: 'box', uid: pod.metadata.uid },
        },
      },
    });
    const claims = jwtPayload(tr.status.token);
    assert.deepEqual(claims['aud'], ['spire-server']);
    assert.equal(claims['iss'], env.saIssuer);
    assert.equal(claims['sub'], `system:serviceaccount:${ns}:default`);
    const k8s = claims['kubernetes.io'] as { pod?: { name: string; uid: string }; node?: { name: string; uid: string } };
    assert.deepEqual(k8s.pod, { name: 'box', uid: pod.metadata.uid });
    assert.deepEqual(k8s.node, { name: 'localhost', uid: node.metadata.uid });

    const ok = await tokenReview(env, tr.status.token, ['spire-server']);
    assert.equal(ok.status.authenticated, true, ok.status.error);
    assert.deepEqual(ok.status.audiences, ['spire-server']);
    assert.equal(ok.status.user?.username, `system:serviceaccount:${ns}:default`);
    const extra = ok.status.user?.extra ?? {};
    assert.deepEqual(extra['authentication.kubernetes.io/pod-name'], ['box']);
    assert.deepEqual(extra['authentication.kubernetes.io/pod-uid'], [pod.metadata.uid]);
    assert.deepEqual(extra['authentication.kubernetes.io/node-name'], ['localhost']);
    assert.deepEqual(extra['authentication.kubernetes.io/node-uid'], [node.metadata.uid]);

    const wrong = await tokenReview(env, tr.status.token, ['someone-else']);
    assert.notEqual(wrong.status.authenticated, true);
    assert.match(wrong.status.error ?? '', /audience/i);
  });

  it('answers the kubelet /pods with the admin token (200) and refuses it without (401)', async () => {
    const withToken = await httpCall(env, `${env.kubeletUrl}/pods`);
    assert.equal(withToken.status, 200, withToken.body);
    const list = JSON.parse(withToken.body) as { items: Pod[] };
    const mine = list.items.find((p) => p.metadata.namespace === ns && p.metadata.name === 'box');
    assert.ok(mine, 'the kubelet lists the test pod');
    assert.equal(mine.metadata.uid, pod.metadata.uid);
    assert.match(mine.status.containerStatuses?.[0]?.containerID ?? '', /^containerd:\/\//);

    const anon = await httpCall(env, `${env.kubeletUrl}/pods`, { token: null });
    assert.equal(anon.status, 401);
    const bad = await httpCall(env, `${env.kubeletUrl}/pods`, { token: 'not-a-token' });
    assert.equal(bad.status, 401);

    const ro = await httpCall(env, `${env.kubeletRoUrl}/pods`, { token: null });
    assert.equal(ro.status, 200);
    assert.ok((JSON.parse(ro.body) as { items: Pod[] }).items.some((p) => p.metadata.uid === pod.metadata.uid));
  });

  it('prints the same env on a second up, and `env` agrees', async () => {
    const again = parseEnvLines((await clusterSh('up')).stdout);
    assert.deepEqual(again, env.vars);
    const printed = parseEnvLines((await clusterSh('env', { ZTWIM_K8S_DIR: env.dir })).stdout);
    assert.deepEqual(printed, env.vars);
    assert.deepEqual(parseEnvLines(readFileSync(join(env.dir, 'env'), 'utf8')), env.vars);
  });
});

/** Pids whose command line has an argument under `dir`. */
function processesUnder(dir: string): string[] {
  const hits: string[] = [];
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    let args: string[];
    try {
      args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (args.some((a) => a === dir || a.startsWith(`${dir}/`))) hits.push(`${pid} ${args.join(' ').slice(0, 100)}`);
  }
  return hits;
}

function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m === dir || m.startsWith(`${dir}/`));
}

describe('k8s test cluster lifecycle (own dir, control plane only)', () => {
  let dir: string;
  let vars: NodeJS.ProcessEnv;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ztwim-k8s-lifecycle-'));
    ({ vars } = await controlPlaneVars(dir));
  });

  after(async () => {
    if (processesUnder(dir).length > 0) await clusterSh('down', vars).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts once when two ups race, and down leaves no process, mount or open port', async () => {
    // allSettled: when one fails, the other still runs to its end before the checks and cleanup.
    const [ra, rb] = await Promise.allSettled([clusterSh('up', vars), clusterSh('up', vars)]);
    if (ra.status === 'rejected') throw ra.reason;
    if (rb.status === 'rejected') throw rb.reason;
    const [a, b] = [ra.value, rb.value];
    const envA = parseEnvLines(a.stdout);
    assert.deepEqual(parseEnvLines(b.stdout), envA);
    const cp = controlPlaneEnvFrom(envA);
    assert.equal(cp.dir, dir);
    assert.equal(envA['ZTWIM_K8S_NODE_NAME'], undefined, 'WITH_NODE=0 prints no node variables');
    // One `up` started the components, the other only printed the env.
    assert.equal([a.stderr, b.stderr].filter((s) => s.includes('starting etcd')).length, 1, `${a.stderr}\n${b.stderr}`);
    const ready = await httpCall(cp, `${cp.apiserver}/readyz`);
    assert.equal(ready.status, 200);
    const running = processesUnder(dir);
    assert.equal(running.length, 4, running.join('\n'));

    const status = await clusterSh('status', vars);
    assert.match(status.stdout, /^kube-apiserver running \(pid \d+\)$/m);

    await kubectl(cp, ['create', 'namespace', 'kept-across-restart']);

    await clusterSh('down', vars);
    assert.deepEqual(processesUnder(dir), []);
    assert.deepEqual(mountsUnder(dir), []);
    await assert.rejects(httpCall(cp, `${cp.apiserver}/readyz`), /ECONNREFUSED/);
    assert.equal(existsSync(join(dir, 'env')), false);
    await assert.rejects(clusterSh('env', vars), /not \(fully\) running/);

    // A plain down keeps the state: the next up is the same cluster (same token, same objects).
    const again = parseEnvLines((await clusterSh('up', vars)).stdout);
    assert.deepEqual(again, envA);
    assert.equal((await kubectl(cp, ['get', 'namespace', 'kept-across-restart', '-o', 'name'])).trim(), 'namespace/kept-across-restart');

    await clusterSh('down', vars, ['--purge']);
    assert.deepEqual(processesUnder(dir), []);
    assert.equal(existsSync(join(dir, 'etcd')), false, '--purge removes the etcd data');
    assert.equal(existsSync(join(dir, 'pki', 'ca.crt')), true, '--purge keeps the PKI');
  });
});
