// The console's server page data (AdminApi.server) against a real spire-server v1.13.0: SPIRE's
// own APIs (bundle, debug info, counts, LocalAuthority key states) are read as from ztwim, and
// ztwim's own ServerInfo (version, plugins, health) is reported as missing, by name, instead of
// failing the page.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AdminApi } from '@ztwim/console';
import { startSpireServer, type SpireServer } from './lib/spire-server.ts';
import { makeTmpDir } from './lib/tmp.ts';

describe('console server page against spire-server', () => {
  const tmp = makeTmpDir('ztwim-console-spire-');
  let spire: SpireServer;
  let api: AdminApi;
  before(async () => {
    spire = await startSpireServer(tmp);
    api = new AdminApi(spire.socketPath);
  });
  after(async () => {
    api?.close();
    await spire?.stop();
    tmp.cleanup();
  });

  it("shows SPIRE's facts and key states, and names what spire-server does not serve", async () => {
    const view = await api.server();
    assert.equal(view.trustDomain, 'example.org');
    assert.equal(view.serverId, 'spiffe://example.org/spire/server');
    assert.ok(view.authorities.some((a) => a.kind === 'x509'));
    assert.deepEqual(
      view.localAuthorities
        .filter((a) => a.state === 'active')
        .map((a) => a.kind)
        .sort(),
      ['jwt', 'x509'],
      'spire-server tells its active keys through the LocalAuthority API',
    );
    assert.equal(view.about, undefined);
    assert.match(view.serverInfoError ?? '', /does not serve ztwim\.server\.v1\.ServerInfo/);
  });
});
