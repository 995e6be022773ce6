// KubeClient on @kubernetes/client-node 1.4.0 (pinned: 2.x needs Node >= 22.19). The library
// (~40 packages: node-fetch, openid-client, ws, ...) is imported only when a client is created,
// i.e. only when a k8s plugin is configured, so other commands never load it.
import { existsSync } from 'node:fs';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest, type RequestOptions as HttpsRequestOptions } from 'node:https';
import { ZtwimError, type ErrorCode } from '@ztwim/core';
import type { ConfigMapClient, KubeClient, KubeClientSource, KubeConfigMap, KubeNode, KubePod, TokenReviewStatus } from './kube-client.ts';

type ClientNodeModule = typeof import('@kubernetes/client-node');

let library: Promise<ClientNodeModule> | undefined;
function loadLibrary(): Promise<ClientNodeModule> {
  library ??= import('@kubernetes/client-node');
  return library;
}

/** The in-cluster service-account files (SPIRE and client-go read the same). */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** A loaded kubeconfig or in-cluster config: its description and a JSON request function. */
async function connect(source: KubeClientSource): Promise<Connection> {
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
  const send = makeSender(kc, cluster.server, cluster.proxyUrl !== undefined);
  const call = async <T>(what: string, method: Method, path: string, body?: unknown, contentType?: string): Promise<T> => {
    let res: { status: number; text: string };
    try {
      res = await send(method, path, body === undefined ? undefined : JSON.stringify(body), contentType);
    } catch (e) {
      throw transportError(description, what, e);
    }
    if (res.status < 200 || res.status > 299) {
      const msg = statusMessage(res.text) ?? (res.status === 401 ? 'Unauthorized' : `HTTP ${res.status}`);
      throw new ZtwimError(codeOfStatus(res.status), `k8s ${description}: ${what}: ${res.status} ${msg}`, { fields: { k8s_call: what, http_status: res.status } });
    }
    try {
      return JSON.parse(res.text) as T;
    } catch (e) {
      throw new ZtwimError('ERR_INTERNAL', `k8s ${description}: ${what}: response is not JSON: ${(e as Error).message}`, { cause: e, fields: { k8s_call: what, http_status: res.status } });
    }
  };
  return { description, call };
}

/**
 * Builds a KubeClient from a kubeconfig file (its current context) or the in-cluster config
 * (service-account token + CA + KUBERNETES_SERVICE_HOST/PORT). Configuration problems are
 * ERR_CONFIG errors naming the file or variable; the client reads nothing from the network here.
 */
export async function createKubeClient(source: KubeClientSource): Promise<KubeClient> {
  const { description, call } = await connect(source);
  return {
    description,
    async reviewToken(token, audiences) {
      const review = await call<WireTokenReview>('create TokenReview', 'POST', '/apis/authentication.k8s.io/v1/tokenreviews',
        { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences: [...audiences] } });
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
      const pod = await call<WirePod>(`get pod ${namespace}/${name}`, 'GET', `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(name)}`);
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
      const node = await call<WireNode>(`get node ${name}`, 'GET', `/api/v1/nodes/${encodeURIComponent(name)}`);
      return { name: node.metadata?.name ?? name, uid: node.metadata?.uid ?? '', labels: { ...node.metadata?.labels } } satisfies KubeNode;
    },
  };
}

/** A ConfigMapClient on the same request path as createKubeClient's (same sources, same errors). */
export async function createConfigMapClient(source: KubeClientSource): Promise<ConfigMapClient> {
  const { description, call } = await connect(source);
  const path = (ns: string, name: string): string => `/api/v1/namespaces/${encodeURIComponent(ns)}/configmaps/${encodeURIComponent(name)}`;
  const toConfigMap = (cm: WireConfigMap, ns: string, name: string): KubeConfigMap => ({
    namespace: cm.metadata?.namespace ?? ns,
    name: cm.metadata?.name ?? name,
    resourceVersion: cm.metadata?.resourceVersion ?? '',
    data: { ...cm.data },
  });
  return {
    description,
    async getConfigMap(namespace, name) {
      return toConfigMap(await call<WireConfigMap>(`get configmap ${namespace}/${name}`, 'GET', path(namespace, name)), namespace, name);
    },
    async patchConfigMapData(namespace, name, resourceVersion, data) {
      const cm = await call<WireConfigMap>(`patch configmap ${namespace}/${name}`, 'PATCH', path(namespace, name),
        { metadata: { resourceVersion }, data }, 'application/strategic-merge-patch+json');
      return toConfigMap(cm, namespace, name);
    },
  };
}

/** The parts of the apiserver's JSON the attestors read (plain JSON: no model classes). */
interface WireMeta { name?: string; namespace?: string; uid?: string; resourceVersion?: string; labels?: Record<string, string> }
interface WireConfigMap { metadata?: WireMeta; data?: Record<string, string> }
interface WireTokenReview {
  status?: { authenticated?: boolean; error?: string; audiences?: string[]; user?: { username?: string; uid?: string; groups?: string[]; extra?: Record<string, string[]> } };
}
interface WirePod { metadata?: WireMeta; spec?: { nodeName?: string; serviceAccountName?: string }; status?: { hostIP?: string } }
interface WireNode { metadata?: WireMeta }

