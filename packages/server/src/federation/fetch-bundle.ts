import { X509Certificate } from 'node:crypto';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { connect as tlsConnect, rootCertificates, type DetailedPeerCertificate, type TLSSocket } from 'node:tls';
import { ZtwimError, internal } from '@ztwim/core';
import { SpiffeBundle, SpiffeId, TrustDomain, X509Bundle, derToPem, verifyX509Svid } from '@ztwim/spiffe';

/** How to authenticate a bundle endpoint (SPIFFE Federation §5). */
export type EndpointAuth =
  | { readonly profile: 'https_web'; /** PEM roots trusted beside the system's (tests, private PKI). */ readonly extraRootsPem?: string }
  | {
      readonly profile: 'https_spiffe';
      readonly endpointSpiffeId: SpiffeId;
      /** X.509 authorities of the endpoint's trust domain. */ readonly roots: readonly Uint8Array[];
    };

export interface FetchBundleOptions {
  readonly url: string;
  /** The trust domain whose bundle is expected (never inferred from the URL). */
  readonly trustDomain: TrustDomain;
  readonly auth: EndpointAuth;
  readonly timeoutMs?: number;
  /** Verification time for https_spiffe (the injected clock). */
  readonly now?: () => Date;
}

const MAX_REDIRECTS = 5;
const MAX_BODY = 4 << 20;

const fetchError = (msg: string, cause?: unknown): ZtwimError => new ZtwimError('ERR_UNAVAILABLE', msg, cause === undefined ? {} : { cause });

/** The chain the peer sent, leaf first (node links each certificate to its issuer). */
function peerChain(sock: TLSSocket): Uint8Array[] {
  const out: Uint8Array[] = [];
  const seen = new Set<string>();
  let c: DetailedPeerCertificate | undefined = sock.getPeerCertificate(true);
  while (c !== undefined && c.raw !== undefined && !seen.has(c.fingerprint256)) {
    seen.add(c.fingerprint256);
    out.push(new Uint8Array(c.raw));
    c = c.issuerCertificate;
  }
  return out;
}

/** A TLS connection to the URL's host, authenticated as the profile says (before any byte of HTTP). */
function open(u: URL, opts: FetchBundleOptions, timeoutMs: number, unauthenticated = false): Promise<TLSSocket> {
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const port = u.port === '' ? 443 : Number(u.port);
  const auth = opts.auth;
  return new Promise((resolve, reject) => {
    const base = { host, port, ALPNProtocols: ['http/1.1'], minVersion: 'TLSv1.2' as const, ...(/^[\d.:]+$/.test(host) ? {} : { servername: host }) };
    const sock = unauthenticated
      ? tlsConnect({ ...base, rejectUnauthorized: false })
      : auth.profile === 'https_web'
        ? // Node's default roots (NODE_EXTRA_CA_CERTS included) unless extra roots are given.
          tlsConnect(auth.extraRootsPem === undefined ? base : { ...base, ca: [...rootCertificates, auth.extraRootsPem] })
        : // The SVID is checked below against the endpoint trust domain's bundle (go-spiffe's
          // tlsconfig does the same through VerifyPeerCertificate); Web PKI names do not apply.
          tlsConnect({ ...base, rejectUnauthorized: false });
    const timer = setTimeout(() => sock.destroy(fetchError(`connection to ${u.host} timed out`)), timeoutMs);
    sock.once('error', (e) => {
      clearTimeout(timer);
      reject(fetchError(`failed to fetch bundle: ${e.message}`, e));
    });
    sock.once('secureConnect', () => {
      clearTimeout(timer);
      if (auth.profile === 'https_spiffe') {
        try {
          const chain = peerChain(sock);
          const bundle = X509Bundle.fromAuthorities(auth.endpointSpiffeId.trustDomain, auth.roots);
          const { id } = verifyX509Svid(chain, bundle, opts.now === undefined ? {} : { now: opts.now() });
          if (!id.equals(auth.endpointSpiffeId)) throw internal(`unexpected ID ${JSON.stringify(id.toString())}`);
        } catch (e) {
          sock.destroy();
          reject(fetchError(`failed to fetch bundle: failed to authenticate ${auth.endpointSpiffeId.toString()}: ${(e as Error).message}`, e));
          return;
        }
      }
      resolve(sock);
    });
  });
}

function get(u: URL, sock: TLSSocket, timeoutMs: number): Promise<{ res: IncomingMessage; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      method: 'GET',
      host: u.hostname,
      path: `${u.pathname}${u.search}`,
      headers: { host: u.host, accept: 'application/json' },
      createConnection: () => sock,
    });
    req.setTimeout(timeoutMs, () => req.destroy(fetchError(`fetching bundle from ${u.host} timed out`)));
    req.once('error', (e) => reject(isZ(e) ? e : fetchError(`failed to fetch bundle: ${e.message}`, e)));
    req.once('response', (res) => {
      const parts: Buffer[] = [];
      let n = 0;
      res.on('data', (d: Buffer) => {
        n += d.length;
        if (n > MAX_BODY) req.destroy(fetchError(`bundle from ${u.host} is larger than ${MAX_BODY} bytes`));
        else parts.push(d);
      });
      res.once('end', () => resolve({ res, body: Buffer.concat(parts) }));
      res.once('error', reject);
    });
    req.end();
  });
}

