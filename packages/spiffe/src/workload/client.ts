/**
 * SPIFFE Workload API client (gRPC over HTTP/2 on a Unix socket or TCP), after go-spiffe's
 * `workloadapi.Client`: one-shot fetches, watches that reconnect with a linear backoff, and
 * responses parsed with the SDK's own parsers.
 */
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { SpiffeError } from '../errors.ts';
import { TrustDomain } from '../id/trust-domain.ts';
import { SpiffeId } from '../id/spiffe-id.ts';
import { X509Bundle } from '../bundle/x509-bundle.ts';
import { JwtBundle } from '../bundle/jwt-bundle.ts';
import { X509BundleSet, JwtBundleSet } from '../bundle/set.ts';
import { X509Svid } from '../svid/x509-svid.ts';
import { parseInsecureJwtSvid, type JwtSvid } from '../svid/jwt-svid.ts';
import { defaultWorkloadEndpoint, parseWorkloadEndpoint } from './address.ts';
import { decodeResponse, GrpcCallError, GrpcChannel, tcpConnector, unixConnector, type GrpcInterceptor, type GrpcTransportKind } from './grpc-http2.ts';
import {
  SpiffeWorkloadAPI,
  type JWTBundlesResponse,
  type JWTSVIDResponse,
  type X509BundlesResponse,
  type X509SVIDResponse,
} from './proto/workload/workload_pb.ts';

/** The security header every Workload API request carries. */
export const WORKLOAD_API_HEADER = 'workload.spiffe.io';

const GRPC_CODE_NAMES: readonly string[] = [
  'OK',
  'Canceled',
  'Unknown',
  'InvalidArgument',
  'DeadlineExceeded',
  'NotFound',
  'AlreadyExists',
  'PermissionDenied',
  'ResourceExhausted',
  'FailedPrecondition',
  'Aborted',
  'OutOfRange',
  'Unimplemented',
  'Internal',
  'Unavailable',
  'DataLoss',
  'Unauthenticated',
];

/** gRPC status codes the Workload API uses (numeric values as on the wire). */
export const GrpcCode = {
  Canceled: 1,
  Unknown: 2,
  InvalidArgument: 3,
  DeadlineExceeded: 4,
  PermissionDenied: 7,
  Unimplemented: 12,
  Internal: 13,
  Unavailable: 14,
} as const;

/**
 * A Workload API failure: SpiffeError ERR_WORKLOAD_API carrying the gRPC status code
 * (`grpcCode`, 2 = Unknown for non-gRPC failures such as a malformed response) and the
 * server's status message (`grpcMessage`).
 */
export class WorkloadApiError extends SpiffeError {
  readonly grpcCode: number;
  readonly grpcMessage: string;

  constructor(grpcCode: number, grpcMessage: string, message: string, cause?: unknown) {
    super('ERR_WORKLOAD_API', message, { cause });
    this.grpcCode = grpcCode;
    this.grpcMessage = grpcMessage;
  }
}

function grpcCodeName(code: number): string {
  return GRPC_CODE_NAMES[code] ?? `Code(${code})`;
}

/** Wraps any failure of a call as a WorkloadApiError (SpiffeError ERR_WORKLOAD_API). */
export function toWorkloadApiError(e: unknown): WorkloadApiError {
  if (e instanceof WorkloadApiError) return e;
  if (e instanceof GrpcCallError) {
    // The transport reports a lost or undiallable connection as Unavailable (retried, as grpc-go),
    // so only a Canceled *status* from the server or the caller stops a watch.
    return new WorkloadApiError(e.grpcCode, e.grpcMessage, `workloadapi: rpc error: code = ${grpcCodeName(e.grpcCode)} desc = ${e.grpcMessage}`, e);
  }
  const msg = e instanceof Error ? e.message : String(e);
  return new WorkloadApiError(GrpcCode.Unknown, msg, `workloadapi: ${msg}`, e);
}

