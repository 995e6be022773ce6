import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createContextValues, type UnaryRequest, type UnaryResponse } from '@connectrpc/connect';
import { isZtwimError } from '@ztwim/core';
import { FakeClock } from '@ztwim/testkit';
import { transportKey, type Transport } from './caller.ts';
import { callerIp, LIMITER_GC_INTERVAL_MS, PerIpLimiter, rateLimitInterceptor, type RateLimitConfig } from './ratelimit.ts';

const ON: RateLimitConfig = { attestation: true, signing: true };

interface Call {
  readonly method: string;
  readonly from: Transport;
  readonly message?: unknown;
  readonly timeout?: string;
  readonly signal?: AbortSignal;
}

const tcp = (ip: string): Transport => ({ kind: 'tls', peerChain: [], remoteAddress: ip });

/** Runs one call through the interceptor; resolves 'served' once the handler ran, or rejects. */
function caller(cfg: RateLimitConfig, clock: FakeClock): (c: Call) => Promise<'served'> {
  const ic = rateLimitInterceptor(cfg, clock);
  const handler = ic(async () => ({}) as UnaryResponse);
  return async (c) => {
    const [svc, name] = c.method.split('/') as [string, string];
    const header = new Headers();
    if (c.timeout !== undefined) header.set('grpc-timeout', c.timeout);
    const req = {
      stream: false,
      service: { typeName: svc },
      method: { name },
      contextValues: createContextValues().set(transportKey, c.from),
      message: c.message ?? {},
      header,
      signal: c.signal ?? new AbortController().signal,
    } as unknown as UnaryRequest;
    await handler(req);
    return 'served';
  };
}

const JWT = 'spire.api.server.svid.v1.SVID/NewJWTSVID';
const X509 = 'spire.api.server.svid.v1.SVID/BatchNewX509SVID';
const RENEW = 'spire.api.server.agent.v1.Agent/RenewAgent';
const ATTEST = 'spire.api.server.agent.v1.Agent/AttestAgent';

/** Settles the microtasks of calls that need no timer. */
const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

async function track(p: Promise<'served'>): Promise<{ state: () => string }> {
  let state = 'waiting';
  p.then(
    () => (state = 'served'),
    (e: unknown) => (state = `refused: ${(e as Error).message}`),
  );
  await flush();
  return { state: () => state };
}

test('signing: a burst of 500 per IP is served at once, the 501st waits 2 ms for its token (SPIRE waits, it does not refuse)', async () => {
  const clock = new FakeClock();
  const call = caller(ON, clock);
  for (let i = 0; i < 500; i++) assert.equal(await call({ method: JWT, from: tcp('10.0.0.1') }), 'served');
  const t = await track(call({ method: JWT, from: tcp('10.0.0.1') }));
  assert.equal(t.state(), 'waiting');
  clock.advance(1);
  await flush();
  assert.equal(t.state(), 'waiting');
  clock.advance(1);
  await flush();
  assert.equal(t.state(), 'served');
});

test("signing: refill at 500/s; a call whose token is due after its deadline is refused with SPIRE's ResourceExhausted and takes nothing", async () => {
  const clock = new FakeClock();
  const call = caller(ON, clock);
  for (let i = 0; i < 500; i++) await call({ method: JWT, from: tcp('10.0.0.1') });
  // The bucket is empty: the next token is due in 2 ms, so a 1 ms deadline cannot be met.
  await assert.rejects(call({ method: JWT, from: tcp('10.0.0.1'), timeout: '1m' }), (e: unknown) => {
    assert.ok(isZtwimError(e, 'ERR_RESOURCE_EXHAUSTED'));
    assert.equal((e as Error).message, 'rejecting request due to JWT signing request rate limiting: rate: Wait(n=1) would exceed context deadline');
    return true;
  });
  // The refused call took no token: one 2 ms later is served at once.
  clock.advance(2);
  assert.equal((await track(call({ method: JWT, from: tcp('10.0.0.1'), timeout: '1m' }))).state(), 'served');
  // After a full second the bucket holds its whole burst again, and no more.
  clock.advance(5000);
  for (let i = 0; i < 500; i++) assert.equal(await call({ method: JWT, from: tcp('10.0.0.1'), timeout: '1S' }), 'served');
  assert.equal((await track(call({ method: JWT, from: tcp('10.0.0.1'), timeout: '1m' }))).state().startsWith('refused'), true);
});

test('per IP: a client that used its burst does not slow another IP; IPv4-mapped addresses count as the IPv4 address', async () => {
  const clock = new FakeClock();
  const call = caller(ON, clock);
  for (let i = 0; i < 500; i++) await call({ method: JWT, from: tcp('::ffff:10.0.0.1') });
  assert.match((await track(call({ method: JWT, from: tcp('10.0.0.1'), timeout: '1m' }))).state(), /^refused/, 'same IP, other notation');
  for (let i = 0; i < 500; i++) assert.equal((await track(call({ method: JWT, from: tcp('10.0.0.2'), timeout: '1m' }))).state(), 'served');
  assert.equal(callerIp('::ffff:127.0.0.1'), '127.0.0.1');
  assert.equal(callerIp('::1'), '::1');
});

test('the admin Unix socket is never limited, as SPIRE limits TCP callers only', async () => {
  const clock = new FakeClock();
  const call = caller(ON, clock);
  for (let i = 0; i < 2000; i++) assert.equal((await track(call({ method: JWT, from: { kind: 'local' }, timeout: '1m' }))).state(), 'served');
  for (let i = 0; i < 5; i++) assert.equal((await track(call({ method: ATTEST, from: { kind: 'local' }, timeout: '1m' }))).state(), 'served');
});

