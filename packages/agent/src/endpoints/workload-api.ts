// SpiffeWorkloadAPI + grpc.health.v1 on the agent's Unix socket, served by @ztwim/proto's gRPC
// server (its direct HTTP/2 path: every method here is unary or server-streaming).
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { Socket } from 'node:net';
import { Code, ConnectError, createContextKey, createContextValues, type ConnectRouter, type HandlerContext, type Interceptor } from '@connectrpc/connect';
import { create, toBinary } from '@bufbuild/protobuf';
import {
  HealthCheckResponse_ServingStatus,
  HealthService,
  SpiffeWorkloadAPI,
  X509SVIDResponseSchema,
  startGrpcServer,
  withEncoding,
  type Bundle,
  type ConnectionLimits,
  type GrpcServer,
  type Entry,
  type X509SVIDResponse,
} from '@ztwim/proto';
import { JwtBundle, JwtBundleSet, TrustDomain, concatDer, parseAndValidateJwtSvid } from '@ztwim/spiffe';
import { isZtwimError, jwksDocument, trustDomainIdString, x509AuthoritiesDer, type Logger, asError } from '@ztwim/core';
import { acceptPendingConnections } from '@ztwim/peercred';
import type { Selector } from '../attestation/workload/workload-attestor.ts';
import { entrySpiffeId, type CachedX509Svid } from '../manager/cache.ts';
import { awaitCache, checkJwtSvidRequest, checkValidateRequest, type ReadinessSource } from './workload-checks.ts';

/** One registration entry matching a workload, with its X509-SVID once minted. */
export interface WorkloadIdentity {
  readonly entry: Entry;
  readonly svid: CachedX509Svid | undefined;
}

/** What the Workload API needs of the agent's cache (SPIRE's workload handler `Manager`). */
export interface WorkloadCache extends ReadinessSource {
  readonly bundle: Bundle | undefined;
  readonly federated: ReadonlyMap<string, Bundle>;
  /** The identities whose entries the selectors match, in a stable order. */
  identitiesFor(selectors: readonly Selector[]): readonly WorkloadIdentity[];
  /** Calls `fn` whenever entries, SVIDs or bundles change; returns the unsubscribe. */
  subscribe(fn: () => void): () => void;
  jwtSvid(entry: Entry, audience: readonly string[]): Promise<string>;
}

/** The caller of one connection, pinned when it connected. */
export interface PinnedCaller {
  /** Its selectors, only if it is still the process that connected (else it throws). */
  attest(signal?: AbortSignal): Promise<Selector[]>;
}

/** Pins the process at the other end of an accepted Unix socket (SPIRE's workload `Attestor`, per connection). */
export interface Attestor {
  track(socket: Socket): PinnedCaller;
}

export interface WorkloadEndpointOptions {
  readonly socketPath: string;
  readonly cache: WorkloadCache;
  readonly attestor: Attestor;
  readonly logger: Logger;
  /** Connection bounds (tests shorten them); see @ztwim/proto's connection guard. */
  readonly limits?: ConnectionLimits;
  /**
   * agent.conf's `allow_unauthenticated_verifiers`: callers with no identity may still stream the
   * bundles (their own trust domain's only, as no entry of theirs federates). Default false.
   */
  readonly allowUnauthenticatedVerifiers?: boolean;
}

/** What the Workload API routes do beyond answering from the cache. */
export interface WorkloadRoutesOptions {
  /** See WorkloadEndpointOptions.allowUnauthenticatedVerifiers. */
  readonly allowUnauthenticatedVerifiers?: boolean;
}

const NO_IDENTITY = 'no identity issued';

const MISSING_HEADER = new ConnectError('security header missing from request', Code.InvalidArgument);
/** Whether the call carried `workload.spiffe.io: true`, read from the raw HTTP/2 headers. */
const securityHeaderKey = createContextKey(false, { description: 'workload.spiffe.io header present' });

/**
 * Every Workload API call must carry `workload.spiffe.io: true` (health checks need not). The
 * header is read when the call's context values are made, from node:http2's header object: going
 * through `req.header` would build a fetch Headers of every request header on every call.
 */
const securityHeaderInterceptor: Interceptor = (next) => (req) => {
  if (req.service.typeName !== HealthService.typeName && !req.contextValues.get(securityHeaderKey)) throw MISSING_HEADER;
  return next(req);
};

type Caller = PinnedCaller | Error;
/** The connection's pinned caller, in every call's context values. */
const callerKey = createContextKey<Caller | undefined>(undefined, { description: 'workload api caller' });

