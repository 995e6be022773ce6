// Our Workload API client, sources and mTLS helpers against a real SPIRE v1.13.0 agent.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import {
  WorkloadApiClient,
  X509Source,
  JwtSource,
  BundleSource,
  TrustDomain,
  parseAndValidateJwtSvid,
  verifyX509Svid,
  authorizeId,
  createMtlsServer,
  connectMtls,
  linearBackoff,
  WorkloadApiError,
} from '@ztwim/spiffe';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { eventually } from '@ztwim/testkit';
import { makeTmpDir } from './lib/tmp.ts';
import { cacheDir, SPIRE_VERSION } from './lib/peers.ts';
import { startSpireServer, type SpireServer } from './lib/spire-server.ts';
import { startSpireAgent, freePort, type SpireAgent } from './lib/spire-agent.ts';

const tmp = makeTmpDir('ztwim-sdk-spire-');
let server: SpireServer;
let agent: SpireAgent;
let address: string;
const TD = TrustDomain.parse('example.org');
const uid = process.getuid?.() ?? 0;

// Binaries: ~/.cache/ztwim/spire-v1.13.0/bin (setup-interop.sh) or $ZTWIM_SPIRE_*; else a dev
// build in /tmp/spirebuild/bin. peers.ts fails the test with a clear message when none exists.
for (const [env, name] of [
  ['ZTWIM_SPIRE_SERVER', 'spire-server'],
  ['ZTWIM_SPIRE_AGENT', 'spire-agent'],
] as const) {
  const cached = join(cacheDir(), `spire-${SPIRE_VERSION}`, 'bin', name);
  const dev = join('/tmp/spirebuild/bin', name);
  if (process.env[env] === undefined && !existsSync(cached) && existsSync(dev)) process.env[env] = dev;
}

before(async () => {
  const port = await freePort();
  server = await startSpireServer(tmp, { bindPort: port });
  agent = await startSpireAgent(tmp, server, {
    serverPort: port,
    beforeStart: (agentId) => {
      for (const path of ['/test', '/test-server']) {
        server.cli(['entry', 'create', '-parentID', agentId, '-spiffeID', `spiffe://example.org${path}`, '-selector', `unix:uid:${uid}`]);
      }
    },
  });
  address = `unix://${agent.socketPath}`;
});

after(async () => {
  await agent?.stop();
  await server?.stop();
  tmp.cleanup();
});

/** Polls until the agent has synced our entries (no fixed sleeps). */
async function firstSvids(client: WorkloadApiClient): Promise<void> {
  let lastError = '';
  const both = async (): Promise<boolean> => {
    try {
      return (await client.fetchX509Svids()).length >= 2;
    } catch (e) {
      lastError = (e as Error).message; // not synced yet: the agent answers with an error until then
      return false;
    }
  };
  await eventually('spire-agent to issue both SVIDs', both, { timeoutMs: 20_000, intervalMs: 100 }).catch((e: unknown) => {
    throw new Error(`${(e as Error).message}${lastError === '' ? '' : ` (last error: ${lastError})`}\n${agent.logs()}`, { cause: e });
  });
}

test('client fetches X509-SVIDs, bundles and JWT-SVIDs from spire-agent', async () => {
  const client = new WorkloadApiClient({ address });
  try {
    await firstSvids(client);
    const ctx = await client.fetchX509Context();
    const ids = ctx.svids.map((s) => s.id.toString()).sort();
    assert.deepEqual(ids, ['spiffe://example.org/test', 'spiffe://example.org/test-server']);
    for (const s of ctx.svids) verifyX509Svid(s.certificates, ctx.bundles);
    const xb = await client.fetchX509Bundles();
    assert.ok(xb.get(TD)?.equals(ctx.bundles.get(TD) ?? assert.fail('no own bundle')));

    const jwt = await client.fetchJwtSvid({ audience: 'ztwim-test', subject: 'spiffe://example.org/test' });
    assert.equal(jwt.id.toString(), 'spiffe://example.org/test');
    assert.deepEqual(jwt.audience, ['ztwim-test']);
    const viaApi = await client.validateJwtSvid(jwt.token, 'ztwim-test');
    assert.equal(viaApi.id.toString(), 'spiffe://example.org/test');
    const jb = await client.fetchJwtBundles();
    const local = await parseAndValidateJwtSvid(jwt.token, jb, ['ztwim-test']);
    assert.equal(local.id.toString(), 'spiffe://example.org/test');
    await assert.rejects(client.validateJwtSvid(jwt.token, 'other-aud'), (e: unknown) => (e as { grpcCode?: number }).grpcCode === 3);
    await assert.rejects(
      client.fetchJwtSvid({ audience: 'x', subject: 'spiffe://example.org/nope' }),
      (e: unknown) => (e as { grpcCode?: number }).grpcCode === 7,
    );
  } finally {
    client.close();
  }
});

test('spire-agent refuses a request without the security header; ours always sends it', async () => {
  const stripped = new WorkloadApiClient({
    address,
    interceptors: [
      (next) => async (req) => {
        req.header.delete('workload.spiffe.io');
        return next(req);
      },
    ],
  });
  try {
    await assert.rejects(stripped.fetchX509Svid(), (e: unknown) => {
      const err = e as { code?: string; grpcCode?: number; grpcMessage?: string };
      assert.equal(err.code, 'ERR_WORKLOAD_API');
      assert.equal(err.grpcCode, 3);
      assert.equal(err.grpcMessage, 'security header missing from request');
      return true;
    });
    // A watch stops on InvalidArgument instead of retrying.
    await assert.rejects(
      stripped.watchJwtBundles({ onUpdate: () => assert.fail('unexpected update') }),
      (e: unknown) => (e as { grpcCode?: number }).grpcCode === 3,
    );
  } finally {
    stripped.close();
  }
});

