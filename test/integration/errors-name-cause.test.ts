// Errors a new user meets first, each naming its cause: which listener is in the way and who holds
// it, which flag or config key moves it, why a directory cannot be used, which flag (not which
// file line) is wrong, which config key names a missing bundle. And `validate` names the SPIRE keys
// ztwim accepts without implementing.
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePort } from '../interop/lib/net.ts';
import { makeTmpDir, type TmpDir } from '../interop/lib/tmp.ts';
import { runZtwim, type CliRun } from '../interop/lib/ztwim-cli.ts';

const ztwim = (cwd: string, args: string[], opts: { uid?: number; gid?: number } = {}): Promise<CliRun> => runZtwim(cwd, args, opts);

const listen = (server: Server, at: { port: number; host: string } | { path: string }): Promise<void> =>
  new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(at, () => resolve());
  });

function serverConf(o: { port: number; socketPath: string; dataDir: string; extra?: string; trailer?: string }): string {
  return `server {
  bind_address = "127.0.0.1"
  bind_port = "${o.port}"
  socket_path = "${o.socketPath}"
  trust_domain = "example.org"
  data_dir = "${o.dataDir}"
  log_level = "WARN"
${o.extra ?? ''}}
plugins {
  DataStore "sql" {
    plugin_data {
      database_type = "sqlite3"
      connection_string = "${join(o.dataDir, 'datastore.sqlite3')}"
    }
  }
  KeyManager "memory" { plugin_data {} }
  NodeAttestor "join_token" { plugin_data {} }
}
${o.trailer ?? ''}`;
}