async function selectorsOf(ctx: HandlerContext): Promise<Selector[]> {
  const caller = ctx.values.get(callerKey);
  if (caller === undefined || caller instanceof Error) throw new ConnectError('workload attestation failed', Code.Unavailable);
  try {
    return await caller.attest(ctx.signal);
  } catch (e) {
    if (isZtwimError(e) || e instanceof Error) throw new ConnectError('workload attestation failed', Code.Unavailable);
    throw e;
  }
}

/**
 * The trust domains whose bundles a caller gets: those its matching entries federate with
 * (SPIRE's `FetchWorkloadUpdate(selectors).FederatedBundles`). Another workload's federation on
 * the same node is not this caller's: a foreign domain's SVIDs are trusted only by the workloads
 * whose entries name it.
 */
function federatedFor(cache: WorkloadCache, sels: readonly Selector[]): Set<string> {
  return federatesWithOf(cache.identitiesFor(sels));
}

const federatesWithOf = (ids: readonly WorkloadIdentity[]): Set<string> => new Set(ids.flatMap((i) => i.entry.federatesWith));

/** The own bundle and the caller's federated bundles, each encoded by `enc`, keyed by trust domain ID. */
function bundlesFor(cache: WorkloadCache, tds: ReadonlySet<string>, enc: (b: Bundle) => Uint8Array): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  const b = cache.bundle;
  if (b !== undefined) out.set(trustDomainIdString(b.trustDomain), enc(b));
  for (const [td, fb] of cache.federated) if (tds.has(td)) out.set(trustDomainIdString(td), enc(fb));
  return out;
}

const x509Bundles = (cache: WorkloadCache, tds: ReadonlySet<string>): Map<string, Uint8Array> => bundlesFor(cache, tds, x509AuthoritiesDer);
const jwtBundles = (cache: WorkloadCache, tds: ReadonlySet<string>): Map<string, Uint8Array> =>
  bundlesFor(cache, tds, (b) => jwksDocument(b, { use: 'jwt-svid' }));

/**
 * Claims of a foreign JWT-SVID handed back by ValidateJWTSVID: SPIRE keeps only `sub`, `exp` and
 * `aud` (plus `allowed_foreign_jwt_claims`, which ztwim does not implement).
 */
const FOREIGN_CLAIMS = new Set(['sub', 'exp', 'aud']);

/** Yields whenever the cache changes, until the call is aborted. */
async function* changes(cache: WorkloadCache, signal: AbortSignal): AsyncGenerator<void> {
  let pending = false;
  let wake: (() => void) | undefined;
  const unsub = cache.subscribe(() => {
    pending = true;
    wake?.();
  });
  const onAbort = (): void => wake?.();
  signal.addEventListener('abort', onAbort);
  try {
    for (;;) {
      if (signal.aborted) return;
      if (!pending)
        await new Promise<void>((r) => {
          wake = r;
        });
      wake = undefined;
      if (signal.aborted) return;
      if (pending) {
        pending = false;
        yield;
      }
    }
  } finally {
    unsub();
    signal.removeEventListener('abort', onAbort);
  }
}

function eqMap(a: Map<string, Uint8Array> | undefined, b: Map<string, Uint8Array>): boolean {
  if (a === undefined || a.size !== b.size) return false;
  for (const [k, v] of b) {
    const o = a.get(k);
    if (o === undefined || Buffer.compare(o, v) !== 0) return false;
  }
  return true;
}

