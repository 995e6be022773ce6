/**
 * CLI start-up bench: how long a `ztwim` command takes from exec to exit, beside `node -e 0` and
 * SPIRE v1.13.0's own binaries, in one run.
 *
 *   node --conditions=ztwim-source --import tsx bench/cli.ts [--runs 30]
 *
 * Each row is a whole process (spawnSync, wall time from spawn to exit), run --runs times; the
 * rows take turns (round robin) so a burst of load from other processes on the machine hits every
 * row alike. `ztwim` is run as a user runs it: the command file packages/cli/bin/ztwim.js itself
 * (its shebang, `env -S node <flags>`, included), so the figures hold for the built tree
 * (`npm run build`). Rows:
 *   - `node -e 0`: Node's own start and exit, the floor of any Node CLI;
 *   - `ztwim server entry show`, `spire-server entry show` and `ztwim api fetch x509`,
 *     `spire-agent api fetch x509` against a socket path that does not exist (start-up, one
 *     failed dial, error text, exit 1);
 *   - `ztwim --help`;
 *   - `ztwim server entry create` against a running `ztwim server run` and `spire-server entry
 *     create` against a running `spire-server run` v1.13.0 (SQLite, each its own fresh data dir,
 *     a new entry per call), what a registration script pays per workload.
 * Prints one Markdown table and writes bench/results/cli.md. About a minute with --runs 30.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { findSpireBinary, freePort } from '../test/interop/lib/spire-admin.ts';
import { SPIRE_VERSION, ZTWIM_BIN, ztwimNodeFlags } from '../test/interop/lib/peers.ts';
import { makeTmpDir } from '../test/interop/lib/tmp.ts';
import { removeLeftoversOnExit, tmpDirs } from './lib/leftovers.ts';
import { startProc, waitReady } from '@ztwim/testkit/procs';
import { serverConf } from '../test/interop/lib/server-conf.ts';
import { resultsDir } from './lib/results-dir.ts';
import { num } from './lib/args.ts';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const TD = 'example.org';
const RUNS = num('runs', 30);
if (!Number.isInteger(RUNS) || RUNS < 3) {
  console.error('--runs must be an integer ≥ 3');
  process.exit(2);
}

const log = (msg: string): void => {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
};
const quantile = (xs: readonly number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)] ?? Number.NaN;
};

removeLeftoversOnExit();

if (spawnSync(ZTWIM_BIN, ['version']).status !== 0) {
  console.error('bench/cli.ts: the ztwim command does not run; run `npm run build`');
  process.exit(1);
}
const spireServer = findSpireBinary('spire-server');
const spireAgent = findSpireBinary('spire-agent');

interface Server {
  readonly socketPath: string;
  readonly stop: () => Promise<void>;
}

/** Starts a server from a SPIRE-style server.conf in a fresh temp dir; resolves once `healthcheck` passes. */
async function startServer(label: string, cmd: string, args: (conf: string) => string[], ztwim: boolean): Promise<Server> {
  const tmp = makeTmpDir(`ztwim-bench-cli-${label}-`);
  tmpDirs.add(tmp);
  const dataDir = join(tmp.path, 'data');
  mkdirSync(dataDir);
  const socketPath = join(tmp.path, 'api.sock');
  const conf = tmp.write(
    'server.conf',
    serverConf({
      port: await freePort(),
      socketPath,
      trustDomain: TD,
      dataDir,
      settings: { log_level: 'WARN', ca_key_type: 'ec-p256', ca_ttl: '24h', default_x509_svid_ttl: '1h' },
      keyManager: { disk: join(dataDir, 'keys.json') },
    }),
  );
  const proc = startProc(`${label} server`, cmd, args(conf), { cwd: tmp.path, outputFile: join(tmp.path, 'server.log') });
  const health = ztwim
    ? ([ZTWIM_BIN, ['server', 'healthcheck', '-socketPath', socketPath]] as const)
    : ([spireServer, ['healthcheck', '-socketPath', socketPath]] as const);
  await waitReady(`${label} healthy`, proc, () => existsSync(socketPath) && spawnSync(health[0], health[1], { stdio: 'ignore' }).status === 0, {
    intervalMs: 100,
  });
  return {
    socketPath,
    async stop() {
      await proc.stop();
      tmp.cleanup();
      tmpDirs.delete(tmp);
    },
  };
}

interface Row {
  readonly name: string;
  readonly cmd: string;
  /** Arguments of run i. */
  readonly args: (i: number) => string[];
  /** The exit status every run must have. */
  readonly status: number;
  readonly times: number[];
}

const missingDir = makeTmpDir('ztwim-bench-cli-missing-');
tmpDirs.add(missingDir);
const missing = missingDir.file('no-such.sock');
log('starting ztwim server and spire-server');
const ztwimServer = await startServer('ztwim', ZTWIM_BIN, (conf) => ['server', 'run', '-config', conf], true);
const spire = await startServer('spire', spireServer, (conf) => ['run', '-config', conf], false);