test('sources and mTLS between two Node endpoints with SPIRE-issued SVIDs', async () => {
  const pick = (id: string) => (svids: readonly { id: { toString(): string } }[]) =>
    (svids.find((s) => s.id.toString() === id) ?? assert.fail(`no ${id}`)) as never;
  const serverSrc = await X509Source.create({ address, picker: pick('spiffe://example.org/test-server') });
  const clientSrc = await X509Source.create({ address, picker: pick('spiffe://example.org/test') });
  const jwtSrc = await JwtSource.create({ address });
  const bundles = await BundleSource.create({ address });
  const srv = createMtlsServer(serverSrc, authorizeId('spiffe://example.org/test'), (sock) => sock.on('data', (d) => sock.end(`pong:${d.toString()}`)));
  srv.on('tlsClientError', () => {});
  try {
    assert.equal(serverSrc.getX509Svid().id.toString(), 'spiffe://example.org/test-server');
    const jwt = await jwtSrc.fetchJwtSvid({ audience: 'a1' });
    await parseAndValidateJwtSvid(jwt.token, jwtSrc, ['a1']);
    await parseAndValidateJwtSvid(jwt.token, bundles, ['a1']);

    srv.listen(0, '127.0.0.1');
    await once(srv, 'listening');
    const port = (srv.address() as { port: number }).port;
    const sock = await connectMtls(clientSrc, authorizeId('spiffe://example.org/test-server'), { port });
    sock.write('ping');
    const [reply] = (await once(sock, 'data')) as [Buffer];
    assert.equal(reply.toString(), 'pong:ping');
    sock.destroy();
    await assert.rejects(connectMtls(clientSrc, authorizeId('spiffe://example.org/someone-else'), { port }), /unexpected ID/);
  } finally {
    srv.close();
    await serverSrc.close();
    await clientSrc.close();
    await jwtSrc.close();
    await bundles.close();
  }
});

// Last in this file: it deletes the entries the tests above use.
test('Workload API §5.2.1: entries deleted on spire-server, the X509/JWT/Bundle sources stop serving until an identity is issued again', async () => {
  const client = new WorkloadApiClient({ address, backoff: () => linearBackoff(200, 1000) });
  await firstSvids(client);
  const denied: Record<string, WorkloadApiError[]> = { x509: [], jwt: [], bundle: [] };
  const x = await X509Source.create({ client, onError: (e) => denied.x509!.push(e) });
  const j = await JwtSource.create({ client, onError: (e) => denied.jwt!.push(e) });
  const b = await BundleSource.create({ client, onError: (e) => denied.bundle!.push(e) });
  const isDenied = (e: WorkloadApiError): boolean => e.grpcCode === 7 && e.grpcMessage === 'no identity issued';
  const withdrawn = (name: string) => (e: unknown) =>
    e instanceof WorkloadApiError && e.grpcCode === 7 && e.message === `${name}: identity withdrawn by the Workload API: no identity issued`;
  const entryIds = (path: string): string[] =>
    (JSON.parse(server.cli(['entry', 'show', '-spiffeID', `spiffe://example.org${path}`, '-output', 'json'])) as { entries: { id: string }[] }).entries.map(
      (e) => e.id,
    );
  try {
    assert.equal(x.getX509Svids().length, 2);
    for (const path of ['/test', '/test-server']) for (const id of entryIds(path)) server.cli(['entry', 'delete', '-entryID', id]);
    // spire-agent drops the identities at its next sync and answers all three streams with PermissionDenied.
    await eventually('PermissionDenied on every source', () => Object.values(denied).every((errs) => errs.some(isDenied)), {
      timeoutMs: 30_000,
      intervalMs: 100,
    });
    assert.throws(() => x.getX509Svid(), withdrawn('x509source'));
    assert.throws(() => x.getX509BundleForTrustDomain(TD), withdrawn('x509source'));
    assert.throws(() => j.getJwtBundleForTrustDomain(TD), withdrawn('jwtsource'));
    assert.throws(() => b.getX509BundleForTrustDomain(TD), withdrawn('bundlesource'));
    assert.throws(() => b.getJwtBundleForTrustDomain(TD), withdrawn('bundlesource'));
    await assert.rejects(j.fetchJwtSvid({ audience: 'a1' }), (e: unknown) => e instanceof WorkloadApiError && e.grpcCode === 7);
    // A new entry: the retried watches serve the identity and the bundles again.
    server.cli(['entry', 'create', '-parentID', agent.agentId, '-spiffeID', 'spiffe://example.org/again', '-selector', `unix:uid:${uid}`]);
    await eventually(
      'the sources to serve again',
      () => {
        try {
          b.getJwtBundleForTrustDomain(TD);
          b.getX509BundleForTrustDomain(TD);
          j.getJwtBundleForTrustDomain(TD);
          return x.getX509Svid().id.toString() === 'spiffe://example.org/again';
        } catch {
          return false;
        }
      },
      { timeoutMs: 30_000, intervalMs: 100 },
    );
    const jwt = await j.fetchJwtSvid({ audience: 'a1' });
    assert.equal((await parseAndValidateJwtSvid(jwt.token, b, ['a1'])).id.toString(), 'spiffe://example.org/again');
  } finally {
    await Promise.all([x.close(), j.close(), b.close()]);
    client.close();
  }
});
