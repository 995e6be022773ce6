// SpiffeWorkloadAPI + grpc.health.v1 on the agent's Unix socket.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type * as http2 from 'node:http2';
import type { Socket } from 'node:net';
import { Code, ConnectError, createContextKey, type ConnectRouter, type HandlerContext, type Interceptor } from '@connectrpc/connect';
import {
  HealthCheckResponse_ServingStatus, HealthService, SpiffeWorkloadAPI, startGrpcServer,
  type Bundle, type GrpcServer, type Entry,
} from '@ztwim/proto';
import { JwtBundle, JwtBundleSet, TrustDomain, concatDer, parseAndValidateJwtSvid } from '@ztwim/spiffe';
import { isZtwimError, type Logger } from '@ztwim/core';
import type { PeerTracker, TrackedPeer } from '../attestation/workload/peer-tracker.ts';
import type { Selector } from '../attestation/workload/workload-attestor.ts';
import { entrySpiffeId, type CacheManager } from '../manager/cache-manager.ts';

const peerKey = createContextKey<TrackedPeer | Error | undefined>(undefined);

export interface WorkloadEndpointOptions {
  readonly socketPath: string;
  readonly cache: CacheManager;
  readonly tracker: PeerTracker;
  readonly logger: Logger;
}

function headerCheck(): Interceptor {
  return (next) => async (req) => {
    if (req.service.typeName === 'grpc.health.v1.Health') return next(req);
    const v = req.header.get('workload.spiffe.io');
    // Headers joins repeated values with ", ".
    if (v !== 'true') throw new ConnectError('security header missing from request', Code.InvalidArgument);
    return next(req);
  };
}

async function selectorsOf(ctx: HandlerContext): Promise<Selector[]> {
  const peer = ctx.values.get(peerKey);
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

export function workloadRoutes(cache: CacheManager, logger: Logger): (router: ConnectRouter) => void {
  const x509Response = (sels: Selector[]) => {
    const ids = cache.identitiesFor(sels);
    if (ids.length === 0) throw new ConnectError('no identity issued', Code.PermissionDenied);
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
    return { svids, federatedBundles, crl: [] };
  };
  return (router) => {
    router.service(SpiffeWorkloadAPI, {
      async *fetchX509SVID(_req, ctx) {
        const sels = await selectorsOf(ctx);
        yield x509Response(sels);
        for await (const _ of changes(cache, ctx.signal)) {
          try { yield x509Response(sels); } catch (e) { logger.debug({ err: e }, 'x509 stream update failed'); throw e; }
        }
      },
      async *fetchX509Bundles(_req, ctx) {
        await selectorsOf(ctx);
        let last = x509Bundles(cache);
        yield { bundles: Object.fromEntries(last), crl: [] };
        for await (const _ of changes(cache, ctx.signal)) {
          const next = x509Bundles(cache);
          if (eqMap(last, next)) continue;
          last = next;
          yield { bundles: Object.fromEntries(next), crl: [] };
        }
      },
      async *fetchJWTBundles(_req, ctx) {
        await selectorsOf(ctx);
        let last = jwtBundles(cache);
        yield { bundles: Object.fromEntries(last) };
        for await (const _ of changes(cache, ctx.signal)) {
          const next = jwtBundles(cache);
          if (eqMap(last, next)) continue;
          last = next;
          yield { bundles: Object.fromEntries(next) };
        }
      },
      async fetchJWTSVID(req, ctx) {
        if (req.audience.length === 0) throw new ConnectError('audience must be specified', Code.InvalidArgument);
        const sels = await selectorsOf(ctx);
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
      },
      async validateJWTSVID(req) {
        if (req.audience === '') throw new ConnectError('audience must be specified', Code.InvalidArgument);
        if (req.svid === '') throw new ConnectError('svid must be specified', Code.InvalidArgument);
        const set = new JwtBundleSet([...jwtBundles(cache)].map(([td, j]) => JwtBundle.parse(TrustDomain.parse(td.replace(/^spiffe:\/\//, '')), j)));
        try {
          const svid = await parseAndValidateJwtSvid(req.svid, set, [req.audience]);
          const claims: Record<string, unknown> = { ...svid.claims };
          return { spiffeId: svid.id.toString(), claims: claims as never };
        } catch (e) {
          throw new ConnectError(e instanceof Error ? e.message : String(e), Code.InvalidArgument);
        }
      },
      fetchWITSVID() {
        throw new ConnectError('WIT-SVIDs are not supported', Code.Unimplemented);
      },
      fetchWITBundles() {
        throw new ConnectError('WIT-SVID bundles are not supported', Code.Unimplemented);
      },
    });
    router.service(HealthService, {
      check() { return { status: HealthCheckResponse_ServingStatus.SERVING }; },
      async *watch(_req, ctx) {
        yield { status: HealthCheckResponse_ServingStatus.SERVING };
        await new Promise<void>((r) => ctx.signal.addEventListener('abort', () => r()));
      },
    });
  };
}

export async function startWorkloadEndpoint(o: WorkloadEndpointOptions): Promise<GrpcServer> {
  await fs.mkdir(path.dirname(o.socketPath), { recursive: true });
  const peers = new WeakMap<object, TrackedPeer | Error>();
  const server = await startGrpcServer({
    listen: { path: o.socketPath, mode: 0o777 },
    routes: workloadRoutes(o.cache, o.logger),
    interceptors: [headerCheck()],
    contextValues: (req: http2.Http2ServerRequest) => {
      const session = req.stream.session;
      const key: object = session ?? req;
      let p = peers.get(key);
      if (p === undefined) {
        try { p = o.tracker.track((session?.socket ?? req.socket) as unknown as Socket); } catch (e) { p = e instanceof Error ? e : new Error(String(e)); }
        peers.set(key, p);
      }
      const v = createContextValuesWith(p);
      return v;
    },
    onConnectionError: (err) => o.logger.debug({ err }, 'workload api connection error'),
  });
  return server;
}

import { createContextValues } from '@connectrpc/connect';
function createContextValuesWith(p: TrackedPeer | Error): ReturnType<typeof createContextValues> {
  return createContextValues().set(peerKey, p);
}
