// The sample configs shipped where SPIRE ships its own (conf/server/server.conf,
// conf/agent/agent.conf, conf/oidc-discovery-provider/oidc-discovery-provider.conf): each valid
// without a warning, read by `server`/`agent` `run` and `validate` with no -config as spire-server
// and spire-agent do, and SPIRE's getting-started sequence working on them with ztwim in place of
// the two binaries (only the sockets and the port moved by flags, so the test runs beside others).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { REPO_ROOT, ZTWIM_BIN as ZTWIM } from '../interop/lib/peers.ts';
import { freePort } from '../interop/lib/net.ts';
import { makeTmpDir } from '../interop/lib/tmp.ts';
import { runZtwim, type CliRun } from '../interop/lib/ztwim-cli.ts';
import { entryCreateArgs } from './lib/entry-args.ts';
import { until } from '../interop/lib/wait.ts';

const ztwim = (cwd: string, ...args: string[]): Promise<CliRun> => runZtwim(cwd, args);

describe("sample configs at SPIRE's paths", () => {
  const children: ChildProcess[] = [];
  const dir = makeTmpDir('ztwim-samples-');
  after(() => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    dir.cleanup();
  });

  for (const [cmd, file] of [
    ['server', 'conf/server/server.conf'],
    ['agent', 'conf/agent/agent.conf'],
  ] as const) {
    it(`ztwim ${cmd} validate with no -config reads ${file}: valid, no warnings`, async () => {
      assert.ok(existsSync(join(REPO_ROOT, file)), `${file} is shipped`);
      const r = await ztwim(REPO_ROOT, cmd, 'validate');
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, 'Configuration is valid.\n');
      assert.equal(r.stderr, '');
      const elsewhere = await ztwim(dir.path, cmd, 'validate');
      assert.notEqual(elsewhere.status, 0);
      assert.match(elsewhere.stderr, new RegExp(file.replace(/[./]/g, '\\$&')), 'the default path is the one named');
    });
  }

  it('ztwim oidc validate accepts conf/oidc-discovery-provider/oidc-discovery-provider.conf without warnings', async () => {
    const r = await ztwim(REPO_ROOT, 'oidc', 'validate', '-config', 'conf/oidc-discovery-provider/oidc-discovery-provider.conf');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'Configuration is valid.\n');
    assert.equal(r.stderr, '');
  });

  it("SPIRE's getting-started commands on the samples: server run, token generate, agent run -joinToken, entry create, api fetch", async () => {
    cpSync(join(REPO_ROOT, 'conf'), join(dir.path, 'conf'), { recursive: true });
    const port = String(await freePort());
    const serverSock = join(dir.path, 'server.sock');
    const agentSock = join(dir.path, 'agent.sock');
    const server = spawn(process.execPath, [ZTWIM, 'server', 'run', '-socketPath', serverSock, '-serverPort', port], {
      cwd: dir.path,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(server);
    let out = '';
    server.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    await until('server healthy', async () => {
      if (server.exitCode !== null) throw new Error(`server exited ${server.exitCode}: ${out}`);
      return (await ztwim(dir.path, 'server', 'healthcheck', '-socketPath', serverSock)).status === 0 ? true : undefined;
    });
    const tok = await ztwim(dir.path, 'server', 'token', 'generate', '-socketPath', serverSock, '-spiffeID', 'spiffe://example.org/myagent');
    assert.equal(tok.status, 0, tok.stderr);
    const token = /Token: (\S+)/.exec(tok.stdout)?.[1] ?? '';
    const agent = spawn(process.execPath, [ZTWIM, 'agent', 'run', '-joinToken', token, '-socketPath', agentSock, '-serverPort', port], {
      cwd: dir.path,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(agent);
    let agentOut = '';
    agent.stderr?.on('data', (d: Buffer) => (agentOut += d.toString()));
    const uid = process.getuid?.() ?? 0;
    const ent = await ztwim(dir.path, ...entryCreateArgs(serverSock, 'spiffe://example.org/myagent', 'spiffe://example.org/myservice', `unix:uid:${uid}`));
    assert.equal(ent.status, 0, ent.stderr);
    const fetched = await until('SVID for myservice', async () => {
      if (agent.exitCode !== null) throw new Error(`agent exited ${agent.exitCode}: ${agentOut}`);
      const r = await ztwim(dir.path, 'agent', 'api', 'fetch', 'x509', '-socketPath', agentSock);
      return r.status === 0 ? r.stdout : undefined;
    });
    assert.match(fetched, /SPIFFE ID:\t\tspiffe:\/\/example\.org\/myservice/);
    assert.ok(existsSync(join(dir.path, '.data', 'keys.json')), "the CA keys in SPIRE's keys.json");
    assert.ok(existsSync(join(dir.path, '.data', 'agent-data.json')), "server and agent share ./.data as in SPIRE's samples");
  });
});
