/**
 * k8s_psat node attestation at the server: attestations/s and latency, ztwim server beside SPIRE
 * v1.13.0's spire-server in one run, against the project's real test cluster.
 *
 *   node --conditions=ztwim-source --import tsx bench/k8s-psat.ts [--duration 10] [--rounds 2] [--concurrency 1,8] [--cpu-prof DIR]
 *
 * Both servers run as their own processes (`ztwim server run` is the built packages/cli/bin/ztwim.js:
 * run `npm run build` first) from the same server.conf: the same k8s_psat config (one cluster, the
 * kubeconfig of a ServiceAccount with SPIRE's documented RBAC only, audience spire-server), SQLite,
 * the memory key manager, and
 * `ratelimit { attestation = false }` (spire-server limits attestation to 1/s per IP by default;
 * ztwim has no limit). Each attestation is a whole AttestAgent call over TLS from this process
 * with a pod-bound token of a running pod: the server does a TokenReview, a pod GET and a node GET
 * against the real kube-apiserver on 127.0.0.1 (3 round trips), signs an agent SVID and updates
 * the attested node (re-attestation of one node). One CSR is reused (the server only takes its
 * key), so the client's cost is the same for both. `--concurrency` lists the numbers of
 * attestations in flight; rounds alternate between the servers so load from elsewhere hits both
 * alike. Prints a Markdown table and writes bench/results/k8s-psat.md.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { create } from '@bufbuild/protobuf';
import { createClient } from '@connectrpc/connect';
import { AgentService, AttestAgentRequestSchema, createTcpGrpcTransport, type AttestAgentRequest } from '@ztwim/proto';
import { marshalK8sPsatPayload } from '@ztwim/core';
import { serverConf } from '../test/interop/lib/server-conf.ts';
import { freePort, runBinary, supervise } from '../test/interop/lib/spire-admin.ts';
import { SPIRE_VERSION, ZTWIM_BIN, spireServerBin, ztwimNodeFlags } from '../test/interop/lib/peers.ts';
import { makeTmpDir } from '../test/interop/lib/tmp.ts';
import { ensureCluster } from '../test/k8s/lib/cluster.ts';
import { psatFixture } from '../test/k8s/lib/psat-fixture.ts';
import { removeLeftoversOnExit, tmpDirs } from './lib/leftovers.ts';
import { runMain, writeResults } from './lib/results-dir.ts';

const argv = process.argv.slice(2);
const opt = (name: string, dflt: string): string => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? (argv[i + 1] ?? dflt) : dflt;
};
const DURATION_S = Number(opt('duration', '10'));
const ROUNDS = Number(opt('rounds', '2'));
const CONCURRENCY = opt('concurrency', '1,8').split(',').map(Number);
/** A directory for a V8 CPU profile of the ztwim server (written when it stops), '' for none. */
const CPU_PROF = opt('cpu-prof', '');
const TD = 'example.org';

removeLeftoversOnExit((sig) => console.error(`bench: ${sig}, cleaning up`));

interface Round {
  count: number;
  ms: number;
  latencies: number[];
  errors: number;
  firstError?: string;
  cpuMs: number;
}

/**
 * CPU time (user + system, ms) the process has used so far, from /proc/<pid>/stat. On a loaded
 * machine wall-clock rates also measure how the scheduler shares the cores (a Go server's several
 * threads get more of them than Node's one main thread); CPU per attestation does not.
 */
function cpuMsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); utime and stime are fields 14 and 15, in clock ticks (100/s on Linux).
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