interface Setup { dynamic: boolean; fixedHeaders: Record<string, string>; agent: HttpAgent | HttpsAgent }

type Method = 'GET' | 'POST' | 'PATCH';

interface Connection {
  readonly description: string;
  /** One JSON request; a non-2xx answer is a ZtwimError with fields.http_status. */
  call<T>(what: string, method: Method, path: string, body?: unknown, contentType?: string): Promise<T>;
}

type Send = (method: Method, path: string, body: string | undefined, contentType?: string) => Promise<{ status: number; text: string }>;

/**
 * The request path, written here rather than through the library's generated API classes: those
 * cost 10-25 ms per call on the test machine (a new https.Agent and re-reading the CA/cert/key
 * files on every request, node-fetch, model-class (de)serialisation of whole Pod/Node objects),
 * against ~1-3 ms for a plain keep-alive request. The library still loads the kubeconfig or
 * in-cluster config and supplies the credentials (TLS material once, through its public
 * applyToHTTPSOptions; the Authorization header per request when it can change: token files,
 * exec and auth-provider plugins), so every kind of credential it knows keeps working.
 * One keep-alive agent per client (as client-go keeps its connections); with a proxy, the
 * library's proxy agent, built once.
 */
function makeSender(kc: InstanceType<ClientNodeModule['KubeConfig']>, server: string, proxied: boolean): Send {
  const base = new URL(server);
  const basePath = base.pathname.replace(/\/+$/, '');
  const hostname = base.hostname.replace(/^\[(.*)\]$/, '$1'); // URL keeps an IPv6 address's brackets
  // Built on the first call (an exec plugin then runs when needed, not at startup); a failure
  // is that call's error and the next call tries again.
  let setup: Promise<Setup> | undefined;
  const init = async (): Promise<Setup> => {
    const once: HttpsRequestOptions = {};
    await kc.applyToHTTPSOptions(once);
    const user = kc.getCurrentUser();
    // Credentials that may change between calls go through the library each time (it caches them:
    // token files for 60 s as client-go, exec/auth-provider tokens until they expire).
    const dynamic = user?.exec !== undefined || user?.authProvider !== undefined;
    const fixedHeaders = headersOf(once);
    const secure = base.protocol === 'https:';
    let agent: HttpAgent | HttpsAgent;
    if (proxied) {
      agent = once.agent as HttpAgent | HttpsAgent;
    } else if (!secure) {
      agent = new HttpAgent({ keepAlive: true });
    } else {
      agent = new HttpsAgent({
        keepAlive: true,
        ...(once.ca === undefined ? {} : { ca: once.ca }),
        ...(once.cert === undefined ? {} : { cert: once.cert }),
        ...(once.key === undefined ? {} : { key: once.key }),
        ...(once.pfx === undefined ? {} : { pfx: once.pfx }),
        ...(once.passphrase === undefined ? {} : { passphrase: once.passphrase }),
        ...(once.rejectUnauthorized === undefined ? {} : { rejectUnauthorized: once.rejectUnauthorized }),
        ...(once.servername === undefined ? {} : { servername: once.servername }),
      });
    }
    return { dynamic, fixedHeaders, agent };
  };
  const request = base.protocol === 'https:' ? httpsRequest : httpRequest;
  return async (method, path, body, contentType) => {
    setup ??= init().catch((e: unknown) => {
      setup = undefined;
      throw e;
    });
    const { dynamic, fixedHeaders, agent } = await setup;
    let headers = fixedHeaders;
    if (dynamic) {
      const o: HttpsRequestOptions = {};
      await kc.applyToHTTPSOptions(o);
      headers = headersOf(o);
    }
    const h: Record<string, string> = { ...headers, accept: 'application/json' };
    if (body !== undefined) {
      h['content-type'] = contentType ?? 'application/json';
      h['content-length'] = String(Buffer.byteLength(body));
    }
    return new Promise((resolve, reject) => {
      const req = request({
        protocol: base.protocol, hostname, port: base.port, path: `${basePath}${path}`, method, headers: h, agent,
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  };
}

/** The headers the library put on an options object (Authorization, Impersonate-User, basic auth). */
function headersOf(o: HttpsRequestOptions): Record<string, string> {
  const h: Record<string, string> = {};
  for (const [k, v] of Object.entries(o.headers ?? {})) {
    if (v !== undefined) h[k] = Array.isArray(v) ? v.join(', ') : String(v);
  }
  if (typeof o.auth === 'string') h.Authorization = `Basic ${Buffer.from(o.auth).toString('base64')}`;
  return h;
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

/** A request that got no HTTP answer (refused, reset, TLS failure): unavailable, naming the call. */
function transportError(description: string, what: string, e: unknown): ZtwimError {
  const err = e as NodeJS.ErrnoException;
  const sys = err.code;
  return new ZtwimError('ERR_UNAVAILABLE', `k8s ${description}: ${what}: ${sys === undefined ? err.message : `${sys}: ${err.message}`}`, { cause: e, fields: { k8s_call: what } });
}
