// WorkloadApiJwksSource and ServerApiJwksSource against real gRPC servers on Unix sockets.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Code, ConnectError, type HandlerContext } from '@connectrpc/connect';
import { BundleService, SpiffeWorkloadAPI, startGrpcServer, type GrpcServer } from '@ztwim/proto';
import { FakeClock, eventually, holdsFor } from '@ztwim/testkit';
import { ServerApiJwksSource, jwksOfServerBundle } from './server-api-jwks-source.ts';
import { WorkloadApiJwksSource } from './workload-api-jwks-source.ts';
import type { JwksSource, KeySetSnapshot } from './jwks-source.ts';
import { createJwksSource } from './key-source.ts';

interface Authority {
  readonly kid: string;
  readonly key: KeyObject;
  readonly jwk: Record<string, unknown>;
}

function authority(kid: string, kind: 'ec' | 'rsa' = 'ec'): Authority {
  const { publicKey } = kind === 'ec' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { kid, key: publicKey, jwk: { ...(publicKey.export({ format: 'jwk' }) as Record<string, unknown>), kid } };
}

const jwks = (...as: Authority[]): Uint8Array => new TextEncoder().encode(JSON.stringify({ keys: as.map((a) => ({ ...a.jwk, use: 'jwt-svid' })) }));

/** Runs a source's background task, as the provider does; the returned function stops it and waits. */
function runInBackground(src: JwksSource): () => Promise<void> {
  const stop = new AbortController();
  const running = src.run?.(stop.signal) ?? Promise.resolve();
  return async () => {
    stop.abort();
    await running;
  };
}

/** eventually() with the timeout as a third argument, as these tests read. */
const until = <T>(what: string, fn: () => T | undefined | false, timeoutMs = 10_000): Promise<T> => eventually(what, fn, { timeoutMs });

const kidsOf = (s: JwksSource): string[] | undefined => s.current()?.keys.map((k) => k.kid as string);

/** A Workload API serving only FetchJWTBundles, pushing on every update(). */
class FakeAgent {
  readonly socketPath: string;
  bundles: Record<string, Uint8Array> = {};
  failWith: ConnectError | undefined;
  streams = 0;
  private readonly events = new EventEmitter();
  private server: GrpcServer | undefined;

  constructor(socketPath: string) {
    this.socketPath = socketPath;
    this.events.setMaxListeners(50);
  }

  update(bundles: Record<string, Uint8Array>): void {
    this.bundles = bundles;
    this.events.emit('change');
  }

  private async *stream(ctx: HandlerContext): AsyncGenerator<{ bundles: Record<string, Uint8Array> }> {
    if (ctx.requestHeader.get('workload.spiffe.io') !== 'true') throw new ConnectError('security header missing from request', Code.InvalidArgument);
    if (this.failWith !== undefined) throw this.failWith;
    this.streams++;
    for (;;) {
      yield { bundles: this.bundles };
      await new Promise<void>((resolve, reject) => {
        const onChange = (): void => {
          ctx.signal.removeEventListener('abort', onAbort);
          resolve();
        };
        const onAbort = (): void => {
          this.events.off('change', onChange);
          reject(ctx.signal.reason);
        };
        this.events.once('change', onChange);
        ctx.signal.addEventListener('abort', onAbort, { once: true });
      });
    }
  }

  async start(): Promise<void> {
    this.server = await startGrpcServer({
      listen: { path: this.socketPath },
      routes: (r) => {
        r.service(SpiffeWorkloadAPI, { fetchJWTBundles: (_req, ctx) => this.stream(ctx) });
      },
    });
  }

  async stop(): Promise<void> {
    await this.server?.close({ graceMs: 0 });
    this.server = undefined;
  }
}

/** A server API serving only BundleService.GetBundle. */
class FakeServerApi {
  readonly socketPath: string;
  authorities: Authority[] = [];
  calls = 0;
  private server: GrpcServer | undefined;

  constructor(socketPath: string) {
    this.socketPath = socketPath;
  }

  async start(): Promise<void> {
    this.server = await startGrpcServer({
      listen: { path: this.socketPath },
      routes: (r) => {
        r.service(BundleService, {
          getBundle: () => {
            this.calls++;
            return {
              trustDomain: 'example.org',
              jwtAuthorities: this.authorities.map((a) => ({
                keyId: a.kid,
                publicKey: new Uint8Array(a.key.export({ format: 'der', type: 'spki' })),
                expiresAt: 0n,
              })),
              sequenceNumber: 1n,
            };
          },
        });
      },
    });
  }

