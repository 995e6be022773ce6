// The mTLS helpers with federated bundles: a peer of a federated trust domain is authorized with
// that domain's bundle only (go-spiffe's x509bundle.Source by trust domain), although OpenSSL is
// handed the union of every domain's roots. A chain to A's roots claiming an ID in C is refused
// on both sides of the handshake; A's and C's own peers pass.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as tls from 'node:tls';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Source } from '../workload/x509-source.ts';
import { FakeWorkloadApi, makeTestCa, type FakeSvid, type TestCa } from '../testdata/fake-workload-api.ts';
import { keyPair, makeCert, pkcs8, EKU_CLIENT, EKU_SERVER } from '../testdata/fixtures.ts';
import { authorizeAny } from './authorizer.ts';
import { authorizePeer, connectMtls, createMtlsServer } from './tls-options.ts';
import { X509Bundle } from '../bundle/x509-bundle.ts';
import { X509BundleSet } from '../bundle/set.ts';
import { TrustDomain } from '../id/trust-domain.ts';
import { isSpiffeError } from '../errors.ts';
import type { SpiffeId } from '../id/spiffe-id.ts';

const dir = mkdtempSync(join(tmpdir(), 'ztwim-tls-fed-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** An SVID naming `spiffe://<claimedTd><path>` signed by `issuer`'s root (another domain's CA when they differ). */
async function crossIssued(issuer: TestCa, claimedTd: string, path: string): Promise<FakeSvid> {
  const keys = await keyPair(`cross-${issuer.td}-${claimedTd}${path}`);
  const now = Date.now();
  const leaf = await makeCert({
    subject: 'O=SPIRE',
    issuer: issuer.root,
    keys,
    ca: false,
    keyUsage: 1 | 4 | 16,
    eku: [EKU_SERVER, EKU_CLIENT],
    uris: [`spiffe://${claimedTd}${path}`],
    notBefore: new Date(now - 3600_000),
    notAfter: new Date(now + 3600_000),
  });
  return { spiffeId: `spiffe://${claimedTd}${path}`, certs: [leaf.der], key: await pkcs8(keys), bundle: issuer.root.der };
}

let n = 0;
async function source(svid: FakeSvid, federated: Record<string, Uint8Array>): Promise<{ src: X509Source; close(): Promise<void> }> {
  const fake = new FakeWorkloadApi(join(dir, `s${n++}.sock`), { x509Svids: [svid], federated, x509Bundles: {}, jwtBundles: {} });
  await fake.start();
  const src = await X509Source.create({ address: fake.address });
  return {
    src,
    async close() {
      await src.close();
      await fake.stop();
    },
  };
}

test("authorizePeer picks the bundle of the peer's trust domain: a chain to A's roots claiming C is untrusted", async () => {
  const [a, c] = [await makeTestCa('a.test'), await makeTestCa('c.test')];
  const bundles = new X509BundleSet([
    X509Bundle.fromAuthorities(TrustDomain.parse('a.test'), [a.root.der]),
    X509Bundle.fromAuthorities(TrustDomain.parse('c.test'), [c.root.der]),
  ]);
  assert.equal(authorizePeer((await a.issue('/w')).certs, bundles, authorizeAny()).toString(), 'spiffe://a.test/w');
  assert.equal(authorizePeer((await c.issue('/w')).certs, bundles, authorizeAny()).toString(), 'spiffe://c.test/w');
  const forged = await crossIssued(a, 'c.test', '/w');
  assert.throws(
    () => authorizePeer(forged.certs, bundles, authorizeAny()),
    (e: unknown) => isSpiffeError(e, 'ERR_X509SVID_UNTRUSTED'),
  );
  const onlyA = new X509BundleSet([X509Bundle.fromAuthorities(TrustDomain.parse('a.test'), [a.root.der])]);
  const fromC = (await c.issue('/w')).certs;
  assert.throws(() => authorizePeer(fromC, onlyA, authorizeAny()), /no X\.509 bundle|could not get X509 bundle/, 'a domain without a bundle is not trusted');
});

test("mTLS server and client in B refuse a C identity chained to A's roots; A's and C's own peers pass", async () => {
  const [a, b, c] = [await makeTestCa('a.test'), await makeTestCa('b.test'), await makeTestCa('c.test')];
  // B's workload federates with A and C: OpenSSL gets all three roots as one CA list.
  const server = await source(await b.issue('/server'), { 'spiffe://a.test': a.root.der, 'spiffe://c.test': c.root.der });
  const refused: Error[] = [];
  const accepted: string[] = [];
  const srv = createMtlsServer(server.src, authorizeAny(), (s) => {
    accepted.push(String((s as tls.TLSSocket & { spiffeId?: SpiffeId }).spiffeId));
    s.end('ok');
  });
  srv.on('mtlsRefused', (e: Error) => refused.push(e));
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as { port: number }).port;
  const peers: Array<{ close(): Promise<void> }> = [server];
  try {
    const dial = async (svid: FakeSvid): Promise<string> => {
      const p = await source(svid, { 'spiffe://b.test': b.root.der });
      peers.push(p);
      const sock = await connectMtls(p.src, authorizeAny(), { port });
      // With TLS 1.3 the client is connected before the server has checked its certificate: a
      // refused client sees the connection close (or reset) without data.
      return new Promise<string>((resolve) => {
        let got = '';
        sock.on('data', (d: Buffer) => (got += d.toString()));
        sock.on('error', () => undefined);
        sock.on('close', () => resolve(got));
      });
    };
    assert.equal(await dial(await a.issue('/client')), 'ok');
    assert.equal(await dial(await c.issue('/client')), 'ok');
    assert.deepEqual(accepted, ['spiffe://a.test/client', 'spiffe://c.test/client']);
    // The forged C client: OpenSSL accepts the chain (A's root is in the list), the SPIFFE check refuses it.
    assert.equal(await dial(await crossIssued(a, 'c.test', '/client')).catch(() => ''), '', 'the forged client got nothing');
    assert.equal(refused.length, 1, 'the server refused exactly the forged client');
    assert.ok(isSpiffeError(refused[0], 'ERR_X509SVID_UNTRUSTED'), String(refused[0]));
    assert.deepEqual(accepted, ['spiffe://a.test/client', 'spiffe://c.test/client'], 'nothing reached the handler');

    // The other way: a client in B refuses a server presenting the forged identity.
    const forgedServer = await source(await crossIssued(a, 'c.test', '/server'), { 'spiffe://b.test': b.root.der });
    peers.push(forgedServer);
    const fsrv = createMtlsServer(forgedServer.src, authorizeAny(), (s) => s.end('leak'));
    fsrv.on('mtlsRefused', () => undefined);
    fsrv.listen(0, '127.0.0.1');
    await once(fsrv, 'listening');
    try {
      const client = await source(await b.issue('/client'), { 'spiffe://a.test': a.root.der, 'spiffe://c.test': c.root.der });
      peers.push(client);
      await assert.rejects(connectMtls(client.src, authorizeAny(), { port: (fsrv.address() as { port: number }).port }), (e: unknown) =>
        isSpiffeError(e, 'ERR_X509SVID_UNTRUSTED'),
      );
    } finally {
      fsrv.close();
    }
  } finally {
    srv.close();
    for (const p of peers) await p.close();
  }
});
