// `ztwim up` as a new user meets it, in a child process: the banner's commands work as printed
// with non-default sockets, SPIRE's getting-started entry (-parentID spiffe://example.org/host)
// is served at once, after `server agent evict` (up re-attests and carries on) and after a
// restart; an emptied datastore is named before the banner; a second `up` on the same data dir
// is refused naming the first one's PID; logs are JSON with one key per field off a terminal
// and logfmt text in one; `ztwim status` reports the running system and fails when none runs.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ZTWIM_BIN } from '../interop/lib/peers.ts';
import { makeTmpDir, type TmpDir } from '../interop/lib/tmp.ts';
import { freePort } from '../interop/lib/net.ts';
import { runBinary, type CliResult } from '../interop/lib/spire-admin.ts';
import { until } from '../interop/lib/wait.ts';

interface Up {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
}

const metricsPorts = { server: 0, agent: 0 };

function upArgs(dir: TmpDir, tag = ''): string[] {
  return [
    'up',
    '-dataDir',
    join(dir.path, 'state'),
    '-serverPort',
    '0',
    '-serverSocketPath',
    join(dir.path, `server${tag}.sock`),
    '-socketPath',
    join(dir.path, `agent${tag}.sock`),
    '-oidcPort',
    '0',
    '-metricsPort',
    String(metricsPorts.server),
    '-agentMetricsPort',
    String(metricsPorts.agent),
    '-logLevel',
    'info',
  ];
}

