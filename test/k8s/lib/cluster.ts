// The project's Kubernetes test cluster (scripts/k8s/cluster.sh) as the tests see it.
//
// `ensureCluster()` runs `cluster.sh up` (idempotent and locked: the first caller starts the
// cluster, later ones get the env of the running one) and returns its env as typed fields. When
// the binaries or Debian packages are missing the error names the command that installs them:
// the k8s tests fail then, they never skip.
import { execFile, type ExecFileException } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after } from 'node:test';
import { lockDataDir, ZtwimError } from '@ztwim/core';
import { REPO_ROOT } from '../../interop/lib/peers.js';
import { until } from '../../interop/lib/wait.js';

/** `cluster.sh` of this checkout; ZTWIM_K8S_CLUSTER_SH points at another copy. */
export const CLUSTER_SH = process.env['ZTWIM_K8S_CLUSTER_SH'] ?? join(REPO_ROOT, 'scripts', 'k8s', 'cluster.sh');

/** The variables `cluster.sh up` prints (and writes to `$ZTWIM_K8S_DIR/env`), typed. */
export interface ClusterEnv {
  /** KUBECONFIG: the admin kubeconfig (client cert O=system:masters). */
  kubeconfig: string;
  /** PATH with the Kubernetes bin dir first (kubectl, etcdctl, csi-sanity). */
  path: string;
  /** ZTWIM_K8S_DIR: the cluster's state dir. */
  dir: string;
  /** ZTWIM_K8S_BIN: dir of kube-apiserver, kubectl, kubelet, etcd, csi-sanity. */
  bin: string;
  /** ZTWIM_K8S_APISERVER: https URL of the apiserver. */
  apiserver: string;
  /** ZTWIM_K8S_CA: the cluster CA (PEM file); it signs the apiserver's and the kubelet's serving certs. */
  ca: string;
  /** ZTWIM_K8S_ADMIN_TOKEN: a static bearer token of user `admin` (group system:masters). */
  adminToken: string;
  /** ZTWIM_K8S_CLUSTER_NAME (`test`). */
  clusterName: string;
  /** ZTWIM_K8S_SA_ISSUER: the service account token issuer. */
  saIssuer: string;
  /** ZTWIM_K8S_NODE_NAME (`localhost`). */
  nodeName: string;
  /** ZTWIM_K8S_KUBELET_URL: https URL of the kubelet's authenticated port. */
  kubeletUrl: string;
  /** ZTWIM_K8S_KUBELET_RO_URL: http URL of the kubelet's read-only port. */
  kubeletRoUrl: string;
  /** ZTWIM_K8S_KUBELET_ROOT: the kubelet's --root-dir (pods/, plugins_registry/). */
  kubeletRoot: string;
  /** ZTWIM_K8S_KUBELET_CERT: the kubelet's serving certificate (signed by `ca`). */
  kubeletCert: string;
  /** ZTWIM_K8S_CONTAINERD_SOCK: containerd's socket (`ctr -a SOCK -n k8s.io ...`). */
  containerdSock: string;
  /** Every variable as printed, with PATH expanded: pass it as a child process's env. */
  vars: Record<string, string>;
}

/** The env of a cluster without a node (`WITH_NODE=0`): the node fields are absent. */
export type ControlPlaneEnv = Omit<ClusterEnv, 'nodeName' | 'kubeletUrl' | 'kubeletRoUrl' | 'kubeletRoot' | 'kubeletCert' | 'containerdSock'>;

/** Parses `export NAME='value'` lines; `$PATH` in a value becomes `basePath`. */
export function parseEnvLines(text: string, basePath = process.env['PATH'] ?? ''): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const m = /^export ([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line);
    if (m === null) throw new Error(`cluster.sh printed an unexpected line: ${JSON.stringify(line)}`);
    const [, name = '', raw = ''] = m;
    // Values are single-quoted pieces and the literal "$PATH" (cluster.sh writes nothing else).
    const parts = raw.match(/'[^']*'|"\$PATH"|\$PATH|:/g) ?? [];
    if (parts.join('') !== raw) throw new Error(`cannot parse the value of ${name}: ${raw}`);
    vars[name] = parts.map((p) => (p.startsWith("'") ? p.slice(1, -1) : p === ':' ? ':' : basePath)).join('');
  }
  return vars;
}

function need(vars: Record<string, string>, name: string): string {
  const v = vars[name];
  if (v === undefined || v === '') throw new Error(`cluster.sh did not print ${name} (is this a WITH_NODE=0 cluster?)`);
  return v;
}

