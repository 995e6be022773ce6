// ztwim ↔ real SPIRE v1.13.0 federation, both ways: SPIRE's server fetches ztwim's bundle endpoint
// (https_spiffe) and ztwim fetches SPIRE's; the relationships on ztwim are made with SPIRE's own
// `spire-server federation` CLI against ztwim's TrustDomain API, whose answers match SPIRE's.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SpiffeBundle, TrustDomain } from '@ztwim/spiffe';
import { freePort } from './lib/net.ts';
import { spireServerBin } from './lib/peers.ts';
import { runBinary, type CliResult } from './lib/spire-admin.ts';
import { startSpireServer, type SpireServer } from './lib/spire-server.ts';
import { makeTmpDir, type TmpDir } from './lib/tmp.ts';
import { runZtwim } from './lib/ztwim-cli.ts';
import { startZtwimAdminServer, type ZtwimAdminServer } from './lib/ztwim-server.ts';

const hex = (ders: readonly Uint8Array[]): string[] => ders.map((d) => Buffer.from(d).toString('hex')).sort();

describe('federation with a real SPIRE v1.13.0 server', () => {
  let tmp: TmpDir;
  let zt: ZtwimAdminServer;
  let spire: SpireServer;
  let spirePort: number;
  // Async: SPIRE fetches from this process's endpoint while its CLI runs.
  const spireCli = (args: readonly string[]): Promise<CliResult> => runBinary(spireServerBin(), [...args, '-socketPath', spire.socketPath]);
  const ztCli = (args: readonly string[]): Promise<CliResult> => zt.spireCli([...args, '-socketPath', zt.socketPath]);

  before(async () => {
    tmp = makeTmpDir('ztwim-fed-spire-');
    zt = await startZtwimAdminServer({
      trustDomain: 'a.test',
      extraServerConfig: 'federation {\n  bundle_endpoint {\n    address = "127.0.0.1"\n    port = 0\n    refresh_hint = "1m"\n  }\n}\n',
    });
    spirePort = await freePort();
    spire = await startSpireServer(tmp, {
      trustDomain: 'spire.test',
      extraServerConfig: `federation {
    bundle_endpoint {
      address = "127.0.0.1"
      port = ${spirePort}
    }
    federates_with "a.test" {
      bundle_endpoint_url = "https://127.0.0.1:${zt.server.bundleEndpointPort}"
      bundle_endpoint_profile "https_spiffe" {
        endpoint_spiffe_id = "spiffe://a.test/spire/server"
      }
    }
  }
`,
    });
  });
  after(async () => {
    await spire?.stop();
    await zt?.stop();
    tmp?.cleanup();
  });

  it("SPIRE's server fetches ztwim's bundle endpoint (https_spiffe, bootstrapped with an X.509-only bundle)", async () => {
    const own = await zt.server.bundle();
    // The bootstrap bundle holds only the X.509 authorities: the JWT keys can only come from a fetch.
    const bootstrap = SpiffeBundle.fromParts(TrustDomain.parse('a.test'), { x509: own.x509Authorities.map((a) => a.asn1) }).marshal();
    const path = tmp.write('a-bootstrap.json', bootstrap);
    const set = await spireCli(['bundle', 'set', '-format', 'spiffe', '-id', 'spiffe://a.test', '-path', path]);
    assert.equal(set.status, 0, set.stderr);
    const refreshed = await spireCli(['federation', 'refresh', '-id', 'a.test']);
    assert.equal(refreshed.status, 0, `${refreshed.stderr}\n${spire.logs()}`);
    assert.equal(refreshed.stdout, 'Bundle refreshed\n');
    const listed = await spireCli(['bundle', 'list', '-id', 'spiffe://a.test', '-format', 'spiffe']);
    assert.equal(listed.status, 0, listed.stderr);
    const got = SpiffeBundle.parse(TrustDomain.parse('a.test'), listed.stdout, { strict: true });
    assert.deepEqual(hex(got.x509Authorities()), hex(own.x509Authorities.map((a) => a.asn1)));
    assert.deepEqual([...got.jwtAuthorities().keys()].sort(), own.jwtAuthorities.map((k) => k.keyId).sort());
    assert.ok(own.jwtAuthorities.length > 0);
    assert.equal(got.refreshHintSeconds, 60, `our endpoint's refresh hint reached SPIRE:\n${listed.stdout}`);
  });

  it("ztwim fetches SPIRE's bundle endpoint; relationships made with spire-server's own CLI", async () => {
    const shown = await spireCli(['bundle', 'show', '-format', 'spiffe']);
    assert.equal(shown.status, 0, shown.stderr);
    const spireBundle = SpiffeBundle.parse(TrustDomain.parse('spire.test'), shown.stdout, { strict: true });
    const x509Only = tmp.write(
      'spire-bootstrap.json',
      SpiffeBundle.fromParts(TrustDomain.parse('spire.test'), { x509: spireBundle.x509Authorities() }).marshal(),
    );
    const created = await ztCli([
      'federation',
      'create',
      '-trustDomain',
      'spire.test',
      '-bundleEndpointURL',
      `https://127.0.0.1:${spirePort}`,
      '-bundleEndpointProfile',
      'https_spiffe',
      '-endpointSpiffeID',
      'spiffe://spire.test/spire/server',
      '-trustDomainBundlePath',
      x509Only,
      '-trustDomainBundleFormat',
      'spiffe',
    ]);
    assert.equal(created.status, 0, created.stderr);
    assert.match(created.stdout, /^\nTrust domain              : spire\.test\n/);
    const refreshed = await ztCli(['federation', 'refresh', '-id', 'spire.test']);
    assert.equal(refreshed.status, 0, refreshed.stderr);
    assert.equal(refreshed.stdout, 'Bundle refreshed\n');
    const stored = await zt.server.dataStore.getBundle('spire.test');
    assert.ok(stored !== null);
    assert.deepEqual(hex(stored.x509Authorities.map((a) => a.asn1)), hex(spireBundle.x509Authorities()));
    assert.deepEqual(stored.jwtAuthorities.map((k) => k.keyId).sort(), [...spireBundle.jwtAuthorities().keys()].sort(), 'JWT keys came from the fetch');
    assert.equal(stored.spiffeSequence, spireBundle.sequenceNumber);
    const missing = await ztCli(['federation', 'refresh', '-id', 'none.test']);
    assert.equal(missing.status, 1);
    assert.equal(missing.stderr, 'Error: there is no federation relationship with trust domain "none.test"\n');
  });

  it('spire-server federation create/show/list/update/delete and ztwim server federation print the same', async () => {
    const bundlePath = tmp.write('web-bundle.json', '{"keys":[]}');
    const data = tmp.write(
      'rels.json',
      JSON.stringify({
        federationRelationships: [
          { trustDomain: 'd1.test', bundleEndpointURL: 'https://d1.test', bundleEndpointProfile: 'https_web' },
          {
            trustDomain: 'd2.test',
            bundleEndpointURL: 'https://d2.test',
            bundleEndpointProfile: 'https_spiffe',
            endpointSPIFFEID: 'spiffe://d2.test/s',
            trustDomainBundle: { keys: [] },
            trustDomainBundleFormat: 'spiffe',
          },
        ],
      }),
    );
    const scripts: string[][] = [
      ['federation', 'create', '-trustDomain', 'web.test', '-bundleEndpointURL', 'https://web.test/bundle', '-bundleEndpointProfile', 'https_web'],
      ['federation', 'create', '-trustDomain', 'web.test', '-bundleEndpointURL', 'https://web.test/bundle', '-bundleEndpointProfile', 'https_web'],
      ['federation', 'create', '-trustDomain', 'bad.test', '-bundleEndpointURL', 'http://x', '-bundleEndpointProfile', 'https_web'],
      ['federation', 'show', '-trustDomain', 'web.test'],
      ['federation', 'show', '-trustDomain', 'none.test'],
      [
        'federation',
        'update',
        '-trustDomain',
        'web.test',
        '-bundleEndpointURL',
        'https://web.test/other',
        '-bundleEndpointProfile',
        'https_spiffe',
        '-endpointSpiffeID',
        'spiffe://web.test/server',
        '-trustDomainBundlePath',
        bundlePath,
        '-trustDomainBundleFormat',
        'spiffe',
      ],
      ['federation', 'show', '-trustDomain', 'web.test'],
      ['federation', 'delete', '-id', 'web.test'],
      ['federation', 'delete', '-id', 'web.test'],
      ['federation', 'show', '-trustDomain', 'web.test'],
      ['federation', 'create', '-data', data],
      ['federation', 'create', '-data', data, '-trustDomain', 'x.test'],
      ['federation', 'show', '-trustDomain', 'd2.test', '-output', 'json'],
      ['federation', 'update', '-data', data],
      ['federation', 'delete', '-id', 'd1.test'],
      ['federation', 'delete', '-id', 'd2.test', '-output', 'json'],
      ['federation', 'create', '-trustDomain', 'e.test', '-bundleEndpointURL', 'https://e.test', '-bundleEndpointProfile', 'https_spiffe'],
      ['federation', 'create', '-trustDomain', 'e.test', '-bundleEndpointURL', 'https://e.test', '-bundleEndpointProfile', 'bogus'],
      ['federation', 'refresh'],
      ['federation', 'delete'],
      ['federation', 'show'],
    ];
    // The script leaves no relationship behind, so it runs again with ztwim's own CLI.
    const expected: CliResult[] = [];
    for (const args of scripts) {
      const theirs = await spireCli(args);
      expected.push(theirs);
      assert.deepEqual(await ztCli(args), theirs, `spire-server ${args.join(' ')} on ztwim`);
    }
    for (const [i, args] of scripts.entries()) {
      const ours = await runZtwim(tmp.path, ['server', ...args, '-socketPath', zt.socketPath]);
      assert.deepEqual(ours, expected[i], `ztwim server ${args.join(' ')}`);
    }
    const refreshed = await runZtwim(tmp.path, ['server', 'federation', 'refresh', '-id', 'spire.test', '-socketPath', zt.socketPath]);
    assert.deepEqual(refreshed, { status: 0, stdout: 'Bundle refreshed\n', stderr: '' });
    const list = await runZtwim(tmp.path, ['server', 'federation', 'list', '-socketPath', zt.socketPath]);
    assert.equal(list.stdout, (await ztCli(['federation', 'list'])).stdout);
    assert.match(list.stdout, /^Found 1 federation relationship\n\nTrust domain              : spire\.test\n/);
  });
});
