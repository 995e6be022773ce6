import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import type * as net from 'node:net';
import * as tls from 'node:tls';
import * as https from 'node:https';
import * as http2 from 'node:http2';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Source } from '../workload/x509-source.ts';
import { FakeWorkloadApi, makeTestCa, type TestCa } from '../testdata/fake-workload-api.ts';
import { authorizeId, authorizeIf, authorizeMemberOf, authorizeOneOf, authorizeAny } from './authorizer.ts';
import { connectMtls, createMtlsServer, enforceMtls, tlsClientOptions, tlsServerOptions } from './tls-options.ts';
import { SpiffeId } from '../id/spiffe-id.ts';
import { TrustDomain } from '../id/trust-domain.ts';
import { isSpiffeError } from '../errors.ts';
import { derToPem } from '../internal/pem.ts';

const dir = mkdtempSync(join(tmpdir(), 'ztwim-tls-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function source(ca: TestCa, name: string, path: string): Promise<{ src: X509Source; fake: FakeWorkloadApi; close(): Promise<void> }> {
  const fake = new FakeWorkloadApi(join(dir, `${name}.sock`), { x509Svids: [await ca.issue(path)], federated: {}, x509Bundles: {}, jwtBundles: {} });
  await fake.start();
  const src = await X509Source.create({ address: fake.address });
  return {
    src,
    fake,
    async close() {
      await src.close();
      await fake.stop();
    },
  };
}

const portOf = (s: { address(): unknown }): number => (s.address() as { port: number }).port;
const closed = (s: tls.TLSSocket | http2.ClientHttp2Session | ReturnType<typeof https.request>): Promise<void> => new Promise((r) => s.on('close', () => r()));

test('authorizers', () => {
  const id = SpiffeId.parse('spiffe://example.org/a');
  const cases: Array<[string, () => void, boolean]> = [
    ['any', () => authorizeAny()(id, []), true],
    ['id ok', () => authorizeId('spiffe://example.org/a')(id, []), true],
    ['id other', () => authorizeId('spiffe://example.org/b')(id, []), false],
    ['oneOf ok', () => authorizeOneOf('spiffe://example.org/b', id)(id, []), true],
    ['oneOf miss', () => authorizeOneOf('spiffe://example.org/b')(id, []), false],
    ['memberOf ok', () => authorizeMemberOf(TrustDomain.parse('example.org'))(id, []), true],
    ['memberOf other', () => authorizeMemberOf(TrustDomain.parse('other.org'))(id, []), false],
    ['if true', () => authorizeIf((x) => x.path === '/a')(id, []), true],
    ['if false', () => authorizeIf(() => false)(id, []), false],
  ];
  for (const [name, f, ok] of cases) {
    if (ok) assert.doesNotThrow(f, name);
    else assert.throws(f, (e: unknown) => isSpiffeError(e, 'ERR_AUTHORIZATION'), name);
  }
});

test('a client that writes before verification leaks nothing to an unauthorized server', async () => {
  const ca = await makeTestCa('example.org');
  const s = await source(ca, 'leak-s', '/server');
  const c = await source(ca, 'leak-c', '/client');
  const seen: string[] = [];
  const srv = createMtlsServer(s.src, authorizeAny(), (t) => t.on('data', (d) => seen.push(d.toString())));
  // The server's end of the TCP connection: everything the client sent arrives before it closes.
  const serverSide = new Promise<void>((r) => srv.once('connection', (raw: net.Socket) => raw.once('close', () => r())));
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  try {
    const sock = tls.connect({ ...tlsClientOptions(c.src, authorizeId('spiffe://example.org/not-the-server')), host: '127.0.0.1', port: portOf(srv) });
    sock.write('early-secret');
    const err = await new Promise<Error>((r) => sock.once('error', r));
    assert.match(err.message, /unexpected ID/);
    await closed(sock);
    await serverSide;
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(seen, []);
  } finally {
    srv.close();
    await s.close();
    await c.close();
  }
});

test('https and http2 servers with tlsServerOptions + enforceMtls', async () => {
  const ca = await makeTestCa('example.org');
  const s = await source(ca, 'h-s', '/server');
  const c = await source(ca, 'h-c', '/client');
  const hits: string[] = [];
  const strict = https.createServer(tlsServerOptions(s.src), (req, res) => {
    hits.push(`strict ${req.url}`);
    res.end('no');
  });
  enforceMtls(strict, s.src, authorizeId('spiffe://example.org/someone-else'));
  const ok = https.createServer(tlsServerOptions(s.src), (req, res) => res.end(`hello ${req.url}`));
  enforceMtls(ok, s.src, authorizeId('spiffe://example.org/client'));
  const h2 = http2.createSecureServer(tlsServerOptions(s.src), (req, res) => res.end(`h2 ${req.url}`));
  enforceMtls(h2, s.src, authorizeMemberOf(TrustDomain.parse('example.org')));
  for (const srv of [strict, ok, h2]) {
    srv.listen(0, '127.0.0.1');
    await once(srv, 'listening');
  }
  try {
    const client = tlsClientOptions(c.src, authorizeId('spiffe://example.org/server'));
    // Unauthorized client: the request never reaches the handler.
    const bad = https.request({ ...client, host: '127.0.0.1', port: portOf(strict), path: '/secret', method: 'POST', agent: false });
    const badErr = new Promise<Error>((r) => bad.once('error', r));
    bad.end('payload');
    await badErr;
    assert.deepEqual(hits, []);
    // Authorized https.
    const good = https.request({ ...client, host: '127.0.0.1', port: portOf(ok), path: '/x', agent: false });
    good.end();
    const [res] = (await once(good, 'response')) as [NodeJS.ReadableStream];
    let body = '';
    for await (const chunk of res) body += String(chunk);
    assert.equal(body, 'hello /x');
    // http2.
    const session = http2.connect(`https://127.0.0.1:${portOf(h2)}`, client);
    const stream = session.request({ ':path': '/y' });
    stream.end();
    let b2 = '';
    for await (const chunk of stream) b2 += String(chunk);
    assert.equal(b2, 'h2 /y');
    session.close();
  } finally {
    strict.close();
    ok.close();
    h2.close();
    await s.close();
    await c.close();
  }
});

test('createMtlsServer presents the rotated SVID to clients without SNI', async () => {
  const ca = await makeTestCa('example.org');
  const s = await source(ca, 'rot-s', '/server-v1');
  const c = await source(ca, 'rot-c', '/client');
  const srv = createMtlsServer(s.src, authorizeAny(), (t) => t.end('hi'));
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  try {
    const a = await connectMtls(c.src, authorizeId('spiffe://example.org/server-v1'), { port: portOf(srv) });
    a.destroy();
    const rotated = new Promise<void>((r) => s.src.onUpdate(() => r()));
    s.fake.update({ x509Svids: [await ca.issue('/server-v2')] });
    await rotated;
    const b = await connectMtls(c.src, authorizeId('spiffe://example.org/server-v2'), { port: portOf(srv) });
    b.destroy();
    await assert.rejects(connectMtls(c.src, authorizeId('spiffe://example.org/server-v1'), { port: portOf(srv) }), /unexpected ID/);
  } finally {
    srv.close();
    await s.close();
    await c.close();
  }
});

test('X509-SVID §3.1, §5.2: a peer whose SPIFFE ID is the bare trust domain is refused on both sides', async () => {
  const ca = await makeTestCa('example.org');
  const s = await source(ca, 'td-s', '/server');
  const c = await source(ca, 'td-c', '/client');
  // The bare-trust-domain peer is a plain node:tls endpoint (the SDK's parser would not load it).
  const bare = await ca.issue('');
  assert.equal(bare.spiffeId, 'spiffe://example.org');
  const bareCreds = {
    cert: derToPem(bare.certs[0] as Uint8Array, 'CERTIFICATE'),
    key: derToPem(bare.key, 'PRIVATE KEY'),
    ca: [derToPem(ca.root.der, 'CERTIFICATE')],
  };
  // Server side: our mTLS server refuses a client presenting spiffe://example.org.
  const srv = createMtlsServer(s.src, authorizeAny(), (t) => t.end('served'));
  const refused = new Promise<unknown>((r) => srv.once('mtlsRefused', r));
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  // Client side: our mTLS client refuses a server presenting spiffe://example.org.
  const bareSrv = tls.createServer({ ...bareCreds, requestCert: true, rejectUnauthorized: false }, (t) => t.end('served'));
  bareSrv.listen(0, '127.0.0.1');
  await once(bareSrv, 'listening');
  try {
    const sock = tls.connect({ ...bareCreds, host: '127.0.0.1', port: portOf(srv), checkServerIdentity: () => undefined });
    sock.on('error', () => {});
    let got = '';
    sock.on('data', (d) => (got += String(d)));
    const outcome = await Promise.race([refused, closed(sock).then(() => `closed after ${JSON.stringify(got)}`)]);
    assert.ok(isSpiffeError(outcome), `server did not refuse the client: ${String(outcome)}`);
    assert.match(outcome.message, /non-root path/);
    await closed(sock);
    assert.equal(got, '');
    await assert.rejects(connectMtls(c.src, authorizeAny(), { port: portOf(bareSrv) }), /non-root path/);
  } finally {
    srv.close();
    bareSrv.close();
    await s.close();
    await c.close();
  }
});
