/**
 * Federation bundle endpoint benchmark: ztwim's next to SPIRE v1.13.0's, same load.
 *
 *   node --conditions=ztwim-source --import tsx bench/federation.ts [--duration 5] [--rounds 3] [--connections 32]
 *
 * Each server runs in its own process with an https_spiffe bundle endpoint on 127.0.0.1 (ztwim:
 * `ztwim server run` of the built CLI; SPIRE: the real spire-server). This process is the client:
 * `--connections` keep-alive HTTPS connections issue GET / back to back for `--duration` seconds
 * (TLS is not verified: the figures are the endpoint's, not the client's chain checks). The servers
 * take turns over `--rounds` rounds (order rotated) and each figure is the median over the rounds.
 * Prints a Markdown table and writes it to bench/results/federation.md.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { join } from 'node:path';
import { freePort } from '../test/interop/lib/net.ts';
import { ZTWIM_BIN } from '../test/interop/lib/peers.ts';
import { serverConf } from '../test/interop/lib/server-conf.ts';
import { startSpireServer } from '../test/interop/lib/spire-server.ts';
import { makeTmpDir } from '../test/interop/lib/tmp.ts';
import { resultsDir } from './lib/results-dir.ts';

const args = process.argv.slice(2);
const arg = (name: string, dflt: number): number => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const durationS = arg('duration', 5);
const rounds = arg('rounds', 3);
const connections = arg('connections', 32);

const endpointBlock = (port: number): string => `federation {\n    bundle_endpoint {\n      address = "127.0.0.1"\n      port = ${port}\n    }\n  }\n`;

function getOnce(agent: Agent, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', agent, rejectUnauthorized: false }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`status ${res.statusCode ?? 0}`))));
    });
    req.on('error', reject);
    req.end();
  });
}

async function waitReady(port: number): Promise<void> {
  const agent = new Agent({ keepAlive: false });
  for (let i = 0; i < 300; i++) {
    try {
      await getOnce(agent, port);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`bundle endpoint on ${port} never answered`);
}

/** Bounded load: `connections` loops for `durationS` seconds. */
async function load(port: number): Promise<{ rps: number; p99ms: number }> {
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const lat: number[] = [];
  const end = Date.now() + durationS * 1000;
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (Date.now() < end) {
        const t0 = process.hrtime.bigint();
        await getOnce(agent, port);
        lat.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
    }),
  );
  agent.destroy();
  lat.sort((a, b) => a - b);
  return { rps: lat.length / durationS, p99ms: lat[Math.min(lat.length - 1, Math.floor(lat.length * 0.99))] ?? 0 };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

async function main(): Promise<void> {
  const tmp = makeTmpDir('ztwim-bench-fed-');
  const stops: Array<() => Promise<void> | void> = [];
  try {
    const spirePort = await freePort();
    const spire = await startSpireServer(tmp, { trustDomain: 'spire.test', extraServerConfig: endpointBlock(spirePort) });
    stops.push(() => spire.stop());
    const ztPort = await freePort();
    const ztDir = join(tmp.path, 'ztwim');
    const conf = serverConf({
      port: await freePort(),
      socketPath: join(ztDir, 'api.sock'),
      trustDomain: 'ztwim.test',
      dataDir: join(ztDir, 'data'),
      extraServerConfig: endpointBlock(ztPort),
    });
    const confPath = tmp.write('ztwim-server.conf', conf);
    const child = spawn(process.execPath, [ZTWIM_BIN, 'server', 'run', '-config', confPath], { stdio: 'ignore' });
    stops.push(() => void child.kill('SIGTERM'));
    await Promise.all([waitReady(spirePort), waitReady(ztPort)]);
    const servers = [
      { name: 'SPIRE v1.13.0', port: spirePort },
      { name: 'ztwim', port: ztPort },
    ];
    const figures = new Map<string, { rps: number[]; p99: number[] }>(servers.map((s) => [s.name, { rps: [], p99: [] }]));
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? servers : [...servers].reverse();
      for (const s of order) {
        const f = await load(s.port);
        figures.get(s.name)?.rps.push(f.rps);
        figures.get(s.name)?.p99.push(f.p99ms);
      }
    }
    const rows = servers.map((s) => {
      const f = figures.get(s.name) ?? { rps: [], p99: [] };
      return `| ${s.name} | ${Math.round(median(f.rps)).toLocaleString('en-US')} | ${median(f.p99).toFixed(2)} |`;
    });
    const report = [
      `# Federation bundle endpoint (${new Date().toISOString().slice(0, 10)})`,
      '',
      `GET / over keep-alive HTTPS, ${connections} connections, ${durationS} s × ${rounds} rounds (median), https_spiffe, 2-core machine shared with other work.`,
      '',
      '| server | req/s | p99 ms |',
      '|---|--:|--:|',
      ...rows,
      '',
    ].join('\n');
    process.stdout.write(report);
    writeFileSync(join(resultsDir(), 'federation.md'), report);
  } finally {
    for (const s of stops.reverse()) await s();
    tmp.cleanup();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
