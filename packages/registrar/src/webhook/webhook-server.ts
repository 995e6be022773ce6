/**
 * The admission webhook's HTTPS server (node:https): AdmissionReview v1 at the controller
 * manager's paths, served with the webhook's own X509-SVID (`spiffe://<td>/spire-controller-
 * manager-webhook`, DNS `<svc>.<ns>.svc`, P-256, 24 h by default) minted through the SVID API and
 * minted again when half its lifetime has passed (after a failure, every 5 s until one works);
 * a new certificate replaces the TLS context without dropping the listener.
 */
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { listenTcp, type Cancel, type Clock, type Logger } from '@ztwim/core';
import { BadAdmissionRequest, isWebhookPath, reviewAdmission } from './admission.ts';
import type { MintedSvid, WebhookServerApi } from './server-api.ts';

export const WEBHOOK_SPIFFE_ID_PATH = '/spire-controller-manager-webhook';
const MAX_BODY_BYTES = 3 * 1024 * 1024; // the API server's own request limit
const RETRY_MS = 5000;

export interface WebhookServerOptions {
  /** Listen address ('' = every interface); the tests use 127.0.0.1 and port 0. */
  readonly host: string;
  readonly port: number;
  readonly trustDomain: string;
  /** DNS SANs of the serving certificate: `<service>.<namespace>.svc`. */
  readonly dnsNames: readonly string[];
  readonly serverApi: WebhookServerApi;
  readonly clock: Clock;
  readonly log: Logger;
  /** SVID TTL asked for; default 24 h (the server may cap it). */
  readonly ttlSeconds?: number;
}

export class AdmissionWebhookServer {
  readonly #server: Server;
  readonly #opts: WebhookServerOptions;
  #cancelRenewal: Cancel | undefined;
  #closed = false;
  #svid: MintedSvid;
  #dnsNames: readonly string[];

  private constructor(server: Server, opts: WebhookServerOptions, svid: MintedSvid) {
    this.#server = server;
    this.#opts = opts;
    this.#svid = svid;
    this.#dnsNames = opts.dnsNames;
  }

  /** Mints the first SVID (failing if the server cannot be reached) and listens. */
  static async start(opts: WebhookServerOptions): Promise<AdmissionWebhookServer> {
    const svid = await mint(opts, opts.dnsNames);
    const server = createServer({ cert: svid.certChainPem, key: svid.keyPem, minVersion: 'TLSv1.2', requestTimeout: 30_000, headersTimeout: 10_000 });
    const self = new AdmissionWebhookServer(server, opts, svid);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => void self.#handle(req, res));
    server.on('tlsClientError', (e) => opts.log.debug({ err: e }, 'Webhook TLS handshake failed'));
    await listenTcp(server, opts.port, opts.host === '' ? undefined : opts.host);
    self.#scheduleRenewal(svid.expiresAt.getTime());
    opts.log.info({ port: self.port, expires_at: svid.expiresAt.toISOString() }, 'Admission webhook serving');
    return self;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  /** The certificate currently served (leaf first, PEM) and its expiry. */
  get certificate(): { readonly certChainPem: string; readonly expiresAt: Date } {
    return { certChainPem: this.#svid.certChainPem, expiresAt: this.#svid.expiresAt };
  }

  /** The DNS SANs of the certificate served. */
  get dnsNames(): readonly string[] {
    return this.#dnsNames;
  }

  /**
   * Mints a certificate for other DNS names (the webhook configuration's Services changed, the
   * controller manager's "stale DNS names") and serves it from now on; throws if minting fails,
   * leaving the current certificate in place.
   */
  async reissue(dnsNames: readonly string[]): Promise<void> {
    const svid = await mint(this.#opts, dnsNames);
    if (this.#closed) return;
    this.#install(svid, dnsNames);
    this.#opts.log.info({ dns_names: dnsNames, expires_at: svid.expiresAt.toISOString() }, 'Admission webhook certificate minted for new DNS names');
  }

  #install(svid: MintedSvid, dnsNames: readonly string[]): void {
    this.#server.setSecureContext({ cert: svid.certChainPem, key: svid.keyPem, minVersion: 'TLSv1.2' });
    this.#svid = svid;
    this.#dnsNames = dnsNames;
    this.#cancelRenewal?.();
    this.#scheduleRenewal(svid.expiresAt.getTime());
  }

  #scheduleRenewal(expiresAtMs: number): void {
    if (this.#closed) return;
    const now = this.#opts.clock.nowMs();
    const delay = Math.max(1000, (expiresAtMs - now) / 2);
    this.#cancelRenewal = this.#opts.clock.setTimer(delay, () => void this.#renew());
  }

  async #renew(): Promise<void> {
    try {
      const dnsNames = this.#dnsNames;
      const svid = await mint(this.#opts, dnsNames);
      if (this.#closed) return;
      this.#install(svid, dnsNames);
      this.#opts.log.info({ expires_at: svid.expiresAt.toISOString() }, 'Admission webhook certificate renewed');
    } catch (e) {
      this.#opts.log.warn({ err: e }, 'Admission webhook certificate renewal failed');
      if (!this.#closed) this.#cancelRenewal = this.#opts.clock.setTimer(RETRY_MS, () => void this.#renew());
    }
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0] as string;
    const reply = (status: number, body: unknown): void => {
      const text = typeof body === 'string' ? body : JSON.stringify(body);
      res.writeHead(status, { 'content-type': typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json' });
      res.end(text);
    };
    if (!isWebhookPath(path)) return reply(404, `no webhook at ${path}\n`);
    if (req.method !== 'POST') return reply(405, 'use POST\n');
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const c of req as AsyncIterable<Buffer>) {
        size += c.length;
        if (size > MAX_BODY_BYTES) return reply(413, `request body over ${MAX_BODY_BYTES} bytes\n`);
        chunks.push(c);
      }
    } catch (e) {
      this.#opts.log.debug({ err: e }, 'Webhook request aborted');
      return;
    }
    let review: unknown;
    try {
      review = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch (e) {
      return reply(400, `request body is not JSON: ${(e as Error).message}\n`);
    }
    try {
      const answer = reviewAdmission(path, review);
      this.#opts.log.info({ path, uid: answer.response.uid, allowed: answer.response.allowed, reason: answer.response.status?.message }, 'Admission review');
      reply(200, answer);
    } catch (e) {
      if (e instanceof BadAdmissionRequest) return reply(400, `${e.message}\n`);
      this.#opts.log.error({ err: e }, 'Admission review failed');
      reply(500, 'internal error\n');
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#cancelRenewal?.();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

function mint(opts: WebhookServerOptions, dnsNames: readonly string[]): Promise<MintedSvid> {
  return opts.serverApi.mintX509Svid(`spiffe://${opts.trustDomain}${WEBHOOK_SPIFFE_ID_PATH}`, dnsNames, opts.ttlSeconds ?? 86_400);
}