test("X.509 signing: one token per CSR, shared with RenewAgent; more CSRs than the burst is refused with SPIRE's message; JWT has its own bucket", async () => {
  const clock = new FakeClock();
  const call = caller(ON, clock);
  const csrs = (n: number): unknown => ({ params: Array.from({ length: n }, () => ({})) });
  await assert.rejects(call({ method: X509, from: tcp('10.0.0.1'), message: csrs(501) }), {
    message: 'rejecting request due to certificate signing rate limiting: rate (501) exceeds burst size (500)',
  });
  assert.equal(await call({ method: X509, from: tcp('10.0.0.1'), message: csrs(499) }), 'served');
  assert.equal(await call({ method: RENEW, from: tcp('10.0.0.1') }), 'served');
  await assert.rejects(call({ method: RENEW, from: tcp('10.0.0.1'), timeout: '1m' }), {
    message: 'rejecting request due to renew agent rate limiting: rate: Wait(n=1) would exceed context deadline',
  });
  assert.equal((await track(call({ method: JWT, from: tcp('10.0.0.1'), timeout: '1m' }))).state(), 'served', 'NewJWTSVID: its own limiter');
  // An empty batch is left to the handler's InvalidArgument ("missing parameters"), as in SPIRE.
  assert.equal((await track(call({ method: X509, from: tcp('10.0.0.1'), message: csrs(0), timeout: '1m' }))).state(), 'served');
});

test('attestation: one per second per IP; a second attempt within the second waits, or is refused if its deadline is nearer', async () => {
  const clock = new FakeClock();
  const call = caller(ON, clock);
  assert.equal(await call({ method: ATTEST, from: tcp('10.0.0.1') }), 'served');
  await assert.rejects(call({ method: ATTEST, from: tcp('10.0.0.1'), timeout: '500m' }), {
    message: 'rejecting request due to attest agent rate limiting: rate: Wait(n=1) would exceed context deadline',
  });
  assert.equal(await call({ method: ATTEST, from: tcp('10.0.0.2') }), 'served', 'another IP');
  const t = await track(call({ method: ATTEST, from: tcp('10.0.0.1'), timeout: '5S' }));
  clock.advance(999);
  await flush();
  assert.equal(t.state(), 'waiting');
  clock.advance(1);
  await flush();
  assert.equal(t.state(), 'served');
});

test('turned off: ratelimit { signing = false } leaves signing unlimited, attestation = false leaves attestation unlimited', async () => {
  const clock = new FakeClock();
  const call = caller({ attestation: false, signing: false }, clock);
  for (let i = 0; i < 1500; i++) assert.equal((await track(call({ method: JWT, from: tcp('10.0.0.1'), timeout: '1m' }))).state(), 'served');
  for (let i = 0; i < 3; i++)
    assert.equal((await track(call({ method: X509, from: tcp('10.0.0.1'), message: { params: new Array(800).fill({}) }, timeout: '1m' }))).state(), 'served');
  for (let i = 0; i < 5; i++) assert.equal((await track(call({ method: ATTEST, from: tcp('10.0.0.1'), timeout: '1m' }))).state(), 'served');
});

test('a call that ends while it waits rejects with its reason and gives its token back', async () => {
  const clock = new FakeClock();
  const call = caller(ON, clock);
  assert.equal(await call({ method: ATTEST, from: tcp('10.0.0.1') }), 'served');
  const ac = new AbortController();
  const t = await track(call({ method: ATTEST, from: tcp('10.0.0.1'), signal: ac.signal }));
  clock.advance(200);
  ac.abort(new Error('client went away'));
  await flush();
  assert.equal(t.state(), 'refused: client went away');
  assert.equal(clock.pending(), 0, 'its timer is gone');
  // The token it held was given back: the next caller waits the remaining 800 ms, not 1,800 ms.
  const next = await track(call({ method: ATTEST, from: tcp('10.0.0.1') }));
  clock.advance(800);
  await flush();
  assert.equal(next.state(), 'served');
});

test("per-IP buckets of IPs idle for a collection interval are dropped, as SPIRE's limiter GC", () => {
  const clock = new FakeClock();
  const lim = new PerIpLimiter(500, clock);
  lim.bucket('10.0.0.1');
  lim.bucket('10.0.0.2');
  clock.advance(LIMITER_GC_INTERVAL_MS);
  lim.bucket('10.0.0.2'); // still current: nothing collected yet
  lim.bucket('10.0.0.3'); // new IP after an interval: collection runs, 10.0.0.1 and 10.0.0.2 become the previous generation
  assert.equal(lim.size, 3);
  lim.bucket('10.0.0.2'); // seen again: back to the current generation
  clock.advance(LIMITER_GC_INTERVAL_MS);
  lim.bucket('10.0.0.4'); // collection: 10.0.0.1, unseen for a whole interval, is dropped
  assert.equal(lim.size, 3, '10.0.0.2, 10.0.0.3 (previous) and 10.0.0.4 (current)');
  clock.advance(LIMITER_GC_INTERVAL_MS);
  lim.bucket('10.0.0.5');
  assert.equal(lim.size, 2, 'only 10.0.0.4 and 10.0.0.5 are left');
});
