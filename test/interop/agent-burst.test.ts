// A node full of workloads starting together: 1,000 go-spiffe X.509 watchers and 200 JWT
// clients open their Workload API connections at the same instant against a ztwim agent process
// and, in the same run, against SPIRE v1.13.0's spire-agent (both attached to one real
// spire-server). No client may see an error, every watcher must get its SVID within 2 s (or, on
// a machine so loaded that spire-agent itself needs longer, no later than 1.5× spire-agent's
// slowest), and the ztwim agent's memory must come back near idle within 60 s of the burst.
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { goBuild, INTEROP_DIR, ZTWIM_BIN } from './lib/peers.ts';
import { agentConf } from './lib/server-conf.ts';
import { freePort } from './lib/spire-admin.ts';
import { startSpireServer, type SpireServer } from './lib/spire-server.ts';
import { startSpireAgent, type SpireAgent } from './lib/spire-agent.ts';
import { makeTmpDir, type TmpDir } from './lib/tmp.ts';

const WATCHERS = 1000;
const JWT_CLIENTS = 200;

interface BurstReport {
  watchers: number; watchersServed: number; firstSvidP50Ms: number; firstSvidMaxMs: number;
  watchErrors: number; jwtClients: number; jwtOk: number; jwtErrors: number; sampleErrors: string[];
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) / 1024;
}

async function until(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function run(bin: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(bin, args, { timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${bin} failed: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

describe('a burst of 1,000 X.509 watchers and 200 JWT clients against a ztwim agent', () => {
  let tmp: TmpDir;
  let server: SpireServer;
  let agent: ChildProcess | undefined;
  let agentLog = '';
  let socket: string;
  let burstBin: string;
  let spireAgent: SpireAgent;

  before(async () => {
    burstBin = goBuild(join(INTEROP_DIR, 'go'), './burst');
    tmp = makeTmpDir('ztwim-burst-');
    const port = await freePort();
    server = await startSpireServer(tmp, { bindPort: port, keyManager: 'disk' });
    const token = /Token:\s*(\S+)/.exec(server.cli(['token', 'generate', '-spiffeID', 'spiffe://example.org/burst-node']))?.[1];
    assert.ok(token !== undefined);
    server.cli(['entry', 'create', '-parentID', 'spiffe://example.org/burst-node', '-spiffeID', 'spiffe://example.org/burst',
      '-selector', `unix:uid:${process.getuid?.() ?? 0}`]);
    spireAgent = await startSpireAgent(tmp, server, {
      serverPort: port,
      beforeStart: (id) => server.cli(['entry', 'create', '-parentID', id, '-spiffeID', 'spiffe://example.org/burst', '-selector', `unix:uid:${process.getuid?.() ?? 0}`]),
    });
    const adir = join(tmp.path, 'agent');
    mkdirSync(adir, { recursive: true });
    writeFileSync(join(adir, 'bundle.pem'), server.cli(['bundle', 'show']));
    socket = join(adir, 'api.sock');
    writeFileSync(join(adir, 'agent.conf'), agentConf({
      serverPort: port, trustDomain: 'example.org', dataDir: join(adir, 'data'), socketPath: socket,
      joinToken: token, trustBundlePath: join(adir, 'bundle.pem'), keyManager: 'memory', logLevel: 'warn', syncInterval: null,
    }));
    agent = spawn(ZTWIM_BIN, ['agent', 'run', '-config', join(adir, 'agent.conf')], { cwd: adir, stdio: ['ignore', 'pipe', 'pipe'] });
    agent.stdout?.on('data', (d: Buffer) => { agentLog += d.toString(); });
    agent.stderr?.on('data', (d: Buffer) => { agentLog += d.toString(); });
    // Ready once one go-spiffe client gets its SVID.
    await until(async () => {
      try {
        const r = JSON.parse(await run(burstBin, ['-addr', `unix://${socket}`, '-watchers', '1', '-jwt', '0', '-hold', '2s'], 10_000)) as BurstReport;
        return r.watchersServed === 1;
      } catch { return false; }
    }, 60_000, `the agent serves an SVID (log: ${agentLog.slice(-2000)})`);
  });

  after(async () => {
    if (agent !== undefined && agent.exitCode === null) {
      agent.kill('SIGTERM');
      await new Promise((r) => agent?.once('exit', r));
    }
    await spireAgent?.stop();
    await server?.stop();
    tmp?.cleanup();
  });

  const burst = async (sock: string): Promise<BurstReport> => JSON.parse(await run(burstBin,
    ['-addr', `unix://${sock}`, '-watchers', String(WATCHERS), '-jwt', String(JWT_CLIENTS), '-hold', '10s'], 60_000)) as BurstReport;

  it('every watcher is served within 2 s (or as fast as spire-agent), no client sees an error, memory returns near idle', async () => {
    const pid = agent?.pid;
    assert.ok(pid !== undefined);
    // spire-agent first: its SVID must be ready (its own start-up sync).
    await until(async () => {
      try {
        const r = JSON.parse(await run(burstBin, ['-addr', `unix://${spireAgent.socketPath}`, '-watchers', '1', '-jwt', '0', '-hold', '2s'], 10_000)) as BurstReport;
        return r.watchersServed === 1;
      } catch { return false; }
    }, 60_000, 'spire-agent serves an SVID');
    const spire = await burst(spireAgent.socketPath);
    const idle = rssMiB(pid);
    const r = await burst(socket);
    const peak = rssMiB(pid);
    const summary = JSON.stringify({ ztwim: { ...r, idleRssMiB: Math.round(idle), afterBurstRssMiB: Math.round(peak) }, spire });
    assert.equal(r.watchErrors, 0, summary);
    assert.equal(r.jwtErrors, 0, summary);
    assert.equal(r.watchersServed, WATCHERS, summary);
    assert.ok(r.jwtOk > JWT_CLIENTS, summary);
    const bound = spire.firstSvidMaxMs <= 2000 ? 2000 : 1.5 * spire.firstSvidMaxMs;
    assert.ok(r.firstSvidMaxMs <= bound, `slowest watcher ${r.firstSvidMaxMs} ms, bound ${bound} ms: ${summary}`);
    // Memory back near idle (within 50 MiB or 1.5×) within 60 s after every client closed.
    await until(() => rssMiB(pid) <= Math.max(idle + 50, idle * 1.5), 60_000, `agent RSS back near idle ${idle.toFixed(0)} MiB (now ${rssMiB(pid).toFixed(0)} MiB): ${summary}`);
    console.log(`burst: ${summary}, settled RSS ${rssMiB(pid).toFixed(0)} MiB`);
  });
});
