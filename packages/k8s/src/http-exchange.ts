// One HTTP(S) exchange with a deadline, shared by the apiserver client (client-node.ts) and the
// agent's kubelet client: both send one request over a keep-alive agent and read the whole body.
// Written on node:http(s) rather than a fetch library: the callers hold long-lived agents with
// TLS material loaded once, and Node's fetch (undici) takes no http.Agent.
import { request as httpRequest, type Agent as HttpAgent, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { systemClock, type Clock } from '@ztwim/core';

export interface HttpExchange {
  /** The full URL (its path and query included). */
  readonly url: URL;
  readonly method: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly agent: HttpAgent;
  readonly body?: string | Buffer;
  /** Deadline for the whole exchange, headers and body. */
  readonly timeoutMs: number;
  readonly clock?: Clock;
  readonly signal?: AbortSignal;
}

export interface HttpAnswer {
  readonly status: number;
  readonly headers: IncomingMessage['headers'];
  readonly body: Buffer;
}

/** An exchange that got no full answer in time; its `code` is ETIMEDOUT, like a socket timeout. */
export class ExchangeTimeoutError extends Error {
  readonly code = 'ETIMEDOUT';
  constructor(ms: number) {
    super(`no answer in ${ms} ms`);
    this.name = 'ExchangeTimeoutError';
  }
}

function requestOf(exchange: Pick<HttpExchange, 'url' | 'method' | 'headers' | 'agent'>) {
  const { url, method, headers, agent } = exchange;
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return send({
    protocol: url.protocol,
    hostname: url.hostname.replace(/^\[(.*)\]$/, '$1'), // URL keeps an IPv6 address's brackets
    port: url.port,
    path: `${url.pathname}${url.search}`,
    method,
    headers: { ...headers },
    agent,
  });
}

/**
 * Sends the request and reads the whole answer. Rejects with the transport's error (ECONNREFUSED,
 * ECONNRESET, TLS failures: the error as Node gives it), an ExchangeTimeoutError after timeoutMs,
 * or the signal's reason; any HTTP status resolves.
 */
export function exchange(x: HttpExchange): Promise<HttpAnswer> {
  const clock = x.clock ?? systemClock;
  return new Promise<HttpAnswer>((resolve, reject) => {
    if (x.signal?.aborted === true) {
      reject(x.signal.reason);
      return;
    }
    const req = requestOf(x);
    let settled = false;
    const done = (e: unknown, answer?: HttpAnswer): void => {
      if (settled) return;
      settled = true;
      cancelTimer();
      x.signal?.removeEventListener('abort', onAbort);
      if (answer !== undefined) resolve(answer);
      else reject(e);
    };
    const onAbort = (): void => {
      req.destroy();
      done(x.signal?.reason);
    };
    const cancelTimer = clock.setTimer(x.timeoutMs, () => {
      const e = new ExchangeTimeoutError(x.timeoutMs);
      req.destroy(e);
      done(e);
    });
    x.signal?.addEventListener('abort', onAbort, { once: true });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (e) => done(e));
      // A Node socket error's shape (code ECONNRESET), as errnoOf and the retry logic expect it.
      // eslint-disable-next-line ztwim/no-bare-error
      res.on('aborted', () => done(Object.assign(new Error('connection closed before the answer ended'), { code: 'ECONNRESET' })));
      res.on('end', () => done(undefined, { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', (e) => done(e));
    req.end(x.body);
  });
}

/**
 * Opens a streaming request (a watch): resolves with the response once its headers arrived within
 * timeoutMs; the body is the caller's to read (and to end by destroying it or aborting the signal).
 */
export function openStream(x: HttpExchange): Promise<IncomingMessage> {
  const clock = x.clock ?? systemClock;
  return new Promise<IncomingMessage>((resolve, reject) => {
    if (x.signal?.aborted === true) {
      reject(x.signal.reason);
      return;
    }
    const req = requestOf(x);
    let answered = false;
    const onAbort = (): void => {
      req.destroy();
      if (!answered) reject(x.signal?.reason);
    };
    x.signal?.addEventListener('abort', onAbort, { once: true });
    const cancelTimer = clock.setTimer(x.timeoutMs, () => {
      if (answered) return;
      const e = new ExchangeTimeoutError(x.timeoutMs);
      req.destroy(e);
    });
    req.on('response', (res) => {
      answered = true;
      cancelTimer();
      res.on('close', () => x.signal?.removeEventListener('abort', onAbort));
      resolve(res);
    });
    req.on('error', (e) => {
      cancelTimer();
      x.signal?.removeEventListener('abort', onAbort);
      if (!answered) reject(e);
    });
    req.end(x.body);
  });
}