/** A malformed response (a parse failure): reported, and the message discarded by watches. */
function responseError(message: string, cause?: unknown): WorkloadApiError {
  return new WorkloadApiError(GrpcCode.Unknown, message, `workloadapi: ${message}`, cause);
}

/** Backoff between watch reconnections. */
export interface Backoff {
  /** The next delay in milliseconds. */
  next(): number;
  reset(): void;
}

/** go-spiffe's default: linear 1 s, 2 s, 3 s, … capped at 30 s; reset when a message arrives. */
export function linearBackoff(initialMs = 1000, maxMs = 30_000): Backoff {
  let n = 0;
  return {
    next() {
      const d = Math.min(initialMs * (n + 1), maxMs);
      n++;
      return d;
    },
    reset() {
      n = 0;
    },
  };
}

/** An X.509 context: every X509-SVID of the workload plus the trust bundles. */
export interface X509Context {
  /** The SVIDs; the first is the default identity. */
  readonly svids: X509Svid[];
  readonly bundles: X509BundleSet;
}

/** Receives watch updates; `onError` sees connection failures and discarded (malformed) messages. */
export interface Watcher<T> {
  onUpdate(update: T): void;
  onError?(err: WorkloadApiError): void;
}

export interface JwtSvidParams {
  /** The audience (required). Extra audiences may follow in `extraAudiences`. */
  readonly audience: string;
  readonly extraAudiences?: readonly string[];
  /** Requests the JWT-SVID of this SPIFFE ID only (default: every identity). */
  readonly subject?: SpiffeId | string;
}

export interface WorkloadApiClientOptions {
  /** `unix:///path` or `tcp://ip:port`; default `SPIFFE_ENDPOINT_SOCKET`. */
  readonly address?: string;
  /** Closes the client when aborted. */
  readonly signal?: AbortSignal;
  /** Creates the backoff used by each watch (default `linearBackoff()`, as go-spiffe). */
  readonly backoff?: () => Backoff;
  /** Validation time for fetched JWT-SVIDs (default now). */
  readonly now?: () => Date;
  /** Extra interceptors (tests). */
  readonly interceptors?: readonly GrpcInterceptor[];
  /**
   * The HTTP/2 client: `'socket'` (default), the SDK's own on `net.Socket`, or `'node:http2'`.
   * Both speak the same gRPC; the default costs less CPU per call (bench/results/sdk.md).
   */
  readonly transport?: GrpcTransportKind;
}

function notify<T>(watcher: Watcher<T>, err: WorkloadApiError): void {
  try {
    watcher.onError?.(err);
  } catch {
    // ignore watcher failures
  }
}

/** The Workload API's methods on a channel, named as the generated service's. */
function workloadApi(channel: GrpcChannel) {
  const m = SpiffeWorkloadAPI.method;
  type Opts = { signal: AbortSignal };
  return {
    fetchX509SVID: (req: object, o: Opts) => channel.serverStream(m.fetchX509SVID, req, o),
    fetchX509Bundles: (req: object, o: Opts) => channel.serverStream(m.fetchX509Bundles, req, o),
    fetchJWTBundles: (req: object, o: Opts) => channel.serverStream(m.fetchJWTBundles, req, o),
    /**
     * The first response of each stream, then the stream is cancelled (the one-shot fetches);
     * FetchX509SVID's undecoded, the client keeping what it made of the same bytes (LastX509Parse).
     */
    firstX509SVIDRaw: (req: object, o: Opts) => channel.firstRaw(m.fetchX509SVID, req, o),
    firstX509Bundles: (req: object, o: Opts) => channel.first(m.fetchX509Bundles, req, o),
    firstJWTBundles: (req: object, o: Opts) => channel.first(m.fetchJWTBundles, req, o),
    fetchJWTSVID: (req: { audience: string[]; spiffeId: string }, o: Opts) => channel.unary(m.fetchJWTSVID, req, o),
    validateJWTSVID: (req: { svid: string; audience: string }, o: Opts) => channel.unary(m.validateJWTSVID, req, o),
  };
}

