// KubeClient on @kubernetes/client-node 1.4.0 (pinned: 2.x needs Node >= 22.19). The library
// (~40 packages: node-fetch, openid-client, ws, ...) is imported only when a client is created,
// i.e. only when a k8s plugin is configured, so other commands never load it.
import { existsSync } from 'node:fs';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent, type RequestOptions as HttpsRequestOptions } from 'node:https';
import { systemClock, ZtwimError, type Clock } from '@ztwim/core';
import { apiError, transportError } from './api-errors.ts';
import { exchange, openStream } from './http-exchange.ts';
import type { KubeClient, KubeClientSource, KubeNode, KubePod, TokenReviewStatus } from './kube-client.ts';
import { DEFAULT_REQUEST_TIMEOUT_MS, type KubeTransport } from './kube-transport.ts';
import { ResourceClient } from './resource-client.ts';

type ClientNodeModule = typeof import('@kubernetes/client-node');

let library: Promise<ClientNodeModule> | undefined;
function loadLibrary(): Promise<ClientNodeModule> {
  library ??= import('@kubernetes/client-node');
  return library;
}

/** The in-cluster service-account files (SPIRE and client-go read the same). */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface TransportOptions {
  /** Deadline of one call (default 30 s). */
  readonly requestTimeoutMs?: number;
  readonly clock?: Clock;
}

/**
 * Builds the apiserver transport from a kubeconfig file (its current context) or the in-cluster
 * config (service-account token + CA + KUBERNETES_SERVICE_HOST/PORT). Configuration problems are
 * ERR_CONFIG errors naming the file or variable; nothing is read from the network here.
 */
export async function createKubeTransport(source: KubeClientSource, options: TransportOptions = {}): Promise<KubeTransport> {
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
      throw new ZtwimError(
        'ERR_CONFIG',
        'k8s: in-cluster config needs KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT (not running in a pod? set kube_config_file)',
      );
    }
    for (const f of ['token', 'ca.crt']) {
      const p = `${prefix}${SERVICE_ACCOUNT_DIR}/${f}`;
      if (!existsSync(p))
        throw new ZtwimError('ERR_CONFIG', `k8s: in-cluster config: ${p} does not exist (not running in a pod? set kube_config_file)`, { fields: { file: p } });
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
  return makeTransport(kc, description, cluster.server, cluster.proxyUrl !== undefined, options);
}

/**
 * Builds a KubeClient (the attestors' narrow view) on a transport from createKubeTransport.
 */
export async function createKubeClient(source: KubeClientSource, options: TransportOptions = {}): Promise<KubeClient> {
  const transport = await createKubeTransport(source, options);
  const { description } = transport;
  const call = async <T>(what: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> => {
    let res: { status: number; text: string };
    try {
      res = await transport.request(body === undefined ? { method, path } : { method, path, body: JSON.stringify(body) });
    } catch (e) {
      throw transportError(description, what, e);
    }
    if (res.status < 200 || res.status > 299) throw apiError(description, what, res.status, res.text);
    try {
      return JSON.parse(res.text) as T;
    } catch (e) {
      throw new ZtwimError('ERR_INTERNAL', `k8s ${description}: ${what}: response is not JSON: ${(e as Error).message}`, {
        cause: e,
        fields: { k8s_call: what, http_status: res.status },
      });
    }
  };
  return {
    description,
    async reviewToken(token, audiences) {
      const review = await call<WireTokenReview>('create TokenReview', 'POST', '/apis/authentication.k8s.io/v1/tokenreviews', {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenReview',
        spec: { token, audiences: [...audiences] },
      });
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
      const pod = await call<WirePod>(
        `get pod ${namespace}/${name}`,
        'GET',
        `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(name)}`,
      );
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

/** The parts of the apiserver's JSON the attestors read (plain JSON: no model classes). */
interface WireMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  labels?: Record<string, string>;
}
interface WireTokenReview {
  status?: {
    authenticated?: boolean;
    error?: string;
    audiences?: string[];
    user?: { username?: string; uid?: string; groups?: string[]; extra?: Record<string, string[]> };
  };
}
interface WirePod {
  metadata?: WireMeta;
  spec?: { nodeName?: string; serviceAccountName?: string };
  status?: { hostIP?: string };
}
interface WireNode {
  metadata?: WireMeta;
}

interface Setup {
  dynamic: boolean;
  fixedHeaders: Record<string, string>;
  agent: HttpAgent | HttpsAgent;
}

/**
 * The request path, written here rather than through the library's generated API classes: those
 * cost 10-25 ms per call on the test machine (a new https.Agent and re-reading the CA/cert/key
 * files on every request, node-fetch, model-class (de)serialisation of whole Pod/Node objects),
 * against ~1-3 ms for a plain keep-alive request; the library's Watch likewise builds a new agent
 * per watch and gives no deadline until the headers arrive. The library still loads the kubeconfig
 * or in-cluster config and supplies the credentials (TLS material once, through its public
 * applyToHTTPSOptions; the Authorization header per request when it can change: token files,
 * exec and auth-provider plugins), so every kind of credential it knows keeps working.
 * One keep-alive agent per client (as client-go keeps its connections); with a proxy, the
 * library's proxy agent, built once. Every call has a deadline (30 s by default).
 */
function makeTransport(
  kc: InstanceType<ClientNodeModule['KubeConfig']>,
  description: string,
  server: string,
  proxied: boolean,
  options: TransportOptions,
): KubeTransport {
  const base = new URL(server);
  const basePath = base.pathname.replace(/\/+$/, '');
  const clock = options.clock ?? systemClock;
  const defaultTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
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
  const prepare = async (): Promise<{ agent: HttpAgent; headers: Record<string, string> }> => {
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
    return { agent, headers: { ...headers, accept: 'application/json' } };
  };
  const urlOf = (path: string): URL => new URL(`${base.protocol}//${base.host}${basePath}${path}`);
  return {
    description,
    async request(req) {
      const { agent, headers } = await prepare();
      if (req.body !== undefined) {
        headers['content-type'] = req.contentType ?? 'application/json';
        headers['content-length'] = String(Buffer.byteLength(req.body));
      }
      const answer = await exchange({
        url: urlOf(req.path),
        method: req.method,
        headers,
        agent,
        clock,
        timeoutMs: req.timeoutMs ?? defaultTimeoutMs,
        ...(req.body === undefined ? {} : { body: req.body }),
        ...(req.signal === undefined ? {} : { signal: req.signal }),
      });
      return { status: answer.status, text: answer.body.toString('utf8') };
    },
    async stream(path, signal) {
      const { agent, headers } = await prepare();
      return openStream({ url: urlOf(path), method: 'GET', headers, agent, clock, timeoutMs: defaultTimeoutMs, signal });
    },
    close() {
      setup?.then(
        (s) => s.agent.destroy(),
        () => undefined,
      );
    },
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

/** A ResourceClient on a new transport (see createKubeTransport). */
export async function createResourceClient(source: KubeClientSource, options: TransportOptions = {}): Promise<ResourceClient> {
  return new ResourceClient(await createKubeTransport(source, options), options.clock === undefined ? {} : { clock: options.clock });
}