const create =
  (socketPath: string) =>
  (i: number): string[] => [
    'entry',
    'create',
    '-socketPath',
    socketPath,
    '-parentID',
    `spiffe://${TD}/host`,
    '-spiffeID',
    `spiffe://${TD}/workload-${i}`,
    '-selector',
    `unix:uid:${10_000 + i}`,
  ];
const rows: Row[] = [
  { name: '`node -e 0`', cmd: process.execPath, args: () => ['-e', '0'], status: 0, times: [] },
  { name: '`ztwim --help`', cmd: ZTWIM_BIN, args: () => ['--help'], status: 0, times: [] },
  {
    name: '`ztwim server entry show`, no server (missing socket)',
    cmd: ZTWIM_BIN,
    args: () => ['server', 'entry', 'show', '-socketPath', missing],
    status: 1,
    times: [],
  },
  {
    name: `\`spire-server entry show\` ${SPIRE_VERSION}, no server (missing socket)`,
    cmd: spireServer,
    args: () => ['entry', 'show', '-socketPath', missing],
    status: 1,
    times: [],
  },
  {
    name: '`ztwim api fetch x509`, no agent (missing socket)',
    cmd: ZTWIM_BIN,
    args: () => ['api', 'fetch', 'x509', '-socketPath', missing],
    status: 1,
    times: [],
  },
  {
    name: `\`spire-agent api fetch x509\` ${SPIRE_VERSION}, no agent (missing socket)`,
    cmd: spireAgent,
    args: () => ['api', 'fetch', 'x509', '-socketPath', missing],
    status: 1,
    times: [],
  },
  {
    name: '`ztwim server entry create` → running `ztwim server run`',
    cmd: ZTWIM_BIN,
    args: (i) => ['server', ...create(ztwimServer.socketPath)(i)],
    status: 0,
    times: [],
  },
  {
    name: `\`spire-server entry create\` → running \`spire-server run\` ${SPIRE_VERSION}`,
    cmd: spireServer,
    args: create(spire.socketPath),
    status: 0,
    times: [],
  },
];

/** The 1-minute load average at the start of each round: the machine is shared, so say how busy it was. */
const loads: number[] = [];
try {
  log(`${RUNS} rounds of ${rows.length} commands`);
  for (let i = 0; i < RUNS; i++) {
    loads.push(loadavg()[0] ?? 0);
    for (const row of rows) {
      const t0 = performance.now();
      const r = spawnSync(row.cmd, row.args(i), { encoding: 'utf8' });
      const ms = performance.now() - t0;
      if (r.status !== row.status) {
        throw new Error(`${row.name}: exit ${String(r.status ?? r.signal)}, expected ${row.status}\n${r.stdout}${r.stderr}`);
      }
      row.times.push(ms);
    }
  }
} finally {
  await ztwimServer.stop();
  await spire.stop();
}

const floor = quantile(rows[0]!.times, 0.5);
const fmt = (ms: number): string => `${ms.toFixed(0)} ms`;
const lines = [
  '| command | median | p90 | median ÷ `node -e 0` |',
  '|---|--:|--:|--:|',
  ...rows.map((r) => {
    const med = quantile(r.times, 0.5);
    return `| ${r.name} | ${fmt(med)} | ${fmt(quantile(r.times, 0.9))} | ${(med / floor).toFixed(2)}× |`;
  }),
];
const table = lines.join('\n');
console.log(table);

const cpu = cpus()[0]?.model.replace(/\s+/g, ' ').trim() ?? 'unknown CPU';
const md = `# CLI bench: a \`ztwim\` command from exec to exit

Run: \`node --conditions=ztwim-source --import tsx bench/cli.ts${RUNS === 30 ? '' : ` --runs ${RUNS}`}\`
(${new Date().toISOString()}, Node ${process.version}, ${cpus().length} × ${cpu}; ${RUNS} runs per row, rows round robin;
1-minute load average ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)} during the rounds)

Each row is a whole process, spawned and waited for (wall time, spawn to exit). \`ztwim\` is
\`packages/cli/bin/ztwim.js\` run as a user runs it (its shebang line, node flags: ${ztwimNodeFlags().length === 0 ? 'none' : `\`${ztwimNodeFlags().join(' ')}\``}), loading the bundle \`npm run build\` writes (packages/cli/dist/bundle). The missing-socket
rows time start-up, one failed dial and the error message; the \`entry create\` rows register one new
entry per call (parent \`spiffe://${TD}/host\`, a new SPIFFE ID and \`unix:uid\` selector each time)
with a running server of the same kind (SQLite datastore, disk KeyManager, log level WARN, fresh
data dir). SPIRE ${SPIRE_VERSION} binaries from scripts/setup-interop.sh. Target: a ztwim command
within 2× of \`node -e 0\`.

${table}
`;
const out = join(resultsDir(), 'cli.md');
writeFileSync(`${out}.tmp`, md);
renameSync(`${out}.tmp`, out);
log(`wrote ${out}`);
process.exit(0);
