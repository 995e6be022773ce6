// The registrar's admission webhook server against a SPIRE Server API (ztwim server in
// test/integration/registrar-webhook.test.ts, spire-server v1.13.0 in
// test/interop/registrar-webhook-vs-spire.test.ts; admin socket in a temp dir): its serving
// certificate is an X509-SVID minted through the SVID API (ID spiffe://<td>/spire-controller-
// manager-webhook, DNS <svc>.<ns>.svc, P-256), trusted through the server's bundle;
// AdmissionReviews are answered over HTTPS; the certificate is minted again at half its lifetime
// (the webhook's clock is a FakeClock; the server and TLS use real time).
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { request } from 'node:https';
import { connect, type PeerCertificate } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '@ztwim/core';
import {
  AdmissionWebhookServer,
  CLUSTER_SPIFFE_ID_WEBHOOK_PATH,
  serverApiOverSocket,
  startRegistrarWebhook,
  type WebhookConfigurationStore,
  type WebhookConfigurationView,
  type WebhookServerApi,
} from '@ztwim/registrar';
import { freePort } from './net.ts';
import { FakeClock, holdsFor } from '@ztwim/testkit';
import type { AdminServer } from './spire-admin.ts';
import { until } from './wait.ts';

const DNS = 'ztwim-registrar-webhook.registrar-crd.svc';