export function controlPlaneEnvFrom(vars: Record<string, string>): ControlPlaneEnv {
  return {
    kubeconfig: need(vars, 'KUBECONFIG'),
    path: need(vars, 'PATH'),
    dir: need(vars, 'ZTWIM_K8S_DIR'),
    bin: need(vars, 'ZTWIM_K8S_BIN'),
    apiserver: need(vars, 'ZTWIM_K8S_APISERVER'),
    ca: need(vars, 'ZTWIM_K8S_CA'),
    adminToken: need(vars, 'ZTWIM_K8S_ADMIN_TOKEN'),
    clusterName: need(vars, 'ZTWIM_K8S_CLUSTER_NAME'),
    saIssuer: need(vars, 'ZTWIM_K8S_SA_ISSUER'),
    vars,
  };
}

export function clusterEnvFrom(vars: Record<string, string>): ClusterEnv {
  return {
    ...controlPlaneEnvFrom(vars),
    nodeName: need(vars, 'ZTWIM_K8S_NODE_NAME'),
    kubeletUrl: need(vars, 'ZTWIM_K8S_KUBELET_URL'),
    kubeletRoUrl: need(vars, 'ZTWIM_K8S_KUBELET_RO_URL'),
    kubeletRoot: need(vars, 'ZTWIM_K8S_KUBELET_ROOT'),
    kubeletCert: need(vars, 'ZTWIM_K8S_KUBELET_CERT'),
    containerdSock: need(vars, 'ZTWIM_K8S_CONTAINERD_SOCK'),
  };
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

/** Runs a command; rejects with its exit status and stderr in the message. */
export function run(file: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      { env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 60_000, maxBuffer: 64 << 20, encoding: 'utf8' },
      (err: ExecFileException | null, stdout: string, stderr: string) => {
        if (err !== null) {
          const why = err.killed ? `killed after ${opts.timeoutMs ?? 60_000} ms` : `exit ${String(err.code)}`;
          reject(new Error(`${file} ${args.join(' ')}: ${why}\n${stderr.trim()}`));
        } else {
          resolve({ stdout, stderr });
        }
      },
    );
    // A command that exits before reading its stdin (`env` on a stopped cluster) closes the pipe:
    // its exit status above says what happened, the EPIPE on our side says nothing more.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(opts.input ?? '');
  });
}

/** `cluster.sh <cmd> [args]` with extra environment (ZTWIM_K8S_DIR, WITH_NODE, ports). */
export async function clusterSh(
  cmd: 'up' | 'down' | 'env' | 'status',
  extraEnv: NodeJS.ProcessEnv = {},
  extraArgs: readonly string[] = [],
): Promise<RunResult> {
  return await run('bash', [CLUSTER_SH, cmd, ...extraArgs], { env: { ...process.env, ...extraEnv }, timeoutMs: 15 * 60_000 });
}

let shared: Promise<ClusterEnv> | undefined;

/**
 * Brings up (or joins) the shared cluster at `${ZTWIM_K8S_DIR:-/tmp/ztwim-k8s}` with its node and
 * returns its env. Never stop it from a test: other test files and developers use it.
 */
export function ensureCluster(): Promise<ClusterEnv> {
  shared ??= (async () => {
    let out: RunResult | undefined;
    // One more try when a component died while starting: seen once in CI (kube-apiserver gone
    // 0.3 s after its start, the next `up` a moment later fine); the first failure is printed.
    for (let attempt = 1; out === undefined; attempt++) {
      try {
        out = await clusterSh('up', { WITH_NODE: '1' });
      } catch (e) {
        const message = (e as Error).message;
        if (attempt < 2 && message.includes('exited while starting')) {
          process.stderr.write(`ensureCluster: ${CLUSTER_SH} up failed, trying once more:\n${message}\n`);
          continue;
        }
        shared = undefined;
        throw new Error(`the Kubernetes test cluster did not come up (${CLUSTER_SH} up):\n${message}`);
      }
    }
    return clusterEnvFrom(parseEnvLines(out.stdout));
  })();
  return shared;
}

/** The environment a child process needs to use the cluster (KUBECONFIG, PATH, ZTWIM_K8S_*). */
export function childEnv(env: ControlPlaneEnv): NodeJS.ProcessEnv {
  return { ...process.env, ...env.vars };
}