async function startUp(dir: TmpDir): Promise<Up> {
  const child = spawn(ZTWIM_BIN, upArgs(dir), { cwd: dir.path, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  await until('the banner', () => {
    if (child.exitCode !== null) throw new Error(`ztwim up exited ${child.exitCode}:\n${stdout}\n${stderr}`);
    return stdout.includes('Press Ctrl-C to stop.') ? true : undefined;
  });
  return { child, stdout: () => stdout, stderr: () => stderr };
}

async function stopUp(up: Up): Promise<number | null> {
  if (up.child.exitCode !== null) return up.child.exitCode;
  const exited = new Promise<number | null>((r) => up.child.once('exit', (code) => r(code)));
  up.child.kill('SIGINT');
  return exited;
}

const run = (dir: TmpDir, cmd: string, args: string[]): Promise<CliResult> => runBinary(cmd, args, { cwd: dir.path });
const ztwim = (dir: TmpDir, ...args: string[]): Promise<CliResult> => run(dir, ZTWIM_BIN, args);

/** The SPIFFE IDs `ztwim api fetch x509` prints for the caller. */
async function ids(dir: TmpDir): Promise<string[]> {
  const r = await ztwim(dir, 'api', 'fetch', 'x509', '-socketPath', join(dir.path, 'agent.sock'));
  return [...r.stdout.matchAll(/^SPIFFE ID:\s+(\S+)$/gm)].map((m) => m[1] as string).sort();
}

async function agentIds(dir: TmpDir): Promise<string[]> {
  const r = await ztwim(dir, 'server', 'agent', 'list', '-socketPath', join(dir.path, 'server.sock'));
  return [...r.stdout.matchAll(/^SPIFFE ID\s+:\s+(\S+)$/gm)].map((m) => m[1] as string);
}

const MYSERVICE = 'spiffe://example.org/myservice';

describe('ztwim up: SPIRE getting-started flow, eviction, restarts, one up per data dir', () => {
  let dir: TmpDir;
  let up: Up;
  let me: string;

  before(async () => {
    dir = makeTmpDir('ztwim-up-life-');
    metricsPorts.server = await freePort();
    metricsPorts.agent = await freePort();
    up = await startUp(dir);
    me = /your identity:\s+(\S+)/.exec(up.stdout())?.[1] ?? '';
  });
  after(async () => {
    if (up !== undefined) await stopUp(up);
    dir?.cleanup();
  });

  it("the banner's commands carry the socket flags and work as printed, SPIRE's entry create included", async () => {
    const lines = up
      .stdout()
      .split('\n')
      .filter((l) => l.startsWith('  npx ztwim '));
    const create = lines.find((l) => l.includes('entry create'));
    assert.equal(
      create,
      `  npx ztwim server entry create -socketPath ${join(dir.path, 'server.sock')} -parentID spiffe://example.org/host -spiffeID ${MYSERVICE} -selector unix:uid:$(id -u)`,
    );
    for (const l of lines.filter((x) => x.includes(' api ') || x.includes('entry show'))) assert.match(l, /-socketPath \//, l);
    for (const l of lines) {
      const r = await run(dir, '/bin/sh', ['-c', l.trim().replace(/^npx ztwim /, `${ZTWIM_BIN} `)]);
      assert.equal(r.status, 0, `${l}\n${r.stdout}${r.stderr}`);
    }
  });

  it('an entry parented to spiffe://example.org/host is served at once', async () => {
    assert.deepEqual(await until('myservice', async () => ((await ids(dir)).includes(MYSERVICE) ? ids(dir) : undefined), 10_000), [MYSERVICE, me].sort());
  });

  it('server agent evict: up re-attests its agent, says so in one line and keeps serving', async () => {
    const [old] = await agentIds(dir);
    assert.ok(old !== undefined);
    const ev = await ztwim(dir, 'server', 'agent', 'evict', '-socketPath', join(dir.path, 'server.sock'), '-spiffeID', old);
    assert.equal(ev.status, 0, ev.stderr);
    await until('the re-attestation line', () => (/re-attested/.test(up.stderr()) ? true : undefined));
    assert.equal(up.child.exitCode, null, `ztwim up stopped:\n${up.stderr()}`);
    const said = up
      .stderr()
      .split('\n')
      .filter((l) => /re-attested/.test(l));
    assert.equal(said.length, 1, said.join('\n'));
    assert.ok(said[0]?.includes(old), said[0]);
    const now = await agentIds(dir);
    assert.equal(now.length, 1);
    assert.notEqual(now[0], old);
    assert.deepEqual(
      await until('myservice after eviction', async () => ((await ids(dir)).includes(MYSERVICE) ? ids(dir) : undefined), 15_000),
      [MYSERVICE, me].sort(),
    );
    assert.doesNotMatch(up.stderr(), /Agent stopped|no longer attested"/);
  });

  it('serves server and agent metrics on their own ports, both named in the banner', async () => {
    for (const [what, port, metric] of [
      ['server', metricsPorts.server, 'ztwim_server_registration_entries'],
      ['agent', metricsPorts.agent, 'ztwim_agent_registration_entries'],
    ] as const) {
      const url = `http://127.0.0.1:${port}/metrics`;
      assert.match(up.stdout(), new RegExp(`${what} metrics: +${url.replace(/\./g, '\\.')}`), up.stdout());
      const body = await (await fetch(url)).text();
      assert.match(body, new RegExp(`^${metric} \\d+`, 'm'), `${what}: ${body.slice(0, 300)}`);
    }
  });

  it('logs off a terminal are JSON lines with one key per field', () => {
    const lines = up
      .stderr()
      .split('\n')
      .filter((l) => l !== '');
    assert.ok(lines.length > 0);
    assert.ok(
      lines.some((l) => l.includes('"subsystem"')),
      'server logs at info',
    );
    for (const l of lines) {
      assert.doesNotThrow(() => JSON.parse(l), l);
      const keys = [...l.matchAll(/"([a-z_]+)":/g)].map((m) => m[1]);
      assert.equal(new Set(keys).size, keys.length, `duplicate key in ${l}`);
    }
  });

  it('ztwim status reports the running system', async () => {
    const s = await ztwim(dir, 'status', '-dataDir', join(dir.path, 'state'));
    assert.equal(s.status, 0, s.stdout + s.stderr);
    const [agent] = await agentIds(dir);
    assert.match(s.stdout, new RegExp(`^ztwim up is running \\(pid ${up.child.pid}\\)`));
    for (const want of [
      `trust domain:`,
      `example.org`,
      join(dir.path, 'server.sock'),
      join(dir.path, 'agent.sock'),
      `agent ID:`,
      agent ?? '?',
      'X.509 CA expires:',
      `your identity:`,
      me,
    ]) {
      assert.ok(s.stdout.includes(want), `${want} missing in\n${s.stdout}`);
    }
    assert.match(s.stdout, /entries:\s+3\n/); // the user, myservice and the node alias (the evicted agent's alias is gone)
  });

  it('a second ztwim up on the same data dir (other ports and sockets) is refused naming the first PID', async () => {
    const r = await ztwim(dir, ...upArgs(dir, '-2'));
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(`data directory ${join(dir.path, 'state')} is in use by process ${up.child.pid} `));
    assert.match(r.stderr, /-dataDir/);
    assert.equal(up.child.exitCode, null);
  });

  it('after a restart the getting-started entry is still served', async () => {
    assert.equal(await stopUp(up), 0, up.stderr());
    const s = await ztwim(dir, 'status', '-dataDir', join(dir.path, 'state'));
    assert.equal(s.status, 1, s.stdout);
    assert.match(s.stderr, /ztwim is not running: no process holds /);
    up = await startUp(dir);
    assert.deepEqual(
      await until('myservice after restart', async () => ((await ids(dir)).includes(MYSERVICE) ? ids(dir) : undefined), 15_000),
      [MYSERVICE, me].sort(),
    );
  });

  it('a corrupted agent data file: up attests its agent afresh and the getting-started entry is still served', async () => {
    assert.equal(await stopUp(up), 0, up.stderr());
    assert.match(readFileSync(join(dir.path, 'state', 'agent', 'agent-data.json'), 'utf8'), /"svid"/);
    writeFileSync(join(dir.path, 'state', 'agent', 'agent-data.json'), '{"svid": [');
    up = await startUp(dir);
    assert.deepEqual(
      await until('myservice after a corrupted agent file', async () => ((await ids(dir)).includes(MYSERVICE) ? ids(dir) : undefined), 15_000),
      [MYSERVICE, me].sort(),
    );
    assert.equal(up.child.exitCode, null, up.stderr());
  });

  it('an emptied datastore is named before the banner, and up attests its agent again and carries on', async () => {
    assert.equal(await stopUp(up), 0, up.stderr());
    for (const f of ['datastore.sqlite3', 'datastore.sqlite3-wal', 'datastore.sqlite3-shm']) rmSync(join(dir.path, 'state', 'server', f), { force: true });
    up = await startUp(dir);
    const out = up.stdout();
    const empty = out.indexOf(`The datastore ${join(dir.path, 'state', 'server', 'datastore.sqlite3')} is empty`);
    assert.ok(empty >= 0 && empty < out.indexOf('ztwim is up'), out);
    assert.deepEqual(await until('the user identity', async () => ((await ids(dir)).includes(me) ? ids(dir) : undefined), 15_000), [me]);
    assert.equal(up.child.exitCode, null, up.stderr());
    assert.doesNotMatch(up.stderr(), /no longer attested|Agent stopped/);
  });
});

describe('ztwim up in a terminal', () => {
  it('logs logfmt text lines, not JSON (-logFormat json brings JSON back)', () => {
    const dir = makeTmpDir('ztwim-up-tty-');
    try {
      const cmd = (fmt: string): string =>
        `timeout -s INT 8 ${[ZTWIM_BIN, ...upArgs(dir), '-metricsPort', '0', '-agentMetricsPort', '0', ...(fmt === '' ? [] : ['-logFormat', fmt])].join(' ')}`;
      const text = spawnSync('script', ['-qec', cmd(''), '/dev/null'], { cwd: dir.path, encoding: 'utf8', timeout: 30_000 });
      assert.match(text.stdout, /ztwim is up/, text.stdout + text.stderr);
      assert.match(text.stdout, /^time=\S+ level=info msg="?[A-Z]/m, text.stdout);
      assert.doesNotMatch(text.stdout, /^\{"level"/m);
      const json = spawnSync('script', ['-qec', cmd('json'), '/dev/null'], { cwd: dir.path, encoding: 'utf8', timeout: 30_000 });
      assert.match(json.stdout, /^\{"level":"info"/m, json.stdout);
    } finally {
      dir.cleanup();
    }
  });
});