const isZ = (e: unknown): e is ZtwimError => e instanceof ZtwimError;

/**
 * Fetches a trust domain's bundle from its SPIFFE bundle endpoint (SPIRE `bundle/client`): one
 * GET, redirects followed (each hop authenticated the same way: the endpoint SPIFFE ID is checked
 * after redirects too), a 200 decoded with SPIRE's strict rules (every key needs a known `use`).
 */
export async function fetchBundle(opts: FetchBundleOptions): Promise<SpiffeBundle> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  let u = new URL(opts.url);
  for (let hop = 0; ; hop++) {
    if (u.protocol !== 'https:') throw fetchError(`bundle endpoint URL must use the https scheme: ${u.href}`);
    const sock = await open(u, opts, timeoutMs);
    let r: { res: IncomingMessage; body: Buffer };
    try {
      r = await get(u, sock, timeoutMs);
    } finally {
      sock.destroy();
    }
    const status = r.res.statusCode ?? 0;
    const location = r.res.headers.location;
    if ([301, 302, 303, 307, 308].includes(status) && location !== undefined) {
      if (hop >= MAX_REDIRECTS) throw fetchError(`failed to fetch bundle: stopped after ${MAX_REDIRECTS} redirects`);
      u = new URL(location, u);
      continue;
    }
    if (status !== 200) throw fetchError(`unexpected status ${status} fetching bundle: ${r.body.subarray(0, 1024).toString('utf8')}`);
    try {
      return SpiffeBundle.parse(opts.trustDomain, r.body, { strict: true });
    } catch (e) {
      throw new ZtwimError('ERR_INVALID_ARGUMENT', (e as Error).message, { cause: e });
    }
  }
}

/** PEM text of DER certificates (for https_web extra roots given as DER). */
export const certsToPem = (ders: readonly Uint8Array[]): string => ders.map((d) => derToPem(d, 'CERTIFICATE')).join('');

/** What a first contact with a bundle endpoint learned (see bootstrapFromEndpoint). */
export interface EndpointBootstrap {
  readonly endpointSpiffeId: SpiffeId;
  readonly bundle: SpiffeBundle;
}

/**
 * Trust on first use, for `ztwim up -federateWith URL` only: connects without authenticating,
 * takes the trust domain from the server's X509-SVID, fetches the bundle, and accepts it only if
 * that SVID verifies against it (a self-serving https_spiffe endpoint). Later fetches are
 * authenticated with this bundle as usual. Not for production relationships: there the operator
 * supplies the trust domain and the bootstrap bundle out of band.
 */
export async function bootstrapFromEndpoint(url: string, opts: { timeoutMs?: number; now?: () => Date } = {}): Promise<EndpointBootstrap> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const u = new URL(url);
  if (u.protocol !== 'https:') throw fetchError(`bundle endpoint URL must use the https scheme: ${u.href}`);
  // No authentication yet: the chain is checked against the bundle below.
  const anyTd = TrustDomain.parse('bootstrap.invalid');
  const sock = await open(u, { url, trustDomain: anyTd, auth: { profile: 'https_web', extraRootsPem: '' } }, timeoutMs, true);
  let chain: Uint8Array[];
  let r: { res: IncomingMessage; body: Buffer };
  try {
    chain = peerChain(sock);
    r = await get(u, sock, timeoutMs);
  } finally {
    sock.destroy();
  }
  if (r.res.statusCode !== 200) throw fetchError(`unexpected status ${r.res.statusCode ?? 0} fetching bundle: ${r.body.subarray(0, 1024).toString('utf8')}`);
  const leaf = chain[0];
  if (leaf === undefined) throw fetchError(`${u.host} presented no certificate`);
  const uri = /URI:(spiffe:\/\/[^,\s]+)/.exec(new X509Certificate(leaf).subjectAltName ?? '')?.[1];
  if (uri === undefined) throw fetchError(`${u.host} did not present an X509-SVID (https_spiffe endpoint expected)`);
  const endpointSpiffeId = SpiffeId.parse(uri);
  const bundle = SpiffeBundle.parse(endpointSpiffeId.trustDomain, r.body, { strict: true });
  const { id } = verifyX509Svid(
    chain,
    X509Bundle.fromAuthorities(endpointSpiffeId.trustDomain, bundle.x509Authorities()),
    opts.now === undefined ? {} : { now: opts.now() },
  );
  if (!id.equals(endpointSpiffeId)) throw fetchError(`${u.host}: SVID ${id.toString()} does not match ${endpointSpiffeId.toString()}`);
  return { endpointSpiffeId, bundle };
}
