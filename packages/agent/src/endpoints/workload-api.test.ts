// The Workload API endpoint on a real Unix socket, with its own small dependencies faked: a
// cache and an attestor (the interfaces the endpoint declares). The attestor checks that it is
// handed the accepted socket itself (SO_PEERCRED of this very process).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as net from 'node:net';
import type { Socket } from 'node:net';
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { create } from '@bufbuild/protobuf';
import {
  BundleSchema,
  EntrySchema,
  HealthCheckResponse_ServingStatus,
  HealthService,
  SpiffeWorkloadAPI,
  createUnixGrpcTransport,
  headersInterceptor,
  type Bundle,
  type Entry,
} from '@ztwim/proto';
import { peerCredOf } from '@ztwim/peercred';
import { silentLogger } from '@ztwim/core';
import { closedPromise, connectRaw, h2Hello, hostile, openFds, waitUntil } from '@ztwim/testkit';
import type { Selector, WorkloadAttestor } from '../attestation/workload/workload-attestor.ts';
import { PeerTracker } from '../attestation/workload/peer-tracker.ts';
import { startWorkloadEndpoint, type Attestor, type WorkloadCache, type WorkloadIdentity } from './workload-api.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ztwim-wlapi-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
let n = 0;

const SEL: Selector = { type: 'unix', value: `uid:${process.getuid?.() ?? 0}` };

const fixedAttestor: WorkloadAttestor = { name: 'fixed', attest: async () => [SEL] };

