// SpiffeWorkloadAPI + grpc.health.v1 on the agent's Unix socket.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type * as http2 from 'node:http2';
import type { Socket } from 'node:net';
import { Code, ConnectError } from '@connectrpc/connect';
import { create, toBinary, type DescMethod } from '@bufbuild/protobuf';
import {
  HealthCheckResponse_ServingStatus, HealthService, SpiffeWorkloadAPI, X509SVIDResponseSchema,
  type Bundle, type GrpcServer, type Entry,
} from '@ztwim/proto';
import { JwtBundle, JwtBundleSet, TrustDomain, concatDer, parseAndValidateJwtSvid } from '@ztwim/spiffe';
import { isZtwimError, type Logger } from '@ztwim/core';
import type { PeerTracker, TrackedPeer } from '../attestation/workload/peer-tracker.ts';
import type { Selector } from '../attestation/workload/workload-attestor.ts';
import { entrySpiffeId, type CacheManager } from '../manager/cache-manager.ts';
import { awaitCache, checkJwtSvidRequest, checkValidateRequest } from './workload-checks.ts';
import { EncodedMessage, serverStream, startRawGrpcServer, unary, type RawCallContext, type RawMethod } from './grpc-raw.ts';

export interface WorkloadEndpointOptions {
  readonly socketPath: string;
  readonly cache: CacheManager;
  readonly tracker: PeerTracker;
  readonly logger: Logger;
}

const MISSING_HEADER = new ConnectError('security header missing from request', Code.InvalidArgument);

/** Every Workload API call must carry `workload.spiffe.io: true` (health checks need not). */
function headerCheck(method: DescMethod, header: http2.IncomingHttpHeaders): ConnectError | undefined {
  if (method.parent.typeName === 'grpc.health.v1.Health') return undefined;
  // node:http2 joins repeated values with ", ", so a repeated header is refused too.
  return header['workload.spiffe.io'] === 'true' ? undefined : MISSING_HEADER;
}

type Peer = TrackedPeer | Error;
type Ctx = RawCallContext<Peer>;
type Identity = ReturnType<CacheManager['identitiesFor']>[number];

async function selectorsOf(ctx: Ctx): Promise<Selector[]> {
  const peer = ctx.peer;
  if (peer === undefined || peer instanceof Error) throw new ConnectError('workload attestation failed', Code.Unavailable);
  try {
    return await peer.attest(ctx.signal);
  } catch (e) {
    if (isZtwimError(e) || e instanceof Error) throw new ConnectError('workload attestation failed', Code.Unavailable);
    throw e;
  }
}

function x509Bundles(cache: CacheManager): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  const b = cache.bundle;
  if (b !== undefined) out.set(`spiffe://${b.trustDomain}`, concatDer(b.x509Authorities.map((a) => a.asn1)));
  for (const [td, fb] of cache.federated) out.set(`spiffe://${td}`, concatDer(fb.x509Authorities.map((a) => a.asn1)));
  return out;
}

function jwks(b: Bundle): Uint8Array {
  const keys = b.jwtAuthorities.map((k) => {
    const jwk = crypto.createPublicKey({ key: Buffer.from(k.publicKey), format: 'der', type: 'spki' }).export({ format: 'jwk' });
    return { ...jwk, kid: k.keyId, use: 'jwt-svid' };
  });
  return new TextEncoder().encode(JSON.stringify({ keys }));
}

function jwtBundles(cache: CacheManager): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  const b = cache.bundle;
  if (b !== undefined) out.set(`spiffe://${b.trustDomain}`, jwks(b));
  for (const [td, fb] of cache.federated) out.set(`spiffe://${td}`, jwks(fb));
  return out;
}

/** Yields whenever the cache changes, until the call is aborted. */
async function* changes(cache: CacheManager, signal: AbortSignal): AsyncGenerator<void> {
  let pending = false;
  let wake: (() => void) | undefined;
  const unsub = cache.subscribe(() => { pending = true; wake?.(); });
  const onAbort = (): void => wake?.();
  signal.addEventListener('abort', onAbort);
  try {
    for (;;) {
      if (signal.aborted) return;
      if (!pending) await new Promise<void>((r) => { wake = r; });
      wake = undefined;
      if (signal.aborted) return;
      if (pending) { pending = false; yield; }
    }
  } finally {
    unsub();
    signal.removeEventListener('abort', onAbort);
  }
}