/** Drives `concurrency` AttestAgent calls in flight for `ms` against 127.0.0.1:port. */
async function drive(port: number, pid: number, payload: Uint8Array, csr: Uint8Array, concurrency: number, ms: number): Promise<Round> {
  const transport = createTcpGrpcTransport({ host: '127.0.0.1', port, tls: { rejectUnauthorized: false, servername: '' }, defaultTimeoutMs: 30_000 });
  const agent = createClient(AgentService, transport);
  const req: AttestAgentRequest = create(AttestAgentRequestSchema, {
    step: { case: 'params', value: { data: { type: 'k8s_psat', payload }, params: { csr } } },
  });
  const one = async (): Promise<void> => {
    async function* requests(): AsyncGenerator<AttestAgentRequest> {
      yield req;
    }
    for await (const res of agent.attestAgent(requests())) {
      if (res.step.case === 'result') return;
      throw new Error(`unexpected ${res.step.case ?? 'empty'} step`);
    }
    throw new Error('stream ended without a result');
  };
  const r: Round = { count: 0, ms: 0, latencies: [], errors: 0, cpuMs: 0 };
  const cpu0 = cpuMsOf(pid);
  const start = performance.now();
  const end = start + ms;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const t0 = performance.now();
        try {
          await one();
          r.latencies.push(performance.now() - t0);
          r.count++;
        } catch (e) {
          r.errors++;
          r.firstError ??= (e as Error).message;
        }
      }
    }),
  );
  r.ms = performance.now() - start;
  r.cpuMs = cpuMsOf(pid) - cpu0;
  transport.close();
  return r;
}

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? 0;
};

