// https_web federation between `ztwim server run` and a real SPIRE v1.13.0 server, each endpoint
// serving a certificate from a test CA that the other side trusts as its runtime allows: SPIRE
// (Go) through SSL_CERT_FILE, ztwim (Node) through NODE_EXTRA_CA_CERTS. SPIRE fetches ztwim's
// endpoint, ztwim's serving certificate file is replaced and served without a restart, and ztwim
// fetches SPIRE's endpoint. Then SPIRE fetches a ztwim endpoint whose certificate ztwim obtained
// from pebble (ACME, tls-alpn-01 on the endpoint's port), trusting pebble's roots.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { freePorts, startPebble, type Pebble } from '@ztwim/acme/testing';
import { SpiffeBundle, TrustDomain } from '@ztwim/spiffe';
import { holdsFor, issueServerCert, makeCa, type TestCa } from '@ztwim/testkit';
import { freePort } from './lib/net.ts';
import { spireServerBin, ZTWIM_BIN } from './lib/peers.ts';
import { serverConf, serverWorkspace, type ServerWorkspace } from './lib/server-conf.ts';
import { runBinary, supervise, type CliResult } from './lib/spire-admin.ts';
import { startSpireServer, type SpireServer } from './lib/spire-server.ts';
import { makeTmpDir, type TmpDir } from './lib/tmp.ts';
import { until } from './lib/wait.ts';

const hex = (ders: readonly Uint8Array[]): string[] => ders.map((d) => Buffer.from(d).toString('hex')).sort();

/** The SHA-256 fingerprint of the certificate served on 127.0.0.1:port (SNI localhost). */
function servedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false }, () => {
      const fp = s.getPeerX509Certificate()?.fingerprint256 ?? '';
      s.end();
      resolve(fp);
    });
    s.on('error', reject);
  });
}

interface ZtwimServerRun {
  readonly ws: ServerWorkspace;
  readonly proc: ReturnType<typeof supervise>;
}

/**
 * `ztwim server run` for a.test with a bundle endpoint on 127.0.0.1:port serving `profile`, the
 * test root trusted as a user would: NODE_EXTRA_CA_CERTS.
 */
async function startZtwimServerRun(prefix: string, port: number, profile: string, extraCaPath: string): Promise<ZtwimServerRun> {
  const ws = await serverWorkspace(prefix);
  const conf = serverConf({
    port: ws.port,
    socketPath: ws.socketPath,
    trustDomain: 'a.test',
    dataDir: ws.dataDir,
    keyManager: { disk: join(ws.dataDir, 'keys.json') },
    extraServerConfig: `  federation {\n    bundle_endpoint {\n      address = "127.0.0.1"\n      port = ${port}\n      refresh_hint = "1m"\n${profile}\n    }\n  }\n`,
  });
  const confFile = ws.dir.write('server.conf', conf);
  const proc = supervise(
    spawn(ZTWIM_BIN, ['server', 'run', '-config', confFile], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_EXTRA_CA_CERTS: extraCaPath } }),
  );
  await until(
    'ztwim server healthy',
    async () => {
      if (proc.exited() !== undefined) throw new Error(`ztwim server exited with ${String(proc.exited())}:\n${proc.logs()}`);
      return (await runBinary(spireServerBin(), ['healthcheck', '-socketPath', ws.socketPath])).status === 0 ? true : undefined;
    },
    60_000,
  );
  return { ws, proc };
}

/** SPIRE refreshes a.test from ztwim's endpoint, then lists the bundle ztwim shows (refresh hint 1m). */
async function assertSpireFetchesOurs(spire: SpireServer, zt: ZtwimServerRun): Promise<void> {
  const cli = (args: readonly string[], sock: string): Promise<CliResult> => runBinary(spireServerBin(), [...args, '-socketPath', sock]);
  const refreshed = await cli(['federation', 'refresh', '-id', 'a.test'], spire.socketPath);
  assert.equal(refreshed.status, 0, `${refreshed.stderr}\n${spire.logs()}\n${zt.proc.logs()}`);
  assert.equal(refreshed.stdout, 'Bundle refreshed\n');
  const listed = await cli(['bundle', 'list', '-id', 'spiffe://a.test', '-format', 'spiffe'], spire.socketPath);
  assert.equal(listed.status, 0, listed.stderr);
  const shown = await cli(['bundle', 'show', '-format', 'spiffe'], zt.ws.socketPath);
  assert.equal(shown.status, 0, shown.stderr);
  const got = SpiffeBundle.parse(TrustDomain.parse('a.test'), listed.stdout, { strict: true });
  const own = SpiffeBundle.parse(TrustDomain.parse('a.test'), shown.stdout, { strict: true });
  assert.deepEqual(hex(got.x509Authorities()), hex(own.x509Authorities()));
  assert.deepEqual([...got.jwtAuthorities().keys()].sort(), [...own.jwtAuthorities().keys()].sort());
  assert.equal(got.refreshHintSeconds, 60);
}

