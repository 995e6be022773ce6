// One process per data dir, as a user meets it: a second `ztwim server run` on the data_dir of a
// running one (other socket and port) is refused naming the first one's PID and data_dir; so is
// `ztwim agent run` on a data_dir another process holds. The lock of a killed server is taken over.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ZTWIM_BIN } from '../interop/lib/peers.ts';
import { freePort } from '../interop/lib/net.ts';
import { runBinary, type CliResult } from '../interop/lib/spire-admin.ts';
import { until } from '../interop/lib/wait.ts';
import { serverConf as sharedServerConf } from '../interop/lib/server-conf.ts';
import { makeTmpDir, type TmpDir } from '../interop/lib/tmp.ts';

const ztwim = (dir: TmpDir, ...args: string[]): Promise<CliResult> => runBinary(ZTWIM_BIN, args, { cwd: dir.path });

async function serverConf(dir: TmpDir, name: string, dataDir: string): Promise<string> {
  return dir.write(
    `${name}.conf`,
    sharedServerConf({
      port: await freePort(),
      socketPath: join(dir.path, `${name}.sock`),
      trustDomain: 'example.org',
      dataDir,
      settings: { log_level: 'WARN' },
      trailer: 'telemetry {\n  disabled = true\n}\n',
    }),
  );
}

async function startServer(dir: TmpDir, conf: string, sock: string): Promise<ChildProcess> {
  const child = spawn(ZTWIM_BIN, ['server', 'run', '-config', conf], { cwd: dir.path, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  await until('server healthcheck', async () => {
    if (child.exitCode !== null) throw new Error(`server exited ${child.exitCode}: ${out}`);
    return (await ztwim(dir, 'server', 'healthcheck', '-socketPath', sock)).status === 0 ? true : undefined;
  });
  return child;
}

const stop = (c: ChildProcess, sig: NodeJS.Signals = 'SIGTERM'): Promise<void> =>
  c.exitCode !== null
    ? Promise.resolve()
    : new Promise((r) => {
        c.once('exit', () => r());
        c.kill(sig);
      });

describe('one server or agent per data dir', () => {
  let dir: TmpDir;
  let first: ChildProcess;
  let dataDir: string;
  before(async () => {
    dir = makeTmpDir('ztwim-lock-');
    dataDir = join(dir.path, 'data');
    first = await startServer(dir, await serverConf(dir, 'one', dataDir), join(dir.path, 'one.sock'));
  });
  after(async () => {
    if (first !== undefined) await stop(first);
    dir?.cleanup();
  });

  it('a second server run on the same data_dir is refused naming the first PID', async () => {
    assert.equal(readFileSync(join(dataDir, 'ztwim-server.lock'), 'utf8'), `${first.pid}\n`);
    const r = await ztwim(dir, 'server', 'run', '-config', await serverConf(dir, 'two', dataDir));
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(`data directory ${dataDir} is in use by process ${first.pid} .*data_dir`));
    assert.equal(first.exitCode, null);
  });

  it('an agent shares a data_dir with a server; a second agent on it is refused naming the holder PID', async () => {
    const conf = dir.write(
      'agent.conf',
      `agent {
  server_address = "127.0.0.1"
  server_port = "1"
  trust_domain = "example.org"
  data_dir = "${dataDir}"
  socket_path = "${join(dir.path, 'agent.sock')}"
  insecure_bootstrap = true
  join_token = "unused"
}
plugins {
  NodeAttestor "join_token" { plugin_data {} }
  KeyManager "memory" { plugin_data {} }
  WorkloadAttestor "unix" { plugin_data {} }
}
`,
    );
    // A server and an agent may share a data dir, as SPIRE's sample configs do (both ./.data):
    // the agent is not refused for the server's lock (it fails later, for its unreachable server).
    const shared = await ztwim(dir, 'agent', 'run', '-config', conf);
    assert.doesNotMatch(shared.stderr, /is in use by process/);
    // A running process holding the agent's own lock (as a first agent would) refuses a second.
    writeFileSync(join(dataDir, 'ztwim-agent.lock'), `${first.pid}\n`);
    try {
      const r = await ztwim(dir, 'agent', 'run', '-config', conf);
      assert.equal(r.status, 1, r.stdout + r.stderr);
      assert.match(r.stderr, new RegExp(`data directory ${dataDir} is in use by process ${first.pid} \\(lock file ${join(dataDir, 'ztwim-agent.lock')}\\)`));
    } finally {
      rmSync(join(dataDir, 'ztwim-agent.lock'), { force: true });
    }
  });

  it('the lock of a killed server is taken over by the next one', async () => {
    await stop(first, 'SIGKILL');
    assert.ok(existsSync(join(dataDir, 'ztwim-server.lock')), 'SIGKILL leaves the lock file behind');
    first = await startServer(dir, await serverConf(dir, 'three', dataDir), join(dir.path, 'three.sock'));
    assert.equal(readFileSync(join(dataDir, 'ztwim-server.lock'), 'utf8'), `${first.pid}\n`);
  });
});