/** Registers the Workload API and grpc.health.v1 on a router. */
export function workloadRoutes(cache: WorkloadCache, logger: Logger, opts: WorkloadRoutesOptions = {}): (router: ConnectRouter) => void {
  const allowUnauthenticated = opts.allowUnauthenticatedVerifiers === true;
  /**
   * The trust domains of the caller's bundles, checked on every answer of a bundle stream as
   * spire-agent does (sendX509BundlesResponse / sendJWTBundlesResponse): a caller with no matching
   * entry is refused PermissionDenied, at the start or on the update that removed its last entry
   * (ending the stream), unless allow_unauthenticated_verifiers is set.
   */
  const bundleDomainsFor = (sels: readonly Selector[], stream: string): Set<string> => {
    const ids = cache.identitiesFor(sels);
    if (ids.length === 0 && !allowUnauthenticated) {
      logger.debug({ method: stream }, 'No identity issued');
      throw new ConnectError(NO_IDENTITY, Code.PermissionDenied);
    }
    return federatesWithOf(ids);
  };
  const buildX509 = (ids: readonly WorkloadIdentity[]): X509SVIDResponse => {
    const bundle = cache.bundle;
    const bundleDer = bundle === undefined ? new Uint8Array() : x509AuthoritiesDer(bundle);
    const svids = ids
      .filter((i) => i.svid !== undefined)
      .map((i) => ({
        spiffeId: i.svid!.spiffeId,
        x509Svid: concatDer(i.svid!.chain),
        x509SvidKey: i.svid!.keyDer,
        bundle: bundleDer,
        hint: i.entry.hint,
      }));
    if (svids.length === 0) throw new ConnectError(NO_IDENTITY, Code.PermissionDenied);
    const federatedBundles: Record<string, Uint8Array> = {};
    const fedTds = federatesWithOf(ids);
    for (const [td, fb] of cache.federated) if (fedTds.has(td)) federatedBundles[trustDomainIdString(td)] = x509AuthoritiesDer(fb);
    const msg = create(X509SVIDResponseSchema, { svids, federatedBundles, crl: [] });
    return withEncoding(msg, toBinary(X509SVIDResponseSchema, msg));
  };
  // The response (with its encoding) for the last few identity sets: every workload with the same
  // matching entries, SVIDs and bundles gets the very same bytes (1,000 streams of one workload
  // after a rotation: one encoding, not 1,000). A hit needs the same entry and SVID objects, in
  // order, and the same bundle objects, so a response is only ever reused for exactly the
  // identities it was built from.
  const memo: { ids: readonly WorkloadIdentity[]; bundle: Bundle | undefined; federated: ReadonlyMap<string, Bundle>; msg: X509SVIDResponse }[] = [];
  const x509Response = (sels: Selector[]): X509SVIDResponse => {
    const ids = cache.identitiesFor(sels);
    if (ids.length === 0) throw new ConnectError(NO_IDENTITY, Code.PermissionDenied);
    const bundle = cache.bundle;
    const federated = cache.federated;
    for (const m of memo) {
      if (
        m.bundle === bundle &&
        m.federated === federated &&
        m.ids.length === ids.length &&
        m.ids.every((x, i) => x.entry === ids[i]!.entry && x.svid === ids[i]!.svid)
      )
        return m.msg;
    }
    const msg = buildX509(ids);
    memo.unshift({ ids, bundle, federated, msg });
    if (memo.length > 8) memo.pop();
    return msg;
  };
  return (router) => {
    router.service(SpiffeWorkloadAPI, {
      async *fetchX509SVID(_req, ctx) {
        const sels = await selectorsOf(ctx);
        await awaitCache(cache, sels, 'svids', ctx.signal);
        yield x509Response(sels);
        for await (const _ of changes(cache, ctx.signal)) {
          try {
            yield x509Response(sels);
          } catch (e) {
            logger.debug({ err: e }, 'X509 stream update failed');
            throw e;
          }
        }
      },
      async *fetchX509Bundles(_req, ctx) {
        const sels = await selectorsOf(ctx);
        await awaitCache(cache, sels, 'entries', ctx.signal);
        let last = x509Bundles(cache, bundleDomainsFor(sels, 'FetchX509Bundles'));
        yield { bundles: Object.fromEntries(last), crl: [] };
        for await (const _ of changes(cache, ctx.signal)) {
          const next = x509Bundles(cache, bundleDomainsFor(sels, 'FetchX509Bundles'));
          if (eqMap(last, next)) continue;
          last = next;
          yield { bundles: Object.fromEntries(next), crl: [] };
        }
      },
      async *fetchJWTBundles(_req, ctx) {
        const sels = await selectorsOf(ctx);
        await awaitCache(cache, sels, 'entries', ctx.signal);
        let last = jwtBundles(cache, bundleDomainsFor(sels, 'FetchJWTBundles'));
        yield { bundles: Object.fromEntries(last) };
        for await (const _ of changes(cache, ctx.signal)) {
          const next = jwtBundles(cache, bundleDomainsFor(sels, 'FetchJWTBundles'));
          if (eqMap(last, next)) continue;
          last = next;
          yield { bundles: Object.fromEntries(next) };
        }
      },
      async fetchJWTSVID(req, ctx) {
        checkJwtSvidRequest(req);
        const sels = await selectorsOf(ctx);
        await awaitCache(cache, sels, 'entries', ctx.signal);
        let ids: Entry[] = cache.identitiesFor(sels).map((i) => i.entry);
        if (req.spiffeId !== '') ids = ids.filter((e) => entrySpiffeId(e) === req.spiffeId);
        if (ids.length === 0) throw new ConnectError(NO_IDENTITY, Code.PermissionDenied);
        const svids = [];
        for (const e of ids) {
          try {
            svids.push({ spiffeId: entrySpiffeId(e), svid: await cache.jwtSvid(e, req.audience), hint: e.hint });
          } catch (err) {
            logger.warn({ err, entry_id: e.id }, 'Could not fetch JWT-SVID');
            throw new ConnectError('could not fetch JWT-SVID', Code.Unavailable);
          }
        }
        return { svids };
      },
      async validateJWTSVID(req, ctx) {
        checkValidateRequest(req);
        // The caller's bundles only (SPIRE's getWorkloadBundles(selectors)): a token of a foreign
        // domain validates only for a workload whose entries federate with that domain.
        const sels = await selectorsOf(ctx);
        await awaitCache(cache, sels, 'entries', ctx.signal);
        const set = new JwtBundleSet(
          [...jwtBundles(cache, federatedFor(cache, sels))].map(([td, j]) => JwtBundle.parse(TrustDomain.parse(td.replace(/^spiffe:\/\//, '')), j)),
        );
        try {
          const svid = await parseAndValidateJwtSvid(req.svid, set, [req.audience]);
          const own = cache.bundle?.trustDomain;
          const claims: Record<string, unknown> =
            svid.id.trustDomain.name === own ? { ...svid.claims } : Object.fromEntries(Object.entries(svid.claims).filter(([k]) => FOREIGN_CLAIMS.has(k)));
          return { spiffeId: svid.id.toString(), claims: claims as never };
        } catch (e) {
          throw new ConnectError(e instanceof Error ? e.message : String(e), Code.InvalidArgument);
        }
      },
      fetchWITSVID() {
        throw new ConnectError('WIT-SVIDs are not supported', Code.Unimplemented);
      },
      // eslint-disable-next-line require-yield
      async *fetchWITBundles() {
        throw new ConnectError('WIT-SVID bundles are not supported', Code.Unimplemented);
      },
    });
    router.service(HealthService, {
      check: () => ({ status: HealthCheckResponse_ServingStatus.SERVING }),
      async *watch(_req, ctx) {
        yield { status: HealthCheckResponse_ServingStatus.SERVING };
        if (ctx.signal.aborted) return;
        await new Promise<void>((r) => ctx.signal.addEventListener('abort', () => r(), { once: true }));
      },
    });
  };
}

export async function startWorkloadEndpoint(o: WorkloadEndpointOptions): Promise<GrpcServer> {
  await fs.mkdir(path.dirname(o.socketPath), { recursive: true });
  // One pinned caller per connection, taken when the connection is accepted, as SPIRE's
  // peertracker does: what the caller runs later (exec of another binary, pid reuse) is compared
  // against what it ran when it connected, not when it sent its first request.
  const callers = new WeakMap<Socket, Caller>();
  return startGrpcServer({
    listen: { path: o.socketPath, mode: 0o777 },
    routes: workloadRoutes(
      o.cache,
      o.logger,
      o.allowUnauthenticatedVerifiers === undefined ? {} : { allowUnauthenticatedVerifiers: o.allowUnauthenticatedVerifiers },
    ),
    // No error-mapping interceptor: every handler here throws ConnectErrors already (anything else
    // is Internal), and on server streams it costs a generator layer per call.
    interceptors: [securityHeaderInterceptor],
    // A node's workloads starting together connect at once: take them from the queue together.
    acceptPending: acceptPendingConnections,
    onAccept: (socket) => {
      let caller: Caller;
      try {
        caller = o.attestor.track(socket);
      } catch (e) {
        caller = asError(e);
      }
      callers.set(socket, caller);
    },
    // node:http2 joins repeated values with ", ", so a repeated header is refused too.
    contextValues: (conn, headers) =>
      createContextValues()
        .set(callerKey, callers.get(conn.socket as Socket))
        .set(securityHeaderKey, headers['workload.spiffe.io'] === 'true'),
    readMaxBytes: 4 << 20,
    ...(o.limits === undefined ? {} : { limits: o.limits }),
    onConnectionError: (err) => o.logger.debug({ err }, 'Workload API connection error'),
    onConnectionClosed: (reason) => o.logger.debug({ reason }, 'Workload API connection closed'),
  });
}