  async stop(): Promise<void> {
    await this.server?.close({ graceMs: 0 });
    this.server = undefined;
  }
}

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'oidc-src-'));
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('WorkloadApiJwksSource', () => {
  test("publishes the configured trust domain's JWT authorities, without use, and follows pushes", async () => {
    const agent = new FakeAgent(join(dir, 'wl1.sock'));
    const a = authority('kid-a');
    const b = authority('kid-b', 'rsa');
    const other = authority('kid-other');
    agent.bundles = { 'spiffe://example.org': jwks(a), 'spiffe://other.org': jwks(other) };
    await agent.start();
    const src = new WorkloadApiJwksSource({ address: agent.socketPath, trustDomain: 'example.org' });
    const stopSrc = runInBackground(src);
    const seen: KeySetSnapshot[] = [];
    src.onChange((s) => seen.push(s));
    try {
      await until('first key set', () => src.current());
      assert.deepEqual(kidsOf(src), ['kid-a']);
      const k = src.current()?.keys[0];
      assert.equal(k?.use, undefined, 'use stripped');
      assert.equal(k?.x, a.jwk.x);
      assert.equal(k?.y, a.jwk.y);
      assert.equal(src.isConnected(), true);

      // a prepared key pushed by the agent shows up without any polling
      agent.update({ 'spiffe://example.org': jwks(a, b), 'spiffe://other.org': jwks(other) });
      await until('prepared key', () => kidsOf(src)?.length === 2);
      assert.deepEqual(kidsOf(src), ['kid-a', 'kid-b']);
      assert.equal(src.current()?.keys[1]?.n, b.jwk.n);

      // a push that changes nothing of this trust domain is not a change
      const before = seen.length;
      agent.update({ 'spiffe://example.org': jwks(a, b) });
      agent.update({ 'spiffe://example.org': jwks(b) });
      await until('old key removed', () => kidsOf(src)?.length === 1);
      assert.deepEqual(kidsOf(src), ['kid-b']);
      assert.equal(seen.length, before + 1, 'only the real change was emitted');
      assert.equal(agent.streams, 1, 'one stream throughout');
    } finally {
      await stopSrc();
      src.close();
      await agent.stop();
    }
  });

  test('a response without the trust domain keeps the last keys', async () => {
    const agent = new FakeAgent(join(dir, 'wl2.sock'));
    const a = authority('kid-a');
    agent.bundles = { 'spiffe://other.org': jwks(a) };
    await agent.start();
    const src = new WorkloadApiJwksSource({ address: `unix://${agent.socketPath}`, trustDomain: 'example.org' });
    const stopSrc = runInBackground(src);
    try {
      await until('connected', () => src.isConnected());
      assert.equal(src.current(), undefined);
      agent.update({ 'spiffe://example.org': jwks(a) });
      await until('keys', () => src.current());
      agent.update({ 'spiffe://other.org': jwks(a) });
      // Nothing to await: the source must keep what it has. The fake agent pushes at once, so a
      // source that dropped the keys would do so well inside 100 ms.
      await holdsFor('the last keys kept', () => kidsOf(src)?.join() === 'kid-a', { forMs: 100 });
    } finally {
      await stopSrc();
      src.close();
      await agent.stop();
    }
  });

  test('agent goes away: last keys stay published; it comes back: reconnects with backoff and follows', async () => {
    const path = join(dir, 'wl3.sock');
    let agent = new FakeAgent(path);
    const a = authority('kid-a');
    const b = authority('kid-b');
    agent.bundles = { 'spiffe://example.org': jwks(a) };
    await agent.start();
    const src = new WorkloadApiJwksSource({ address: path, trustDomain: 'example.org', pollIntervalMs: 200, initialBackoffMs: 20 });
    const stopSrc = runInBackground(src);
    try {
      await until('keys', () => src.current());
      const snap = src.current();
      await agent.stop();
      await until('disconnect noticed', () => !src.isConnected());
      // Several reconnection attempts (backoff from 20 ms) fit in 300 ms: none may drop the keys.
      await holdsFor('same snapshot while the agent is away', () => src.current() === snap, { forMs: 300 });

      agent = new FakeAgent(path);
      agent.bundles = { 'spiffe://example.org': jwks(a, b) };
      await agent.start();
      await until('reconnected with the new key', () => kidsOf(src)?.length === 2, 5000);
      assert.deepEqual(kidsOf(src), ['kid-a', 'kid-b']);
      assert.equal(src.isConnected(), true);
    } finally {
      await stopSrc();
      src.close();
      await agent.stop();
    }
  });

  test('keeps retrying when the agent refuses (InvalidArgument ends the SDK watch)', async () => {
    const agent = new FakeAgent(join(dir, 'wl4.sock'));
    agent.failWith = new ConnectError('not yet', Code.InvalidArgument);
    agent.bundles = { 'spiffe://example.org': jwks(authority('kid-a')) };
    await agent.start();
    const src = new WorkloadApiJwksSource({ address: agent.socketPath, trustDomain: 'example.org', pollIntervalMs: 100, initialBackoffMs: 10 });
    const stopSrc = runInBackground(src);
    try {
      // Several refused attempts (backoff from 10 ms) fit in 150 ms: none may publish keys.
      await holdsFor('no keys while the agent refuses', () => src.current() === undefined, { forMs: 150 });
      agent.failWith = undefined;
      await until('keys after the refusals stop', () => src.current(), 5000);
      assert.deepEqual(kidsOf(src), ['kid-a']);
    } finally {
      await stopSrc();
      src.close();
      await agent.stop();
    }
  });

  test('an invalid trust domain is refused at construction', () => {
    assert.throws(() => new WorkloadApiJwksSource({ address: '/x.sock', trustDomain: 'Not A TD' }), /trust_domain/);
  });
});