describe('errors that name their cause', () => {
  let dir: TmpDir;
  const holders: Server[] = [];
  before(() => {
    dir = makeTmpDir('ztwim-errors-');
  });
  after(async () => {
    for (const h of holders) await new Promise((r) => h.close(r));
    dir?.cleanup();
  });

  it("agent API port in use: names the listener, the holder's PID, and bind_port / -serverPort", async () => {
    const port = await freePort();
    const holder = createServer();
    holders.push(holder);
    await listen(holder, { host: '127.0.0.1', port });
    dir.write('busy-port.conf', serverConf({ port, socketPath: join(dir.path, 'a.sock'), dataDir: join(dir.path, 'd1') }));
    const r = await ztwim(dir.path, ['server', 'run', '-config', 'busy-port.conf']);
    assert.notEqual(r.status, 0);
    assert.ok(r.stderr.includes(`server API for agents: cannot listen on 127.0.0.1:${port}: address already in use (held by pid ${process.pid}: `), r.stderr);
    assert.match(r.stderr, /move this listener with server\.bind_port \(and bind_address\) in the config or -serverPort/);
    assert.ok(!r.stderr.includes('    at '), r.stderr);
  });

  it('admin socket in use by a live server: names the PID that holds it and socket_path / -socketPath', async () => {
    const sock = join(dir.path, 'live.sock');
    const holder = createServer();
    holders.push(holder);
    await listen(holder, { path: sock });
    dir.write('busy-sock.conf', serverConf({ port: await freePort(), socketPath: sock, dataDir: join(dir.path, 'd2') }));
    const r = await ztwim(dir.path, ['server', 'run', '-config', 'busy-sock.conf']);
    assert.notEqual(r.status, 0);
    assert.ok(r.stderr.includes(`server admin API socket: socket ${sock} is in use by another server (held by pid ${process.pid}: `), r.stderr);
    assert.match(r.stderr, /move this listener with server\.socket_path in the config or -socketPath/);
  });

  it('a metrics port in use names telemetry.Prometheus.port', async () => {
    const port = await freePort();
    const holder = createServer();
    holders.push(holder);
    await listen(holder, { host: '127.0.0.1', port });
    const trailer = `telemetry {\n  Prometheus {\n    host = "127.0.0.1"\n    port = ${port}\n  }\n}\n`;
    dir.write('busy-metrics.conf', serverConf({ port: await freePort(), socketPath: join(dir.path, 'm.sock'), dataDir: join(dir.path, 'd3'), trailer }));
    const r = await ztwim(dir.path, ['server', 'run', '-config', 'busy-metrics.conf']);
    assert.notEqual(r.status, 0);
    assert.ok(
      r.stderr.includes(`Prometheus metrics listener: cannot listen on 127.0.0.1:${port}: address already in use (held by pid ${process.pid}`),
      r.stderr,
    );
    assert.match(r.stderr, /telemetry\.Prometheus\.port \(and host\) in the config/);
  });

  it('a socket directory of another Unix user: says whose it is and which flag moves the socket (was: EACCES mkdir)', async () => {
    // root made /…/spire-server/private (0700) as the first user would; the second user is nobody
    const shared = join(dir.path, 'shared');
    mkdirSync(join(shared, 'spire-server', 'private'), { recursive: true, mode: 0o700 });
    chmodSync(join(shared, 'spire-server'), 0o700);
    const mine = join(dir.path, 'nobody');
    mkdirSync(mine, { mode: 0o777 });
    chmodSync(mine, 0o777);
    chmodSync(dir.path, 0o755);
    chmodSync(shared, 0o755);
    const sock = join(shared, 'spire-server', 'private', 'api.sock');
    dir.write('nobody/server.conf', serverConf({ port: await freePort(), socketPath: sock, dataDir: join(mine, 'data') }));
    const r = await ztwim(mine, ['server', 'run', '-config', 'server.conf'], { uid: 65534, gid: 65534 });
    assert.notEqual(r.status, 0);
    assert.ok(
      r.stderr.includes(
        `server admin API socket: cannot use ${sock}: permission denied: ${join(shared, 'spire-server')} belongs to uid 0 (mode 0700) and this process runs as uid 65534`,
      ),
      r.stderr,
    );
    assert.match(r.stderr, /choose a path this user can write with server\.socket_path in the config or -socketPath/);
  });

  it('a bad -trustDomain flag is blamed, not the config file line it overrides', async () => {
    dir.write('td.conf', serverConf({ port: 1, socketPath: join(dir.path, 'td.sock'), dataDir: join(dir.path, 'd4') }));
    for (const cmd of ['validate', 'run']) {
      const r = await ztwim(dir.path, ['server', cmd, '-config', 'td.conf', '-trustDomain', 'bad td']);
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /flag -trustDomain "bad td": trustdomain: trust domain characters are limited/, r.stderr);
      assert.ok(!r.stderr.includes('(line'), r.stderr);
    }
  });

  it('a missing agent trust bundle names trust_bundle_path and how to fill it (was: raw ENOENT)', async () => {
    dir.write(
      'agent.conf',
      `agent {
  server_address = "127.0.0.1"
  server_port = "1"
  trust_domain = "example.org"
  trust_bundle_path = "./missing.crt"
  data_dir = "./agent-data"
  socket_path = "${join(dir.path, 'agent.sock')}"
}
plugins {
  NodeAttestor "join_token" { plugin_data {} }
  KeyManager "memory" { plugin_data {} }
  WorkloadAttestor "unix" { plugin_data {} }
}
`,
    );
    const r = await ztwim(dir.path, ['agent', 'run', '-config', 'agent.conf', '-joinToken', 'x']);
    assert.notEqual(r.status, 0);
    assert.ok(
      r.stderr.includes(`cannot read the bootstrap trust bundle ${join(dir.path, 'missing.crt')} (agent.trust_bundle_path or -trustBundle): no such file`),
      r.stderr,
    );
    assert.ok(!r.stderr.includes('ENOENT'), r.stderr);
  });

  it('validate names SPIRE keys ztwim accepts but does not implement, on stderr, and still accepts the file', async () => {
    const extra = '  audit_log_enabled = true\n  default_svid_ttl = "2h"\n  federation {\n    bundle_endpoint {\n      port = 8443\n    }\n  }\n';
    dir.write('fed.conf', serverConf({ port: 8081, socketPath: join(dir.path, 'f.sock'), dataDir: join(dir.path, 'd5'), extra }));
    const r = await ztwim(dir.path, ['server', 'validate', '-config', 'fed.conf']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /Configuration is valid/);
    assert.match(
      r.stderr,
      /^warning: server\.default_svid_ttl is deprecated; consider using default_x509_svid_ttl and default_jwt_svid_ttl instead \(fed\.conf line 9\)$/m,
    );
    assert.ok(!r.stderr.includes('federation'), `federation is implemented: ${r.stderr}`);
    assert.ok(!r.stderr.includes('audit_log_enabled'), 'audit_log_enabled is implemented');
  });
});