async function main(): Promise<void> {
  const tmp = makeTmpDir('ztwim-bench-psat-');
  tmpDirs.add(tmp);
  const env = await ensureCluster();
  const f = await psatFixture(env, 'bench-psat', tmp.file('server-kubeconfig'));
  try {
    const pod = await f.runPod('agent-0', 'spire-agent');
    const token = await f.podToken(pod, ['spire-server'], 7200);
    const payload = marshalK8sPsatPayload({ cluster: 'test', token });
    const csrPath = tmp.file('agent.csr');
    const ssl = spawnSync(
      'openssl',
      [
        'req',
        '-new',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-subj',
        '/C=US/O=SPIRE',
        '-keyout',
        tmp.file('agent.key'),
        '-outform',
        'DER',
        '-out',
        csrPath,
      ],
      { encoding: 'utf8' },
    );
    if (ssl.status !== 0) throw new Error(`openssl req: ${ssl.stderr}`);
    const csr = new Uint8Array(readFileSync(csrPath));
    const plugin = `NodeAttestor "k8s_psat" {
    plugin_data {
      clusters = {
        "test" = {
          service_account_allow_list = ["${f.ns}:spire-agent"]
          kube_config_file = "${f.serverKubeconfig}"
        }
      }
    }
  }`;
    // The same server.conf for both, each server its own process.
    const servers: Array<{ name: string; port: number; pid: number; stop: () => Promise<void> }> = [];
    for (const impl of ['ztwim', 'spire'] as const) {
      const dir = join(tmp.path, impl);
      mkdirSync(join(dir, 'data'), { recursive: true });
      const port = await freePort();
      const socketPath = join(dir, 'admin.sock');
      const conf = tmp.write(
        `${impl}-server.conf`,
        serverConf({
          port,
          socketPath,
          trustDomain: TD,
          dataDir: join(dir, 'data'),
          settings: { log_level: 'WARN', ca_key_type: 'ec-p256', ca_ttl: '24h', default_x509_svid_ttl: '1h' },
          extraServerConfig: '  ratelimit {\n    attestation = false\n  }',
          extraPlugins: plugin,
        }),
      );
      const ztwimArgs = ['server', 'run', '-config', conf];
      const [cmd, args] =
        impl === 'spire'
          ? [spireServerBin(), ['run', '-config', conf]]
          : CPU_PROF === ''
            ? [ZTWIM_BIN, ztwimArgs]
            : [process.execPath, [...ztwimNodeFlags(), '--cpu-prof', `--cpu-prof-dir=${CPU_PROF}`, ZTWIM_BIN, ...ztwimArgs]];
      const child = spawn(cmd, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
      const proc = supervise(child);
      if (child.pid === undefined) throw new Error(`${impl} server did not start`);
      servers.push({ name: impl === 'spire' ? `spire-server ${SPIRE_VERSION}` : 'ztwim server', port, pid: child.pid, stop: proc.stop });
      const health =
        impl === 'spire'
          ? ([spireServerBin(), ['healthcheck', '-socketPath', socketPath]] as const)
          : ([ZTWIM_BIN, ['server', 'healthcheck', '-socketPath', socketPath]] as const);
      const end = Date.now() + 60_000;
      while ((await runBinary(health[0], health[1])).status !== 0) {
        if (proc.exited() !== undefined || Date.now() > end) throw new Error(`${impl} server did not become healthy:\n${proc.logs()}`);
        await delay(200);
      }
    }
    try {
      // One attestation each first: creates the attested node (and checks the setup works).
      for (const s of servers) {
        const w = await drive(s.port, s.pid, payload, csr, 1, 1);
        if (w.count === 0 && w.errors > 0) throw new Error(`${s.name}: attestation fails: ${w.firstError ?? ''}`);
      }
      const rows: string[] = [];
      for (const c of CONCURRENCY) {
        const per = new Map<string, Round[]>(servers.map((s) => [s.name, []]));
        for (let round = 0; round < ROUNDS; round++) {
          const order = round % 2 === 0 ? servers : [...servers].reverse();
          for (const s of order) per.get(s.name)?.push(await drive(s.port, s.pid, payload, csr, c, DURATION_S * 1000));
        }
        for (const s of servers) {
          const rs = per.get(s.name) ?? [];
          const count = rs.reduce((a, r) => a + r.count, 0);
          const ms = rs.reduce((a, r) => a + r.ms, 0);
          const lat = rs.flatMap((r) => r.latencies);
          const errors = rs.reduce((a, r) => a + r.errors, 0);
          const cpuMs = rs.reduce((a, r) => a + r.cpuMs, 0);
          const firstError = rs.find((r) => r.firstError !== undefined)?.firstError;
          rows.push(
            `| ${s.name} | ${c} | ${count} | ${(ms / 1000).toFixed(1)} | ${((count / ms) * 1000).toFixed(1)} | ${pct(lat, 50).toFixed(1)} | ${pct(lat, 99).toFixed(1)} | ${count === 0 ? '-' : (cpuMs / count).toFixed(1)} | ${errors}${firstError === undefined ? '' : ` (${firstError.slice(0, 80)})`} |`,
          );
        }
      }
      const settings =
        `k8s_psat, 1 cluster, TokenReview + pod GET + node GET per attestation against kube-apiserver v1.37.2 on 127.0.0.1 ` +
        `(kubeconfig of a ServiceAccount with SPIRE's RBAC only); each server its own process from the same server.conf (ztwim: the built bin/ztwim.js); ` +
        `SQLite, memory KeyManager, P-256 CA, agent SVID TTL 1h, ratelimit.attestation = false; ` +
        `re-attestation of one node, one CSR reused; ${ROUNDS} round(s) of ${DURATION_S} s per server and concurrency, alternating`;
      const table = [
        `k8s_psat attestations at the server (${new Date().toISOString().slice(0, 10)}, ${cpus().length} cores, load ${loadavg()[0]?.toFixed(2)} at the end)`,
        '',
        `Settings (every row): ${settings}.`,
        '',
        '| server | in flight | attestations | seconds | attestations/s | p50 ms | p99 ms | server CPU ms/attestation | errors |',
        '|---|---:|---:|---:|---:|---:|---:|---:|---|',
        ...rows,
        '',
      ].join('\n');
      console.log(table);
      writeResults('k8s-psat.md', table);
    } finally {
      for (const sv of servers) await sv.stop();
    }
  } finally {
    await f.cleanup();
  }
}

runMain(main);
