// SPIFFE mTLS helpers (tlsClientOptions/tlsServerOptions via connectMtls/createMtlsServer) against
// OpenSSL's s_server / s_client, with SVIDs served by an in-process fake Workload API.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { X509Source, authorizeId, authorizeAny, createMtlsServer, connectMtls } from '@ztwim/spiffe';
import { requireTool } from './lib/peers.ts';
import { makeTmpDir } from './lib/tmp.ts';
import { freePort } from './lib/spire-agent.ts';
import { eventually } from '@ztwim/testkit';
import { FakeWorkloadApi, makeTestCa, type FakeSvid } from '@ztwim/testkit/workload-api';

const tmp = makeTmpDir('ztwim-sdk-openssl-');
after(() => tmp.cleanup());
const pem = (der: Uint8Array, label: string): string =>
  `-----BEGIN ${label}-----\n${Buffer.from(der)
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '')}\n-----END ${label}-----\n`;

function files(name: string, s: FakeSvid, bundle: Uint8Array): { cert: string; key: string; ca: string } {
  return {
    cert: tmp.write(`${name}-svid.pem`, s.certs.map((c) => pem(c, 'CERTIFICATE')).join('')),
    key: tmp.write(`${name}-key.pem`, pem(s.key, 'PRIVATE KEY')),
    ca: tmp.write(`${name}-bundle.pem`, pem(bundle, 'CERTIFICATE')),
  };
}

async function source(name: string, svid: FakeSvid): Promise<{ src: X509Source; fake: FakeWorkloadApi }> {
  const fake = new FakeWorkloadApi(join(tmp.path, `${name}.sock`), { x509Svids: [svid], federated: {}, x509Bundles: {}, jwtBundles: {} });
  await fake.start();
  return { src: await X509Source.create({ address: fake.address }), fake };
}

function run(args: string[], input?: string): { done: Promise<{ code: number | null; out: string }>; kill: () => void; out: () => string } {
  const child = spawn(requireTool('openssl'), args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  if (input !== undefined) child.stdin.write(input);
  const done = once(child, 'exit').then(([code]) => ({ code: code as number | null, out }));
  return { done, kill: () => child.kill('SIGKILL'), out: () => out };
}

test('Node mTLS client <-> openssl s_server, Node mTLS server <-> openssl s_client', async () => {
  const ca = await makeTestCa('example.org');
  const other = await makeTestCa('other.org');
  const serverSvid = await ca.issue('/server');
  const clientSvid = await ca.issue('/client');
  const stranger = await other.issue('/client');
  const sf = files('server', serverSvid, ca.root.der);
  const cf = files('client', clientSvid, ca.root.der);
  const xf = files('stranger', stranger, other.root.der);
  const client = await source('client', clientSvid);
  const server = await source('server', serverSvid);
  try {
    // Our client -> s_server requiring a client cert.
    const port = await freePort();
    const s = run([
      's_server',
      '-accept',
      `127.0.0.1:${port}`,
      '-naccept',
      '1',
      '-Verify',
      '1',
      '-verify_return_error',
      '-CAfile',
      sf.ca,
      '-cert',
      sf.cert,
      '-key',
      sf.key,
    ]);
    await eventually('s_server', () => s.out().includes('ACCEPT'), { intervalMs: 20 });
    const sock = await connectMtls(client.src, authorizeId('spiffe://example.org/server'), { port });
    sock.write('hello-openssl\n');
    await eventually('bytes at s_server', () => s.out().includes('hello-openssl'), { intervalMs: 20 });
    sock.destroy();
    s.kill();
    // Our client refuses s_server presenting another trust domain's SVID.
    const port2 = await freePort();
    const s2 = run(['s_server', '-accept', `127.0.0.1:${port2}`, '-naccept', '1', '-Verify', '1', '-CAfile', xf.ca, '-cert', xf.cert, '-key', xf.key]);
    await eventually('s_server 2', () => s2.out().includes('ACCEPT'), { intervalMs: 20 });
    await assert.rejects(connectMtls(client.src, authorizeAny(), { port: port2 }));
    s2.kill();

    // s_client -> our server.
    const srv = createMtlsServer(server.src, authorizeId('spiffe://example.org/client'), (t) => t.on('data', (d) => t.write(`pong:${d.toString().trim()}\n`)));
    srv.on('tlsClientError', () => {});
    srv.listen(0, '127.0.0.1');
    await once(srv, 'listening');
    const sport = (srv.address() as { port: number }).port;
    try {
      const c = run(
        ['s_client', '-connect', `127.0.0.1:${sport}`, '-verify_return_error', '-CAfile', cf.ca, '-cert', cf.cert, '-key', cf.key, '-quiet'],
        'ping\n',
      );
      await eventually('reply at s_client', () => c.out().includes('pong:ping'), { intervalMs: 20 });
      c.kill();
      // A client from another trust domain gets no reply.
      const bad = run(['s_client', '-connect', `127.0.0.1:${sport}`, '-CAfile', cf.ca, '-cert', xf.cert, '-key', xf.key, '-quiet'], 'ping\n');
      let ended: Awaited<typeof bad.done> | undefined;
      void bad.done.then((x) => (ended = x));
      const r = await eventually('s_client with a foreign SVID to be disconnected', () => ended, { timeoutMs: 5000 }).catch(() => ({
        code: null,
        out: bad.out(),
      }));
      bad.kill();
      assert.ok(!r.out.includes('pong'), r.out);
      assert.notEqual(r.code, null, `s_client with a foreign SVID should be disconnected: ${r.out}`);
    } finally {
      srv.close();
    }
  } finally {
    await client.src.close();
    await server.src.close();
    await client.fake.stop();
    await server.fake.stop();
  }
});
