/**
 * Workload API throughput per added core: the ztwim agent and SPIRE's agent pinned to one core and
 * to two, in one run (issue #22, "Cores").
 *
 *   node --conditions=ztwim-source --import tsx bench/agent-cores.ts [--clients 16,64]
 *        [--kinds jwt-cached,x509,jwt-uncached] [--duration 5] [--rounds 3] [--entries 1000] [--source]
 *
 * Runs bench/agent.ts's fetch rows (`--fetch-only --no-mixed --signing-limit off`: the same
 * server.conf and agent.conf text for both, SPIRE's signing rate limit off on both servers, the
 * attestation limit on, 1,000 entries, go-spiffe load generator bench/go/agentload) twice:
 *   1 core   both agents under `taskset -c 0`; the bench, its servers and the load generator
 *            under `taskset -c 1` (they inherit the bench's affinity), so the agent has core 0
 *            to itself;
 *   2 cores  both agents under `taskset -c 0,1`, everything else unpinned (this machine has two
 *            cores: the servers and the load generator share them with the agent).
 * A row: median req/s of the rounds per setting, the ratio 2 cores ÷ 1 core per agent (the
 * scaling per added core), and the agent's CPU seconds per 1,000 calls. Writes
 * bench/results/agent-cores.md.
 */
import { spawn } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { flagValue, hasFlag, num } from './lib/args.ts';
import { writeResults } from './lib/results-dir.ts';

const CLIENTS = flagValue('clients') ?? '16,64';
const KINDS = flagValue('kinds') ?? 'jwt-cached,x509,jwt-uncached';
const DURATION = num('duration', 5);
const ROUNDS = num('rounds', 3);
const ENTRIES = num('entries', 1000);
const SOURCE = hasFlag('source');
const AGENT_BENCH = fileURLToPath(new URL('./agent.ts', import.meta.url));

/** One `[agent bench] round …` line of bench/agent.ts. */
interface Sample {
  agent: string;
  kind: string;
  clients: number;
  rps: number;
  p99Ms: number;
  errors: number;
  agentCpu: number;
  load: number;
}

const LINE =
  /^\[agent bench\] round \d+ signing-limit \w+ (.+?): ([\w-]+) ×(\d+): (\d+)\/s p50 [\d.]+ p99 ([\d.]+) ms, errors (\d+); cpu agent ([\d.]+) server [\d.]+ loadgen [\d.]+; load average ([\d.]+)$/;

export function parseSamples(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    const m = LINE.exec(line.trim());
    if (m === null) continue;
    out.push({
      agent: m[1] as string,
      kind: m[2] as string,
      clients: Number(m[3]),
      rps: Number(m[4]),
      p99Ms: Number(m[5]),
      errors: Number(m[6]),
      agentCpu: Number(m[7]),
      load: Number(m[8]),
    });
  }
  return out;
}

interface Setting {
  label: string;
  /** taskset CPU list for the bench process itself (inherited by servers and load generator), or none. */
  benchCpus: string | undefined;
  agentCpus: string;
}
const SETTINGS: Setting[] = [
  { label: '1 core', benchCpus: '1', agentCpus: '0' },
  { label: '2 cores', benchCpus: undefined, agentCpus: '0,1' },
];

function runAgentBench(s: Setting): Promise<Sample[]> {
  const benchArgv = [
    ...process.execArgv,
    AGENT_BENCH,
    '--fetch-only',
    '--no-mixed',
    '--signing-limit',
    'off',
    '--clients',
    CLIENTS,
    '--kinds',
    KINDS,
    '--duration',
    String(DURATION),
    '--rounds',
    String(ROUNDS),
    '--entries',
    String(ENTRIES),
    '--agent-cpus',
    s.agentCpus,
    ...(SOURCE ? ['--source'] : []),
  ];
  const [cmd, argv] = s.benchCpus === undefined ? [process.execPath, benchArgv] : ['taskset', ['-c', s.benchCpus, process.execPath, ...benchArgv]];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { stdio: ['ignore', 'inherit', 'pipe'] });
    let err = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => {
      err += d;
      process.stderr.write(d);
    });
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code !== 0) reject(new Error(`bench/agent.ts (${s.label}) exited ${String(code)}:\n${err.slice(-3000)}`));
      else resolve(parseSamples(err));
    });
  });
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};