function eqMap(a: Map<string, Uint8Array> | undefined, b: Map<string, Uint8Array>): boolean {
  if (a === undefined || a.size !== b.size) return false;
  for (const [k, v] of b) { const o = a.get(k); if (o === undefined || Buffer.compare(o, v) !== 0) return false; }
  return true;
}

/** The Workload API and grpc.health.v1 methods, for the raw gRPC server (./grpc-raw.ts). */
export function workloadMethods(cache: CacheManager, logger: Logger): RawMethod<Peer>[] {
  const buildX509 = (ids: Identity[]) => {
    const bundle = cache.bundle;
    const bundleDer = bundle === undefined ? new Uint8Array() : concatDer(bundle.x509Authorities.map((a) => a.asn1));
    const svids = ids.filter((i) => i.svid !== undefined).map((i) => ({
      spiffeId: i.svid!.spiffeId,
      x509Svid: concatDer(i.svid!.chain),
      x509SvidKey: i.svid!.keyDer,
      bundle: bundleDer,
      hint: i.entry.hint,
    }));
    if (svids.length === 0) throw new ConnectError('no identity issued', Code.PermissionDenied);
    const federatedBundles: Record<string, Uint8Array> = {};
    const fedTds = new Set(ids.flatMap((i) => i.entry.federatesWith));
    for (const [td, fb] of cache.federated) if (fedTds.has(td)) federatedBundles[`spiffe://${td}`] = concatDer(fb.x509Authorities.map((a) => a.asn1));
    return new EncodedMessage(toBinary(X509SVIDResponseSchema, create(X509SVIDResponseSchema, { svids, federatedBundles, crl: [] })));
  };
  // The encoded response for the last few identity sets: every workload with the same matching
  // entries, SVIDs and bundles gets the very same bytes (1,000 streams of one workload after a
  // rotation: one encoding, not 1,000). A hit needs the same entry and SVID objects, in order,
  // and the same bundle objects, so a response is only ever reused for exactly the identities
  // it was built from.
  const memo: { ids: Identity[]; bundle: Bundle | undefined; federated: ReadonlyMap<string, Bundle>; msg: EncodedMessage }[] = [];
  const x509Response = (sels: Selector[]): EncodedMessage => {
    const ids = cache.identitiesFor(sels);
    if (ids.length === 0) throw new ConnectError('no identity issued', Code.PermissionDenied);
    const bundle = cache.bundle;
    const federated = cache.federated;
    for (const m of memo) {
      if (m.bundle === bundle && m.federated === federated && m.ids.length === ids.length &&
        m.ids.every((x, i) => x.entry === ids[i]!.entry && x.svid === ids[i]!.svid)) return m.msg;
    }
    const msg = buildX509(ids);
    memo.unshift({ ids, bundle, federated, msg });
    if (memo.length > 8) memo.pop();
    return msg;
  };
  const W = SpiffeWorkloadAPI.method;
  return [
    serverStream(W.fetchX509SVID, async function* (_req, ctx: Ctx) {
      const sels = await selectorsOf(ctx);
      await awaitCache(cache, sels, 'svids', ctx.signal);
      yield x509Response(sels);
      for await (const _ of changes(cache, ctx.signal)) {
        try { yield x509Response(sels); } catch (e) { logger.debug({ err: e }, 'x509 stream update failed'); throw e; }
      }
    }),
    serverStream(W.fetchX509Bundles, async function* (_req, ctx: Ctx) {
      await awaitCache(cache, await selectorsOf(ctx), 'entries', ctx.signal);
      let last = x509Bundles(cache);
      yield { bundles: Object.fromEntries(last), crl: [] };
      for await (const _ of changes(cache, ctx.signal)) {
        const next = x509Bundles(cache);
        if (eqMap(last, next)) continue;
        last = next;
        yield { bundles: Object.fromEntries(next), crl: [] };
      }
    }),
    serverStream(W.fetchJWTBundles, async function* (_req, ctx: Ctx) {
      await awaitCache(cache, await selectorsOf(ctx), 'entries', ctx.signal);
      let last = jwtBundles(cache);
      yield { bundles: Object.fromEntries(last) };
      for await (const _ of changes(cache, ctx.signal)) {
        const next = jwtBundles(cache);
        if (eqMap(last, next)) continue;
        last = next;
        yield { bundles: Object.fromEntries(next) };
      }
    }),
    unary(W.fetchJWTSVID, async (req, ctx: Ctx) => {
      checkJwtSvidRequest(req);
      const sels = await selectorsOf(ctx);
      await awaitCache(cache, sels, 'entries', ctx.signal);
      let ids: Entry[] = cache.identitiesFor(sels).map((i) => i.entry);
      if (req.spiffeId !== '') ids = ids.filter((e) => entrySpiffeId(e) === req.spiffeId);
      if (ids.length === 0) throw new ConnectError('no identity issued', Code.PermissionDenied);
      const svids = [];
      for (const e of ids) {
        try {
          svids.push({ spiffeId: entrySpiffeId(e), svid: await cache.jwtSvid(e, req.audience), hint: e.hint });
        } catch (err) {
          logger.warn({ err, entryId: e.id }, 'could not fetch jwt-svid');
          throw new ConnectError('could not fetch JWT-SVID', Code.Unavailable);
        }
      }
      return { svids };
    }),
    unary(W.validateJWTSVID, async (req, ctx: Ctx) => {
      checkValidateRequest(req);
      await awaitCache(cache, [], 'entries', ctx.signal);
      const set = new JwtBundleSet([...jwtBundles(cache)].map(([td, j]) => JwtBundle.parse(TrustDomain.parse(td.replace(/^spiffe:\/\//, '')), j)));
      try {
        const svid = await parseAndValidateJwtSvid(req.svid, set, [req.audience]);
        const claims: Record<string, unknown> = { ...svid.claims };
        return { spiffeId: svid.id.toString(), claims: claims as never };
      } catch (e) {
        throw new ConnectError(e instanceof Error ? e.message : String(e), Code.InvalidArgument);
      }
    }),
    unary(W.fetchWITSVID, () => {
      throw new ConnectError('WIT-SVIDs are not supported', Code.Unimplemented);
    }),
    serverStream(W.fetchWITBundles, () => {
      throw new ConnectError('WIT-SVID bundles are not supported', Code.Unimplemented);
    }),
    unary(HealthService.method.check, () => ({ status: HealthCheckResponse_ServingStatus.SERVING })),
    serverStream(HealthService.method.watch, async function* (_req, ctx: Ctx) {
      yield { status: HealthCheckResponse_ServingStatus.SERVING };
      if (ctx.signal.aborted) return;
      await new Promise<void>((r) => ctx.signal.addEventListener('abort', () => r(), { once: true }));
    }),
  ];
}

export async function startWorkloadEndpoint(o: WorkloadEndpointOptions): Promise<GrpcServer> {
  await fs.mkdir(path.dirname(o.socketPath), { recursive: true });
  // One pinned peer per connection (HTTP/2 session), taken when the connection is accepted, as
  // SPIRE's peertracker does: what the caller runs later (exec of another binary, pid reuse) is
  // compared against what it ran when it connected, not when it sent its first request.
  return startRawGrpcServer<Peer>({
    path: o.socketPath,
    mode: 0o777,
    methods: workloadMethods(o.cache, o.logger),
    guard: headerCheck,
    sessionValue: (session) => {
      try {
        return o.tracker.track(session.socket as unknown as Socket);
      } catch (e) {
        return e instanceof Error ? e : new Error(String(e));
      }
    },
    onError: (err) => o.logger.debug({ err }, 'workload api connection error'),
  });
}