type Api = ReturnType<typeof workloadApi>;

/** Parses the SVIDs of an X509SVIDResponse as go-spiffe's parseX509SVIDs (duplicate hints: first wins). */
export function parseX509SvidResponse(resp: X509SVIDResponse, firstOnly = false): X509Svid[] {
  if (resp.svids.length === 0) throw responseError('no SVIDs in response');
  const n = firstOnly ? 1 : resp.svids.length;
  const hints = new Set<string>();
  const out: X509Svid[] = [];
  for (const s of resp.svids.slice(0, n)) {
    if (s.hint !== '' && hints.has(s.hint)) continue;
    hints.add(s.hint);
    if (s.spiffeId === '') throw responseError('missing SPIFFE ID in X509-SVID');
    if (s.x509Svid.length === 0) throw responseError(`missing certificates for X509-SVID "${s.spiffeId}"`);
    if (s.x509SvidKey.length === 0) throw responseError(`missing private key for X509-SVID "${s.spiffeId}"`);
    if (s.bundle.length === 0) throw responseError(`missing bundle for X509-SVID "${s.spiffeId}"`);
    let svid: X509Svid;
    try {
      svid = X509Svid.parseRaw(s.x509Svid, s.x509SvidKey);
    } catch (e) {
      throw responseError((e as Error).message, e);
    }
    // The SVID's SPIFFE ID is its certificate's URI SAN; a response naming another is malformed.
    if (svid.id.toString() !== s.spiffeId) {
      throw responseError(`X509-SVID spiffe_id "${s.spiffeId}" does not match its certificate's URI SAN "${svid.id.toString()}"`);
    }
    if (s.hint !== '') svid.hint = s.hint;
    out.push(svid);
  }
  return out;
}

function parseTd(key: string): TrustDomain {
  try {
    return TrustDomain.parse(key);
  } catch (e) {
    throw responseError((e as Error).message, e);
  }
}

function parseX509BundleEntry(key: string, der: Uint8Array): X509Bundle {
  const td = parseTd(key);
  try {
    return X509Bundle.parseRaw(td, der);
  } catch (e) {
    throw responseError((e as Error).message, e);
  }
}

/** An X509SVIDResponse as an X509Context (SVIDs plus own and federated bundles). */
export function parseX509ContextResponse(resp: X509SVIDResponse): X509Context {
  const svids = parseX509SvidResponse(resp, false);
  const bundles = new X509BundleSet();
  // One bundle per trust domain: a second, different one (another SVID's, or a federated entry
  // for an SVID's own trust domain) would leave it unclear which one the SVIDs chain to.
  const add = (b: X509Bundle): void => {
    const prev = bundles.get(b.trustDomain);
    if (prev !== undefined && !prev.equals(b)) throw responseError(`conflicting X.509 bundles for trust domain "${b.trustDomain.name}"`);
    bundles.add(b);
  };
  for (const s of resp.svids) add(parseX509BundleEntry(s.spiffeId, s.bundle));
  for (const [k, v] of Object.entries(resp.federatedBundles)) add(parseX509BundleEntry(k, v));
  return { svids, bundles };
}

/** An X509BundlesResponse as a bundle set (map keys `spiffe://td`). */
export function parseX509BundlesResponse(resp: X509BundlesResponse): X509BundleSet {
  const set = new X509BundleSet();
  const entries = Object.entries(resp.bundles);
  if (entries.length === 0) throw responseError('no X.509 bundles in response');
  for (const [k, v] of entries) set.add(parseX509BundleEntry(k, v));
  return set;
}

