// `ztwim agent run` as a user runs it: `ztwim server run -config`, a join token and the bundle from
// the server CLI, `ztwim agent run -config agent.conf -joinToken T`, an entry, then
// `ztwim agent api fetch x509`; the agent keeps serving across a server restart, resumes from its
// data dir without a token, and stops with exit 0 on SIGTERM. A malformed agent.conf is refused
// naming the key and line.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePort } from '../interop/lib/spire-admin.ts';
import { makeTmpDir, type TmpDir } from '../interop/lib/tmp.ts';
import { entryCreateArgs } from './lib/entry-args.ts';
import { runZtwim, startZtwim as start, stopProc as stop, type CliRun, type Proc } from '../interop/lib/ztwim-cli.ts';
import { until } from '../interop/lib/wait.ts';

function ztwim(dir: TmpDir, ...args: string[]): Promise<CliRun> {
  return runZtwim(dir.path, args, { timeoutMs: 20_000 });
}

describe('ztwim agent run (CLI, against ztwim server run)', () => {
  let dir: TmpDir;
  let server: Proc | undefined;
  let agent: Proc | undefined;
  const uid = process.getuid?.() ?? 0;
  let serverSock: string;
  let agentSock: string;

  const startServer = async (): Promise<Proc> => {
    const p = start(dir, ['server', 'run', '-config', 'server.conf']);
    await until('server healthcheck', async () => {
      if (p.child.exitCode !== null) throw new Error(`server exited ${p.child.exitCode}:\n${p.out()}`);
      const h = await ztwim(dir, 'server', 'healthcheck', '-socketPath', serverSock);
      return h.status === 0 ? true : undefined;
    });
    return p;
  };
  /** `server entry create` of a workload entry for this process's uid under the agent. */
  const createEntry = async (parentId: string, spiffeId: string): Promise<void> => {
    const ent = await ztwim(dir, ...entryCreateArgs(serverSock, parentId, spiffeId, `unix:uid:${uid}`));
    assert.equal(ent.status, 0, ent.stderr);
  };
  const fetchIds = async (): Promise<string[] | undefined> => {
    const r = await ztwim(dir, 'agent', 'api', 'fetch', 'x509', '-socketPath', agentSock);
    if (r.status !== 0) return undefined;
    return [...r.stdout.matchAll(/SPIFFE ID:\t\t(\S+)/g)].map((m) => m[1] ?? '').sort();
  };

  before(async () => {
    dir = makeTmpDir('ztwim-agent-cli-');
    serverSock = join(dir.path, 'server.sock');
    agentSock = join(dir.path, 'agent', 'api.sock');
    const port = await freePort();
    dir.write(
      'server.conf',
      `server {
  bind_address = "127.0.0.1"
  bind_port = "${port}"
  socket_path = "${serverSock}"
  trust_domain = "example.org"
  data_dir = "${join(dir.path, 'server-data')}"
  log_level = "WARN"
}
plugins {
  DataStore "sql" {
    plugin_data {
      database_type = "sqlite3"
      connection_string = "${join(dir.path, 'server-data', 'datastore.sqlite3')}"
    }
  }
  KeyManager "disk" { plugin_data { keys_path = "${join(dir.path, 'server-data', 'keys.json')}" } }
  NodeAttestor "join_token" { plugin_data {} }
}
telemetry {
  Prometheus {
    host = "127.0.0.1"
    port = 0
  }
}
`,
    );
    dir.write(
      'agent.conf',
      `agent {
  data_dir = "./agent-data"
  log_level = "WARN"
  server_address = "127.0.0.1"
  server_port = "${port}"
  socket_path = "${agentSock}"
  trust_bundle_path = "./bootstrap.crt"
  trust_domain = "example.org"
  experimental { sync_interval = "500ms" }
}
plugins {
  NodeAttestor "join_token" { plugin_data {} }
  KeyManager "disk" { plugin_data { directory = "./agent-data" } }
  WorkloadAttestor "unix" { plugin_data {} }
}
`,
    );
    server = await startServer();
  });
  after(async () => {
    if (agent !== undefined) await stop(agent, 'SIGKILL');
    if (server !== undefined) await stop(server, 'SIGKILL');
    dir?.cleanup();
  });

  it('attests with a join token from the server CLI and serves an entry to ztwim agent api fetch', async () => {
    const tok = await ztwim(dir, 'server', 'token', 'generate', '-socketPath', serverSock);
    assert.equal(tok.status, 0, tok.stderr);
    const token = /Token: (\S+)/.exec(tok.stdout)?.[1];
    assert.ok(token, tok.stdout);
    const bundle = await ztwim(dir, 'server', 'bundle', 'show', '-socketPath', serverSock);
    assert.equal(bundle.status, 0, bundle.stderr);
    assert.match(bundle.stdout, /-----BEGIN CERTIFICATE-----/);
    dir.write('bootstrap.crt', bundle.stdout);

    const val = await ztwim(dir, 'agent', 'validate', '-config', 'agent.conf');
    assert.equal(val.status, 0, val.stderr);
    assert.match(val.stdout, /Configuration is valid/);

    const a = start(dir, ['agent', 'run', '-config', 'agent.conf', '-joinToken', token]);
    agent = a;
    await until('agent socket', async () => {
      if (a.child.exitCode !== null) throw new Error(`agent exited ${a.child.exitCode}:\n${a.out()}`);
      return existsSync(agentSock) ? true : undefined;
    });
    const h = await ztwim(dir, 'agent', 'healthcheck', '-socketPath', agentSock);
    assert.equal(h.status, 0, h.stdout + h.stderr);

    // Before any entry: no identity.
    const none = await ztwim(dir, 'agent', 'api', 'fetch', 'x509', '-socketPath', agentSock, '-timeout', '2s');
    assert.notEqual(none.status, 0);
    // as spire-agent api fetch prints it: the code by name (was `code = 7`)
    assert.match(none.stderr, /rpc error: code = PermissionDenied desc = no identity issued/, none.stderr);

    const agentId = `spiffe://example.org/spire/agent/join_token/${token}`;
    await createEntry(agentId, 'spiffe://example.org/cli/wl');
    assert.deepEqual(await until('svid', fetchIds), ['spiffe://example.org/cli/wl']);
    // The agent SVID on the server side: the agent is listed under its join-token id.
    const list = await ztwim(dir, 'server', 'agent', 'list', '-socketPath', serverSock);
    assert.ok(list.stdout.includes(agentId), list.stdout);
  });

  it('keeps serving while the server restarts, and picks up a new entry afterwards', async () => {
    assert.ok(server);
    const s = await stop(server);
    assert.equal(s.code, 0, server.out());
    assert.deepEqual(await fetchIds(), ['spiffe://example.org/cli/wl'], 'served from cache while the server is down');
    server = await startServer();
    const agentIdLine = (await ztwim(dir, 'server', 'agent', 'list', '-socketPath', serverSock)).stdout;
    const agentId = /SPIFFE ID\s*:\s*(\S+)/.exec(agentIdLine)?.[1];
    assert.ok(agentId, agentIdLine);
    await createEntry(agentId, 'spiffe://example.org/cli/wl2');
    await until('second svid', async () => {
      const ids = await fetchIds();
      return ids?.length === 2 ? ids : undefined;
    });
  });

  it('SIGTERM stops the agent promptly with exit 0; a restart resumes from the data dir without a token', async () => {
    assert.ok(agent);
    const r = await stop(agent);
    assert.equal(r.code, 0, agent.out());
    assert.ok(r.ms < 5000, `agent took ${r.ms} ms to stop`);
    // Only structured log lines; no raw stack trace from a crash.
    const raw = agent
      .out()
      .split('\n')
      .filter((l) => l.trim() !== '' && !l.startsWith('{'));
    assert.deepEqual(raw, [], agent.out());
    // Flags that repeat keys of the file override them (and do not make those keys "unknown").
    const again = start(dir, [
      'agent',
      'run',
      '-config',
      'agent.conf',
      '-serverAddress',
      '127.0.0.1',
      '-trustDomain',
      'example.org',
      '-logLevel',
      'ERROR',
      '-dataDir',
      './agent-data',
      '-socketPath',
      agentSock,
    ]);
    agent = again;
    const ids = await until('svids after resume', async () => {
      if (again.child.exitCode !== null) throw new Error(`agent exited ${again.child.exitCode}:\n${again.out()}`);
      const v = await fetchIds();
      return v?.length === 2 ? v : undefined;
    });
    assert.deepEqual(ids, ['spiffe://example.org/cli/wl', 'spiffe://example.org/cli/wl2']);
    const r2 = await stop(again, 'SIGINT');
    assert.equal(r2.code, 0, again.out());
  });

  it('a corrupted data dir and no join token: run exits non-zero naming the file, no stack trace', async () => {
    assert.ok(agent?.child.exitCode !== null, 'previous agent stopped');
    dir.write('agent-data/agent-data.json', '{"svid": ["garbage"');
    const r = await ztwim(dir, 'agent', 'run', '-config', 'agent.conf');
    assert.notEqual(r.status, 0, r.stdout);
    assert.ok(r.stderr.includes(`Error: agent data file ${join(dir.path, 'agent-data', 'agent-data.json')} is corrupted (`), r.stderr);
    assert.ok(!r.stderr.includes('    at '), r.stderr);
  });

  it('a malformed agent.conf: validate and run exit non-zero naming the key and line', async () => {
    dir.write(
      'bad.conf',
      `agent {
  server_address = "127.0.0.1"
  server_port = "not-a-port"
  trust_domain = "example.org"
  socket_path = "${join(dir.path, 'bad.sock')}"
  insecure_bootstrap = true
  no_such_key = 1
}
`,
    );
    for (const cmd of ['validate', 'run']) {
      const r = await ztwim(dir, 'agent', cmd, '-config', 'bad.conf');
      assert.notEqual(r.status, 0, `${cmd}: ${r.stdout}`);
      assert.match(r.stderr, /agent\.server_port \(line 3\)/, `${cmd}: ${r.stderr}`);
      assert.match(r.stderr, /agent\.no_such_key \(line 7\)/, `${cmd}: ${r.stderr}`);
      assert.ok(!r.stderr.includes('    at '), r.stderr);
    }
    const missing = await ztwim(dir, 'agent', 'run', '-config', 'nope.conf');
    assert.notEqual(missing.status, 0);
    assert.match(missing.stderr, /nope\.conf/);
  });
});
