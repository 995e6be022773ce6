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