/** A JWTBundlesResponse as a bundle set (map keys `spiffe://td`, values JWKS). */
export function parseJwtBundlesResponse(resp: JWTBundlesResponse): JwtBundleSet {
  const set = new JwtBundleSet();
  const entries = Object.entries(resp.bundles);
  if (entries.length === 0) throw responseError('no JWT bundles in response');
  for (const [k, v] of entries) {
    const td = parseTd(k);
    try {
      // SPIRE sends plain JWKS (bundleutil StandardJWKS: no `use`); keys marked for X.509 still do not count.
      set.add(JwtBundle.parse(td, v, { plainJwks: true }));
    } catch (e) {
      throw responseError((e as Error).message, e);
    }
  }
  return set;
}

/** The JWT-SVIDs of a JWTSVIDResponse, parsed without signature checks (trusted source). */
export function parseJwtSvidResponse(resp: JWTSVIDResponse, audience: readonly string[], firstOnly: boolean, now: Date): JwtSvid[] {
  if (resp.svids.length === 0) throw responseError('there were no SVIDs in the response');
  const n = firstOnly ? 1 : resp.svids.length;
  const hints = new Set<string>();
  const out: JwtSvid[] = [];
  for (const s of resp.svids.slice(0, n)) {
    if (s.hint !== '' && hints.has(s.hint)) continue;
    hints.add(s.hint);
    let svid: JwtSvid;
    try {
      svid = parseInsecureJwtSvid(s.svid, audience, { now });
    } catch (e) {
      throw responseError((e as Error).message, e);
    }
    if (s.hint !== '') svid.hint = s.hint;
    out.push(svid);
  }
  return out;
}

const copySvids = (svids: readonly X509Svid[]): X509Svid[] => svids.map((s) => X509Svid.copyOf(s));

/**
 * What one kind of fetch made of the last X509SVIDResponse it parsed. The agent sends the same
 * bytes on every fetch until the SVID rotates, and their parse depends on nothing else (no clock,
 * no verification), so the same bytes again skip the protobuf decode and the parse: the result is
 * handed out as a copy. The SHA-256 of the bytes is kept, not the bytes, which hold private keys.
 */
class LastX509Parse<T> {
  readonly #parse: (resp: X509SVIDResponse) => T;
  readonly #copy: (value: T) => T;
  #digest: Buffer | undefined;
  /** Never handed out: each fetch gets a copy. */
  #value: T | undefined;

  constructor(parse: (resp: X509SVIDResponse) => T, copy: (value: T) => T) {
    this.#parse = parse;
    this.#copy = copy;
  }

