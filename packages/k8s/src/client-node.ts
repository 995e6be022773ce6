// KubeClient on @kubernetes/client-node 1.4.0 (pinned: 2.x needs Node >= 22.19). The library
// (~40 packages: node-fetch, openid-client, ws, ...) is imported only when a client is created,
// i.e. only when a k8s plugin is configured, so other commands never load it.
import { existsSync } from 'node:fs';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent, type RequestOptions as HttpsRequestOptions } from 'node:https';
import { ZtwimError, type ErrorCode } from '@ztwim/core';
import type { KubeClient, KubeClientSource, KubeNode, KubePod, TokenReviewStatus } from './kube-client.ts';

type ClientNodeModule = typeof import('@kubernetes/client-node');

let library: Promise<ClientNodeModule> | undefined;
function loadLibrary(): Promise<ClientNodeModule> {
  library ??= import('@kubernetes/client-node');
  return library;
}

/** The in-cluster service-account files (SPIRE and client-go read the same). */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/**
 * Builds a KubeClient from a kubeconfig file (its current context) or the in-cluster config
 * (service-account token + CA + KUBERNETES_SERVICE_HOST/PORT). Configuration problems are
 * ERR_CONFIG errors naming the file or variable; the client reads nothing from the network here.
 */
export async function createKubeClient(source: KubeClientSource): Promise<KubeClient> {
  const k8s = await loadLibrary();
  const kc = new k8s.KubeConfig();
  let where: string;
  if (source.kind === 'kubeconfig') {
    where = `kubeconfig ${source.path}`;
    try {
      kc.loadFromFile(source.path);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      const reason = err.code === 'ENOENT' ? 'no such file' : err.code === 'EACCES' ? 'permission denied' : err.message;
      throw new ZtwimError('ERR_CONFIG', `k8s: cannot load kubeconfig ${source.path}: ${reason}`, { cause: e, fields: { kubeconfig: source.path } });
    }
  } else {
    const env = source.env ?? process.env;
    const prefix = source.pathPrefix ?? '';
    where = 'in-cluster config';
    const host = env.KUBERNETES_SERVICE_HOST;
    const port = env.KUBERNETES_SERVICE_PORT;
    if (host === undefined || host === '' || port === undefined || port === '') {
      throw new ZtwimError('ERR_CONFIG', 'k8s: in-cluster config needs KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT (not running in a pod? set kube_config_file)');
    }
    for (const f of ['token', 'ca.crt']) {
      const p = `${prefix}${SERVICE_ACCOUNT_DIR}/${f}`;
      if (!existsSync(p)) throw new ZtwimError('ERR_CONFIG', `k8s: in-cluster config: ${p} does not exist (not running in a pod? set kube_config_file)`, { fields: { file: p } });
    }
    // loadFromCluster reads the variables from process.env only; pass ours through a copy.
    const saved = { host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT };
    process.env.KUBERNETES_SERVICE_HOST = host;
    process.env.KUBERNETES_SERVICE_PORT = port;
    try {
      kc.loadFromCluster(prefix);
    } finally {
      restoreEnv('KUBERNETES_SERVICE_HOST', saved.host);
      restoreEnv('KUBERNETES_SERVICE_PORT', saved.port);
    }
  }
  const cluster = kc.getCurrentCluster();
  if (cluster === null) throw new ZtwimError('ERR_CONFIG', `k8s: ${where} has no current cluster (check current-context)`);
  const description = `cluster "${cluster.name}" (${cluster.server})`;
  // As kc.makeApiClient, but with connections kept open (keepAliveAuth).
  const config = k8s.createConfiguration({
    baseServer: new k8s.ServerConfiguration(cluster.server, {}),
    authMethods: { default: cluster.proxyUrl === undefined ? keepAliveAuth(kc, cluster.server) : kc },
  });
  const auth = new k8s.AuthenticationV1Api(config);
  const core = new k8s.CoreV1Api(config);
  const call = async <T>(what: string, f: () => Promise<T>): Promise<T> => {
    try {
      return await f();
    } catch (e) {
      throw kubeError(description, what, e, k8s);
    }
  };
  return {
    description,
    async reviewToken(token, audiences) {
      const review = await call('create TokenReview', () =>
        auth.createTokenReview({ body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences: [...audiences] } } }),
      );
      const s = review.status ?? {};
      const extra: Record<string, readonly string[]> = {};
      for (const [k, v] of Object.entries(s.user?.extra ?? {})) extra[k] = [...v];
      return {
        authenticated: s.authenticated === true,
        error: s.error ?? '',
        audiences: s.audiences ?? [],
        user: { username: s.user?.username ?? '', uid: s.user?.uid ?? '', groups: s.user?.groups ?? [], extra },
      } satisfies TokenReviewStatus;
    },
    async getPod(namespace, name) {
      const pod = await call(`get pod ${namespace}/${name}`, () => core.readNamespacedPod({ name, namespace }));
      return {
        namespace: pod.metadata?.namespace ?? namespace,
        name: pod.metadata?.name ?? name,
        uid: pod.metadata?.uid ?? '',
        nodeName: pod.spec?.nodeName ?? '',
        hostIp: pod.status?.hostIP ?? '',
        serviceAccountName: pod.spec?.serviceAccountName ?? '',
        labels: { ...pod.metadata?.labels },
      } satisfies KubePod;
    },
    async getNode(name) {
      const node = await call(`get node ${name}`, () => core.readNode({ name }));
      return { name: node.metadata?.name ?? name, uid: node.metadata?.uid ?? '', labels: { ...node.metadata?.labels } } satisfies KubeNode;
    },
  };
}

