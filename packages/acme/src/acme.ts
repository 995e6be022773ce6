import { createHash, X509Certificate } from 'node:crypto';
import { Agent as HttpsAgent } from 'node:https';
import { mkdir, readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { createSecureContext, type SecureContext, type TLSSocket } from 'node:tls';
import type * as AcmeClient from 'acme-client';
import type { Clock, Logger, Task } from '@ztwim/core';
import { atomicWriteFile, every, unavailable } from '@ztwim/core';
import { loadServingCert, type ServingCert } from './serving-cert.ts';

/**
 * How the CA checks that we control the domain: `http-01` fetches a token from
 * `http://<domain>:80/.well-known/acme-challenge/` (the OIDC provider's challenge listener),
 * `tls-alpn-01` (RFC 8737) opens TLS to `<domain>:443` offering ALPN `acme-tls/1` and expects a
 * self-signed certificate carrying the key authorization: answered on the serving port itself, as
 * SPIRE's bundle endpoint does (autocert's TLSConfig).
 */
export type AcmeChallengeType = 'http-01' | 'tls-alpn-01';

export interface AcmeCertManagerOptions {
  readonly directoryUrl: string;
  readonly email: string;
  readonly domains: readonly string[];
  /** Sent as termsOfServiceAgreed; a CA that requires it refuses the account when false. */
  readonly tosAccepted?: boolean;
  /** Default `http-01`. */
  readonly challenge?: AcmeChallengeType;
  /** `""` keeps everything in memory. */
  readonly cacheDir: string;
  readonly directoryCaPem?: string | undefined;
  /** Renew when less than this fraction of the lifetime is left. */
  readonly renewFraction: number;
  /** ...or when less than this is left, whichever comes first (autocert's 30 days). */
  readonly renewBeforeMs?: number;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly onLoad: (cert: ServingCert) => void;
  readonly onError?: (err: Error) => void;
}

type AcmeLib = typeof AcmeClient;
type RequestInterceptor = Parameters<AcmeLib['axios']['interceptors']['request']['use']>[0];

const CHALLENGE_PREFIX = '/.well-known/acme-challenge/';
const ACME_TLS_ALPN = 'acme-tls/1';
/** Retry a failed renewal after this long (capped by the time left). */
const RETRY_MS = 60 * 60 * 1000;
/** First retry when no certificate was ever obtained (doubles up to RETRY_MS). */
const FIRST_RETRY_MS = 10_000;

/**
 * acme-client (with axios and its X.509 stack) is loaded on first use, so processes that never
 * configure ACME never load it.
 */
let acmeLib: Promise<AcmeLib> | undefined;
function loadAcme(): Promise<AcmeLib> {
  acmeLib ??= import('acme-client').then((m) => m as AcmeLib);
  return acmeLib;
}

function notFound(res: ServerResponse): void {
  const body = '404 page not found\n';
  res.writeHead(404, {
    'Content-Type': 'text/plain; charset=utf-8',
    'X-Content-Type-Options': 'nosniff',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}

/** The ALPN part of a TLS server's options that answers tls-alpn-01 challenges. */
export interface TlsAlpnServerOptions {
  readonly ALPNCallback: (this: unknown, arg: { servername: string; protocols: string[] }) => string | undefined;
}

/**
 * Obtains a certificate for all allowed domains from an ACME CA (http-01 or tls-alpn-01
 * challenges), keeps it (and the account key) in cacheDir, and renews it before it expires.
 */
export class AcmeCertManager {
  private readonly o: AcmeCertManagerOptions;
  private readonly challenge: AcmeChallengeType;
  /** http-01: token -> key authorization. */
  private readonly tokens = new Map<string, string>();
  /** tls-alpn-01: domain -> the challenge certificate's TLS context. */
  private readonly alpnContexts = new Map<string, SecureContext>();
  private interceptor: { lib: AcmeLib; id: number } | undefined;
  private readonly stopping = new AbortController();
  /** The wait before the next renewal: until renewal is due, or a retry after a failure. */
  private renewInMs = 0;
  private failures = 0;
  private closed = false;
  private current: ServingCert | undefined;
  private readonly cachePrefix: string;

  constructor(options: AcmeCertManagerOptions) {
    this.o = options;
    this.challenge = options.challenge ?? 'http-01';
    const id = createHash('sha256')
      .update(`${options.directoryUrl}\n${[...options.domains].sort().join(',')}`)
      .digest('hex')
      .slice(0, 16);
    this.cachePrefix = `acme-${id}`;
  }

  /** The http-01 responder; answers only challenge paths (404 otherwise, never a redirect). */
  handleHttp(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (!path.startsWith(CHALLENGE_PREFIX)) return notFound(res);
    const body = this.tokens.get(path.slice(CHALLENGE_PREFIX.length));
    if (body === undefined || (req.method !== 'GET' && req.method !== 'HEAD')) return notFound(res);
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(body) });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  /**
   * Options for the serving TLS server (tls-alpn-01): a client offering `acme-tls/1` for a domain
   * with a pending challenge gets the challenge certificate (TLSSocket.setKeyCert, which Node
   * documents for use from ALPNCallback, whose `this` is the socket); every other client gets the
   * server's own certificate and `http/1.1` (or no ALPN when it offers none). A client offering
   * only protocols we do not speak (h2 alone) is refused, as Go's server does.
   */
  tlsAlpnServerOptions(): TlsAlpnServerOptions {
    const contexts = this.alpnContexts;
    const logger = this.o.logger;
    return {
      ALPNCallback(this: unknown, { servername, protocols }) {
        const ctx = protocols.includes(ACME_TLS_ALPN) ? contexts.get(servername) : undefined;
        if (ctx !== undefined && typeof (this as Partial<TLSSocket> | null)?.setKeyCert === 'function') {
          (this as TLSSocket).setKeyCert(ctx);
          logger.debug({ server_name: servername }, 'Answered an ACME tls-alpn-01 challenge');
          return ACME_TLS_ALPN;
        }
        return protocols.includes('http/1.1') ? 'http/1.1' : undefined;
      },
    };
  }

  /** Loads a cached certificate or obtains one (rejects when it cannot); renewalTask() then renews it. */
  async start(): Promise<ServingCert> {
    const cached = await this.loadCached();
    if (cached !== undefined && !this.dueForRenewal(cached)) {
      this.o.logger.info({ not_after: cached.notAfter.toISOString() }, 'Using cached ACME certificate');
      this.install(cached);
      return cached;
    }
    const cert = await this.obtain();
    this.install(cert);
    return cert;
  }

  /**
   * As start() but never rejects: a cached certificate is served at once, otherwise renewalTask()
   * obtains one at once, logging failures and retrying (10 s doubling to 1 h). For listeners that
   * answer the challenge themselves (tls-alpn-01) and so must be up first.
   */
  async startInBackground(): Promise<void> {
    const cached = await this.loadCached();
    if (cached !== undefined) {
      this.o.logger.info({ not_after: cached.notAfter.toISOString() }, 'Using cached ACME certificate');
      this.install(cached);
    } else this.renewInMs = 0;
  }

  /** The certificate being served (undefined until one was obtained or loaded). */
  certificate(): ServingCert | undefined {
    return this.current;
  }

  /** Obtains a fresh certificate now (also used by renewal). */
  async obtain(): Promise<ServingCert> {
    const acme = await loadAcme();
    this.trustDirectoryCa(acme);
    const accountKey = await this.accountKey(acme);
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
        termsOfServiceAgreed: this.o.tosAccepted ?? true,
        challengePriority: [this.challenge],
        // Self-checks connect to <domain>:80/443 which need not be us; the CA validates anyway.
        skipChallengeVerification: true,
        challengeCreateFn: async (authz, challenge, keyAuthorization) => {
          if ((challenge.type as string) === 'tls-alpn-01') {
            const alpnKey = await acme.crypto.createPrivateEcdsaKey('P-256');
            const [, alpnCert] = await acme.crypto.createAlpnCertificate(authz, keyAuthorization, alpnKey);
            this.alpnContexts.set(authz.identifier.value, createSecureContext({ cert: alpnCert, key: alpnKey }));
          } else this.tokens.set(challenge.token, keyAuthorization);
        },
        challengeRemoveFn: async (authz, challenge) => {
          if ((challenge.type as string) === 'tls-alpn-01') this.alpnContexts.delete(authz.identifier.value);
          else this.tokens.delete(challenge.token);
        },
      });
    } catch (e) {
      throw unavailable(`acme: cannot obtain certificate: ${(e as Error).message}`, { cause: e });
    }
    const keyPem = key.toString();
    const cert = loadServingCert(chain, keyPem);
    await this.writeCache('cert.pem', chain);
    await this.writeCache('key.pem', keyPem);
    this.o.logger.info({ not_after: cert.notAfter.toISOString(), domains: this.o.domains, challenge: this.challenge }, 'ACME certificate obtained');
    return cert;
  }

  close(): void {
    this.closed = true;
    this.stopping.abort();
    if (this.interceptor !== undefined) this.interceptor.lib.axios.interceptors.request.eject(this.interceptor.id);
    this.interceptor = undefined;
  }

  /** acme-client shares one axios instance; trust the extra CA only for this directory's origin. */
  private trustDirectoryCa(acme: AcmeLib): void {
    if (this.o.directoryCaPem === undefined || this.interceptor !== undefined || this.closed) return;
    const origin = new URL(this.o.directoryUrl).origin;
    const agent = new HttpsAgent({ ca: this.o.directoryCaPem, keepAlive: false });
    const intercept: RequestInterceptor = (config) => {
      if (typeof config.url === 'string' && config.url.startsWith(origin)) config.httpsAgent = agent;
      return config;
    };
    this.interceptor = { lib: acme, id: acme.axios.interceptors.request.use(intercept) };
  }

  private dueForRenewal(c: ServingCert): boolean {
    return this.o.clock.nowMs() >= this.renewAt(c);
  }

  private renewAt(c: ServingCert): number {
    const life = c.notAfter.getTime() - c.notBefore.getTime();
    const before = Math.min(life * this.o.renewFraction, this.o.renewBeforeMs ?? Infinity);
    return c.notAfter.getTime() - before;
  }

  private install(c: ServingCert): void {
    this.current = c;
    this.failures = 0;
    this.o.onLoad(c);
    this.renewInMs = Math.max(0, this.renewAt(c) - this.o.clock.nowMs());
  }

  /**
   * Renews when due (at once when there is no certificate yet); a failed renewal is retried
   * hourly, sooner as the certificate nears expiry; without a certificate after 10 s doubling.
   */
  renewalTask(): Task {
    const renew = async (): Promise<void> => {
      const c = await this.obtain();
      if (!this.closed) this.install(c);
    };
    const onError = (e: unknown): void => {
      this.o.logger.error({ err: (e as Error).message }, this.current === undefined ? 'ACME certificate request failed' : 'ACME renewal failed');
      this.o.onError?.(e as Error);
      if (this.current === undefined) {
        this.renewInMs = Math.min(RETRY_MS, FIRST_RETRY_MS * 2 ** this.failures);
      } else {
        const left = this.current.notAfter.getTime() - this.o.clock.nowMs();
        this.renewInMs = Math.max(1000, Math.min(RETRY_MS, left / 2));
      }
      this.failures++;
    };
    const loop = every(this.o.clock, () => this.renewInMs, renew, { immediate: false, onError, name: 'acme_renewal' });
    return (signal) => loop(AbortSignal.any([signal, this.stopping.signal]));
  }

  private async accountKey(acme: AcmeLib): Promise<Buffer | string> {
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