/** Runs the built kubectl against the cluster; resolves with stdout. */
export async function kubectl(env: ControlPlaneEnv, args: readonly string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<string> {
  const o: { env: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = { env: childEnv(env) };
  if (opts.input !== undefined) o.input = opts.input;
  if (opts.timeoutMs !== undefined) o.timeoutMs = opts.timeoutMs;
  return (await run(join(env.bin, 'kubectl'), ['--kubeconfig', env.kubeconfig, ...args], o)).stdout;
}

/** `kubectl apply -f -` of a YAML/JSON document (or several). */
export async function applyManifest(env: ControlPlaneEnv, yaml: string): Promise<string> {
  return await kubectl(env, ['apply', '-f', '-'], { input: yaml });
}

/** Polls `fn` every 200 ms until it returns a value; throws naming `what` after `ms`. */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, ms = 60_000): Promise<T> {
  return await until(what, fn, ms);
}

/** The parts of a Pod the tests read. */
export interface Pod {
  metadata: { name: string; namespace: string; uid: string; labels?: Record<string, string> };
  spec: { nodeName?: string; serviceAccountName?: string };
  status: {
    phase?: string;
    reason?: string;
    message?: string;
    containerStatuses?: Array<{
      name: string;
      containerID?: string;
      ready: boolean;
      state?: { waiting?: { reason?: string; message?: string }; running?: object; terminated?: { reason?: string; exitCode?: number } };
    }>;
  };
}

// Waiting reasons that never resolve by themselves: fail at once instead of timing out.
const HOPELESS = new Set([
  'ErrImageNeverPull',
  'InvalidImageName',
  'CreateContainerConfigError',
  'CreateContainerError',
  'CrashLoopBackOff',
  'RunContainerError',
]);

/** Waits until the pod is Running with every container ready; returns it. */
export async function waitPodRunning(env: ControlPlaneEnv, ns: string, name: string, ms = 90_000): Promise<Pod> {
  let last = 'not created yet';
  try {
    return await waitFor(
      `pod ${ns}/${name} Running`,
      async () => {
        let pod: Pod;
        try {
          pod = JSON.parse(await kubectl(env, ['get', 'pod', '-n', ns, name, '-o', 'json'])) as Pod;
        } catch {
          return undefined;
        }
        const statuses = pod.status.containerStatuses ?? [];
        last = `phase ${pod.status.phase ?? '?'}${pod.status.reason !== undefined ? ` (${pod.status.reason}: ${pod.status.message ?? ''})` : ''}; ${statuses
          .map(
            (c) =>
              `${c.name}: ${c.state?.waiting?.reason ?? (c.state?.terminated !== undefined ? `terminated ${c.state.terminated.reason ?? ''}` : c.ready ? 'ready' : 'not ready')} ${c.state?.waiting?.message ?? ''}`,
          )
          .join(', ')}`;
        if (pod.status.phase === 'Failed' || pod.status.phase === 'Succeeded') throw new Error(`pod ${ns}/${name} ended: ${last}`);
        const hopeless = statuses.find((c) => HOPELESS.has(c.state?.waiting?.reason ?? ''));
        if (hopeless !== undefined) throw new Error(`pod ${ns}/${name} cannot start: ${last}`);
        return pod.status.phase === 'Running' && statuses.length > 0 && statuses.every((c) => c.ready) ? pod : undefined;
      },
      ms,
    );
  } catch (e) {
    const msg = (e as Error).message;
    if (msg.startsWith('timed out')) {
      const events = await kubectl(env, ['get', 'events', '-n', ns, '--field-selector', `involvedObject.name=${name}`]).catch(() => '');
      throw new Error(`${msg}: ${last}\n${events}`);
    }
    throw e;
  }
}

const namespacesToDelete: Array<{ env: ControlPlaneEnv; ns: string }> = [];

// One `after()` on the test file's root deletes every namespace createNamespace made. It is
// registered when this module loads: node:test attaches `after()` to the test or hook it is
// called from, so a call from inside a `before()` hook would run as soon as that hook ends.
after(async () => {
  await Promise.all(namespacesToDelete.splice(0).map(({ env, ns }) => kubectl(env, ['delete', 'namespace', ns, '--wait=false', '--ignore-not-found'])));
});

/**
 * A fresh namespace `<prefix>-<random>`, ready for pods (its `default` ServiceAccount exists),
 * deleted (without waiting for its objects to go) after the test file's tests.
 */
export async function createNamespace(env: ControlPlaneEnv, prefix: string): Promise<string> {
  const ns = `${prefix}-${randomBytes(4).toString('hex')}`;
  await kubectl(env, ['create', 'namespace', ns]);
  namespacesToDelete.push({ env, ns });
  await waitFor(`ServiceAccount ${ns}/default`, async () => {
    try {
      await kubectl(env, ['get', 'serviceaccount', '-n', ns, 'default', '-o', 'name']);
      return true;
    } catch {
      return undefined;
    }
  });
  return ns;
}

export interface HttpResult {
  status: number;
  body: string;
}

/**
 * One HTTP(S) request to the apiserver or the kubelet, checking TLS with the cluster CA.
 * `token` is sent as a bearer token; `null` sends none.
 */
export function httpCall(env: ControlPlaneEnv, url: string, opts: { method?: string; token?: string | null; body?: unknown } = {}): Promise<HttpResult> {
  const u = new URL(url);
  const headers: Record<string, string> = { accept: 'application/json' };
  const token = opts.token === undefined ? env.adminToken : opts.token;
  if (token !== null) headers['authorization'] = `Bearer ${token}`;
  const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body);
  if (payload !== undefined) headers['content-type'] = 'application/json';
  return new Promise((resolve, reject) => {
    const done = (res: import('node:http').IncomingMessage): void => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    };
    const common = { method: opts.method ?? (payload === undefined ? 'GET' : 'POST'), headers, timeout: 30_000 };
    const req = u.protocol === 'https:' ? httpsRequest(u, { ...common, ca: readFileSync(env.ca) }, done) : httpRequest(u, common, done);
    req.on('timeout', () => req.destroy(new Error(`${url}: no answer in 30 s`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** A JSON request to the apiserver (`path` like `/api/v1/...`); rejects on a non-2xx status. */
export async function apiJson<T>(env: ControlPlaneEnv, path: string, opts: { method?: string; body?: unknown } = {}): Promise<T> {
  const r = await httpCall(env, `${env.apiserver}${path}`, opts);
  if (r.status < 200 || r.status > 299) throw new Error(`${opts.method ?? 'GET'} ${path}: HTTP ${r.status}: ${r.body}`);
  return JSON.parse(r.body) as T;
}

/**
 * Holds @ztwim/core's PID-file lock `file` in `dir` (waiting up to `ms` for another holder) until
 * the returned release is called; a holder that is gone (a killed test run) is taken over, and
 * the lock goes when this process exits. `what` names it in errors.
 */
export async function holdFileLock(dir: string, file: string, what: string, ms = 600_000): Promise<() => void> {
  const lock = await waitFor(
    `the lock on ${what} in ${dir}`,
    () => {
      try {
        return lockDataDir(dir, { what, moveWith: 'another cluster', file });
      } catch (e) {
        if (e instanceof ZtwimError && e.code === 'ERR_FAILED_PRECONDITION') return undefined;
        throw e;
      }
    },
    ms,
  );
  return () => lock.release();
}

/**
 * Holds the node-wide lock on kubelet plugin `name` (e.g. csi.spiffe.io) until the returned
 * release is called: only one plugin of a name can register with the shared kubelet, and the
 * k8s suite runs test files at once (csi-driver.test.ts's host process, e2e.test.ts's DaemonSet).
 */
export async function holdKubeletPlugin(env: ControlPlaneEnv, name: string, ms = 600_000): Promise<() => void> {
  return await holdFileLock(join(env.dir, 'locks'), `kubelet-plugin-${name}.lock`, `kubelet plugin ${name}`, ms);
}

/** The part of the node's CSINode the tests read. */
export interface CsiNode {
  spec: { drivers?: Array<{ name: string; nodeID: string }> | null };
}

/** The CSI drivers registered with the node's kubelet (CSINode), [] before it exists. */
export async function csiNodeDrivers(env: ClusterEnv): Promise<string[]> {
  try {
    const n = JSON.parse(await kubectl(env, ['get', 'csinode', env.nodeName, '-o', 'json'])) as CsiNode;
    return (n.spec.drivers ?? []).map((d) => d.name);
  } catch {
    return [];
  }
}

/**
 * Writes a kubeconfig at `path` for ServiceAccount `<ns>:<sa>`: a (not pod-bound) token from the
 * TokenRequest API for the apiserver's own audience, and the cluster CA. A process using it has
 * exactly the RBAC bound to that ServiceAccount.
 */
export async function serviceAccountKubeconfig(env: ControlPlaneEnv, ns: string, sa: string, path: string, expirationSeconds = 7200): Promise<string> {
  const token = await waitFor(
    `token of ${ns}:${sa}`,
    async () =>
      (
        await apiJson<{ status: { token: string } }>(env, `/api/v1/namespaces/${ns}/serviceaccounts/${sa}/token`, {
          body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds } },
        }).catch(() => undefined)
      )?.status.token,
  );
  writeFileSync(
    path,
    `apiVersion: v1
kind: Config
clusters:
- name: ${env.clusterName}
  cluster:
    server: ${env.apiserver}
    certificate-authority: ${env.ca}
users:
- name: ${sa}
  user:
    token: ${token}
contexts:
- name: ${sa}
  context: {cluster: ${env.clusterName}, user: ${sa}}
current-context: ${sa}
`,
    { mode: 0o600 },
  );
  return path;
}
