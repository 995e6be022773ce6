// The kubelet's `/pods` over its secure port (or the read-only port), authenticated and verified
// as SPIRE v1.13's k8s workload attestor does it, with the credentials and CA read again from disk
// every reload_interval (projected service account tokens rotate). Node's https: one keep-alive
// agent per loaded credential set, like Go's http.Transport.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { X509Certificate } from 'node:crypto';

import { ZtwimError, silentLogger, systemClock, type Clock, type Logger } from '@ztwim/core';
import { exchange, type HttpAnswer } from '@ztwim/k8s/http-exchange';

export const DEFAULT_SECURE_KUBELET_PORT = 10250;
export const DEFAULT_KUBELET_CA_PATH = '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt';
export const DEFAULT_TOKEN_PATH = '/var/run/secrets/kubernetes.io/serviceaccount/token';
export const DEFAULT_RELOAD_INTERVAL_MS = 60_000;
const REQUEST_TIMEOUT_MS = 10_000;

export interface KubeletClientConfig {
  /** `kubelet_read_only_port`: plain HTTP on 127.0.0.1 (exclusive with the secure port). */
  readonly readOnlyPort?: number;
  /** `kubelet_secure_port` (default 10250 when neither port is set). */
  readonly securePort?: number;
  /** `skip_kubelet_verification`: accept any kubelet certificate. */
  readonly skipKubeletVerification?: boolean;
  /** `kubelet_ca_path`: CA of the kubelet's serving certificate (default: the service account's ca.crt). */
  readonly kubeletCaPath?: string;
  /** `token_path` (default: the service account token), unless a client certificate is used. */
  readonly tokenPath?: string;
  readonly certificatePath?: string;
  readonly privateKeyPath?: string;
  readonly useAnonymousAuthentication?: boolean;
  /**
   * The node's name: the kubelet is reached at `<nodeName>:<port>` and its certificate must name
   * it. Empty or unset: 127.0.0.1, the chain verified without a hostname check (SPIRE's rule).
   */
  readonly nodeName?: string;
  /** `reload_interval`: how long loaded credentials and CA are used before reading them again. */
  readonly reloadIntervalMs?: number;
}

export interface KubeletClientDeps {
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Reads a credential or CA file (default: the file system). */
  readonly readFile?: (path: string) => Buffer;
}

/** What the kubelet client resolves from its config: the URL and how it connects. */
interface Loaded {
  readonly url: URL;
  readonly agent: http.Agent | https.Agent;
  readonly token?: string;
  readonly at: number;
}

function invalid(message: string, cause?: unknown): ZtwimError {
  return new ZtwimError('ERR_CONFIG', `k8s: ${message}`, cause === undefined ? {} : { cause });
}

/** PEM certificates of a bundle, each checked to parse. */
function pemCertificates(pem: string, path: string): string[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw invalid(`unable to parse kubelet CA: no certificates in ${path}`);
  for (const b of blocks) {
    try {
      new X509Certificate(b);
    } catch (e) {
      throw invalid(`unable to parse kubelet CA ${path}`, e);
    }
  }
  return blocks;
}

export class KubeletClient {
  readonly #config: KubeletClientConfig;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #read: (path: string) => Buffer;
  readonly #secure: boolean;
  readonly #port: number;
  readonly #reloadMs: number;
  #loaded: Loaded;

  /** Loads the credentials now: a missing token or CA is a configuration error at start. */
  constructor(config: KubeletClientConfig, deps: KubeletClientDeps = {}) {
    const ro = config.readOnlyPort ?? 0;
    const sec = config.securePort ?? 0;
    if (ro > 0 && sec > 0) throw invalid('cannot use both the read-only and secure port');
    this.#secure = ro <= 0;
    this.#port = ro > 0 ? ro : sec > 0 ? sec : DEFAULT_SECURE_KUBELET_PORT;
    this.#config = config;
    this.#clock = deps.clock ?? systemClock;
    this.#log = deps.logger ?? silentLogger();
    this.#read = deps.readFile ?? ((p) => readFileSync(p));
    this.#reloadMs = config.reloadIntervalMs !== undefined && config.reloadIntervalMs > 0 ? config.reloadIntervalMs : DEFAULT_RELOAD_INTERVAL_MS;
    this.#loaded = this.#load();
  }