describe('https_web federation with a real SPIRE v1.13.0 server (test roots)', () => {
  let tmp: TmpDir;
  let ca: TestCa;
  let zt: ZtwimServerRun | undefined;
  let spire: SpireServer;
  let ztPort: number;
  let spirePort: number;
  let ztCert: string;
  let ztKey: string;
  const spireCli = (args: readonly string[]): Promise<CliResult> => runBinary(spireServerBin(), [...args, '-socketPath', spire.socketPath]);
  // spire-server's CLI speaks to ztwim's admin socket as well (same API).
  const ztCli = (args: readonly string[]): Promise<CliResult> => runBinary(spireServerBin(), [...args, '-socketPath', zt?.ws.socketPath ?? '']);

  before(async () => {
    tmp = makeTmpDir('ztwim-fed-web-');
    ca = makeCa(tmp.path, 'federation test ca');
    const first = issueServerCert(ca, 'ztwim-web-1', ['localhost'], ['127.0.0.1']);
    ztCert = join(tmp.path, 'ztwim-tls.crt');
    ztKey = join(tmp.path, 'ztwim-tls.key');
    copyFileSync(first.certPath, ztCert);
    copyFileSync(first.keyPath, ztKey);
    const spireWeb = issueServerCert(ca, 'spire-web', ['localhost'], ['127.0.0.1']);
    ztPort = await freePort();
    spirePort = await freePort();

    zt = await startZtwimServerRun(
      'ztwim-fed-web-server-',
      ztPort,
      `      profile "https_web" {
        serving_cert_file {
          cert_file_path = "${ztCert}"
          key_file_path = "${ztKey}"
          file_sync_interval = "1s"
        }
      }`,
      ca.certPath,
    );

    // An explicit port: SPIRE reads bind_port 0 as its default, 8081, which may be taken.
    spire = await startSpireServer(tmp, {
      bindPort: await freePort(),
      trustDomain: 'spire.test',
      env: { SSL_CERT_FILE: ca.certPath },
      extraServerConfig: `federation {
    bundle_endpoint {
      address = "127.0.0.1"
      port = ${spirePort}
      profile "https_web" {
        serving_cert_file {
          cert_file_path = "${spireWeb.certPath}"
          key_file_path = "${spireWeb.keyPath}"
          file_sync_interval = "1m"
        }
      }
    }
    federates_with "a.test" {
      bundle_endpoint_url = "https://localhost:${ztPort}"
      bundle_endpoint_profile "https_web" {}
    }
  }
`,
    });
  });
  after(async () => {
    await spire?.stop();
    await zt?.proc.stop();
    zt?.ws.dir.cleanup();
    tmp?.cleanup();
  });

  it("SPIRE's server fetches ztwim's https_web endpoint (no bootstrap bundle: Web PKI through SSL_CERT_FILE)", async () => {
    // SPIRE was never given a.test's bundle: what it lists came from our endpoint.
    await assertSpireFetchesOurs(spire, zt as ZtwimServerRun);
  });

  it('a replaced serving certificate file is served from the next handshake, and SPIRE still fetches', async () => {
    const fp1 = await servedFingerprint(ztPort);
    const second = issueServerCert(ca, 'ztwim-web-2', ['localhost'], ['127.0.0.1']);
    // A half-written rotation (the new key beside the old certificate) keeps the current pair.
    // The files are checked every second (file_sync_interval "1s"): 2.5 s spans two checks at least.
    copyFileSync(second.keyPath, ztKey);
    await holdsFor('the first certificate is still served', async () => (await servedFingerprint(ztPort)) === fp1, { forMs: 2500, intervalMs: 250 });
    copyFileSync(second.certPath, ztCert);
    const fp2 = await until(
      'the new certificate is served',
      async () => {
        const fp = await servedFingerprint(ztPort);
        return fp !== fp1 ? fp : undefined;
      },
      20_000,
    );
    assert.equal(fp2, new X509Certificate(second.certPem).fingerprint256);
    await assertSpireFetchesOurs(spire, zt as ZtwimServerRun);
  });

  it("ztwim fetches SPIRE's https_web endpoint, trusting the test root through NODE_EXTRA_CA_CERTS", async () => {
    const created = await ztCli([
      'federation',
      'create',
      '-trustDomain',
      'spire.test',
      '-bundleEndpointURL',
      `https://localhost:${spirePort}`,
      '-bundleEndpointProfile',
      'https_web',
    ]);
    assert.equal(created.status, 0, created.stderr);
    const refreshed = await ztCli(['federation', 'refresh', '-id', 'spire.test']);
    assert.equal(refreshed.status, 0, `${refreshed.stderr}\n${zt?.proc.logs() ?? ''}`);
    assert.equal(refreshed.stdout, 'Bundle refreshed\n');
    const shown = await spireCli(['bundle', 'show', '-format', 'spiffe']);
    const theirs = SpiffeBundle.parse(TrustDomain.parse('spire.test'), shown.stdout, { strict: true });
    const listed = await ztCli(['bundle', 'list', '-id', 'spiffe://spire.test', '-format', 'spiffe']);
    assert.equal(listed.status, 0, listed.stderr);
    const got = SpiffeBundle.parse(TrustDomain.parse('spire.test'), listed.stdout, { strict: true });
    assert.deepEqual(hex(got.x509Authorities()), hex(theirs.x509Authorities()));
    assert.deepEqual([...got.jwtAuthorities().keys()].sort(), [...theirs.jwtAuthorities().keys()].sort());
  });
});