/**
 * The library makes a new https.Agent for every request, so each call paid a TCP and TLS
 * handshake (3 per k8s_psat attestation, 20-40 ms each on the test machine; client-go keeps its
 * connections). This authentication wrapper lets the kubeconfig set the request up as usual
 * (headers: bearer tokens, token files, exec plugins) and then swaps in one keep-alive agent per
 * client, built once from the same TLS material (CA, client certificate and key). Not used with
 * a proxy (the library's proxy agents stay).
 */
function keepAliveAuth(kc: InstanceType<ClientNodeModule['KubeConfig']>, server: string): import('@kubernetes/client-node').SecurityAuthentication {
  let agent: Promise<HttpAgent | HttpsAgent> | undefined;
  const build = async (): Promise<HttpAgent | HttpsAgent> => {
    if (server.startsWith('http:')) return new HttpAgent({ keepAlive: true });
    const o: HttpsRequestOptions = {};
    await kc.applyToHTTPSOptions(o);
    return new HttpsAgent({
      keepAlive: true,
      ...(o.ca === undefined ? {} : { ca: o.ca }),
      ...(o.cert === undefined ? {} : { cert: o.cert }),
      ...(o.key === undefined ? {} : { key: o.key }),
      ...(o.pfx === undefined ? {} : { pfx: o.pfx }),
      ...(o.passphrase === undefined ? {} : { passphrase: o.passphrase }),
      ...(o.rejectUnauthorized === undefined ? {} : { rejectUnauthorized: o.rejectUnauthorized }),
    });
  };
  return {
    getName: () => 'ztwim-keep-alive',
    async applySecurityAuthentication(context) {
      await kc.applySecurityAuthentication(context);
      agent ??= build().catch((e: unknown) => {
        agent = undefined;
        throw e;
      });
      context.setAgent(await agent);
    },
  };
}

function restoreEnv(k: string, v: string | undefined): void {
  if (v === undefined) delete process.env[k];
  else process.env[k] = v;
}

/** HTTP status of an API error → our code: the caller's credentials or the object, never Internal for those. */
function codeOfStatus(status: number): ErrorCode {
  if (status === 404) return 'ERR_NOT_FOUND';
  if (status === 401) return 'ERR_UNAUTHENTICATED';
  if (status === 403) return 'ERR_PERMISSION_DENIED';
  if (status === 429 || status >= 500) return 'ERR_UNAVAILABLE';
  return 'ERR_INTERNAL';
}

/** The apiserver's Status message from an error body (object or JSON text), if any. */
function statusMessage(body: unknown): string | undefined {
  let b = body;
  if (typeof body === 'string') {
    try {
      b = JSON.parse(body);
    } catch {
      return body.trim() === '' ? undefined : body.trim().slice(0, 300);
    }
  }
  if (typeof b === 'object' && b !== null && typeof (b as { message?: unknown }).message === 'string') return (b as { message: string }).message;
  return undefined;
}

function kubeError(description: string, what: string, e: unknown, k8s: ClientNodeModule): ZtwimError {
  if (e instanceof k8s.ApiException) {
    const status = (e as InstanceType<typeof k8s.ApiException<unknown>>).code;
    const msg = statusMessage((e as InstanceType<typeof k8s.ApiException<unknown>>).body) ?? (status === 401 ? 'Unauthorized' : `HTTP ${status}`);
    return new ZtwimError(codeOfStatus(status), `k8s ${description}: ${what}: ${status} ${msg}`, { cause: e, fields: { k8s_call: what, http_status: status } });
  }
  const err = e as NodeJS.ErrnoException & { cause?: { code?: string } };
  const sys = err.code ?? err.cause?.code;
  return new ZtwimError('ERR_UNAVAILABLE', `k8s ${description}: ${what}: ${sys === undefined ? err.message : `${sys}: ${err.message}`}`, { cause: e, fields: { k8s_call: what } });
}
