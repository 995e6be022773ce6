import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isZtwimError } from '@ztwim/core';
import { FakeClock, opensslCert } from '@ztwim/testkit';
import { createKubeClient, SERVICE_ACCOUNT_DIR } from './client-node.ts';
import { kubeClientSource } from './kube-client.ts';

interface Seen {
  method: string;
  url: string;
  auth: string;
  body: string;
}

/** A stand-in apiserver: answers the three calls the attestors make, records what it got. */
function apiHandler(seen: Seen[]) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString();
    });
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', auth: req.headers.authorization ?? '', body });
      const json = (status: number, o: unknown): void => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(o));
      };
      if (req.url === '/apis/authentication.k8s.io/v1/tokenreviews' && req.method === 'POST') {
        const spec = (JSON.parse(body) as { spec: { token: string; audiences: string[] } }).spec;
        if (spec.token !== 'good')
          return json(201, { kind: 'TokenReview', apiVersion: 'authentication.k8s.io/v1', status: { authenticated: false, error: 'invalid bearer token' } });
        return json(201, {
          kind: 'TokenReview',
          apiVersion: 'authentication.k8s.io/v1',
          status: {
            authenticated: true,
            audiences: spec.audiences,
            user: {
              username: 'system:serviceaccount:ns1:agent',
              uid: 'sa-uid',
              groups: ['system:serviceaccounts'],
              extra: { 'authentication.kubernetes.io/pod-name': ['agent-0'] },
            },
          },
        });
      }
      if (req.url === '/api/v1/namespaces/ns1/pods/agent-0') {
        return json(200, {
          kind: 'Pod',
          apiVersion: 'v1',
          metadata: { name: 'agent-0', namespace: 'ns1', uid: 'pod-uid', labels: { app: 'a' } },
          spec: { nodeName: 'node-1', serviceAccountName: 'agent', containers: [] },
          status: { hostIP: '10.1.2.3' },
        });
      }
      if (req.url === '/api/v1/nodes/node-1')
        return json(200, { kind: 'Node', apiVersion: 'v1', metadata: { name: 'node-1', uid: 'node-uid', labels: { zone: 'z1' } } });
      if (req.url === '/api/v1/nodes/secret')
        return json(403, {
          kind: 'Status',
          apiVersion: 'v1',
          status: 'Failure',
          reason: 'Forbidden',
          code: 403,
          message: 'nodes "secret" is forbidden: User "x" cannot get resource "nodes"',
        });
      if (req.url === '/api/v1/nodes/stale')
        return json(401, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Unauthorized', code: 401, message: 'Unauthorized' });
      if (req.url === '/api/v1/nodes/flaky') return json(503, { kind: 'Status', status: 'Failure', code: 503, message: 'etcd unavailable' });
      return json(404, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', code: 404, message: `not found: ${req.url ?? ''}` });
    });
  };
}

function listen(s: Server): Promise<number> {
  return new Promise((r) => s.listen(0, '127.0.0.1', () => r((s.address() as AddressInfo).port)));
}

/** A kubeconfig for the plain-HTTP stand-in (the library refuses http:// unless TLS checks are off). */
function kubeconfig(server: string, extra = ''): string {
  return `apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: ${server}
    insecure-skip-tls-verify: true
${extra}users:
- name: u
  user:
    token: tok-123
contexts:
- name: c
  context: {cluster: test, user: u}
current-context: c
`;
}

