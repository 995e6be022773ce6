import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import type * as tls from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { Code, ConnectError } from '@connectrpc/connect';
import { TrustDomain } from '../id/trust-domain.ts';
import { parseAndValidateJwtSvid } from '../svid/jwt-svid.ts';
import { WorkloadApiClient, WorkloadApiError, linearBackoff } from './client.ts';
import { X509Source } from './x509-source.ts';
import { JwtSource } from './jwt-source.ts';
import { BundleSource } from './bundle-source.ts';
import { authorizeAny, authorizeId, authorizeMemberOf } from '../tls/authorizer.ts';
import { connectMtls, createMtlsServer } from '../tls/tls-options.ts';
import { FakeWorkloadApi, makeJwtIssuer, makeTestCa } from '../testdata/fake-workload-api.ts';

const dir = mkdtempSync(join(tmpdir(), 'ztwim-wl-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const TD = TrustDomain.parse('example.org');
const fast = (): ReturnType<typeof linearBackoff> => linearBackoff(20, 100);

/**
 * What a watch's callbacks report, in order; `reached(n)` resolves once there are n (the SDK's own
 * tests cannot use @ztwim/testkit's eventually(), which depends on the SDK: the callbacks wake
 * the waiter instead of a poll).
 */
class Seen<T> {
  readonly items: T[] = [];
  #wake: Array<() => void> = [];
  push(v: T): void {
    this.items.push(v);
    for (const w of this.#wake.splice(0)) w();
  }
  get length(): number {
    return this.items.length;
  }
  async reached(n: number, what: string, timeoutMs = 10_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (this.items.length < n) {
      const left = end - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${n} ${what}; seen: ${this.items.join(' | ')}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#wake.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }
}

async function setup(name: string) {
  const ca = await makeTestCa('example.org');
  const fed = await makeTestCa('fed.example');
  const a = await ca.issue('/a');
  const jwt = await makeJwtIssuer(`jwt-${name}`);
  const fake = new FakeWorkloadApi(join(dir, `${name}.sock`), {
    x509Svids: [a],
    federated: { 'spiffe://fed.example': fed.root.der },
    x509Bundles: { 'spiffe://example.org': ca.root.der },
    jwtBundles: { 'spiffe://example.org': jwt.jwks },
  });
  fake.jwtIssuer = jwt;
  await fake.start();
  const client = new WorkloadApiClient({ address: fake.address, backoff: fast });
  return {
    ca,
    fed,
    a,
    jwt,
    fake,
    client,
    async done() {
      client.close();
      await fake.stop();
    },
  };
}

test('fetches X.509 and JWT material with the security header', async () => {
  const s = await setup('fetch');
  try {
    const svid = await s.client.fetchX509Svid();
    assert.equal(svid.id.toString(), 'spiffe://example.org/a');
    const ctx = await s.client.fetchX509Context();
    assert.equal(ctx.svids.length, 1);
    assert.ok(ctx.bundles.has(TD));
    assert.ok(ctx.bundles.has(TrustDomain.parse('fed.example')));
    const xb = await s.client.fetchX509Bundles();
    assert.equal(xb.size, 1);
    const jb = await s.client.fetchJwtBundles();
    assert.ok(jb.get(TD)?.hasAuthority(s.jwt.kid));
    const j = await s.client.fetchJwtSvid({ audience: 'aud1' });
    assert.equal(j.id.toString(), 'spiffe://example.org/a');
    assert.deepEqual(j.audience, ['aud1']);
    const verified = await parseAndValidateJwtSvid(j.token, jb, ['aud1']);
    assert.equal(verified.id.toString(), 'spiffe://example.org/a');
    const v = await s.client.validateJwtSvid(j.token, 'aud1');
    assert.equal(v.id.toString(), 'spiffe://example.org/a');
    await assert.rejects(s.client.validateJwtSvid('garbage', 'aud1'), (e: unknown) => e instanceof WorkloadApiError && e.grpcCode === Code.InvalidArgument);
    assert.ok(s.fake.headersSeen.length >= 7);
    assert.ok(s.fake.headersSeen.every((h) => h === 'true'));
  } finally {
    await s.done();
  }
});

test('missing header is refused with InvalidArgument and stops a watch', async () => {
  const s = await setup('noheader');
  const stripped = new WorkloadApiClient({
    address: s.fake.address,
    backoff: fast,
    interceptors: [
      (next) => async (req) => {
        req.header.delete('workload.spiffe.io');
        return next(req);
      },
    ],
  });
  try {
    await assert.rejects(stripped.fetchX509Svid(), (e: unknown) => {
      assert.ok(e instanceof WorkloadApiError);
      assert.equal(e.code, 'ERR_WORKLOAD_API');
      assert.equal(e.grpcCode, Code.InvalidArgument);
      assert.equal(e.grpcMessage, 'security header missing from request');
      return true;
    });
    await assert.rejects(
      stripped.watchX509Context({ onUpdate: () => assert.fail('no update expected') }),
      (e: unknown) => e instanceof WorkloadApiError && e.grpcCode === Code.InvalidArgument,
    );
  } finally {
    stripped.close();
    await s.done();
  }
});

test('duplicate hints: first wins; malformed messages are discarded by watches', async () => {
  const s = await setup('hints');
  try {
    const b = await s.ca.issue('/b');
    s.fake.update({
      x509Svids: [
        { ...s.a, hint: 'h' },
        { ...b, hint: 'h' },
      ],
    });
    const svids = await s.client.fetchX509Svids();
    assert.deepEqual(
      svids.map((x) => x.id.toString()),
      ['spiffe://example.org/a'],
    );
    const updates = new Seen<string>();
    const errors = new Seen<string>();
    const ac = new AbortController();
    const w = s.client.watchX509Context({ onUpdate: (c) => updates.push(c.svids[0]?.id.toString() ?? ''), onError: (e) => errors.push(e.message) }, ac.signal);
    await updates.reached(1, 'updates');
    s.fake.update({ x509Svids: [{ ...b, key: new Uint8Array() }] });
    await errors.reached(1, 'errors');
    s.fake.update({ x509Svids: [b] });
    await updates.reached(2, 'updates');
    assert.deepEqual(updates.items, ['spiffe://example.org/a', 'spiffe://example.org/b']);
    assert.ok(
      errors.items.some((m) => m.includes('missing private key')),
      errors.items.join(),
    );
    ac.abort();
    await w;
  } finally {
    await s.done();
  }
});

test('fetchX509Svid: the same response again gives an equal SVID of its own; new bytes are parsed anew, a cached key never served for another certificate', async () => {
  const s = await setup('x509-reuse');
  const isMismatch = (e: unknown): boolean =>
    e instanceof WorkloadApiError && e.grpcCode === Code.Unknown && /leaf certificate does not match private key/.test(e.message);
  try {
    s.fake.update({ x509Svids: [{ ...s.a, hint: 'h1' }] });
    const first = await s.client.fetchX509Svid();
    const again = await s.client.fetchX509Svid();
    assert.notEqual(again, first);
    assert.ok(again.id.equals(first.id));
    assert.deepEqual(again.certificates, s.a.certs);
    assert.notEqual(again.certificates[0], first.certificates[0]);
    assert.equal(again.privateKey, first.privateKey);
    assert.equal(again.hint, 'h1');
    // What a caller does to its SVID does not reach the next fetch of the same bytes.
    const leaf = first.certificates[0] as Uint8Array;
    leaf[30] = (leaf[30] as number) ^ 0xff;
    first.certificates.push(new Uint8Array([1]));
    first.hint = 'changed';
    const third = await s.client.fetchX509Svid();
    assert.deepEqual(third.certificates, s.a.certs);
    assert.equal(third.hint, 'h1');

    // Rotated: same SPIFFE ID, a new certificate and key; the new key comes back, matching the new leaf.
    const rotated = await s.ca.issue('/a', 'example.org/a-rotated');
    s.fake.update({ x509Svids: [rotated] });
    const next = await s.client.fetchX509Svid();
    assert.equal(next.id.toString(), 'spiffe://example.org/a');
    assert.deepEqual(next.certificates, rotated.certs);
    assert.equal(next.hint, undefined);
    assert.notEqual(next.privateKey, first.privateKey);
    assert.ok(new X509Certificate(next.leaf()).checkPrivateKey(next.privateKey));
    assert.ok(!new X509Certificate(next.leaf()).checkPrivateKey(first.privateKey));

    // The certificate parsed before with another key, and the key parsed before with another
    // certificate: each pair is checked, neither is answered from what the client kept.
    s.fake.update({ x509Svids: [{ ...s.a, key: rotated.key }] });
    await assert.rejects(s.client.fetchX509Svid(), isMismatch);
    s.fake.update({ x509Svids: [{ ...rotated, key: s.a.key }] });
    await assert.rejects(s.client.fetchX509Svid(), isMismatch);
    s.fake.update({ x509Svids: [s.a] });
    const back = await s.client.fetchX509Svid();
    assert.deepEqual(back.certificates, s.a.certs);
    assert.ok(new X509Certificate(back.leaf()).checkPrivateKey(back.privateKey));
  } finally {
    await s.done();
  }
});

test('fetchX509Svid and fetchX509Svids keep apart what each made of the same bytes', async () => {
  const s = await setup('x509-modes');
  try {
    const b = await s.ca.issue('/b');
    // The second SVID names another SPIFFE ID than its certificate's: only a parse of every SVID sees it.
    s.fake.update({ x509Svids: [s.a, { ...b, spiffeId: 'spiffe://example.org/not-b' }] });
    const isMalformed = (e: unknown): boolean => e instanceof WorkloadApiError && /does not match its certificate's URI SAN/.test(e.message);
    for (let i = 0; i < 2; i++) {
      assert.equal((await s.client.fetchX509Svid()).id.toString(), 'spiffe://example.org/a');
      await assert.rejects(s.client.fetchX509Svids(), isMalformed);
    }
    s.fake.update({ x509Svids: [s.a, b] });
    for (let i = 0; i < 2; i++) {
      const all = await s.client.fetchX509Svids();
      assert.deepEqual(
        all.map((x) => x.id.toString()),
        ['spiffe://example.org/a', 'spiffe://example.org/b'],
      );
    }
  } finally {
    await s.done();
  }
});

test('fetchX509Context: the same response again gives an equal context of its own; a changed bundle is parsed anew', async () => {
  const s = await setup('x509-context');
  const FED = TrustDomain.parse('fed.example');
  const b64 = (ders: readonly Uint8Array[] | undefined): string[] => (ders ?? []).map((d) => Buffer.from(d).toString('base64'));
  try {
    const first = await s.client.fetchX509Context();
    // What a caller does to its context does not reach the next fetch of the same bytes.
    first.bundles.get(FED)?.removeAuthority(s.fed.root.der);
    first.bundles.remove(TD);
    first.svids.pop();
    const again = await s.client.fetchX509Context();
    assert.equal(again.svids.length, 1);
    assert.deepEqual(again.svids[0]?.certificates, s.a.certs);
    assert.deepEqual(b64(again.bundles.get(TD)?.authorities()), b64([s.ca.root.der]));
    assert.deepEqual(b64(again.bundles.get(FED)?.authorities()), b64([s.fed.root.der]));
    const fed2 = await makeTestCa('fed.example', 'fed2.example');
    s.fake.update({ federated: { 'spiffe://fed.example': fed2.root.der } });
    const next = await s.client.fetchX509Context();
    assert.deepEqual(b64(next.bundles.get(FED)?.authorities()), b64([fed2.root.der]));
    assert.deepEqual(next.svids[0]?.certificates, s.a.certs);
  } finally {
    await s.done();
  }
});

test('X509Source rotates and reconnects after the server restarts', async () => {
  const s = await setup('rotate');
  const src = await X509Source.create({ client: s.client });
  try {
    assert.equal(src.getX509Svid().id.toString(), 'spiffe://example.org/a');
    const b = await s.ca.issue('/b');
    let next = once(emitterOf(src), 'u');
    s.fake.update({ x509Svids: [b] });
    await next;
    assert.equal(src.getX509Svid().id.toString(), 'spiffe://example.org/b');
    // Restart: the stream fails, the watch backs off and reconnects to the new server.
    await s.fake.stop();
    const c = await s.ca.issue('/c');
    s.fake.state = { ...s.fake.state, x509Svids: [c] };
    next = once(emitterOf(src), 'u');
    await s.fake.start();
    await next;
    assert.equal(src.getX509Svid().id.toString(), 'spiffe://example.org/c');
    assert.ok(src.getX509BundleForTrustDomain(TD).authorities().length === 1);
  } finally {
    await src.close();
    await s.done();
  }
});

test('PermissionDenied is retried, X509Source.create waits for the first update', async () => {
  const s = await setup('denied');
  s.fake.update({ x509Error: new ConnectError('no identity issued', Code.PermissionDenied) });
  const errors = new Seen<number>();
  const pending = X509Source.create({ client: s.client, onError: (e) => errors.push(e.grpcCode) });
  await errors.reached(2, 'errors');
  const { x509Error: _drop, ...rest } = s.fake.state;
  s.fake.state = rest;
  await s.fake.stop();
  await s.fake.start();
  const src = await pending;
  try {
    assert.ok(errors.items.includes(Code.PermissionDenied));
    assert.equal(src.getX509Svid().id.toString(), 'spiffe://example.org/a');
  } finally {
    await src.close();
    await s.done();
  }
});

test('JwtSource and BundleSource', async () => {
  const s = await setup('jwtsrc');
  const js = await JwtSource.create({ client: s.client });
  const bs = await BundleSource.create({ client: s.client });
  try {
    const j = await js.fetchJwtSvid({ audience: 'x', subject: 'spiffe://example.org/a' });
    const v = await parseAndValidateJwtSvid(j.token, js, ['x']);
    assert.equal(v.id.toString(), 'spiffe://example.org/a');
    await parseAndValidateJwtSvid(j.token, bs, ['x']);
    assert.equal(bs.getX509BundleForTrustDomain(TD).authorities().length, 1);
    assert.throws(() => bs.getJwtBundleForTrustDomain(TrustDomain.parse('other.org')), /no JWT bundle/);
  } finally {
    await js.close();
    await bs.close();
    await s.done();
  }
});

test('mTLS between two endpoints with SVIDs from the Workload API', async () => {
  const s = await setup('mtls');
  const clientSvid = await s.ca.issue('/client');
  const other = await makeTestCa('other.org');
  const stranger = await other.issue('/client');
  // Two sources: the server's identity /a, the client's /client (separate fake APIs).
  const cfake = new FakeWorkloadApi(join(dir, 'mtls-client.sock'), { ...s.fake.state, x509Svids: [clientSvid] });
  await cfake.start();
  const sfake2 = new FakeWorkloadApi(join(dir, 'mtls-stranger.sock'), { ...s.fake.state, x509Svids: [stranger], federated: {} });
  await sfake2.start();
  const serverSrc = await X509Source.create({ client: s.client });
  const clientSrc = await X509Source.create({ address: cfake.address });
  const strangerSrc = await X509Source.create({ address: sfake2.address });
  const seen: string[] = [];
  const server = createMtlsServer(serverSrc, authorizeId('spiffe://example.org/client'), (sock) => {
    sock.on('data', (d) => {
      seen.push(d.toString());
      sock.end(`echo:${d.toString()}`);
    });
  });
  server.on('tlsClientError', () => {});
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  try {
    const sock = await connectMtls(clientSrc, authorizeId('spiffe://example.org/a'), { port });
    sock.write('hello');
    const [reply] = (await once(sock, 'data')) as [Buffer];
    assert.equal(reply.toString(), 'echo:hello');
    sock.destroy();
    // Client refuses a server with an unexpected ID.
    await assert.rejects(connectMtls(clientSrc, authorizeId('spiffe://example.org/other'), { port }), /unexpected ID/);
    // Server refuses a client with a trusted TD but an unauthorized ID: nothing reaches the handler.
    const refused = once(server, 'mtlsRefused');
    const bad = await connectMtls(serverSrc, authorizeMemberOf(TD), { port }).catch((e: unknown) => e);
    if (!(bad instanceof Error)) {
      (bad as tls.TLSSocket).write('secret');
      await once(bad as tls.TLSSocket, 'close');
    }
    await refused;
    // A peer from another trust domain is refused by both sides.
    await assert.rejects(connectMtls(strangerSrc, authorizeAny(), { port }));
    assert.deepEqual(seen, ['hello']);
  } finally {
    server.close();
    await serverSrc.close();
    await clientSrc.close();
    await strangerSrc.close();
    await cfake.stop();
    await sfake2.stop();
    await s.done();
  }
});

test('tcp:// endpoints (h2c) work too', async () => {
  const ca = await makeTestCa('example.org');
  const fake = new FakeWorkloadApi('tcp', { x509Svids: [await ca.issue('/tcp')], federated: {}, x509Bundles: {}, jwtBundles: {} });
  await fake.start();
  const client = new WorkloadApiClient({ address: fake.address });
  try {
    assert.match(fake.address, /^tcp:\/\/127\.0\.0\.1:\d+$/);
    assert.equal((await client.fetchX509Svid()).id.toString(), 'spiffe://example.org/tcp');
  } finally {
    client.close();
    await fake.stop();
  }
});

test('a throwing watcher does not break the watch', async () => {
  const s = await setup('throwing');
  try {
    const ids = new Seen<string>();
    const ac = new AbortController();
    const w = s.client.watchX509Context(
      {
        onUpdate: (c) => {
          ids.push(c.svids[0]?.id.toString() ?? '');
          throw new Error('boom');
        },
      },
      ac.signal,
    );
    await ids.reached(1, 'updates');
    s.fake.update({ x509Svids: [await s.ca.issue('/after')] });
    await ids.reached(2, 'updates');
    assert.deepEqual(ids.items, ['spiffe://example.org/a', 'spiffe://example.org/after']);
    ac.abort();
    await w;
  } finally {
    await s.done();
  }
});

test('linearBackoff: 1 s, 2 s, … capped at 30 s, reset to 1 s (go-spiffe)', () => {
  const b = linearBackoff();
  const seq = Array.from({ length: 32 }, () => b.next());
  assert.deepEqual(seq.slice(0, 3), [1000, 2000, 3000]);
  assert.equal(seq[29], 30_000);
  assert.equal(seq[31], 30_000);
  b.reset();
  assert.equal(b.next(), 1000);
});

test('address errors surface at construction', () => {
  assert.throws(() => new WorkloadApiClient({ address: 'tcp://localhost:1' }), /host component must be an IP:port/);
  assert.throws(() => new WorkloadApiClient({ address: 'unix://agent/sock' }), /must not include an authority/);
});

import { EventEmitter } from 'node:events';
function emitterOf(src: X509Source): EventEmitter {
  const e = new EventEmitter();
  src.onUpdate(() => e.emit('u'));
  return e;
}

test('nothing listening: every call fails Unavailable, never Internal (grpc-go)', async () => {
  const cases: Array<[string, string, RegExp]> = [
    ['missing socket', `unix://${join(dir, 'missing', 'api.sock')}`, /ENOENT/],
    ['closed TCP port', 'tcp://127.0.0.1:1', /ECONNREFUSED/],
  ];
  for (const [name, address, errno] of cases) {
    const client = new WorkloadApiClient({ address });
    try {
      const calls: Array<[string, () => Promise<unknown>]> = [
        ['fetchX509Svid', () => client.fetchX509Svid()],
        ['fetchJwtBundles', () => client.fetchJwtBundles()],
        ['fetchJwtSvid', () => client.fetchJwtSvid({ audience: 'a' })],
        ['validateJwtSvid', () => client.validateJwtSvid('x.y.z', 'a')],
      ];
      for (const [call, fn] of calls) {
        const e = await fn().then(
          () => assert.fail(`${name} ${call} succeeded`),
          (err: unknown) => err,
        );
        assert.ok(e instanceof WorkloadApiError, `${name} ${call}: ${String(e)}`);
        assert.equal(e.grpcCode, Code.Unavailable, `${name} ${call}: ${e.message}`);
        assert.match(e.message, /code = Unavailable/, `${name} ${call}`);
        assert.match(e.grpcMessage, errno, `${name} ${call}`);
      }
    } finally {
      client.close();
    }
  }
});