describe("SPIRE v1.13.0 fetches ztwim's https_web endpoint whose certificate comes from ACME (pebble, tls-alpn-01)", () => {
  let tmp: TmpDir;
  let pebble: Pebble;
  let zt: ZtwimServerRun | undefined;
  let spire: SpireServer | undefined;
  let ztPort: number;

  before(async () => {
    tmp = makeTmpDir('ztwim-fed-acme-spire-');
    const ca = makeCa(tmp.path, 'pebble listener ca');
    const listener = issueServerCert(ca, 'pebble', ['localhost'], ['127.0.0.1']);
    [ztPort] = (await freePorts(1)) as [number];
    // Pebble validates tls-alpn-01 at localhost:<tlsPort>: ztwim's bundle endpoint port.
    pebble = await startPebble({
      dir: tmp.path,
      listenerCertPath: listener.certPath,
      listenerKeyPath: listener.keyPath,
      listenerCaPem: ca.certPem,
      tlsPort: ztPort,
    });
    zt = await startZtwimServerRun(
      'ztwim-fed-acme-server-',
      ztPort,
      `      profile "https_web" {
        acme {
          domain_name = "localhost"
          email = "ops@example.org"
          directory_url = "${pebble.directoryUrl}"
          tos_accepted = true
        }
      }`,
      ca.certPath,
    );
  });
  after(async () => {
    await spire?.stop();
    await zt?.proc.stop();
    await pebble?.stop();
    zt?.ws.dir.cleanup();
    tmp?.cleanup();
  });

  it('the endpoint gets its certificate from pebble on its own port; SPIRE trusting pebble (SSL_CERT_FILE) fetches the bundle', async () => {
    const issuers = tmp.write('pebble-issuers.pem', await pebble.issuerPem());
    const fp = await until(
      'the ACME certificate is served',
      async () => {
        try {
          const s = await servedFingerprint(ztPort);
          return s === '' ? undefined : s;
        } catch {
          return undefined;
        }
      },
      60_000,
    );
    assert.ok(fp !== '');
    assert.match(pebble.log(), /set VALID by completed challenge/);
    assert.match(pebble.log(), /Issued certificate serial/);
    // An explicit port: SPIRE reads bind_port 0 as its default, 8081, which may be taken.
    spire = await startSpireServer(tmp, {
      bindPort: await freePort(),
      trustDomain: 'spire.test',
      env: { SSL_CERT_FILE: issuers },
      extraServerConfig: `federation {
    federates_with "a.test" {
      bundle_endpoint_url = "https://localhost:${ztPort}"
      bundle_endpoint_profile "https_web" {}
    }
  }
`,
    });
    await assertSpireFetchesOurs(spire, zt as ZtwimServerRun);
    // The ACME account and certificate are cached where SPIRE keeps them: <data_dir>/bundle-acme.
    assert.ok(readdirSync(join(zt?.ws.dataDir ?? '', 'bundle-acme')).some((f) => f.endsWith('-cert.pem')));
  });
});