describe('createKubeClient', () => {
  let dir: string;
  let http: Server;
  let port: number;
  const seen: Seen[] = [];
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ztwim-k8s-client-'));
    http = createHttpServer(apiHandler(seen));
    port = await listen(http);
  });
  after(() => {
    http.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const client = async (): Promise<Awaited<ReturnType<typeof createKubeClient>>> => {
    const path = join(dir, 'kubeconfig');
    writeFileSync(path, kubeconfig(`http://127.0.0.1:${port}`));
    return createKubeClient(kubeClientSource(path));
  };

  it('sends a TokenReview with the token and audiences, bearer-authenticated, and maps its status', async () => {
    const c = await client();
    assert.equal(c.description, `cluster "test" (http://127.0.0.1:${port})`);
    seen.length = 0;
    const st = await c.reviewToken('good', ['spire-server', 'other']);
    assert.equal(seen.length, 1);
    assert.equal(seen[0]?.auth, 'Bearer tok-123');
    assert.deepEqual((JSON.parse(seen[0]?.body ?? '{}') as { spec: unknown }).spec, { token: 'good', audiences: ['spire-server', 'other'] });
    assert.equal(st.authenticated, true);
    assert.equal(st.error, '');
    assert.deepEqual(st.audiences, ['spire-server', 'other']);
    assert.equal(st.user.username, 'system:serviceaccount:ns1:agent');
    assert.deepEqual(st.user.extra, { 'authentication.kubernetes.io/pod-name': ['agent-0'] });
    const bad = await c.reviewToken('bad', ['spire-server']);
    assert.equal(bad.authenticated, false);
    assert.equal(bad.error, 'invalid bearer token');
  });

  it('gets a pod and a node, over one kept-alive connection', async () => {
    const c = await client();
    let connections = 0;
    const count = (): void => {
      connections++;
    };
    http.on('connection', count);
    try {
      await c.getNode('node-1');
      await c.reviewToken('good', ['a']);
      await c.getNode('node-1');
    } finally {
      http.off('connection', count);
    }
    assert.equal(connections, 1, 'the library alone opens one connection per call');
    assert.deepEqual(await c.getPod('ns1', 'agent-0'), {
      namespace: 'ns1',
      name: 'agent-0',
      uid: 'pod-uid',
      nodeName: 'node-1',
      hostIp: '10.1.2.3',
      serviceAccountName: 'agent',
      labels: { app: 'a' },
    });
    assert.deepEqual(await c.getNode('node-1'), { name: 'node-1', uid: 'node-uid', labels: { zone: 'z1' } });
  });

  it('gives up on an apiserver that accepts but never answers after the request timeout (ERR_UNAVAILABLE)', async () => {
    const hang = createHttpServer(() => {
      /* never answers */
    });
    const hangPort = await listen(hang);
    const path = join(dir, 'kubeconfig-hang');
    writeFileSync(path, kubeconfig(`http://127.0.0.1:${hangPort}`));
    const clock = new FakeClock();
    try {
      const c = await createKubeClient(kubeClientSource(path), { clock, requestTimeoutMs: 30_000 });
      const call = c.getNode('node-1');
      let settled = false;
      call.then(
        () => {
          settled = true;
        },
        () => {
          settled = true;
        },
      );
      await clock.waitForTimers(1);
      clock.advance(29_999);
      await new Promise((r) => setImmediate(r));
      assert.equal(settled, false);
      clock.advance(1);
      await assert.rejects(call, (e) => isZtwimError(e, 'ERR_UNAVAILABLE') && /get node node-1: ETIMEDOUT: no answer in 30000 ms/.test(e.message));
    } finally {
      hang.closeAllConnections();
      hang.close();
    }
  });

  const refusals: Array<{ name: string; call: (c: Awaited<ReturnType<typeof createKubeClient>>) => Promise<unknown>; code: string; text: RegExp }> = [
    {
      name: 'missing pod',
      call: (c) => c.getPod('ns1', 'gone'),
      code: 'ERR_NOT_FOUND',
      text: /^k8s cluster "test" \(http:\/\/127\.0\.0\.1:\d+\): get pod ns1\/gone: 404 not found: \/api\/v1\/namespaces\/ns1\/pods\/gone$/,
    },
    { name: 'forbidden node', call: (c) => c.getNode('secret'), code: 'ERR_PERMISSION_DENIED', text: /get node secret: 403 nodes "secret" is forbidden/ },
    { name: 'rejected credentials', call: (c) => c.getNode('stale'), code: 'ERR_UNAUTHENTICATED', text: /get node stale: 401 Unauthorized$/ },
    { name: 'apiserver 503', call: (c) => c.getNode('flaky'), code: 'ERR_UNAVAILABLE', text: /get node flaky: 503 etcd unavailable/ },
  ];
  for (const r of refusals) {
    it(`maps ${r.name} to ${r.code}, naming the cluster and the call`, async () => {
      const c = await client();
      await assert.rejects(r.call(c), (e: unknown) => isZtwimError(e) && e.code === r.code && r.text.test(e.message));
    });
  }

  it('reports an unreachable apiserver as ERR_UNAVAILABLE naming the call', async () => {
    const s = createHttpServer();
    const p = await listen(s);
    await new Promise((r) => s.close(r));
    const path = join(dir, 'kubeconfig-down');
    writeFileSync(path, kubeconfig(`http://127.0.0.1:${p}`));
    const c = await createKubeClient({ kind: 'kubeconfig', path });
    await assert.rejects(
      c.reviewToken('good', ['a']),
      (e: unknown) => isZtwimError(e, 'ERR_UNAVAILABLE') && /create TokenReview: .*ECONNREFUSED/.test(e.message),
    );
  });

  it('names a missing kubeconfig file', async () => {
    const path = join(dir, 'nope');
    await assert.rejects(
      createKubeClient({ kind: 'kubeconfig', path }),
      (e: unknown) => isZtwimError(e, 'ERR_CONFIG') && e.message === `k8s: cannot load kubeconfig ${path}: no such file`,
    );
  });

  it('names a kubeconfig without a current cluster', async () => {
    const path = join(dir, 'empty');
    writeFileSync(path, 'apiVersion: v1\nkind: Config\nclusters: []\nusers: []\ncontexts: []\n');
    await assert.rejects(
      createKubeClient({ kind: 'kubeconfig', path }),
      (e: unknown) => isZtwimError(e, 'ERR_CONFIG') && /has no current cluster/.test(e.message),
    );
  });

  it('kubeconfig with a client certificate: TLS with that certificate and the CA, one connection', async () => {
    const ca = opensslCert({ dir, file: 'ca', subject: '/CN=test-ca' });
    const srv = opensslCert({ dir, file: 'srv', subject: '/CN=apiserver', extensions: ['subjectAltName=IP:127.0.0.1'], issuer: ca });
    const cli = opensslCert({ dir, file: 'cli', subject: '/CN=ztwim-server', issuer: ca });
    const tlsSeen: Seen[] = [];
    const peers: string[] = [];
    const https = createHttpsServer({ key: srv.keyPem, cert: srv.certPem, ca: ca.certPem, requestCert: true, rejectUnauthorized: true }, apiHandler(tlsSeen));
    https.on('secureConnection', (s: import('node:tls').TLSSocket) => peers.push(String(s.getPeerCertificate().subject?.CN)));
    const p = await listen(https);
    try {
      const path = join(dir, 'kubeconfig-cert');
      writeFileSync(
        path,
        `apiVersion: v1
kind: Config
clusters:
- name: tls
  cluster: {server: "https://127.0.0.1:${p}", certificate-authority: ${ca.certPath}}
users:
- name: u
  user: {client-certificate: ${cli.certPath}, client-key: ${cli.keyPath}}
contexts:
- name: c
  context: {cluster: tls, user: u}
current-context: c
`,
      );
      const c = await createKubeClient({ kind: 'kubeconfig', path });
      assert.equal((await c.getNode('node-1')).uid, 'node-uid');
      assert.equal((await c.reviewToken('good', ['a'])).authenticated, true);
      assert.deepEqual(
        tlsSeen.map((s) => s.auth),
        ['', ''],
        'no bearer token: the certificate authenticates',
      );
      assert.deepEqual(peers, ['ztwim-server'], 'one TLS connection, with the client certificate');
    } finally {
      https.close();
    }
  });

  it('in-cluster: refuses without KUBERNETES_SERVICE_HOST/PORT or the service-account files', async () => {
    await assert.rejects(
      createKubeClient({ kind: 'in-cluster', env: {} }),
      (e: unknown) => isZtwimError(e, 'ERR_CONFIG') && /KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT/.test(e.message),
    );
    const prefix = join(dir, 'no-sa');
    await assert.rejects(
      createKubeClient({ kind: 'in-cluster', pathPrefix: prefix, env: { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: '1' } }),
      (e: unknown) => isZtwimError(e, 'ERR_CONFIG') && e.message.includes(`${prefix}${SERVICE_ACCOUNT_DIR}/token does not exist`),
    );
  });

  it('in-cluster: TLS to KUBERNETES_SERVICE_HOST:PORT with the service-account CA and token', async () => {
    const prefix = join(dir, 'pod');
    const sa = `${prefix}${SERVICE_ACCOUNT_DIR}`;
    mkdirSync(sa, { recursive: true });
    // The apiserver's self-signed certificate is the service account's CA bundle.
    const tls = opensslCert({ dir, file: 'tls', subject: '/CN=apiserver', extensions: ['subjectAltName=IP:127.0.0.1'] });
    writeFileSync(join(sa, 'ca.crt'), tls.certPem);
    writeFileSync(join(sa, 'token'), 'sa-token-1');
    const tlsSeen: Seen[] = [];
    const https = createHttpsServer({ key: tls.keyPem, cert: tls.certPem }, apiHandler(tlsSeen));
    let connections = 0;
    https.on('secureConnection', () => connections++);
    const p = await listen(https);
    try {
      const c = await createKubeClient({
        kind: 'in-cluster',
        pathPrefix: prefix,
        env: { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(p) },
      });
      assert.equal(c.description, `cluster "inCluster" (https://127.0.0.1:${p})`);
      assert.equal((await c.getNode('node-1')).uid, 'node-uid');
      assert.equal((await c.getNode('node-1')).uid, 'node-uid');
      // (the library re-reads the token file every 60 s, as client-go does)
      assert.deepEqual(
        tlsSeen.map((s) => s.auth),
        ['Bearer sa-token-1', 'Bearer sa-token-1'],
      );
      assert.equal(connections, 1, 'one TLS connection for both calls');
      assert.equal(process.env.KUBERNETES_SERVICE_PORT === String(p), false, 'process.env is left as it was');
    } finally {
      https.close();
    }
  });
});
