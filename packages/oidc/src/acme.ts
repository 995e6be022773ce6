import { createHash, X509Certificate } from 'node:crypto';
import { Agent as HttpsAgent } from 'node:https';
import { mkdir, readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import * as acme from 'acme-client';
import type { Clock, Logger } from '@ztwim/core';
import { atomicWriteFile, every, unavailable } from '@ztwim/core';
import { loadServingCert, type ServingCert } from './serving-cert.ts';
import { sendError } from './handler.ts';

export interface AcmeCertManagerOptions {
  readonly directoryUrl: string;
  readonly email: string;
  readonly domains: readonly string[];
  /** `""` keeps everything in memory. */
  readonly cacheDir: string;
  readonly directoryCaPem?: string | undefined;
  /** Renew when less than this fraction of the lifetime is left. */
  readonly renewFraction: number;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly onLoad: (cert: ServingCert) => void;
  readonly onError?: (err: Error) => void;
}

const CHALLENGE_PREFIX = '/.well-known/acme-challenge/';
/** Retry a failed renewal after this long (capped by the time left). */
const RETRY_MS = 60 * 60 * 1000;

type RequestInterceptor = Parameters<typeof acme.axios.interceptors.request.use>[0];

/**
 * Obtains a certificate for all allowed domains from an ACME CA with http-01 challenges,
 * keeps it (and the account key) in cacheDir, and renews it before it expires.
 */
export class AcmeCertManager {
  private readonly o: AcmeCertManagerOptions;
  private readonly tokens = new Map<string, string>();
  private readonly interceptorId: number | undefined;
  private readonly stopping = new AbortController();
  /** The wait before the next renewal: until renewal is due, or a retry after a failure. */
  private renewInMs = 0;
  private closed = false;
  private current: ServingCert | undefined;
  private readonly cachePrefix: string;

  constructor(options: AcmeCertManagerOptions) {
    this.o = options;
    const id = createHash('sha256')
      .update(`${options.directoryUrl}\n${[...options.domains].sort().join(',')}`)
      .digest('hex')
      .slice(0, 16);
    this.cachePrefix = `acme-${id}`;
    if (options.directoryCaPem !== undefined) {
      // acme-client shares one axios instance; trust the extra CA only for this directory's origin.
      const origin = new URL(options.directoryUrl).origin;
      const agent = new HttpsAgent({ ca: options.directoryCaPem, keepAlive: false });
      const intercept: RequestInterceptor = (config) => {
        if (typeof config.url === 'string' && config.url.startsWith(origin)) config.httpsAgent = agent;
        return config;
      };
      this.interceptorId = acme.axios.interceptors.request.use(intercept);
    }
  }

  /** The http-01 responder; answers only challenge paths (404 otherwise, never a redirect). */
  handleHttp(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (!path.startsWith(CHALLENGE_PREFIX)) {
      sendError(res, 404, '404 page not found');
      return;
    }
    const body = this.tokens.get(path.slice(CHALLENGE_PREFIX.length));
    if (body === undefined || (req.method !== 'GET' && req.method !== 'HEAD')) {
      sendError(res, 404, '404 page not found');
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(body) });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  /** Loads a cached certificate or obtains one; then schedules renewal. */
  async start(): Promise<ServingCert> {
    const cached = await this.loadCached();
    if (cached !== undefined && !this.dueForRenewal(cached)) {
      this.o.logger.info({ not_after: cached.notAfter.toISOString() }, 'using cached acme certificate');
      this.install(cached);
      this.startRenewal();
      return cached;
    }
    const cert = await this.obtain();
    this.install(cert);
    this.startRenewal();
    return cert;
  }

  /** Obtains a fresh certificate now (also used by renewal). */
  async obtain(): Promise<ServingCert> {
    const accountKey = await this.accountKey();
    const client = new acme.Client({ directoryUrl: this.o.directoryUrl, accountKey });
    const [key, csr] = await acme.crypto.createCsr({
      commonName: this.o.domains[0] as string,
      altNames: [...this.o.domains],
    });
    let chain: string;
    try {
      chain = await client.auto({
        csr,
        email: this.o.email,
        termsOfServiceAgreed: true,
        challengePriority: ['http-01'],
        // Self-checks fetch http://<domain>:80 which need not be us; the CA validates anyway.
        skipChallengeVerification: true,
        challengeCreateFn: async (_authz, challenge, keyAuthorization) => {
          this.tokens.set(challenge.token, keyAuthorization);
        },
        challengeRemoveFn: async (_authz, challenge) => {
          this.tokens.delete(challenge.token);
        },
      });
    } catch (e) {
      throw unavailable(`acme: cannot obtain certificate: ${(e as Error).message}`, { cause: e });
    }
    const keyPem = key.toString();
    const cert = loadServingCert(chain, keyPem);
    await this.writeCache('cert.pem', chain);
    await this.writeCache('key.pem', keyPem);
    this.o.logger.info({ not_after: cert.notAfter.toISOString(), domains: this.o.domains }, 'acme certificate obtained');
    return cert;
  }

  close(): void {
    this.closed = true;
    this.stopping.abort();
    if (this.interceptorId !== undefined) acme.axios.interceptors.request.eject(this.interceptorId);
  }

  private dueForRenewal(c: ServingCert): boolean {
    return this.o.clock.nowMs() >= this.renewAt(c);
  }

  private renewAt(c: ServingCert): number {
    const life = c.notAfter.getTime() - c.notBefore.getTime();
    return c.notAfter.getTime() - life * this.o.renewFraction;
  }

  private install(c: ServingCert): void {
    this.current = c;
    this.o.onLoad(c);
    this.renewInMs = Math.max(0, this.renewAt(c) - this.o.clock.nowMs());
  }

  /** Renews when due; a failed renewal is retried hourly, sooner as the certificate nears expiry. */
  private startRenewal(): void {
    const renew = async (): Promise<void> => {
      const c = await this.obtain();
      if (!this.closed) this.install(c);
    };
    const onError = (e: unknown): void => {
      this.o.logger.error({ err: (e as Error).message }, 'acme renewal failed');
      this.o.onError?.(e as Error);
      const left = (this.current?.notAfter.getTime() ?? 0) - this.o.clock.nowMs();
      this.renewInMs = Math.max(1000, Math.min(RETRY_MS, left / 2));
    };
    void every(this.o.clock, () => this.renewInMs, renew, { immediate: false, onError })(this.stopping.signal);
  }

  private async accountKey(): Promise<Buffer | string> {
    const cached = await this.readCache('account.key.pem');
    if (cached !== undefined) return cached;
    const key = await acme.crypto.createPrivateEcdsaKey('P-256');
    await this.writeCache('account.key.pem', key.toString());
    return key;
  }

  private async loadCached(): Promise<ServingCert | undefined> {
    const certPem = await this.readCache('cert.pem');
    const keyPem = await this.readCache('key.pem');
    if (certPem === undefined || keyPem === undefined) return undefined;
    try {
      const c = loadServingCert(certPem, keyPem);
      const leaf = new X509Certificate(certPem);
      const names = (leaf.subjectAltName ?? '').split(',').map((s) => s.trim().replace(/^DNS:/, ''));
      if (!this.o.domains.every((d) => names.includes(d))) return undefined;
      if (c.notAfter.getTime() <= this.o.clock.nowMs()) return undefined;
      return c;
    } catch {
      return undefined;
    }
  }

  private async readCache(name: string): Promise<string | undefined> {
    if (this.o.cacheDir === '') return undefined;
    try {
      return await readFile(join(this.o.cacheDir, `${this.cachePrefix}-${name}`), 'utf8');
    } catch {
      return undefined;
    }
  }

  private async writeCache(name: string, data: string): Promise<void> {
    if (this.o.cacheDir === '') return;
    await mkdir(this.o.cacheDir, { recursive: true, mode: 0o700 });
    const path = join(this.o.cacheDir, `${this.cachePrefix}-${name}`);
    await atomicWriteFile(path, data, 0o600);
  }
}
