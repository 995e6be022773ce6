import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { captureLogs, FakeClock, makeTmpDir, tempDir } from '@ztwim/testkit';
import { startOidcProvider, type OidcProvider } from './provider.ts';
import { StaticJwksSource, CallbackJwksSource, type JwksSource } from './jwks-source.ts';
import { FileJwksSource } from './file-jwks-source.ts';
import type { JsonWebKey } from './jwk.ts';
import { get } from './testing/http.ts';
import { makeKey, bundleJson } from './testing/keys.ts';

const ec = makeKey('ec-p256', 'kid-ec256');
const ec384 = makeKey('ec-p384', 'kid-ec384');
const rsa = makeKey('rsa-2048', 'kid-rsa');

function firstKeys(src: JwksSource): Promise<void> {
  return new Promise<void>((resolve) => {
    if (src.current() !== undefined) resolve();
    else src.onChange(() => resolve());
  });
}

async function withProvider(
  cfg: Record<string, unknown>,
  source: StaticJwksSource | FileJwksSource | CallbackJwksSource,
  fn: (p: OidcProvider) => Promise<void>,
): Promise<void> {
  const p = await startOidcProvider({ domains: ['localhost', 'oidc.example.org'], insecureAddr: '127.0.0.1:0', allowInsecureScheme: true, ...cfg } as never, {
    source,
    shutdownGraceMs: 2000,
  });
  try {
    await fn(p);
  } finally {
    await p.close();
  }
}