class FakeCache implements WorkloadCache {
  bundle: Bundle | undefined = undefined;
  federated = new Map<string, Bundle>();
  readonly #subs = new Set<() => void>();
  ids: WorkloadIdentity[];
  constructor(entry: Entry) {
    this.ids = [{ entry, svid: this.svid(entry, 1) }];
  }
  svid(entry: Entry, serial: number): NonNullable<WorkloadIdentity['svid']> {
    return {
      entryId: entry.id,
      spiffeId: 'spiffe://example.org/w',
      chain: [new Uint8Array([0x30, serial])],
      keyDer: new Uint8Array([1]),
      issuedAt: 0,
      expiresAt: 1,
      revision: 0n,
      rotateAt: 1,
    };
  }
  identitiesFor(selectors: readonly Selector[]): readonly WorkloadIdentity[] {
    return selectors.some((s) => s.type === SEL.type && s.value === SEL.value) ? this.ids : [];
  }
  subscribe(fn: () => void): () => void {
    this.#subs.add(fn);
    return () => this.#subs.delete(fn);
  }
  async waitReady(): Promise<boolean> {
    return true;
  }
  async jwtSvid(_e: Entry, audience: readonly string[]): Promise<string> {
    return `jwt-for-${audience.join(',')}`;
  }
  /** The caller's last entry is deleted. */
  withdraw(): void {
    this.ids = [];
    for (const f of this.#subs) f();
  }
  rotate(serial: number): void {
    this.ids = [{ entry: this.ids[0]!.entry, svid: this.svid(this.ids[0]!.entry, serial) }];
    for (const f of this.#subs) f();
  }
  get subscribers(): number {
    return this.#subs.size;
  }
}

async function fixture(o: { failTrack?: boolean; attestor?: Attestor; federatesWith?: string[]; allowUnauthenticatedVerifiers?: boolean } = {}) {
  const entry = create(EntrySchema, { id: 'e1', spiffeId: { trustDomain: 'example.org', path: '/w' }, hint: 'h', federatesWith: o.federatesWith ?? [] });
  const cache = new FakeCache(entry);
  const tracked: number[] = [];
  const attestor: Attestor = o.attestor ?? {
    track(socket: Socket) {
      if (o.failTrack === true) throw new Error('cannot read peer credentials');
      tracked.push(peerCredOf(socket).pid);
      return { attest: async () => [SEL] };
    },
  };
  const socketPath = path.join(tmp, `w${n++}`, 'api.sock');
  const server = await startWorkloadEndpoint({
    socketPath,
    cache,
    attestor,
    logger: silentLogger(),
    limits: { firstRequestMs: 300, probeIntervalMs: 500 },
    ...(o.allowUnauthenticatedVerifiers === undefined ? {} : { allowUnauthenticatedVerifiers: o.allowUnauthenticatedVerifiers }),
  });
  const transport = createUnixGrpcTransport(socketPath, { interceptors: [headersInterceptor({ 'workload.spiffe.io': 'true' })] });
  const bare = createUnixGrpcTransport(socketPath);
  return {
    cache,
    tracked,
    server,
    socketPath,
    wl: createClient(SpiffeWorkloadAPI, transport),
    noHeader: createClient(SpiffeWorkloadAPI, bare),
    health: createClient(HealthService, bare),
    async close() {
      transport.close();
      bare.close();
      await server.close();
    },
  };
}

test('workload api: the caller is pinned once per connection, at accept, from the accepted socket', async () => {
  const fx = await fixture();
  try {
    const raw = await connectRaw({ path: fx.socketPath });
    raw.write(h2Hello());
    await waitUntil(() => fx.tracked.length === 1, 2000, 'the connection was tracked before any call');
    assert.equal(fx.tracked[0], process.pid, 'SO_PEERCRED of the accepted socket names this process');
    raw.destroy();
    const a = await fx.wl.fetchJWTSVID({ audience: ['a'] });
    const b = await fx.wl.fetchJWTSVID({ audience: ['b'] });
    assert.deepEqual([a.svids[0]?.svid, b.svids[0]?.svid, a.svids[0]?.spiffeId, a.svids[0]?.hint], ['jwt-for-a', 'jwt-for-b', 'spiffe://example.org/w', 'h']);
    assert.equal(fx.tracked.length, 2, 'two calls on one connection: tracked once');
  } finally {
    await fx.close();
  }
});

test('workload api: clients waiting in the listen queue are all accepted in one event-loop turn', async () => {
  // libuv accepts one connection per turn; a busy agent turns slowly (each turn serves every
  // ready call), so a node's workloads starting together waited for as many turns as there were
  // of them. The endpoint takes the whole queue when the event loop accepts the first.
  let turn = 0;
  const turns: number[] = [];
  const attestor: Attestor = {
    track() {
      turns.push(turn);
      return { attest: async () => [SEL] };
    },
  };
  const fx = await fixture({ attestor });
  let ticking = true;
  const tick = (): void => {
    turn++;
    if (ticking) setImmediate(tick);
  };
  tick();
  const clients: Socket[] = [];
  try {
    // connect() on a Unix socket completes in the call: all 20 are in the queue before the next turn.
    for (let i = 0; i < 20; i++) clients.push(net.connect(fx.socketPath).on('error', () => {}));
    await waitUntil(() => turns.length === 20, 5000, `every client accepted (${turns.length})`);
    assert.equal(new Set(turns).size, 1, `accepted in turns ${[...new Set(turns)].join(', ')}`);
  } finally {
    ticking = false;
    for (const c of clients) c.destroy();
    await fx.close();
  }
});

test('workload api: security header required (not for health), attestation failure is Unavailable, no identity is PermissionDenied', async () => {
  const fx = await fixture();
  try {
    await assert.rejects(
      fx.noHeader.fetchJWTSVID({ audience: ['a'] }),
      (e) => e instanceof ConnectError && e.code === Code.InvalidArgument && e.rawMessage === 'security header missing from request',
    );
    assert.equal((await fx.health.check({})).status, HealthCheckResponse_ServingStatus.SERVING);
    await assert.rejects(fx.wl.fetchJWTSVID({ audience: [] }), (e) => e instanceof ConnectError && e.code === Code.InvalidArgument);
    await assert.rejects(
      fx.wl.fetchJWTSVID({ audience: ['a'], spiffeId: 'spiffe://example.org/other' }),
      (e) => e instanceof ConnectError && e.code === Code.PermissionDenied && e.rawMessage === 'no identity issued',
    );
  } finally {
    await fx.close();
  }
  const failing = await fixture({ failTrack: true });
  try {
    await assert.rejects(
      failing.wl.fetchX509SVID({})[Symbol.asyncIterator]().next(),
      (e) => e instanceof ConnectError && e.code === Code.Unavailable && e.rawMessage === 'workload attestation failed',
    );
  } finally {
    await failing.close();
  }
});

test('workload api: an X.509 stream gets each rotation, ends on cancel, and server close ends it Unavailable', async () => {
  const fx = await fixture();
  try {
    const ac = new AbortController();
    const it = fx.wl.fetchX509SVID({}, { signal: ac.signal })[Symbol.asyncIterator]();
    const first = await it.next();
    assert.deepEqual([...(first.value?.svids[0]?.x509Svid ?? [])], [0x30, 1]);
    fx.cache.rotate(2);
    const second = await it.next();
    assert.deepEqual([...(second.value?.svids[0]?.x509Svid ?? [])], [0x30, 2]);
    ac.abort();
    await it.next().catch(() => undefined);
    await waitUntil(() => fx.cache.subscribers === 0, 2000, 'the cancelled stream unsubscribed');

    const open = fx.wl.fetchX509SVID({})[Symbol.asyncIterator]();
    await open.next();
    const closing = fx.server.close({ graceMs: 2000 });
    await assert.rejects(
      (async () => {
        for (;;) {
          if ((await open.next()).done === true) return;
        }
      })(),
      (e) => e instanceof ConnectError && e.code === Code.Unavailable,
    );
    await closing;
    assert.equal(fs.existsSync(fx.socketPath), false, 'socket file removed');
  } finally {
    await fx.close();
  }
});

test('workload api: a malformed frame or silence on the socket is closed and leaves no fd', async () => {
  // The real tracker: it holds an fd on /proc/<pid> per connection, which must go with it.
  const fx = await fixture({ attestor: new PeerTracker({ attestors: [fixedAttestor] }) });
  try {
    for (const bytes of [hostile.badFrameLength(), hostile.badHpack(), undefined]) {
      const before = openFds();
      const s = await connectRaw({ path: fx.socketPath });
      const gone = closedPromise(s);
      if (bytes !== undefined) s.write(bytes);
      await waitUntil(() => s.closed, 3000, 'the server closed the connection');
      await gone;
      // The pinned caller's /proc/<pid> fd is released with the connection too.
      await waitUntil(() => openFds() <= before, 3000, 'no fd kept');
    }
    assert.equal((await fx.wl.fetchJWTSVID({ audience: ['a'] })).svids.length, 1);
  } finally {
    await fx.close();
  }
});

/** A trust domain's JWT signing key and its bundle (proto form, as the agent caches it). */
function jwtDomain(td: string): { bundle: Bundle; mint(sub: string, aud: string, extra?: Record<string, unknown>): string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const kid = `kid-${td}`;
  const exp = BigInt(Math.floor(Date.now() / 1000) + 3600);
  const bundle = create(BundleSchema, {
    trustDomain: td,
    jwtAuthorities: [{ publicKey: new Uint8Array(publicKey.export({ type: 'spki', format: 'der' })), keyId: kid, expiresAt: exp }],
  });
  const b64 = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  const mint = (sub: string, aud: string, extra: Record<string, unknown> = {}): string => {
    const input = `${b64({ alg: 'ES256', kid, typ: 'JWT' })}.${b64({ sub, aud: [aud], exp: Number(exp), iat: Number(exp) - 3600, ...extra })}`;
    const sig = sign('sha256', Buffer.from(input), { key: privateKey as KeyObject, dsaEncoding: 'ieee-p1363' });
    return `${input}.${sig.toString('base64url')}`;
  };
  return { bundle, mint };
}

test("workload api: federated bundles are the caller's: ValidateJWTSVID and the bundle streams use only the domains its entries federate with", async () => {
  // SPIRE's handler builds them from FetchWorkloadUpdate(selectors): a bundle the agent holds for
  // another workload's federation does not make this caller trust that domain.
  const own = jwtDomain('example.org');
  const a = jwtDomain('a.test');
  const c = jwtDomain('c.test');
  const fx = await fixture({ federatesWith: ['a.test'] });
  try {
    fx.cache.bundle = own.bundle;
    fx.cache.federated = new Map([
      ['a.test', a.bundle],
      ['c.test', c.bundle],
    ]);
    const fromA = await fx.wl.validateJWTSVID({ audience: 'svc', svid: a.mint('spiffe://a.test/client', 'svc', { team: 'x' }) });
    assert.equal(fromA.spiffeId, 'spiffe://a.test/client');
    assert.deepEqual(Object.keys(fromA.claims ?? {}).sort(), ['aud', 'exp', 'sub'], 'a foreign token keeps only sub, exp and aud');
    const fromOwn = await fx.wl.validateJWTSVID({ audience: 'svc', svid: own.mint('spiffe://example.org/peer', 'svc', { team: 'x' }) });
    assert.equal(fromOwn.claims?.['team'], 'x', 'own-domain claims are kept');
    await assert.rejects(
      fx.wl.validateJWTSVID({ audience: 'svc', svid: c.mint('spiffe://c.test/intruder', 'svc') }),
      (e) => e instanceof ConnectError && e.code === Code.InvalidArgument && /c\.test/.test(e.rawMessage),
      'a token of a domain the caller does not federate with is refused though the agent holds its bundle',
    );
    const jwt = await fx.wl.fetchJWTBundles({})[Symbol.asyncIterator]().next();
    assert.deepEqual(Object.keys(jwt.value?.bundles ?? {}).sort(), ['spiffe://a.test', 'spiffe://example.org']);
    const x = await fx.wl.fetchX509Bundles({})[Symbol.asyncIterator]().next();
    assert.deepEqual(Object.keys(x.value?.bundles ?? {}).sort(), ['spiffe://a.test', 'spiffe://example.org']);
  } finally {
    await fx.close();
  }
});

const noIdentity = (e: unknown): boolean => e instanceof ConnectError && e.code === Code.PermissionDenied && e.rawMessage === 'no identity issued';

/** A caller whose entry federates with a.test, with both bundle streams open and their first answer checked. */
async function openBundleStreams(allowUnauthenticatedVerifiers: boolean) {
  const own = jwtDomain('example.org');
  const a = jwtDomain('a.test');
  const fx = await fixture({ federatesWith: ['a.test'], allowUnauthenticatedVerifiers });
  fx.cache.bundle = own.bundle;
  fx.cache.federated = new Map([['a.test', a.bundle]]);
  const jwt = fx.wl.fetchJWTBundles({})[Symbol.asyncIterator]();
  const x509 = fx.wl.fetchX509Bundles({})[Symbol.asyncIterator]();
  assert.deepEqual(Object.keys((await jwt.next()).value?.bundles ?? {}).sort(), ['spiffe://a.test', 'spiffe://example.org']);
  assert.deepEqual(Object.keys((await x509.next()).value?.bundles ?? {}).sort(), ['spiffe://a.test', 'spiffe://example.org']);
  return { fx, own, jwt, x509 };
}

test('workload api: bundle streams refuse a caller with no identity, at the start and when its last entry is deleted (as spire-agent)', async () => {
  const { fx, own, jwt, x509 } = await openBundleStreams(false);
  try {
    fx.cache.withdraw();
    await assert.rejects(jwt.next(), noIdentity, 'the open JWT bundle stream ends when the last entry goes');
    await assert.rejects(x509.next(), noIdentity, 'the open X.509 bundle stream ends when the last entry goes');
    await waitUntil(() => fx.cache.subscribers === 0, 2000, 'the ended streams unsubscribed');
    await assert.rejects(fx.wl.fetchJWTBundles({})[Symbol.asyncIterator]().next(), noIdentity);
    await assert.rejects(fx.wl.fetchX509Bundles({})[Symbol.asyncIterator]().next(), noIdentity);
    await assert.rejects(fx.wl.fetchX509SVID({})[Symbol.asyncIterator]().next(), noIdentity);
    await assert.rejects(fx.wl.fetchJWTSVID({ audience: ['a'] }), noIdentity);
    // ValidateJWTSVID needs no identity in SPIRE either: it checks against the own bundle.
    const v = await fx.wl.validateJWTSVID({ audience: 'svc', svid: own.mint('spiffe://example.org/peer', 'svc') });
    assert.equal(v.spiffeId, 'spiffe://example.org/peer');
  } finally {
    await fx.close();
  }
});

test('workload api: allow_unauthenticated_verifiers lets a caller with no identity stream its own bundle, and a stream outlives its last entry', async () => {
  const { fx, jwt, x509 } = await openBundleStreams(true);
  try {
    fx.cache.withdraw();
    assert.deepEqual(Object.keys((await jwt.next()).value?.bundles ?? {}), ['spiffe://example.org'], 'the federated bundle goes with the entry');
    assert.deepEqual(Object.keys((await x509.next()).value?.bundles ?? {}), ['spiffe://example.org']);
    const fresh = await fx.wl.fetchJWTBundles({})[Symbol.asyncIterator]().next();
    assert.deepEqual(Object.keys(fresh.value?.bundles ?? {}), ['spiffe://example.org'], 'an unauthenticated verifier gets the own bundle only');
    // The flag is about bundles only: SVIDs still need an identity.
    await assert.rejects(fx.wl.fetchX509SVID({})[Symbol.asyncIterator]().next(), noIdentity);
    await assert.rejects(fx.wl.fetchJWTSVID({ audience: ['a'] }), noIdentity);
  } finally {
    await fx.close();
  }
});
