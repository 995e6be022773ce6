// The console's settings as `ztwim server validate` and `ztwim console` read them: a `console { }`
// block's problems named by key and line, a flag's by flag, a non-loopback console without TLS
// refused with the reason, and `ztwim console -config` serving with the block's settings.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePort } from '../interop/lib/net.ts';
import { makeTmpDir, type TmpDir } from '../interop/lib/tmp.ts';
import { until } from '../interop/lib/wait.ts';
import { runZtwim, startZtwim, stopProc } from '../interop/lib/ztwim-cli.ts';

const serverBlock = (dir: TmpDir): string => `server {
  bind_address = "127.0.0.1"
  bind_port = "0"
  socket_path = "${join(dir.path, 'api.sock')}"
  trust_domain = "example.org"
  data_dir = "${join(dir.path, 'data')}"
}
plugins {
  DataStore "sql" {
    plugin_data {
      database_type = "sqlite3"
      connection_string = "${join(dir.path, 'data', 'datastore.sqlite3')}"
    }
  }
  KeyManager "memory" { plugin_data {} }
  NodeAttestor "join_token" { plugin_data {} }
}
`;

describe('console settings on the command line (server validate, console)', () => {
  let dir: TmpDir;
  before(() => {
    dir = makeTmpDir('ztwim-console-cli-');
  });
  after(() => dir?.cleanup());

  it('server validate accepts a console block, and names each wrong key with its line', async () => {
    dir.write(
      'good.conf',
      `${serverBlock(dir)}console {\n  bind_port = 0\n  oidc {\n    issuer = "https://idp.example.org"\n    client_id = "ztwim"\n  }\n}\n`,
    );
    const good = await runZtwim(dir.path, ['server', 'validate', '-config', 'good.conf']);
    assert.equal(good.status, 0, good.stderr);
    assert.match(good.stdout, /Configuration is valid/);

    dir.write('bad.conf', `${serverBlock(dir)}console {\n  bind_address = "0.0.0.0"\n  oidc {\n    issuer = "http://idp.example.org"\n  }\n}\n`);
    const bad = await runZtwim(dir.path, ['server', 'validate', '-config', 'bad.conf']);
    assert.notEqual(bad.status, 0);
    assert.match(
      bad.stderr,
      /bad\.conf: console\.bind_address \(line 19\): "0\.0\.0\.0" is not a loopback address, and without TLS the console would send login tokens/,
    );
    assert.match(bad.stderr, /console\.oidc\.issuer \(line 21\): "http:\/\/idp\.example\.org": the issuer must be https/);
    assert.match(bad.stderr, /console\.oidc\.client_id \(line 20\): is required/);
    assert.match(bad.stderr, /console\.oidc\.redirect_uri \(line 20\): is required when the console binds to "0\.0\.0\.0"/);
  });

  it('console refuses a non-loopback host without TLS and a bad OIDC flag, naming the flag', async () => {
    const r = await runZtwim(dir.path, ['console', '-host', '0.0.0.0', '-port', '0', '-oidcIssuer', 'ftp://idp']);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /flag -host "0\.0\.0\.0": "0\.0\.0\.0" is not a loopback address, and without TLS/);
    assert.match(r.stderr, /flag -oidcIssuer "ftp:\/\/idp": "ftp:\/\/idp": the issuer must be an https URL \(console\.oidc\.issuer\)/);
    assert.match(r.stderr, /flag -oidcClientId "": is required \(console\.oidc\.client_id\)/);
  });

  it('console -config serves with the block settings, its flags overriding them', async () => {
    const port = await freePort();
    dir.write('admin.token', 'admin-token-from-a-file-0123456789\n');
    dir.write(
      'console.conf',
      `server {\n  socket_path = "${join(dir.path, 'none.sock')}"\n}\nconsole {\n  bind_port = 1\n  admin_token_file = "admin.token"\n}\n`,
    );
    const p = startZtwim(dir, ['console', '-config', 'console.conf', '-port', String(port)]);
    try {
      await until('the console to serve', () => (p.out().includes('Press Ctrl-C') ? true : undefined), 60_000);
      assert.match(p.out(), new RegExp(`Console: http://127\\.0\\.0\\.1:${port}/ \\(log in with the admin token file\\)`));
      const login = await fetch(`http://127.0.0.1:${port}/api/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ token: 'admin-token-from-a-file-0123456789' }),
      });
      assert.equal(login.status, 200);
      const options = (await (await fetch(`http://127.0.0.1:${port}/api/login-options`)).json()) as unknown;
      assert.deepEqual(options, { token: true, oidc: false });
    } finally {
      await stopProc(p);
    }
  });
});
