// Two ztwim trust domains federated through the bundle endpoint (https_spiffe) and the TrustDomain
// API; the endpoint's HTTP surface (SPIRE's answers) and its bounds against slow clients.
import assert from 'node:assert/strict';
import { request } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { createClient } from '@connectrpc/connect';
import { silentLogger } from '@ztwim/core';
import { BundleService, createUnixGrpcTransport, TrustDomainService } from '@ztwim/proto';
import { startBundleEndpoint } from '@ztwim/server';
import { SpiffeBundle, TrustDomain } from '@ztwim/spiffe';
import { startZtwimAdminServer, type ZtwimAdminServer } from '../interop/lib/ztwim-server.ts';

const ENDPOINT = 'federation {\n  bundle_endpoint {\n    address = "127.0.0.1"\n    port = 0\n    refresh_hint = "2m"\n  }\n}\n';

function get(port: number, path: string, method = 'GET'): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, rejectUnauthorized: false }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body: Buffer.concat(parts).toString('utf8') }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('federation between two ztwim trust domains', () => {
  let a: ZtwimAdminServer;
  let b: ZtwimAdminServer;
  before(async () => {
    a = await startZtwimAdminServer({ trustDomain: 'a.test', extraServerConfig: ENDPOINT });
    b = await startZtwimAdminServer({ trustDomain: 'b.test' });
  });
  after(async () => {
    await b?.stop();
    await a?.stop();
  });

  it('serves the bundle on GET / only, as SPIRE answers', async () => {
    const port = a.server.bundleEndpointPort;
    assert.ok(port !== undefined && port > 0);
    const ok = await get(port, '/');
    assert.equal(ok.status, 200);
    assert.equal(ok.type, 'application/json');
    const own = await a.server.bundle();
    const sb = SpiffeBundle.parse(TrustDomain.parse('a.test'), ok.body, { strict: true });
    assert.equal(sb.sequenceNumber, own.sequenceNumber);
    assert.equal(sb.refreshHintSeconds, 120);
    assert.deepEqual(
      sb.x509Authorities().map((d) => Buffer.from(d).toString('hex')),
      own.x509Authorities.map((x) => Buffer.from(x.asn1).toString('hex')),
    );
    assert.match(ok.body, /^\{\n {4}"keys": \[/, '4-space JSON as SPIRE writes it');
    assert.deepEqual(await get(port, '/x'), { status: 404, type: 'text/plain; charset=utf-8', body: '404 page not found\n' });
    assert.deepEqual(await get(port, '/', 'POST'), { status: 405, type: 'text/plain; charset=utf-8', body: '405 method not allowed\n' });
  });

  it('B federates with A through the TrustDomain API: bootstrap bundle, RefreshBundle, sequence kept', async () => {
    const t = createUnixGrpcTransport(b.socketPath);
    try {
      const td = createClient(TrustDomainService, t);
      const own = await a.server.bundle();
      const url = `https://127.0.0.1:${a.server.bundleEndpointPort}`;
      const created = await td.batchCreateFederationRelationship({
        federationRelationships: [
          {
            trustDomain: 'a.test',
            bundleEndpointUrl: url,
            bundleEndpointProfile: { case: 'httpsSpiffe', value: { endpointSpiffeId: 'spiffe://a.test/spire/server' } },
            trustDomainBundle: { trustDomain: 'a.test', x509Authorities: own.x509Authorities.map((x) => ({ asn1: x.asn1 })) },
          },
          { trustDomain: 'b.test', bundleEndpointUrl: url, bundleEndpointProfile: { case: 'httpsWeb', value: {} } },
          { trustDomain: 'c.test', bundleEndpointUrl: 'http://x', bundleEndpointProfile: { case: 'httpsWeb', value: {} } },
        ],
      });
      assert.deepEqual(
        created.results.map((r) => [r.status?.code, r.status?.message]),
        [
          [0, 'OK'],
          [3, 'unable to create federation relationship for server trust domain'],
          [3, 'failed to convert federation relationship: bundle endpoint URL must use the https scheme'],
        ],
      );
      await td.refreshBundle({ trustDomain: 'a.test' });
      const fed = await createClient(BundleService, t).getFederatedBundle({ trustDomain: 'a.test' });
      assert.deepEqual(
        fed.x509Authorities.map((x) => Buffer.from(x.asn1).toString('hex')),
        own.x509Authorities.map((x) => Buffer.from(x.asn1).toString('hex')),
      );
      assert.equal((await b.server.dataStore.getBundle('a.test'))?.spiffeSequence, own.sequenceNumber);
      const got = await td.getFederationRelationship({ trustDomain: 'a.test' });
      assert.equal(got.bundleEndpointUrl, url);
      assert.equal(got.bundleEndpointProfile.case, 'httpsSpiffe');
      assert.equal(got.trustDomainBundle?.trustDomain, 'a.test');
      const list = await td.listFederationRelationships({});
      assert.deepEqual(
        list.federationRelationships.map((r) => r.trustDomain),
        ['a.test'],
      );
      await assert.rejects(td.refreshBundle({ trustDomain: 'none.test' }), /no relationship with trust domain "none.test"/);
      await assert.rejects(td.getFederationRelationship({ trustDomain: 'none.test' }), /federation relationship does not exist/);
      // A wrong endpoint SPIFFE ID: the fetch fails, the bundle stays.
      const upd = await td.batchUpdateFederationRelationship({
        federationRelationships: [
          {
            trustDomain: 'a.test',
            bundleEndpointUrl: url,
            bundleEndpointProfile: { case: 'httpsSpiffe', value: { endpointSpiffeId: 'spiffe://a.test/not-the-server' } },
          },
        ],
        inputMask: { bundleEndpointProfile: true },
      });
      assert.equal(upd.results[0]?.status?.code, 0);
      await td.refreshBundle({ trustDomain: 'a.test' });
      assert.equal((await b.server.dataStore.getBundle('a.test'))?.spiffeSequence, own.sequenceNumber);
      const del = await td.batchDeleteFederationRelationship({ trustDomains: ['a.test', 'a.test', ''] });
      assert.deepEqual(
        del.results.map((r) => [r.trustDomain, r.status?.code, r.status?.message]),
        [
          ['a.test', 0, 'OK'],
          ['a.test', 5, 'federation relationship not found'],
          ['', 3, 'missing trust domain'],
        ],
      );
    } finally {
      t.close();
    }
  });
});

describe('bundle endpoint bounds', () => {
  it('cuts a slow loris at the header timeout and a silent connection at the handshake timeout', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const { execFileSync } = await import('node:child_process');
    const { mkdtempSync, readFileSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'ztwim-be-'));
    try {
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
      const { writeFileSync } = await import('node:fs');
      writeFileSync(join(dir, 'k.pem'), keyPem);
      execFileSync('openssl', ['req', '-x509', '-key', join(dir, 'k.pem'), '-subj', '/CN=localhost', '-days', '1', '-out', join(dir, 'c.pem')]);
      const ep = await startBundleEndpoint({
        host: '127.0.0.1',
        port: 0,
        tls: { certPem: readFileSync(join(dir, 'c.pem'), 'utf8'), keyPem },
        bundleJson: async () => '{"keys":[]}',
        log: silentLogger(),
        limits: { headersTimeoutMs: 300, requestTimeoutMs: 300, handshakeTimeoutMs: 300, checkIntervalMs: 100 },
      });
      try {
        const started = Date.now();
        const closedAfter = await new Promise<number>((resolve) => {
          const s = tlsConnect({ host: '127.0.0.1', port: ep.port, rejectUnauthorized: false }, () => {
            s.write('GET / HTTP/1.1\r\nHost: x\r\n');
            const drip = setInterval(() => s.write('X-a: b\r\n'), 50);
            s.on('close', () => {
              clearInterval(drip);
              resolve(Date.now() - started);
            });
          });
          s.on('error', () => undefined);
        });
        assert.ok(closedAfter < 5000, `slow loris held the connection ${closedAfter} ms`);
        // A TCP connection that never starts TLS is dropped at the handshake timeout.
        const { connect } = await import('node:net');
        const idle = await new Promise<number>((resolve) => {
          const t0 = Date.now();
          const s = connect({ host: '127.0.0.1', port: ep.port });
          s.on('close', () => resolve(Date.now() - t0));
          s.on('error', () => undefined);
        });
        assert.ok(idle < 5000, `silent connection held ${idle} ms`);
      } finally {
        await ep.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