describe('ServerApiJwksSource', () => {
  test('JWT authorities from GetBundle: SPKI turned into the same JWK, kid kept', async () => {
    const api = new FakeServerApi(join(dir, 'srv1.sock'));
    const a = authority('kid-a');
    const b = authority('kid-b', 'rsa');
    api.authorities = [a, b];
    await api.start();
    const src = new ServerApiJwksSource({ socketPath: api.socketPath, pollIntervalMs: 60_000 });
    const stopSrc = runInBackground(src);
    try {
      await until('keys', () => src.current());
      assert.deepEqual(src.current()?.keys, [a.jwk, b.jwk]);
    } finally {
      await stopSrc();
      src.close();
      await api.stop();
    }
  });

  test('polls every poll interval (injected clock), and only a real change is emitted', async () => {
    const api = new FakeServerApi(join(dir, 'srv2.sock'));
    const a = authority('kid-a');
    const b = authority('kid-b');
    api.authorities = [a];
    await api.start();
    const clock = new FakeClock();
    const src = new ServerApiJwksSource({ socketPath: api.socketPath, pollIntervalMs: 10_000, clock });
    const stopSrc = runInBackground(src);
    let changes = 0;
    src.onChange(() => changes++);
    try {
      await until('first read', () => src.current());
      await clock.waitForTimers(1);
      assert.equal(api.calls, 1);
      api.authorities = [a, b];
      clock.advance(9_999);
      // A due poll starts on the clock step itself: 50 ms of event-loop turns would show it.
      await holdsFor('no call before the interval', () => api.calls === 1, { forMs: 50 });
      assert.deepEqual(kidsOf(src), ['kid-a']);
      clock.advance(1);
      await until('second read', () => kidsOf(src)?.length === 2);
      assert.equal(api.calls, 2);
      await clock.waitForTimers(1);
      clock.advance(10_000);
      await until('third read', () => api.calls === 3);
      await clock.waitForTimers(1);
      assert.equal(changes, 2, 'the unchanged third read emitted nothing');
      assert.equal(src.current()?.updatedAt.getTime(), clock.nowMs() - 10_000);
    } finally {
      await stopSrc();
      src.close();
      await api.stop();
    }
  });

  test('server not up yet: quick retries; server away later: last keys stay; back: follows', async () => {
    const path = join(dir, 'srv3.sock');
    const src = new ServerApiJwksSource({ socketPath: path, pollIntervalMs: 150, initialRetryMs: 10 });
    const stopSrc = runInBackground(src);
    let api = new FakeServerApi(path);
    try {
      // Quick retries (from 10 ms) against no server: several fit in 100 ms, none publishes keys.
      await holdsFor('no keys before the server is up', () => src.current() === undefined, { forMs: 100 });
      const a = authority('kid-a');
      api.authorities = [a];
      await api.start();
      await until('keys once the server is up', () => src.current(), 3000);
      const snap = src.current();
      await api.stop();
      // Two or more polls (every 150 ms) fail in 400 ms: none may drop the keys.
      await holdsFor('last keys kept while the server is away', () => src.current() === snap, { forMs: 400 });
      api = new FakeServerApi(path);
      api.authorities = [a, authority('kid-b')];
      await api.start();
      await until('new key after the server is back', () => kidsOf(src)?.length === 2, 3000);
    } finally {
      await stopSrc();
      src.close();
      await api.stop();
    }
  });

  test('jwksOfServerBundle skips authorities without a key ID', () => {
    const a = authority('kid-a');
    const spki = new Uint8Array(a.key.export({ format: 'der', type: 'spki' }));
    const keys = jwksOfServerBundle({
      jwtAuthorities: [
        { keyId: '', publicKey: spki },
        { keyId: 'kid-a', publicKey: spki },
      ],
    });
    assert.deepEqual(keys, [a.jwk]);
  });
});

test('createJwksSource builds the source a config names', async () => {
  const w = createJwksSource({ kind: 'workload_api', socketPath: join(dir, 'none.sock'), trustDomain: 'example.org', pollIntervalMs: 1000 });
  const s = createJwksSource({ kind: 'server_api', socketPath: join(dir, 'none2.sock'), pollIntervalMs: 1000 });
  const a = authority('kid-file');
  const bundlePath = join(dir, 'bundle.json');
  writeFileSync(bundlePath, JSON.stringify({ keys: [{ ...a.jwk, use: 'jwt-svid' }], spiffe_sequence: 1 }));
  const f = createJwksSource({ kind: 'file', path: bundlePath, pollIntervalMs: 1000 });
  const stops = [w, s, f].map(runInBackground);
  try {
    assert.ok(w instanceof WorkloadApiJwksSource);
    assert.ok(s instanceof ServerApiJwksSource);
    await until('file keys', () => f.current());
    assert.deepEqual(kidsOf(f), ['kid-file']);
  } finally {
    await Promise.all(stops.map((stop) => stop()));
    w.close();
    s.close();
    f.close();
  }
});