  get(raw: Uint8Array): T {
    const digest = createHash('sha256').update(raw).digest();
    if (this.#value !== undefined && this.#digest?.equals(digest) === true) return this.#copy(this.#value);
    let resp: X509SVIDResponse;
    try {
      resp = decodeResponse(SpiffeWorkloadAPI.method.fetchX509SVID, raw);
    } catch (e) {
      throw toWorkloadApiError(e);
    }
    const value = this.#parse(resp);
    this.#digest = digest;
    this.#value = this.#copy(value);
    return value;
  }
}

/**
 * A Workload API client. Every request carries `workload.spiffe.io: true`. Failures are
 * WorkloadApiError (SpiffeError ERR_WORKLOAD_API) with the gRPC code in `grpcCode`.
 */
export class WorkloadApiClient {
  readonly address: string;
  readonly #api: Api;
  readonly #channel: GrpcChannel;
  readonly #closed = new AbortController();
  readonly #backoff: () => Backoff;
  readonly #now: () => Date;
  /** The last response parsed by fetchX509Svid, fetchX509Svids and fetchX509Context (each parses its own way). */
  readonly #lastSvid = new LastX509Parse((r) => parseX509SvidResponse(r, true), copySvids);
  readonly #lastSvids = new LastX509Parse((r) => parseX509SvidResponse(r, false), copySvids);
  readonly #lastContext = new LastX509Parse(parseX509ContextResponse, (c) => ({
    svids: copySvids(c.svids),
    bundles: new X509BundleSet(c.bundles.bundles().map((b) => b.clone())),
  }));

  constructor(opts: WorkloadApiClientOptions = {}) {
    this.address = opts.address ?? defaultWorkloadEndpoint();
    const ep = parseWorkloadEndpoint(this.address);
    if (ep.kind === 'unix' && ep.authority !== '') {
      throw new SpiffeError('ERR_WORKLOAD_ADDRESS_INVALID', `workload endpoint unix socket URI must not include an authority: ${ep.authority}`);
    }
    this.#channel = new GrpcChannel({
      connect: ep.kind === 'unix' ? unixConnector(ep.path) : tcpConnector(ep.target),
      authority: ep.kind === 'unix' ? 'localhost' : ep.target,
      headers: { [WORKLOAD_API_HEADER]: 'true' },
      interceptors: opts.interceptors ?? [],
      ...(opts.transport === undefined ? {} : { transport: opts.transport }),
    });
    this.#api = workloadApi(this.#channel);
    this.#backoff = opts.backoff ?? (() => linearBackoff());
    this.#now = opts.now ?? (() => new Date());
    if (opts.signal !== undefined) {
      if (opts.signal.aborted) this.close();
      else opts.signal.addEventListener('abort', () => this.close(), { once: true });
    }
  }

  /** Creates a client (go-spiffe `workloadapi.New`); the connection is made lazily on first use. */
  static async connect(opts: WorkloadApiClientOptions = {}): Promise<WorkloadApiClient> {
    return new WorkloadApiClient(opts);
  }

  /** Closes the connection; watches end, later calls fail with Canceled. */
  close(): void {
    if (this.#closed.signal.aborted) return;
    this.#closed.abort();
    this.#channel.close();
  }

  get closed(): boolean {
    return this.#closed.signal.aborted;
  }

  #signal(signal?: AbortSignal): AbortSignal {
    return signal === undefined ? this.#closed.signal : AbortSignal.any([signal, this.#closed.signal]);
  }

  /** First message of a server stream, which is then cancelled (RST_STREAM CANCEL). */
  async #first<T>(start: (signal: AbortSignal) => Promise<T | undefined>, signal?: AbortSignal): Promise<T> {
    let m: T | undefined;
    try {
      m = await start(this.#signal(signal));
    } catch (e) {
      throw toWorkloadApiError(e);
    }
    if (m === undefined) {
      throw new WorkloadApiError(GrpcCode.Unavailable, 'stream closed before the first response', 'workloadapi: stream closed before the first response');
    }
    return m;
  }

  /** The default X509-SVID (the first in the response). */
  async fetchX509Svid(opts: { signal?: AbortSignal } = {}): Promise<X509Svid> {
    const raw = await this.#first((signal) => this.#api.firstX509SVIDRaw({}, { signal }), opts.signal);
    return this.#lastSvid.get(raw)[0] as X509Svid;
  }

  /** Every X509-SVID of the workload (duplicate hints: first wins). */
  async fetchX509Svids(opts: { signal?: AbortSignal } = {}): Promise<X509Svid[]> {
    const raw = await this.#first((signal) => this.#api.firstX509SVIDRaw({}, { signal }), opts.signal);
    return this.#lastSvids.get(raw);
  }

  async fetchX509Context(opts: { signal?: AbortSignal } = {}): Promise<X509Context> {
    const raw = await this.#first((signal) => this.#api.firstX509SVIDRaw({}, { signal }), opts.signal);
    return this.#lastContext.get(raw);
  }

  async fetchX509Bundles(opts: { signal?: AbortSignal } = {}): Promise<X509BundleSet> {
    const resp = await this.#first((signal) => this.#api.firstX509Bundles({}, { signal }), opts.signal);
    return parseX509BundlesResponse(resp);
  }

  async fetchJwtBundles(opts: { signal?: AbortSignal } = {}): Promise<JwtBundleSet> {
    const resp = await this.#first((signal) => this.#api.firstJWTBundles({}, { signal }), opts.signal);
    return parseJwtBundlesResponse(resp);
  }

  async #fetchJwt(params: JwtSvidParams, firstOnly: boolean, signal?: AbortSignal): Promise<JwtSvid[]> {
    const audience = [params.audience, ...(params.extraAudiences ?? [])];
    const spiffeId = params.subject === undefined ? '' : params.subject.toString();
    let resp: JWTSVIDResponse;
    try {
      resp = await this.#api.fetchJWTSVID({ audience, spiffeId }, { signal: this.#signal(signal) });
    } catch (e) {
      throw toWorkloadApiError(e);
    }
    return parseJwtSvidResponse(resp, audience, firstOnly, this.#now());
  }

  /** The default JWT-SVID for the audience (or the one of `subject`). */
  async fetchJwtSvid(params: JwtSvidParams, opts: { signal?: AbortSignal } = {}): Promise<JwtSvid> {
    return (await this.#fetchJwt(params, true, opts.signal))[0] as JwtSvid;
  }

  async fetchJwtSvids(params: JwtSvidParams, opts: { signal?: AbortSignal } = {}): Promise<JwtSvid[]> {
    return this.#fetchJwt(params, false, opts.signal);
  }

  /**
   * Asks the Workload API to validate a JWT-SVID for `audience`; on success returns the token
   * parsed locally (as go-spiffe does).
   */
  async validateJwtSvid(token: string, audience: string, opts: { signal?: AbortSignal } = {}): Promise<JwtSvid> {
    try {
      await this.#api.validateJWTSVID({ svid: token, audience }, { signal: this.#signal(opts.signal) });
    } catch (e) {
      throw toWorkloadApiError(e);
    }
    try {
      return parseInsecureJwtSvid(token, [audience], { now: this.#now() });
    } catch (e) {
      throw responseError((e as Error).message, e);
    }
  }

  /**
   * Watches X.509 contexts until `signal` aborts or the client closes (then resolves). Reconnects
   * after failures with the backoff; rejects on Canceled or InvalidArgument from the server.
   */
  watchX509Context(watcher: Watcher<X509Context>, signal?: AbortSignal): Promise<void> {
    return this.#watch((s) => this.#api.fetchX509SVID({}, { signal: s }), parseX509ContextResponse, watcher, signal);
  }

  watchX509Bundles(watcher: Watcher<X509BundleSet>, signal?: AbortSignal): Promise<void> {
    return this.#watch((s) => this.#api.fetchX509Bundles({}, { signal: s }), parseX509BundlesResponse, watcher, signal);
  }

  watchJwtBundles(watcher: Watcher<JwtBundleSet>, signal?: AbortSignal): Promise<void> {
    return this.#watch((s) => this.#api.fetchJWTBundles({}, { signal: s }), parseJwtBundlesResponse, watcher, signal);
  }

  async #watch<M, T>(start: (signal: AbortSignal) => AsyncIterable<M>, parse: (m: M) => T, watcher: Watcher<T>, userSignal?: AbortSignal): Promise<void> {
    const signal = this.#signal(userSignal);
    const backoff = this.#backoff();
    for (;;) {
      if (signal.aborted) return;
      let err: WorkloadApiError;
      try {
        for await (const m of start(signal)) {
          backoff.reset();
          let update: T;
          try {
            update = parse(m);
          } catch (e) {
            notify(watcher, toWorkloadApiError(e));
            continue;
          }
          try {
            watcher.onUpdate(update);
          } catch {
            // a failing watcher must not tear down the stream
          }
        }
        err = new WorkloadApiError(GrpcCode.Unavailable, 'stream closed', 'workloadapi: stream closed');
      } catch (e) {
        if (signal.aborted) return;
        err = toWorkloadApiError(e);
      }
      notify(watcher, err);
      if (err.grpcCode === GrpcCode.Canceled || err.grpcCode === GrpcCode.InvalidArgument) throw err;
      try {
        await sleep(backoff.next(), undefined, { signal });
      } catch {
        return;
      }
    }
  }
}