describe('discovery document', () => {
  test('shape, member order and headers without jwtIssuer (derived from Host)', async () => {
    await withProvider({}, new StaticJwksSource([ec.publicJwk, rsa.publicJwk]), async (p) => {
      const port = new URL(p.urls.http as string).port;
      const r = await get(`${p.urls.http}/.well-known/openid-configuration`, { headers: { host: `localhost:${port}` } });
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-type'], 'application/json');
      assert.equal(r.headers['access-control-allow-origin'], '*');
      const expected = {
        issuer: `http://localhost:${port}`,
        jwks_uri: `http://localhost:${port}/keys`,
        authorization_endpoint: '',
        response_types_supported: ['id_token'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256', 'ES256'],
      };
      assert.equal(r.body, JSON.stringify(expected, null, 2));
    });
  });

  test('jwtIssuer is served verbatim and is the base of jwks_uri', async () => {
    const cases = [
      { iss: 'https://oidc.example.org', jwks: 'https://oidc.example.org/keys' },
      { iss: 'https://oidc.example.org/', jwks: 'https://oidc.example.org/keys' },
      { iss: 'https://oidc.example.org/tenant/a', jwks: 'https://oidc.example.org/tenant/a/keys' },
      { iss: 'https://oidc.example.org:8443/x/', jwks: 'https://oidc.example.org:8443/x/keys' },
    ];
    for (const c of cases) {
      await withProvider({ jwtIssuer: c.iss }, new StaticJwksSource([ec.publicJwk]), async (p) => {
        const r = await get(`${p.urls.http}/.well-known/openid-configuration`, { headers: { host: 'oidc.example.org' } });
        assert.equal(r.status, 200, c.iss);
        const doc = JSON.parse(r.body) as Record<string, unknown>;
        assert.equal(doc.issuer, c.iss);
        assert.equal(doc.jwks_uri, c.jwks);
        assert.deepEqual(doc.id_token_signing_alg_values_supported, ['ES256']);
      });
    }
  });

  test('behind a proxy: X-Forwarded-Host and X-Forwarded-Proto / Forwarded', async () => {
    await withProvider({}, new StaticJwksSource([ec384.publicJwk]), async (p) => {
      const cases: Array<[Record<string, string>, string]> = [
        [{ 'x-forwarded-host': 'oidc.example.org', 'x-forwarded-proto': 'https' }, 'https://oidc.example.org'],
        [{ 'x-forwarded-host': 'oidc.example.org' }, 'http://oidc.example.org'],
        [{ host: 'oidc.example.org', forwarded: 'for=1.2.3.4;proto=https' }, 'https://oidc.example.org'],
        [{ host: 'oidc.example.org:8080', 'x-forwarded-scheme': 'https' }, 'https://oidc.example.org:8080'],
      ];
      for (const [headers, iss] of cases) {
        const r = await get(`${p.urls.http}/.well-known/openid-configuration`, { headers });
        assert.equal(r.status, 200);
        const doc = JSON.parse(r.body) as Record<string, unknown>;
        assert.equal(doc.issuer, iss, JSON.stringify(headers));
        assert.equal(doc.jwks_uri, `${iss}/keys`);
        assert.deepEqual(doc.id_token_signing_alg_values_supported, ['ES384']);
      }
    });
  });

  test('without allowInsecureScheme the derived issuer is https even on plain HTTP', async () => {
    const p = await startOidcProvider({ domains: ['localhost'], insecureAddr: '127.0.0.1:0' }, { source: new StaticJwksSource([ec.publicJwk]) });
    try {
      const r = await get(`${p.urls.http}/.well-known/openid-configuration`, { headers: { host: 'localhost' } });
      assert.equal((JSON.parse(r.body) as { issuer: string }).issuer, 'https://localhost');
    } finally {
      await p.close();
    }
  });

  test('domains allowlist: other hosts get 400, not a document', async () => {
    await withProvider({ jwtIssuer: 'https://oidc.example.org' }, new StaticJwksSource([ec.publicJwk]), async (p) => {
      const cases: Array<[Record<string, string>, string]> = [
        [{ host: 'evil.example.com' }, 'domain "evil.example.com" is not allowed\n'],
        [{ host: 'evil.example.com:443' }, 'domain "evil.example.com" is not allowed\n'],
        [{ host: 'localhost', 'x-forwarded-host': 'evil.example.com' }, 'domain "evil.example.com" is not allowed\n'],
        [{ host: 'OIDC.example.org' }, 'domain "OIDC.example.org" must already be punycode encoded\n'],
        [{ host: '127.0.0.1' }, 'domain "127.0.0.1" is not allowed\n'],
      ];
      for (const [headers, body] of cases) {
        const r = await get(`${p.urls.http}/.well-known/openid-configuration`, { headers });
        assert.equal(r.status, 400, JSON.stringify(headers));
        assert.equal(r.body, body);
        assert.equal(r.headers['content-type'], 'text/plain; charset=utf-8');
        assert.equal(r.headers['x-content-type-options'], 'nosniff');
      }
    });
  });

  test('serverPathPrefix moves both routes and the derived issuer', async () => {
    await withProvider({ serverPathPrefix: '/oidc' }, new StaticJwksSource([ec.publicJwk]), async (p) => {
      const r = await get(`${p.urls.http}/oidc/.well-known/openid-configuration`, { headers: { host: 'localhost' } });
      assert.equal(r.status, 200);
      const doc = JSON.parse(r.body) as Record<string, string>;
      assert.equal(doc.issuer, 'http://localhost/oidc');
      assert.equal(doc.jwks_uri, 'http://localhost/oidc/keys');
      assert.equal((await get(`${p.urls.http}/oidc/keys`)).status, 200);
      assert.equal((await get(`${p.urls.http}/keys`)).status, 404);
    });
  });
});

describe('/keys', () => {
  test('publishes public members only, in SPIRE order, with alg and use=sig', async () => {
    await withProvider({ setKeyUse: true }, new StaticJwksSource([ec.privateJwk, rsa.privateJwk]), async (p) => {
      const r = await get(`${p.urls.http}/keys`);
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-type'], 'application/json');
      assert.equal(r.headers['cache-control'], 'no-cache, no-store, must-revalidate');
      assert.equal(r.headers.pragma, 'no-cache');
      assert.equal(r.headers.expires, '0');
      assert.equal(r.headers['access-control-allow-origin'], '*');
      assert.ok(r.headers.etag !== undefined);
      assert.ok(r.headers['last-modified'] !== undefined);
      const set = JSON.parse(r.body) as { keys: Array<Record<string, string>> };
      assert.deepEqual(Object.keys(set), ['keys']);
      const [k1, k2] = set.keys;
      assert.deepEqual(Object.keys(k1 ?? {}), ['use', 'kty', 'kid', 'crv', 'alg', 'x', 'y']);
      assert.deepEqual(Object.keys(k2 ?? {}), ['use', 'kty', 'kid', 'alg', 'n', 'e']);
      assert.equal(k1?.use, 'sig');
      assert.equal(k1?.alg, 'ES256');
      assert.equal(k2?.alg, 'RS256');
      assert.equal(k1?.x, ec.publicJwk.x);
      assert.equal(k2?.n, rsa.publicJwk.n);
      assert.ok(!r.body.includes('"d"'));
      assert.equal(r.body, JSON.stringify(set, null, 2));
    });
  });

  test('without setKeyUse no use member is published', async () => {
    await withProvider({}, new StaticJwksSource([{ ...ec.publicJwk, use: 'jwt-svid' }]), async (p) => {
      const set = JSON.parse((await get(`${p.urls.http}/keys`)).body) as { keys: Array<Record<string, string>> };
      assert.deepEqual(Object.keys(set.keys[0] ?? {}), ['kty', 'kid', 'crv', 'alg', 'x', 'y']);
    });
  });

  test('500 before any key set, 501 for an empty key set', async () => {
    const src = new StaticJwksSource();
    await withProvider({ healthChecks: { addr: '127.0.0.1:0' } }, src, async (p) => {
      let r = await get(`${p.urls.http}/keys`);
      assert.equal(r.status, 500);
      assert.equal(r.body, 'document not available\n');
      assert.equal((await get(`${p.urls.health}/ready`)).status, 500);
      src.set([]);
      r = await get(`${p.urls.http}/keys`);
      assert.equal(r.status, 501);
      assert.equal(r.body, 'jwt not supported/enabled in this service\n');
      assert.equal((await get(`${p.urls.health}/ready`)).status, 500);
      src.set([ec.publicJwk]);
      assert.equal((await get(`${p.urls.http}/keys`)).status, 200);
      assert.equal((await get(`${p.urls.health}/ready`)).status, 200);
      assert.equal((await get(`${p.urls.health}/live`)).status, 200);
    });
  });

  test('ETag / If-None-Match and Last-Modified / If-Modified-Since give 304', async () => {
    const clock = new FakeClock(Date.UTC(2026, 5, 1, 12, 0, 0));
    const src = new StaticJwksSource([ec.publicJwk], { clock });
    await withProvider({}, src, async (p) => {
      const first = await get(`${p.urls.http}/keys`);
      const etag = first.headers.etag as string;
      assert.equal(first.headers['last-modified'], 'Mon, 01 Jun 2026 12:00:00 GMT');
      const cases: Array<[Record<string, string>, number]> = [
        [{ 'if-none-match': etag }, 304],
        [{ 'if-none-match': `"other", ${etag}` }, 304],
        [{ 'if-none-match': `W/${etag}` }, 304],
        [{ 'if-none-match': '*' }, 304],
        [{ 'if-none-match': '"other"' }, 200],
        [{ 'if-modified-since': 'Mon, 01 Jun 2026 12:00:00 GMT' }, 304],
        [{ 'if-modified-since': 'Mon, 01 Jun 2026 11:59:59 GMT' }, 200],
        [{ 'if-none-match': '"other"', 'if-modified-since': 'Mon, 01 Jun 2026 12:00:00 GMT' }, 200],
      ];
      for (const [headers, status] of cases) {
        const r = await get(`${p.urls.http}/keys`, { headers });
        assert.equal(r.status, status, JSON.stringify(headers));
        if (status === 304) {
          assert.equal(r.body, '');
          assert.equal(r.headers.etag, etag);
        }
      }
      clock.advance(5000);
      src.set([ec.publicJwk, rsa.publicJwk]);
      const after = await get(`${p.urls.http}/keys`, { headers: { 'if-none-match': etag } });
      assert.equal(after.status, 200);
      assert.notEqual(after.headers.etag, etag);
      assert.equal(after.headers['last-modified'], 'Mon, 01 Jun 2026 12:00:05 GMT');
    });
  });

  test('405 for other methods, 404 for other paths, never a redirect', async () => {
    await withProvider({}, new StaticJwksSource([ec.publicJwk]), async (p) => {
      for (const path of ['/keys', '/.well-known/openid-configuration']) {
        for (const method of ['POST', 'HEAD', 'PUT', 'DELETE', 'OPTIONS']) {
          const r = await get(`${p.urls.http}${path}`, { method, headers: { host: 'localhost' } });
          assert.equal(r.status, 405, `${method} ${path}`);
          if (method !== 'HEAD') assert.equal(r.body, 'method not allowed\n');
        }
      }
      for (const path of ['/', '/keys/', '/.well-known/openid-configuration/', '/x']) {
        const r = await get(`${p.urls.http}${path}`);
        assert.equal(r.status, 404, path);
      }
      const q = await get(`${p.urls.http}/keys?x=1`);
      assert.equal(q.status, 200);
    });
  });

  test('pushed source: a new key appears at /keys immediately and in the discovery algs', async () => {
    let push: ((keys: readonly JsonWebKey[]) => void) | undefined;
    let stopped = false;
    const src = new CallbackJwksSource((p) => {
      push = p;
      return () => {
        stopped = true;
      };
    });
    await withProvider({}, src, async (p) => {
      assert.equal((await get(`${p.urls.http}/keys`)).status, 500);
      push?.([ec.publicJwk]);
      let set = JSON.parse((await get(`${p.urls.http}/keys`)).body) as { keys: Array<{ kid: string }> };
      assert.deepEqual(
        set.keys.map((k) => k.kid),
        ['kid-ec256'],
      );
      push?.([ec.publicJwk, rsa.publicJwk]);
      set = JSON.parse((await get(`${p.urls.http}/keys`)).body) as { keys: Array<{ kid: string }> };
      assert.deepEqual(
        set.keys.map((k) => k.kid),
        ['kid-ec256', 'kid-rsa'],
      );
      const doc = JSON.parse((await get(`${p.urls.http}/.well-known/openid-configuration`, { headers: { host: 'localhost' } })).body) as Record<
        string,
        unknown
      >;
      assert.deepEqual(doc.id_token_signing_alg_values_supported, ['RS256', 'ES256']);
    });
    src.close();
    assert.equal(stopped, true);
  });

  test('file source: a key added to the bundle file appears within one poll', async () => {
    const dir = makeTmpDir('ztwim-oidc-').path;
    const path = join(dir, 'bundle.json');
    writeFileSync(path, bundleJson([ec.publicJwk]));
    const clock = new FakeClock();
    const src = new FileJwksSource(path, { clock, pollIntervalMs: 10_000 });
    await withProvider({}, src, async (p) => {
      // The provider runs the source's poll loop: its first read, then its timer.
      await firstKeys(src);
      await clock.waitForTimers(1);
      let set = JSON.parse((await get(`${p.urls.http}/keys`)).body) as { keys: Array<{ kid: string; use?: string }> };
      assert.deepEqual(
        set.keys.map((k) => k.kid),
        ['kid-ec256'],
      );
      assert.equal(set.keys[0]?.use, undefined);
      writeFileSync(`${path}.tmp`, bundleJson([ec.publicJwk, rsa.publicJwk], 2));
      renameSync(`${path}.tmp`, path);
      // Not yet: the file is only read on the next poll.
      set = JSON.parse((await get(`${p.urls.http}/keys`)).body) as { keys: Array<{ kid: string }> };
      assert.equal(set.keys.length, 1);
      const changed = new Promise<void>((resolve) => src.onChange(() => resolve()));
      clock.advance(10_000);
      await changed;
      set = JSON.parse((await get(`${p.urls.http}/keys`)).body) as { keys: Array<{ kid: string }> };
      assert.deepEqual(
        set.keys.map((k) => k.kid),
        ['kid-ec256', 'kid-rsa'],
      );
      // A broken file keeps the last good key set.
      writeFileSync(path, '{not json');
      await clock.waitForTimers(1);
      clock.advance(10_000);
      assert.equal(await src.poll(), false);
      set = JSON.parse((await get(`${p.urls.http}/keys`)).body) as { keys: Array<{ kid: string }> };
      assert.equal(set.keys.length, 2);
    });
    src.close();
  });

  test('keys nobody can use are not published; at most maxKeys keys', async () => {
    const okp = makeKey('ed25519', 'kid-okp');
    const many = Array.from({ length: 5 }, (_, i) => ({ ...ec.publicJwk, kid: `k${i}` }));
    const { kid: _kid, ...noKid } = rsa.publicJwk;
    await withProvider({ maxKeys: 3 }, new StaticJwksSource([okp.publicJwk, noKid, ...many]), async (p) => {
      const set = JSON.parse((await get(`${p.urls.http}/keys`)).body) as { keys: Array<{ kid: string }> };
      assert.deepEqual(
        set.keys.map((k) => k.kid),
        ['k2', 'k3', 'k4'],
      );
    });
  });
});

describe('listeners, health, metrics, shutdown', () => {
  test('Unix socket listener', async () => {
    const sock = join(makeTmpDir('ztwim-oidc-').path, 'oidc.sock');
    const p = await startOidcProvider(
      { domains: ['localhost'], listenSocketPath: sock, allowInsecureScheme: true },
      { source: new StaticJwksSource([ec.publicJwk]) },
    );
    try {
      const r = await get('http://localhost/.well-known/openid-configuration', { socketPath: sock });
      assert.equal(r.status, 200);
      assert.equal((JSON.parse(r.body) as { issuer: string }).issuer, 'http://localhost');
      assert.equal((await get('http://localhost/keys', { socketPath: sock })).status, 200);
    } finally {
      await p.close();
    }
  });

  test('metrics on their own listener count requests', async () => {
    await withProvider({ healthChecks: { addr: '127.0.0.1:0' }, metrics: { addr: '127.0.0.1:0' } }, new StaticJwksSource([ec.publicJwk]), async (p) => {
      await get(`${p.urls.http}/keys`);
      await get(`${p.urls.http}/keys`);
      await get(`${p.urls.http}/nope`);
      const m = await get(p.urls.metrics as string);
      assert.equal(m.status, 200);
      assert.match(m.body, /ztwim_oidc_http_requests_total\{route="keys",code="200"\} 2/);
      assert.match(m.body, /ztwim_oidc_http_requests_total\{route="other",code="404"\} 1/);
      assert.match(m.body, /ztwim_oidc_published_keys 1/);
      assert.equal((await get(`${p.urls.health}/metrics`)).status, 404);
    });
  });

  test('metrics on the health listener path', async () => {
    await withProvider(
      { healthChecks: { addr: '127.0.0.1:0', readyPath: '/healthz/ready' }, metrics: { path: '/m' } },
      new StaticJwksSource([ec.publicJwk]),
      async (p) => {
        assert.equal(p.urls.metrics, `${p.urls.health}/m`);
        assert.equal((await get(p.urls.metrics)).status, 200);
        assert.equal((await get(`${p.urls.health}/healthz/ready`)).status, 200);
      },
    );
  });

  test('graceful shutdown: an in-flight request completes, then the port closes', async () => {
    const p = await startOidcProvider(
      { domains: ['localhost'], insecureAddr: '127.0.0.1:0' },
      { source: new StaticJwksSource([ec.publicJwk]), shutdownGraceMs: 5000 },
    );
    const { port } = new URL(p.urls.http as string);
    const sock = connect(Number(port), '127.0.0.1');
    await new Promise<void>((resolve) => sock.once('connect', () => resolve()));
    let response = '';
    sock.on('data', (d: Buffer) => {
      response += d.toString();
    });
    const ended = new Promise<void>((resolve) => sock.once('close', () => resolve()));
    // Headers are only partly sent when shutdown starts: the request is in flight.
    sock.write('GET /keys HTTP/1.1\r\nHost: localhost\r\n');
    await new Promise<void>((resolve) => setImmediate(resolve));
    const closed = p.close();
    sock.write('\r\n');
    await closed;
    await ended;
    assert.match(response, /^HTTP\/1\.1 200 OK/);
    assert.match(response, /[Cc]onnection: close/);
    await assert.rejects(get(`${p.urls.http}/keys`), /ECONNREFUSED/);
  });
});

describe('request log', () => {
  const run = async (logRequests: boolean): Promise<Array<Record<string, unknown>>> => {
    const { log: logger, lines } = captureLogs('debug');
    const p = await startOidcProvider({ domains: ['localhost'], insecureAddr: '127.0.0.1:0', allowInsecureScheme: true } as never, {
      source: new StaticJwksSource([ec.publicJwk]),
      shutdownGraceMs: 2000,
      logger,
      logRequests,
    });
    try {
      const r = await get(`${p.urls.http}/keys?x=1`, { headers: { 'user-agent': 'probe/1.0' } });
      assert.equal(r.status, 200);
    } finally {
      await p.close();
    }
    return lines;
  };

  test('log_requests: every request at debug with remote address, method, URL and user agent', async () => {
    const recs = await run(true);
    const req = recs.filter((r) => r['msg'] === 'Incoming request');
    assert.equal(req.length, 1, JSON.stringify(recs));
    assert.equal(req[0]?.['level'], 'debug');
    assert.equal(req[0]?.['method'], 'GET');
    assert.equal(req[0]?.['url'], '/keys?x=1');
    assert.equal(req[0]?.['user_agent'], 'probe/1.0');
    assert.match(String(req[0]?.['remote_addr']), /^127\.0\.0\.1:\d+$/);
    assert.ok(recs.some((r) => r['msg'] === 'Logging all requests' && r['level'] === 'info'));
  });

  test('without log_requests no request is logged', async () => {
    const recs = await run(false);
    assert.equal(recs.filter((r) => r['msg'] === 'Incoming request').length, 0);
  });
});

describe('tasks', () => {
  const cfg = { domains: ['localhost'], insecureAddr: '127.0.0.1:0', allowInsecureScheme: true };

  test("runs the key source's poller as one of its tasks and stops it on close (fake clock)", async () => {
    const path = join(tempDir(), 'bundle.json');
    writeFileSync(path, bundleJson([ec.publicJwk]));
    const clock = new FakeClock();
    const src = new FileJwksSource(path, { clock, pollIntervalMs: 10_000 });
    const p = await startOidcProvider(cfg, { source: src, clock, shutdownGraceMs: 2000 });
    let closed = false;
    try {
      await firstKeys(src);
      await clock.waitForTimers(1);
      assert.equal(clock.pending(), 1, 'the poll timer is the only timer');
      writeFileSync(path, bundleJson([ec.publicJwk, rsa.publicJwk], 2));
      const changed = new Promise<void>((resolve) => src.onChange(() => resolve()));
      clock.advance(10_000);
      await changed;
      const set = JSON.parse((await get(`${p.urls.http}/keys`)).body) as { keys: Array<{ kid: string }> };
      assert.deepEqual(
        set.keys.map((k) => k.kid),
        ['kid-ec256', 'kid-rsa'],
      );
      await clock.waitForTimers(1);

      await p.close();
      closed = true;
      assert.equal(clock.pending(), 0, 'no poller left armed after close()');
      writeFileSync(path, bundleJson([ec384.publicJwk], 3));
      clock.advance(60_000);
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(
        src.current()?.keys.map((k) => k.kid),
        ['kid-ec256', 'kid-rsa'],
      );
      await p.done;
    } finally {
      if (!closed) await p.close();
      src.close();
    }
  });

  test('a failed task stops the provider: done resolves and the listener is closed', async () => {
    let fail: ((e: Error) => void) | undefined;
    const src: JwksSource = {
      current: () => ({ keys: [ec.publicJwk], updatedAt: new Date() }),
      onChange: () => () => undefined,
      run: () =>
        new Promise<void>((_resolve, reject) => {
          fail = reject;
        }),
    };
    const { log: logger, lines } = captureLogs('info');
    const p = await startOidcProvider(cfg, { source: src, shutdownGraceMs: 2000, logger });
    try {
      assert.equal((await get(`${p.urls.http}/keys`)).status, 200);
      assert.ok(fail !== undefined, 'the provider started the source');
      fail(new Error('key source broke'));
      await p.done;
      await assert.rejects(get(`${p.urls.http}/keys`), /ECONNREFUSED/);
      const failed = lines.filter((l) => l['msg'] === 'OIDC discovery provider task failed');
      assert.deepEqual(
        failed.map((l) => [l['task'], l['error']]),
        [['jwks_source', 'key source broke']],
      );
    } finally {
      await p.close();
    }
  });
});