  /** The URL the pod list is fetched from. */
  get url(): string {
    return this.#loaded.url.toString();
  }

  #readFile(path: string, what: string): Buffer {
    try {
      return this.#read(path);
    } catch (e) {
      throw invalid(`unable to load ${what}: ${(e as Error).message}`, e);
    }
  }

  #load(): Loaded {
    const at = this.#clock.nowMs();
    if (!this.#secure) {
      return { url: new URL(`http://127.0.0.1:${this.#port}/pods`), agent: new http.Agent({ keepAlive: true }), at };
    }
    const c = this.#config;
    const nodeName = c.nodeName ?? '';
    const tls: https.AgentOptions = { keepAlive: true };
    if (c.skipKubeletVerification === true) {
      tls.rejectUnauthorized = false;
    } else {
      const caPath = c.kubeletCaPath !== undefined && c.kubeletCaPath !== '' ? c.kubeletCaPath : DEFAULT_KUBELET_CA_PATH;
      tls.ca = pemCertificates(this.#readFile(caPath, 'kubelet CA').toString('utf8'), caPath);
      tls.rejectUnauthorized = true;
      // Reached over 127.0.0.1 without a node name: the chain is verified, the name is not
      // (the kubelet's certificate names the node, not the loopback address).
      if (nodeName === '') tls.checkServerIdentity = () => undefined;
    }
    let token: string | undefined;
    const cert = c.certificatePath ?? '';
    const key = c.privateKeyPath ?? '';
    if (c.useAnonymousAuthentication === true) {
      // No credentials.
    } else if (cert !== '' && key !== '') {
      tls.cert = this.#readFile(cert, 'certificate');
      tls.key = this.#readFile(key, 'private key');
    } else if (cert !== '') {
      throw invalid('the private key path is required with the certificate path');
    } else if (key !== '') {
      throw invalid('the certificate path is required with the private key path');
    } else {
      const tokenPath = c.tokenPath !== undefined && c.tokenPath !== '' ? c.tokenPath : DEFAULT_TOKEN_PATH;
      token = this.#readFile(tokenPath, 'token').toString('utf8').trim();
    }
    const host = nodeName === '' ? '127.0.0.1' : nodeName;
    let agent: https.Agent;
    try {
      agent = new https.Agent(tls);
    } catch (e) {
      throw invalid('unable to load keypair', e);
    }
    return { url: new URL(`https://${host.includes(':') ? `[${host}]` : host}:${this.#port}/pods`), agent, ...(token === undefined ? {} : { token }), at };
  }

  /** The loaded client, read again from disk once reload_interval has passed (kept if that fails). */
  #current(): Loaded {
    if (!this.#secure || this.#clock.nowMs() - this.#loaded.at < this.#reloadMs) return this.#loaded;
    try {
      const next = this.#load();
      this.#loaded.agent.destroy();
      this.#loaded = next;
    } catch (e) {
      this.#log.warn({ err: e }, 'k8s: Unable to load kubelet client');
    }
    return this.#loaded;
  }

  /** The raw `/pods` response body (a core/v1 PodList). */
  async getPodList(): Promise<Buffer> {
    const c = this.#current();
    const headers: Record<string, string> = {};
    if (c.token !== undefined && c.token !== '') headers.authorization = `Bearer ${c.token}`;
    let answer: HttpAnswer;
    try {
      answer = await exchange({ url: c.url, method: 'GET', headers, agent: c.agent, timeoutMs: REQUEST_TIMEOUT_MS, clock: this.#clock });
    } catch (e) {
      throw new ZtwimError('ERR_INTERNAL', `k8s: unable to perform request: ${(e as Error).message}`, { cause: e, fields: { url: c.url.toString() } });
    }
    if (answer.status !== 200) {
      throw new ZtwimError('ERR_INTERNAL', `k8s: unexpected status code on pods response: ${answer.status} ${answer.body.subarray(0, 1024).toString('utf8')}`, {
        fields: { url: c.url.toString(), status: answer.status },
      });
    }
    return answer.body;
  }

  close(): void {
    this.#loaded.agent.destroy();
  }
}