/** Runs the webhook suite against the SPIRE Server API of the server `start` brings up. */
export function registrarWebhookSuite(name: string, start: () => Promise<AdminServer>): void {
  let server: AdminServer;
  let api: WebhookServerApi;
  let webhook: AdmissionWebhookServer;
  let roots: string;
  const clock = new FakeClock(Date.now());

  before(async () => {
    server = await start();
    api = serverApiOverSocket(server.socketPath);
    roots = await api.x509RootsPem();
    webhook = await AdmissionWebhookServer.start({
      host: '127.0.0.1',
      port: 0,
      trustDomain: 'example.org',
      dnsNames: [DNS],
      serverApi: api,
      clock,
      log: silentLogger(),
    });
  });

  after(async () => {
    await webhook?.close();
    api?.close();
    await server?.stop();
  });

  /** The certificate the webhook serves, verified against the server's roots for the DNS name. */
  function servedCertificate(port = webhook.port, dns = DNS): Promise<PeerCertificate> {
    return new Promise((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port, servername: dns, ca: roots }, () => {
        resolve(s.getPeerCertificate());
        s.end();
      });
      s.on('error', reject);
    });
  }

  function post(path: string, body: string, method = 'POST'): Promise<{ status: number; text: string }> {
    return new Promise((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port: webhook.port, path, method, servername: DNS, ca: roots, headers: { 'content-type': 'application/json' } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  const review = (spec: unknown): string =>
    JSON.stringify({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: { uid: 'u-42', operation: 'CREATE', object: { kind: 'ClusterSPIFFEID', spec } },
    });

  describe(`registrar admission webhook on ${name}`, () => {
    it('serves an X509-SVID for spiffe://<td>/spire-controller-manager-webhook with the service DNS name, P-256, chained to the bundle', async () => {
      const peer = await servedCertificate();
      const cert = new X509Certificate(peer.raw);
      // Compared as a set: spire-server writes the DNS SAN first, ztwim server the URI SAN.
      assert.deepEqual(cert.subjectAltName?.split(', ').sort(), [`DNS:${DNS}`, 'URI:spiffe://example.org/spire-controller-manager-webhook']);
      assert.equal(cert.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
      const lifetime = Date.parse(cert.validTo) - Date.parse(cert.validFrom);
      assert.ok(lifetime > 60 * 60_000 && lifetime <= 24 * 3600_000 + 60_000, `lifetime ${lifetime} ms`);
      assert.equal(webhook.certificate.expiresAt.getTime(), Date.parse(cert.validTo));
    });

    it('answers AdmissionReviews: a good ClusterSPIFFEID is allowed, a broken template refused with the message', async () => {
      const ok = await post(
        CLUSTER_SPIFFE_ID_WEBHOOK_PATH + '?timeout=10s',
        review({ spiffeIDTemplate: 'spiffe://{{ .TrustDomain }}/ns/{{ .PodMeta.Namespace }}' }),
      );
      assert.equal(ok.status, 200);
      assert.deepEqual(JSON.parse(ok.text), { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: 'u-42', allowed: true } });
      const bad = await post(CLUSTER_SPIFFE_ID_WEBHOOK_PATH, review({ spiffeIDTemplate: 'spiffe://{{ .TrustDomain }}/{{ nope }}' }));
      const r = (JSON.parse(bad.text) as { response: { allowed: boolean; status: { code: number; message: string } } }).response;
      assert.equal(r.allowed, false);
      assert.equal(r.status.code, 403);
      assert.match(r.status.message, /^spec\.spiffeIDTemplate: template: function "nope" not defined at line 1 col 32/);
    });

    it('refuses what is not an AdmissionReview, other methods and other paths', async () => {
      assert.equal((await post(CLUSTER_SPIFFE_ID_WEBHOOK_PATH, '{not json')).status, 400);
      assert.equal((await post(CLUSTER_SPIFFE_ID_WEBHOOK_PATH, '{"kind":"Pod"}')).status, 400);
      assert.equal((await post(CLUSTER_SPIFFE_ID_WEBHOOK_PATH, '', 'GET')).status, 405);
      assert.equal((await post('/validate-other', review({}))).status, 404);
      assert.equal((await post(CLUSTER_SPIFFE_ID_WEBHOOK_PATH, 'x'.repeat(4 * 1024 * 1024))).status, 413);
    });

    it('mints a new certificate at half its lifetime and serves it without restarting', async () => {
      const before = await servedCertificate();
      const half = (webhook.certificate.expiresAt.getTime() - clock.nowMs()) / 2;
      clock.advance(half - 60_000);
      // The webhook acts on a clock step within a few event-loop turns: a renewal due too early would show well inside 200 ms.
      await holdsFor('not renewed before half its lifetime', async () => (await servedCertificate()).serialNumber === before.serialNumber, {
        forMs: 200,
        intervalMs: 50,
      });
      clock.advance(61_000);
      const after = await until(
        'a renewed webhook certificate',
        async () => {
          const c = await servedCertificate();
          return c.serialNumber !== before.serialNumber ? c : undefined;
        },
        20_000,
      );
      assert.match(new X509Certificate(after.raw).subjectAltName ?? '', /URI:spiffe:\/\/example\.org\/spire-controller-manager-webhook/);
    });

    it("as the registrar runs it: waits for its configuration, serves the DNS names of the configuration's Services, mints again when they change, keeps the caBundle", async () => {
      // An in-memory ValidatingWebhookConfiguration store (the real-apiserver test is test/k8s/registrar-cli-webhook.test.ts).
      const configs = new Map<string, { webhooks: Array<{ name: string; caBundle: string; service?: { name: string; namespace: string } }> }>();
      const store: WebhookConfigurationStore = {
        get: async (n): Promise<WebhookConfigurationView | undefined> => structuredClone(configs.get(n)),
        setCaBundle: async (n, i, w, ca) => {
          const hook = configs.get(n)?.webhooks[i];
          assert.equal(hook?.name, w);
          hook.caBundle = ca;
        },
      };
      const port = await freePort();
      const mgrClock = new FakeClock(Date.now());
      const running = startRegistrarWebhook({
        host: '127.0.0.1',
        port,
        trustDomain: 'example.org',
        serverApi: api,
        store,
        webhookConfigurationName: 'vwc',
        clock: mgrClock,
        log: silentLogger(),
      });
      try {
        // Without a configuration the manager only polls its store: serving would show within a few event-loop turns.
        await holdsFor('no configuration: not serving', () => running.server() === undefined, { forMs: 300 });
        await assert.rejects(servedCertificate(port), /ECONNREFUSED/);
        const svc = (name: string) => ({ name, namespace: 'ns1' });
        configs.set('vwc', {
          webhooks: [
            { name: 'a.kb.io', caBundle: '', service: svc('hook') },
            { name: 'b.kb.io', caBundle: 'stale', service: svc('hook') },
          ],
        });
        await mgrClock.advance(5000);
        await until('serving', async () => running.server(), 20_000);
        const first = new X509Certificate((await servedCertificate(port, 'hook.ns1.svc')).raw);
        assert.deepEqual(first.subjectAltName?.split(', ').sort(), ['DNS:hook.ns1.svc', 'URI:spiffe://example.org/spire-controller-manager-webhook']);
        const want = Buffer.from(roots).toString('base64');
        await until('caBundles written', async () => (configs.get('vwc')?.webhooks.every((w) => w.caBundle === want) ? true : undefined), 20_000);
        // The second webhook now calls another Service: one certificate for both names.
        const second = configs.get('vwc')?.webhooks[1];
        assert.ok(second !== undefined);
        second.service = svc('hook2');
        await mgrClock.advance(5000);
        const reissued = await until(
          'a certificate for both Services',
          async () => {
            // Until then the served certificate does not name hook2.ns1.svc: the handshake fails.
            const peer = await servedCertificate(port, 'hook2.ns1.svc').catch(() => undefined);
            return peer === undefined ? undefined : new X509Certificate(peer.raw);
          },
          20_000,
        );
        assert.deepEqual(reissued.subjectAltName?.split(', ').sort(), [
          'DNS:hook.ns1.svc',
          'DNS:hook2.ns1.svc',
          'URI:spiffe://example.org/spire-controller-manager-webhook',
        ]);
        assert.equal(running.server()?.port, port, 'the same listener');
      } finally {
        await running.stop();
      }
      await assert.rejects(servedCertificate(port), /ECONNREFUSED/);
    });
  });
}
