// ResourceClient against a stand-in apiserver (node:http): request shapes (paths, queries,
// content types), error mapping, and the watch's failure modes a real apiserver rarely shows on
// demand (idle stream, cut mid-event, ERROR events).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isZtwimError } from '@ztwim/core';
import { FakeClock, eventually, holdsFor } from '@ztwim/testkit';
import { KubeApiError } from './api-errors.ts';
import { createResourceClient } from './client-node.ts';
import { RESOURCES, type ResourceRef } from './resource-ref.ts';
import type { ResourceClient } from './resource-client.ts';

interface Seen {
  method: string;
  url: string;
  contentType: string;
  body: string;
}

const ROUTES: ResourceRef = { apiVersion: 'route.openshift.io/v1', resource: 'routes', namespaced: true, kind: 'Route' };

describe('ResourceClient (stand-in apiserver)', () => {
  let dir: string;
  let server: Server;
  let handler: (req: IncomingMessage, res: ServerResponse, body: string) => void = () => undefined;
  const seen: Seen[] = [];
  let kubeconfig: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ztwim-k8s-rc-'));
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => {
        body += c.toString();
      });
      req.on('end', () => {
        seen.push({ method: req.method ?? '', url: req.url ?? '', contentType: req.headers['content-type'] ?? '', body });
        handler(req, res, body);
      });
    });
    const port = await new Promise<number>((r) => server.listen(0, '127.0.0.1', () => r((server.address() as AddressInfo).port)));
    kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(
      kubeconfig,
      `apiVersion: v1
kind: Config
clusters:
- name: t
  cluster: {server: "http://127.0.0.1:${port}", insecure-skip-tls-verify: true}
users:
- name: u
  user: {token: tok}
contexts:
- name: c
  context: {cluster: t, user: u}
current-context: c
`,
    );
  });
  after(() => {
    server.closeAllConnections();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const json = (res: ServerResponse, status: number, o: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(o));
  };
  const make = (clock?: FakeClock): Promise<ResourceClient> =>
    createResourceClient({ kind: 'kubeconfig', path: kubeconfig }, clock === undefined ? {} : { clock });

  it('addresses core and named groups, namespaced and cluster-scoped, with the right verbs, queries and content types', async () => {
    const c = await make();
    handler = (req, res, body) => json(res, 200, body === '' ? { metadata: { name: 'x' }, items: [] } : JSON.parse(body));
    seen.length = 0;
    await c.get(RESOURCES.nodes, 'n1');
    await c.list(RESOURCES.pods, { namespace: 'a', labelSelector: 'app=x', fieldSelector: 'spec.nodeName=n1', limit: 10, continue: 'tok' });
    await c.list(RESOURCES.pods);
    await c.create(RESOURCES.configMaps, { metadata: { name: 'cm', namespace: 'a' } }, { fieldManager: 'me', dryRun: true });
    await c.replace(RESOURCES.leases, { metadata: { name: 'l', namespace: 'a', resourceVersion: '7' } });
    await c.patch(ROUTES, 'r', { spec: {} }, 'merge', { namespace: 'b' });
    await c.patch(ROUTES, 'r', [{ op: 'add', path: '/x', value: 1 }], 'json', { namespace: 'b' });
    await c.patch(RESOURCES.pods, 'p', {}, 'strategic', { namespace: 'b' });
    await c.apply({ ...ROUTES, kind: 'Route' }, { metadata: { name: 'r', namespace: 'b' } }, { fieldManager: 'op', force: true });
    await c.patchStatus(ROUTES, 'r', { status: {} }, 'merge', { namespace: 'b' });
    await c.delete(RESOURCES.configMaps, 'cm', { namespace: 'a', propagationPolicy: 'Foreground', preconditions: { uid: 'u1', resourceVersion: '9' } });
    assert.deepEqual(
      seen.map((s) => `${s.method} ${s.url} ${s.contentType}`),
      [
        'GET /api/v1/nodes/n1 ',
        'GET /api/v1/namespaces/a/pods?labelSelector=app%3Dx&fieldSelector=spec.nodeName%3Dn1&limit=10&continue=tok ',
        'GET /api/v1/pods ',
        'POST /api/v1/namespaces/a/configmaps?fieldManager=me&dryRun=All application/json',
        'PUT /apis/coordination.k8s.io/v1/namespaces/a/leases/l application/json',
        'PATCH /apis/route.openshift.io/v1/namespaces/b/routes/r application/merge-patch+json',
        'PATCH /apis/route.openshift.io/v1/namespaces/b/routes/r application/json-patch+json',
        'PATCH /api/v1/namespaces/b/pods/p application/strategic-merge-patch+json',
        'PATCH /apis/route.openshift.io/v1/namespaces/b/routes/r?fieldManager=op&force=true application/apply-patch+yaml',
        'PATCH /apis/route.openshift.io/v1/namespaces/b/routes/r/status application/merge-patch+json',
        'DELETE /api/v1/namespaces/a/configmaps/cm application/json',
      ],
    );
    // apiVersion and kind filled in from the ref; delete options in the body.
    assert.deepEqual(JSON.parse(seen[3]!.body), { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cm', namespace: 'a' } });
    assert.deepEqual(JSON.parse(seen[10]!.body), {
      apiVersion: 'v1',
      kind: 'DeleteOptions',
      propagationPolicy: 'Foreground',
      preconditions: { uid: 'u1', resourceVersion: '9' },
    });
    c.transport.close();
  });

  it('maps Status reasons to codes: 409 AlreadyExists vs Conflict, 410 Expired, 422 with causes', async () => {
    const c = await make();
    const answers: Array<[number, object]> = [
      [409, { kind: 'Status', reason: 'AlreadyExists', code: 409, message: 'configmaps "x" already exists' }],
      [409, { kind: 'Status', reason: 'Conflict', code: 409, message: 'the object has been modified' }],
      [410, { kind: 'Status', reason: 'Expired', code: 410, message: 'too old resource version' }],
      [
        422,
        {
          kind: 'Status',
          reason: 'Invalid',
          code: 422,
          message: 'Widget "w" is invalid',
          details: { causes: [{ field: 'spec.size', message: 'must be >= 1' }] },
        },
      ],
      [500, { kind: 'Status', reason: 'InternalError', code: 500, message: 'etcd timeout' }],
    ];
    handler = (_q, res) => {
      const [s, b] = answers.shift()!;
      json(res, s, b);
    };
    const codes: string[] = [];
    for (let i = 0; i < 5; i++) {
      try {
        await c.get(RESOURCES.configMaps, 'x', 'a');
      } catch (e) {
        assert.ok(e instanceof KubeApiError);
        codes.push(`${e.code} ${e.httpStatus} ${e.reason} ${e.message.replace(/^.*: \d{3} /, '')}`);
      }
    }
    assert.deepEqual(codes, [
      'ERR_ALREADY_EXISTS 409 AlreadyExists configmaps "x" already exists',
      'ERR_CONFLICT 409 Conflict the object has been modified',
      'ERR_GONE 410 Expired too old resource version',
      'ERR_INVALID_ARGUMENT 422 Invalid Widget "w" is invalid (spec.size: must be >= 1)',
      'ERR_UNAVAILABLE 500 InternalError etcd timeout',
    ]);
    c.transport.close();
  });

  it('discovery: a group the server does not serve is false, a served one lists its resources (cached)', async () => {
    const c = await make();
    handler = (req, res) =>
      req.url === '/apis/route.openshift.io/v1'
        ? json(res, 200, {
            kind: 'APIResourceList',
            resources: [
              { name: 'routes', kind: 'Route', namespaced: true, verbs: ['get'] },
              { name: 'routes/status', kind: 'Route', namespaced: true, verbs: ['get'] },
            ],
          })
        : json(res, 404, { kind: 'Status', reason: 'NotFound', code: 404, message: 'the server could not find the requested resource' });
    seen.length = 0;
    assert.equal(await c.hasGroupVersion('security.openshift.io/v1'), false);
    assert.equal(await c.hasGroupVersion('route.openshift.io/v1'), true);
    assert.deepEqual(await c.resourceFor('route.openshift.io/v1', 'Route'), ROUTES);
    assert.equal(seen.length, 2, 'answers are cached');
    c.refreshDiscovery();
    await c.hasGroupVersion('route.openshift.io/v1');
    assert.equal(seen.length, 3);
    c.transport.close();
  });

  it('watch: events in order, ERROR 410 as ERR_GONE, a stream idle past its idle timeout or cut mid-event as ERR_UNAVAILABLE', async () => {
    const clock = new FakeClock();
    const c = await make(clock);
    let mode = 'events';
    handler = (req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      if (mode === 'events') {
        res.write(`${JSON.stringify({ type: 'ADDED', object: { metadata: { name: 'a', resourceVersion: '2' } } })}\n{"type":"MODI`);
        res.end(
          `FIED","object":{"metadata":{"name":"a","resourceVersion":"3"}}}\n${JSON.stringify({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '4' } } })}\n`,
        );
      } else if (mode === 'gone') {
        res.end(`${JSON.stringify({ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired', message: 'too old resource version: 1 (5)' } })}\n`);
      } else if (mode === 'cut') {
        res.write('{"type":"ADDED","object":{"meta');
        setImmediate(() => req.socket.destroy());
      } else {
        res.write(`${JSON.stringify({ type: 'ADDED', object: { metadata: { name: 'a', resourceVersion: '2' } } })}\n`); // then nothing
      }
    };
    seen.length = 0;
    const got: string[] = [];
    for await (const ev of c.watch(RESOURCES.pods, { namespace: 'a', resourceVersion: '1', allowWatchBookmarks: true, timeoutSeconds: 60 }))
      got.push(`${ev.type} ${ev.object.metadata.resourceVersion}`);
    assert.deepEqual(got, ['ADDED 2', 'MODIFIED 3', 'BOOKMARK 4']);
    assert.equal(seen[0]?.url, '/api/v1/namespaces/a/pods?watch=1&resourceVersion=1&allowWatchBookmarks=true&timeoutSeconds=60');

    mode = 'gone';
    await assert.rejects(
      async () => {
        for await (const ev of c.watch(RESOURCES.pods, { resourceVersion: '1' })) void ev;
      },
      (e) => isZtwimError(e, 'ERR_GONE') && /too old resource version/.test(e.message),
    );

    mode = 'cut';
    await assert.rejects(
      async () => {
        for await (const ev of c.watch(RESOURCES.pods, {})) void ev;
      },
      (e) => isZtwimError(e, 'ERR_UNAVAILABLE'),
    );

    mode = 'idle';
    const events: string[] = [];
    const watching = (async () => {
      for await (const ev of c.watch(RESOURCES.pods, { idleTimeoutMs: 5_000 })) events.push(ev.type);
    })();
    let settled = false;
    watching.then(
      () => {
        settled = true;
      },
      () => {
        settled = true;
      },
    );
    await eventually('the first watch event', () => events.length > 0, { timeoutMs: 1000 });
    assert.deepEqual(events, ['ADDED']);
    clock.advance(4_999);
    // The idle timer fires on the clock step itself: 20 ms of event-loop turns would show an early one.
    await holdsFor('still watching before the idle timeout', () => !settled, { forMs: 20 });
    clock.advance(1);
    await assert.rejects(watching, (e) => isZtwimError(e, 'ERR_UNAVAILABLE') && /no data for 5000 ms/.test(e.message));
    c.transport.close();
  });

  it('watch stops quietly when its signal aborts', async () => {
    const c = await make();
    handler = (_q, res) => {
      res.writeHead(200);
      res.write(`${JSON.stringify({ type: 'ADDED', object: { metadata: { name: 'a' } } })}\n`);
    };
    const stop = new AbortController();
    const got: string[] = [];
    for await (const ev of c.watch(RESOURCES.pods, { signal: stop.signal })) {
      got.push(ev.type);
      stop.abort();
    }
    assert.deepEqual(got, ['ADDED']);
    c.transport.close();
  });
});