interface Cell {
  rps: number;
  cpuPer1k: number;
  errors: number;
  loadMin: number;
  loadMax: number;
}

function cell(samples: Sample[], agent: string, kind: string, clients: number): Cell | undefined {
  const xs = samples.filter((x) => x.agent === agent && x.kind === kind && x.clients === clients);
  if (xs.length === 0) return undefined;
  return {
    rps: median(xs.map((x) => x.rps)),
    // agentCpu is in cores over the measured window: seconds per 1,000 calls = cores × 1,000 / rps.
    cpuPer1k: median(xs.map((x) => (x.agentCpu * 1000) / Math.max(1, x.rps))),
    errors: xs.reduce((n, x) => n + x.errors, 0),
    loadMin: Math.min(...xs.map((x) => x.load)),
    loadMax: Math.max(...xs.map((x) => x.load)),
  };
}

async function main(): Promise<void> {
  const t0 = Date.now();
  const bySetting = new Map<string, Sample[]>();
  for (const s of SETTINGS) {
    console.error(
      `[agent-cores] ${s.label}: agents on CPU ${s.agentCpus}${s.benchCpus === undefined ? '' : `, servers and load generator on CPU ${s.benchCpus}`}`,
    );
    bySetting.set(s.label, await runAgentBench(s));
  }
  const one = bySetting.get('1 core') ?? [];
  const two = bySetting.get('2 cores') ?? [];
  const agents = [...new Set(one.map((x) => x.agent))];
  const fmt = (c: Cell | undefined): string =>
    c === undefined ? '—' : `${Math.round(c.rps).toLocaleString('en-US')}/s (${c.cpuPer1k.toFixed(3)} s)${c.errors > 0 ? `, ${c.errors} errors` : ''}`;
  const rows: string[] = [];
  for (const kind of KINDS.split(',')) {
    for (const clients of CLIENTS.split(',').map(Number)) {
      for (const agent of agents) {
        const a = cell(one, agent, kind, clients);
        const b = cell(two, agent, kind, clients);
        const scale = a !== undefined && b !== undefined ? `${(b.rps / a.rps).toFixed(2)}×` : '—';
        const load = [a, b].filter((c): c is Cell => c !== undefined);
        rows.push(
          `| ${kind} | ${clients} | ${agent} | ${fmt(a)} | ${fmt(b)} | ${scale} | ${Math.min(...load.map((c) => c.loadMin)).toFixed(1)}–${Math.max(...load.map((c) => c.loadMax)).toFixed(1)} |`,
        );
      }
    }
  }
  const md = [
    '# Workload API throughput per added core: ztwim agent vs SPIRE agent',
    '',
    `${new Date().toISOString()} · Node ${process.version} · ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}) · bench/agent-cores.ts --clients ${CLIENTS} --kinds ${KINDS} --duration ${DURATION} --rounds ${ROUNDS} --entries ${ENTRIES}`,
    '',
    "Each setting is one run of bench/agent.ts's fetch rows (`--fetch-only --no-mixed --signing-limit off`): a fresh server + agent per implementation from the same server.conf and agent.conf text (SQLite, memory KeyManager, join_token, unix attestor, P-256, `ratelimit { attestation = true signing = false }` on both servers, 1,000 entries), go-spiffe load generator (bench/go/agentload), one connection per client, closed loop, medians of the rounds, the implementations taking turns row by row. **1 core**: both agents under `taskset -c 0`, the bench with its servers and load generator under `taskset -c 1`. **2 cores**: both agents under `taskset -c 0,1`, everything else unpinned, so the servers and the load generator share both cores with the agent (this machine has two). spire-agent with Go's defaults (GOMAXPROCS = the CPUs it may run on), the ztwim agent with the `ztwim` command's node flags. In brackets: the agent's CPU seconds per 1,000 calls.",
    '',
    '| call | clients | agent | 1 core | 2 cores | 2 cores ÷ 1 core | load (1 min) |',
    '|---|--:|---|--:|--:|--:|--:|',
    ...rows,
    '',
    `Whole run: ${((Date.now() - t0) / 1000).toFixed(0)} s; load average at the end ${loadavg()[0]?.toFixed(1) ?? '?'}.`,
    '',
  ].join('\n');
  process.stdout.write(md);
  writeResults('agent-cores.md', md);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
