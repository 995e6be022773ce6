/**
 * The SPIFFE SDK (@ztwim/spiffe) beside go-spiffe v2.9.0 in the same run.
 *
 *   node --conditions=ztwim-source --import tsx bench/sdk.ts [--ms 1000] [--rounds 3] [--fetch-rounds 8] [--calls 100]
 *        [--only crypto|workload] [--threads 1,all] [--source] [--write-fixtures DIR] [--profile DIR]
 *
 * Both sides use the very same inputs: this script writes the keys' tokens, chains and bundles to
 * a temp dir, and bench/go/sdkbench (go-spiffe v2.9.0, one long-lived process fed commands on
 * stdin) loads the same files. Crypto rows, ops/s and CPU time per op:
 *   - JWT-SVID validation, ES256 (P-256) and RS256 (RSA-2048): parse, verify the signature against
 *     the JWT bundle (parsed once), audience and time checks (parseAndValidateJwtSvid /
 *     jwtsvid.ParseAndValidate);
 *   - X509-SVID chain verification from DER: a P-256 leaf signed by the bundle's CA (what a ztwim or
 *     SPIRE agent hands out without an upstream CA), and a leaf signed by an intermediate that the
 *     bundle's root signed (verifyX509Svid / x509.ParseCertificate + x509svid.Verify).
 * The tokens and certificates are minted by @ztwim/server's JwtSigner and X509Ca, as the server
 * mints them. Two settings, named on every row: one thread (Node's main thread; Go with
 * GOMAXPROCS=1 and one goroutine) and all cores (one Node worker thread per core; Go with
 * GOMAXPROCS = cores and one goroutine per core). Each round runs every row on both sides for
 * --ms ms each, taking turns (order swapped every round); medians of the rounds.
 *
 * Workload API rows: a ztwim server and agent (the built CLI through bench/agent-proc.mjs, or the
 * sources with --source; SQLite, P-256, join_token, unix workload attestor: the settings of
 * bench/agent.ts) with one entry for this uid. FetchX509SVID (first response, parsed into an SVID)
 * and FetchJWTSVID (one audience, so the agent answers from its cache) through the SDK's
 * WorkloadApiClient (on each of its HTTP/2 transports: its own client on net.Socket, the default,
 * and node:http2) and go-spiffe's workloadapi.Client, one connection each, sequential calls,
 * --calls per client per round, --fetch-rounds rounds, the order rotating every round (short
 * rounds, so that the three clients see the same load); p50, p99, mean over all rounds, client
 * CPU per call. More than 1,000 first-response fetches per client (each ends with RST_STREAM
 * CANCEL) are fine: the agent drains the connection before nghttp2's "rapid reset" defence would
 * drop it, and the SDK sends the one call that crosses the GOAWAY again on a new connection.
 *
 * Target (issue #21): the SDK at least 0.5x go-spiffe on the crypto rows, latency equal or better
 * on the Workload API rows. Prints a Markdown page and writes bench/results/sdk.md.
 */
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Session } from 'node:inspector/promises';
import { Worker } from 'node:worker_threads';
import { systemClock } from '@ztwim/core';
import { derToPem, SpiffeId, TrustDomain, WorkloadApiClient } from '@ztwim/spiffe';
import { createCaCertificate, JwtSigner, X509Ca } from '@ztwim/server';
import { goBuild } from '../test/interop/lib/peers.ts';
import {
  agentJoinToken,
  BENCH_DIR,
  checkDistFresh,
  loadgen,
  loadgenBin,
  nodeArgs,
  requireSpireBinaries,
  settle,
  startBenchServer,
  startProc,
  tmpDirs,
  writeBenchAgentConf,
  UID,
} from './lib/procs.ts';
import { runMain, writeResults } from './lib/results-dir.ts';
import { flagValue, hasFlag, num } from './lib/args.ts';
import { CRYPTO_KINDS, loopFor, sdkOps, type CryptoKind, type LoopResult, type SdkFixtures } from './lib/sdk-ops.ts';

const MS = num('ms', 1000);
const ROUNDS = num('rounds', 3);
const CALLS = num('calls', 100);
const FETCH_ROUNDS = num('fetch-rounds', 8);
const ONLY = flagValue('only');
const SOURCE = hasFlag('source');
/** Where to write V8 CPU profiles of the SDK side's timed Workload API calls (profiling aid). */
const PROFILE_DIR = flagValue('profile');
const THREADS = (flagValue('threads') ?? '1,all').split(',').filter((t): t is '1' | 'all' => t === '1' || t === 'all');
const CORES = cpus().length;
const TD = 'example.org';
/** The audience of the crypto rows' tokens and of the FetchJWTSVID rows (bench/go/sdkbench uses the same). */
const AUDIENCE = 'spiffe://example.org/bench-audience';
const DAY_MS = 86_400_000;

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const quantile = (sorted: readonly number[], q: number): number =>
  sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? Number.NaN;
const load1 = (): number => loadavg()[0] ?? 0;

// ---------------------------------------------------------------------------------------------
// Fixtures: what a server mints, written once for both sides.

async function writeFixtures(dir: string): Promise<void> {
  const td = TrustDomain.parse(TD);
  const workload = SpiffeId.parse(`spiffe://${TD}/ns/default/sa/web`);
  const now = new Date();
  const p256 = (): { publicKey: KeyObject; privateKey: KeyObject } => generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const rootKey = p256();
  const root = createCaCertificate({ trustDomain: td, key: rootKey, ttlMs: DAY_MS, now });
  const interKey = p256();
  const inter = createCaCertificate({
    trustDomain: td,
    key: interKey,
    ttlMs: DAY_MS,
    now,
    upstream: { certChain: root, privateKey: rootKey.privateKey, roots: root },
  });
  const leafKey = p256();
  const mintLeaf = (chain: readonly Uint8Array[], key: typeof rootKey): Uint8Array[] =>
    new X509Ca({ trustDomain: td, key, chain, clock: systemClock, x509SvidTtlMs: 3_600_000 }).signX509Svid({ publicKey: leafKey.publicKey, spiffeId: workload })
      .certChain;
  const chains = { 'x509-root': mintLeaf(root, rootKey), 'x509-inter': mintLeaf(inter, interKey) };

  const jwks: object[] = [];
  const tokens: Record<string, string> = {};
  for (const [kind, keyType, pair] of [
    ['jwt-es256', 'ec-p256', p256()],
    ['jwt-rs256', 'rsa-2048', generateKeyPairSync('rsa', { modulusLength: 2048 })],
  ] as const) {
    const kid = `bench-${kind}`;
    const signer = new JwtSigner({
      trustDomain: td,
      kid,
      keyType,
      privateKey: pair.privateKey,
      publicKey: pair.publicKey,
      notAfter: new Date(now.getTime() + DAY_MS),
      clock: systemClock,
      jwtSvidTtlMs: 6 * 3_600_000,
    });
    tokens[kind] = (await signer.signJwtSvid({ spiffeId: workload, audience: [AUDIENCE] })).token;
    jwks.push({ ...pair.publicKey.export({ format: 'jwk' }), kid, use: 'jwt-svid' });
  }
  const fixtures: SdkFixtures = {
    trustDomain: TD,
    audience: AUDIENCE,
    tokens,
    chains: Object.fromEntries(Object.entries(chains).map(([k, c]) => [k, c.map((d) => Buffer.from(d).toString('base64'))])),
  };
  writeFileSync(join(dir, 'fixtures.json'), JSON.stringify(fixtures));
  writeFileSync(join(dir, 'bundle.pem'), derToPem(root[0] as Uint8Array, 'CERTIFICATE'));
  writeFileSync(join(dir, 'jwks.json'), JSON.stringify({ keys: jwks }));
}

// ---------------------------------------------------------------------------------------------
// The go-spiffe side: one bench/go/sdkbench process, one JSON answer per command line.

class GoSide {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #lines: AsyncIterator<string>;
  #stderr = '';

  constructor(bin: string, argv: readonly string[]) {
    this.#child = spawn(bin, argv, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.#child.stderr.on('data', (d: Buffer) => (this.#stderr += d.toString()));
    this.#lines = createInterface({ input: this.#child.stdout })[Symbol.asyncIterator]();
  }

  async ask<T>(command: string): Promise<T> {
    this.#child.stdin.write(`${command}\n`);
    const r = await this.#lines.next();
    if (r.done === true) throw new Error(`sdkbench exited on "${command}": ${this.#stderr.slice(-2000)}`);
    return JSON.parse(r.value) as T;
  }

  close(): void {
    this.#child.stdin.end();
    this.#child.kill('SIGTERM');
  }
}

// ---------------------------------------------------------------------------------------------
// Crypto rows.

interface Sample {
  readonly opsPerSec: number;
  readonly cpuUsPerOp: number;
}
interface CryptoRow {
  readonly kind: CryptoKind;
  readonly threads: '1' | 'all';
  readonly go: Sample[];
  readonly sdk: Sample[];
  readonly load: number[];
}

const sample = (ops: number, wallMs: number, cpuMs: number): Sample => ({ opsPerSec: (ops / wallMs) * 1000, cpuUsPerOp: (cpuMs * 1000) / ops });

/** The node side of one crypto row: the main thread, or one worker per core at once. */
class NodeSide {
  readonly #ops: Record<CryptoKind, () => unknown>;
  readonly #workers: Worker[] = [];

  constructor(dir: string, workers: number) {
    this.#ops = sdkOps(dir);
    for (let i = 0; i < workers; i++) this.#workers.push(new Worker(new URL('./lib/sdk-worker.mjs', import.meta.url), { workerData: { dir } }));
  }

  async run(kind: CryptoKind, threads: '1' | 'all', ms: number): Promise<Sample> {
    const cpu0 = process.cpuUsage();
    let ops: number;
    let wallMs: number;
    if (threads === '1') {
      ({ ops, wallMs } = await loopFor(this.#ops[kind], ms));
    } else {
      const t0 = performance.now();
      const rs = await Promise.all(
        this.#workers.map(
          (w) =>
            new Promise<LoopResult>((resolve, reject) => {
              w.once('message', resolve);
              w.once('error', reject);
              w.postMessage({ kind, ms });
            }),
        ),
      );
      ops = rs.reduce((s, r) => s + r.ops, 0);
      wallMs = performance.now() - t0;
    }
    const cpu = process.cpuUsage(cpu0);
    return sample(ops, wallMs, (cpu.user + cpu.system) / 1000);
  }

  async close(): Promise<void> {
    await Promise.all(this.#workers.map((w) => w.terminate()));
  }
}

async function cryptoRows(dir: string, bin: string): Promise<CryptoRow[]> {
  const go = new GoSide(bin, ['-dir', dir]);
  const node = new NodeSide(dir, THREADS.includes('all') ? CORES : 0);
  const goRun = async (kind: CryptoKind, threads: '1' | 'all', ms: number): Promise<Sample> => {
    const r = await go.ask<{ ops: number; wallMs: number; cpuMs: number }>(
      threads === '1' ? `crypto ${kind} ${ms} 1 1` : `crypto ${kind} ${ms} ${CORES} ${CORES}`,
    );
    return sample(r.ops, r.wallMs, r.cpuMs);
  };
  try {
    const rows: CryptoRow[] = [];
    for (const threads of THREADS) for (const kind of CRYPTO_KINDS) rows.push({ kind, threads, go: [], sdk: [], load: [] });
    // Warm-up (JIT, lazily built tables on both sides), discarded.
    for (const r of rows) {
      await node.run(r.kind, r.threads, Math.min(300, MS));
      await goRun(r.kind, r.threads, Math.min(300, MS));
    }
    for (let round = 0; round < ROUNDS; round++) {
      for (const r of rows) {
        r.load.push(load1());
        if (round % 2 === 0) {
          r.sdk.push(await node.run(r.kind, r.threads, MS));
          r.go.push(await goRun(r.kind, r.threads, MS));
        } else {
          r.go.push(await goRun(r.kind, r.threads, MS));
          r.sdk.push(await node.run(r.kind, r.threads, MS));
        }
      }
      console.error(`sdk bench: crypto round ${round + 1}/${ROUNDS} done`);
    }
    return rows;
  } finally {
    go.close();
    await node.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Workload API rows.

/** The clients of the Workload API rows: go-spiffe, and the SDK on each of its HTTP/2 transports. */
const FETCH_SIDES = ['go', 'socket', 'node:http2'] as const;
type FetchSide = (typeof FETCH_SIDES)[number];
const SIDE_LABEL: Record<FetchSide, string> = { go: 'go-spiffe', socket: 'SDK (own HTTP/2, default)', 'node:http2': 'SDK (node:http2)' };

interface FetchRow {
  readonly kind: 'x509' | 'jwt';
  readonly lat: Record<FetchSide, number[]>;
  readonly cpuMs: Record<FetchSide, number>;
  readonly load: number[];
}

async function startAgent(root: string): Promise<string> {
  const sdir = join(root, 'server');
  const adir = join(root, 'agent');
  mkdirSync(join(adir, 'data'), { recursive: true });
  const { adminSocket, port } = await startBenchServer('ztwim', sdir, { trustDomain: TD, source: SOURCE });
  const { token, agentId } = await agentJoinToken(adminSocket, TD, join(adir, 'bundle.pem'));
  const seed = await loadgen<{ watchedSpiffeId: string }>('seed', ['-admin', adminSocket, '-parent', agentId, '-uid', String(UID), '-n', '1'], 60_000);
  const { conf: aconf, socket } = writeBenchAgentConf(adir, { trustDomain: TD, port, token, logLevel: 'WARN' });
  const agent = startProc('ztwim agent', process.execPath, [...nodeArgs('agent', undefined, SOURCE), 'agent', aconf], adir);
  await loadgen('wait', ['-socket', socket, '-spiffe-id', seed.watchedSpiffeId, '-timeout', '90s'], 100_000);
  await settle(agent);
  return socket;
}

async function fetchRows(dir: string, bin: string, socket: string): Promise<FetchRow[]> {
  const go = new GoSide(bin, ['-dir', dir, '-socket', socket]);
  const clients = {
    socket: new WorkloadApiClient({ address: `unix://${socket}`, transport: 'socket' }),
    'node:http2': new WorkloadApiClient({ address: `unix://${socket}`, transport: 'node:http2' }),
  };
  const sdkCall = (client: WorkloadApiClient, kind: 'x509' | 'jwt'): Promise<unknown> =>
    kind === 'x509' ? client.fetchX509Svid() : client.fetchJwtSvid({ audience: AUDIENCE });
  const profiler = PROFILE_DIR === undefined ? undefined : new Session();
  if (profiler !== undefined) {
    profiler.connect();
    await profiler.post('Profiler.enable');
    await profiler.post('Profiler.setSamplingInterval', { interval: 100 });
  }
  let profiled = 0;
  const sdkRun = async (client: WorkloadApiClient, kind: 'x509' | 'jwt', n: number, profile = false): Promise<{ latMs: number[]; cpuMs: number }> => {
    const lat: number[] = [];
    if (profile && profiler !== undefined) await profiler.post('Profiler.start');
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      await sdkCall(client, kind);
      lat.push(performance.now() - t0);
    }
    const cpu = process.cpuUsage(cpu0);
    if (profile && profiler !== undefined && PROFILE_DIR !== undefined) {
      const { profile: p } = await profiler.post('Profiler.stop');
      mkdirSync(PROFILE_DIR, { recursive: true });
      writeFileSync(join(PROFILE_DIR, `sdk-fetch-${kind}-${client === clients.socket ? 'socket' : 'node-http2'}-${++profiled}.cpuprofile`), JSON.stringify(p));
    }
    return { latMs: lat, cpuMs: (cpu.user + cpu.system) / 1000 };
  };
  const goRun = (kind: 'x509' | 'jwt', n: number): Promise<{ latMs: number[]; cpuMs: number }> => go.ask(`fetch ${kind} ${n}`);
  try {
    const rows: FetchRow[] = (['x509', 'jwt'] as const).map((kind) => ({
      kind,
      lat: { go: [], socket: [], 'node:http2': [] },
      cpuMs: { go: 0, socket: 0, 'node:http2': 0 },
      load: [],
    }));
    const run = (side: FetchSide, kind: 'x509' | 'jwt', n: number, profile = false): Promise<{ latMs: number[]; cpuMs: number }> =>
      side === 'go' ? goRun(kind, n) : sdkRun(clients[side], kind, n, profile);
    for (const r of rows) for (const side of FETCH_SIDES) await run(side, r.kind, 20);
    for (let round = 0; round < FETCH_ROUNDS; round++) {
      for (const r of rows) {
        r.load.push(load1());
        // Each side goes first, middle and last in turn.
        const order = FETCH_SIDES.map((_, i) => FETCH_SIDES[(i + round) % FETCH_SIDES.length] as FetchSide);
        for (const side of order) {
          const s = await run(side, r.kind, CALLS, true);
          r.lat[side].push(...s.latMs);
          r.cpuMs[side] += s.cpuMs;
        }
      }
      console.error(`sdk bench: Workload API round ${round + 1}/${FETCH_ROUNDS} done`);
    }
    return rows;
  } finally {
    go.close();
    clients.socket.close();
    clients['node:http2'].close();
    profiler?.disconnect();
  }
}

// ---------------------------------------------------------------------------------------------
// Report.

const LABEL: Record<CryptoKind, string> = {
  'jwt-es256': 'JWT-SVID validation, ES256 (P-256)',
  'jwt-rs256': 'JWT-SVID validation, RS256 (RSA-2048)',
  'x509-root': 'X509-SVID chain, leaf ← bundle CA (P-256)',
  'x509-inter': 'X509-SVID chain, leaf ← intermediate ← bundle root (P-256)',
};
const int = (n: number): string => Math.round(n).toLocaleString('en-US');
const f1 = (n: number): string => n.toFixed(1);
const f2 = (n: number): string => n.toFixed(2);
const loads = (xs: readonly number[]): string => `${f1(Math.min(...xs))}–${f1(Math.max(...xs))}`;

function report(crypto: CryptoRow[], fetch: FetchRow[], seconds: number): string {
  const lines = [
    '# The SPIFFE SDK beside go-spiffe',
    '',
    `${new Date().toISOString()}; node ${process.version}, go-spiffe v2.9.0 (${goVersion}), ${cpus()[0]?.model ?? 'unknown cpu'} x${CORES}; ` +
      `load average ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')} at the end; whole run ${seconds.toFixed(0)} s.`,
    '',
  ];
  if (crypto.length > 0) {
    lines.push(
      `## Crypto-bound rows`,
      '',
      `Same tokens, chains and bundles on both sides (minted by @ztwim/server's JwtSigner and X509Ca). ${ROUNDS} rounds; in each, every row runs ${MS} ms on each side, ` +
        'taking turns (order swapped every round); medians of the rounds. *1 thread*: Node main thread; Go GOMAXPROCS=1, one goroutine. ' +
        `*all cores*: ${CORES} Node worker threads; Go GOMAXPROCS=${CORES}, ${CORES} goroutines. CPU µs/op is the process's user + system time ` +
        '(Node: `process.cpuUsage`, all threads; Go: `getrusage`) over the ops done, the figure to compare under load. ' +
        'X.509 rows start from DER on both sides; the SDK keeps parsed certificates in a cache keyed by their DER, so it does not parse a chain it has seen again, ' +
        'while go-spiffe parses it every time (`x509.ParseCertificate`); both check every signature every time. Target: SDK ≥ 0.5× go-spiffe.',
      '',
      '| operation | threads | go-spiffe ops/s | SDK ops/s | SDK ÷ go (ops/s) | go CPU µs/op | SDK CPU µs/op | go ÷ SDK (CPU/op) | target ≥ 0.5× met | load 1 min |',
      '|---|---|---:|---:|---:|---:|---:|---:|:-:|---|',
    );
    for (const r of crypto) {
      const go = median(r.go.map((s) => s.opsPerSec));
      const sdk = median(r.sdk.map((s) => s.opsPerSec));
      const goCpu = median(r.go.map((s) => s.cpuUsPerOp));
      const sdkCpu = median(r.sdk.map((s) => s.cpuUsPerOp));
      const met = sdk / go >= 0.5 && goCpu / sdkCpu >= 0.5 ? 'yes' : sdk / go >= 0.5 || goCpu / sdkCpu >= 0.5 ? 'one of two' : 'NO';
      lines.push(
        `| ${LABEL[r.kind]} | ${r.threads === '1' ? '1' : `all (${CORES})`} | ${int(go)} | ${int(sdk)} | ${f2(sdk / go)}× | ${f1(goCpu)} | ${f1(sdkCpu)} | ${f2(goCpu / sdkCpu)}× | ${met} | ${loads(r.load)} |`,
      );
    }
    lines.push('');
  }
  if (fetch.length > 0) {
    lines.push(
      '## Workload API fetch latency',
      '',
      'One ztwim server and agent (own processes; SQLite, memory KeyManager, join_token, unix workload attestor, P-256 CA and SVID keys, X509-SVID TTL 1 h, ' +
        `JWT-SVID TTL 5 min; ${SOURCE ? 'TypeScript sources through tsx' : 'the built packages'}), one entry for this uid. ` +
        "Clients: the SDK's `WorkloadApiClient` in the bench process, on its own HTTP/2 client over `net.Socket` (the default transport) and on `node:http2` " +
        "(`transport: 'node:http2'`), and go-spiffe's `workloadapi.Client` in bench/go/sdkbench (GOMAXPROCS = cores); " +
        `one connection each, made before timing; sequential calls, ${CALLS} per client per round, ${FETCH_ROUNDS} rounds taking turns (the order rotates every round). ` +
        'FetchX509SVID: the first response of the stream, parsed into an SVID (certificates and key), then the stream is cancelled. ' +
        "FetchJWTSVID: one audience, answered from the agent's cache, token parsed (unverified, as both clients do). Target: SDK p50 and p99 ≤ go-spiffe.",
      '',
      '| call | client | calls | p50 ms | p99 ms | mean ms | client CPU µs/call | met | load 1 min |',
      '|---|---|---:|---:|---:|---:|---:|:-:|---|',
    );
    for (const r of fetch) {
      const stats = (xs: number[]): { p50: number; p99: number; mean: number } => {
        const s = [...xs].sort((a, b) => a - b);
        return { p50: quantile(s, 0.5), p99: quantile(s, 0.99), mean: s.reduce((a, b) => a + b, 0) / s.length };
      };
      const go = stats(r.lat.go);
      const call = r.kind === 'x509' ? 'FetchX509SVID (first response)' : 'FetchJWTSVID (cached)';
      for (const side of FETCH_SIDES) {
        const st = stats(r.lat[side]);
        const met = side === 'go' ? '' : st.p50 <= go.p50 && st.p99 <= go.p99 ? 'yes' : 'NO';
        const n = r.lat[side].length;
        lines.push(
          `| ${call} | ${SIDE_LABEL[side]} | ${n} | ${f2(st.p50)} | ${f2(st.p99)} | ${f2(st.mean)} | ${int((r.cpuMs[side] * 1000) / n)} | ${met} | ${loads(r.load)} |`,
        );
      }
    }
    lines.push('');
  }
  return lines.join('\n');
}

let goVersion = '';

async function main(): Promise<void> {
  const t0 = Date.now();
  const fixturesOnly = flagValue('write-fixtures');
  if (fixturesOnly !== undefined) {
    // Profiling aid: the fixtures alone, for bench/lib/sdk-ops.ts under `node --cpu-prof`.
    mkdirSync(fixturesOnly, { recursive: true });
    await writeFixtures(fixturesOnly);
    return;
  }
  const wantWorkload = ONLY === undefined || ONLY === 'workload';
  const wantCrypto = ONLY === undefined || ONLY === 'crypto';
  if (wantWorkload) {
    requireSpireBinaries('sdk');
    if (!SOURCE) checkDistFresh();
    loadgenBin.path = goBuild(join(BENCH_DIR, 'go'), './agentload');
  }
  const bin = goBuild(join(BENCH_DIR, 'go'), './sdkbench');
  goVersion = execFileSync('go', ['env', 'GOVERSION'], { encoding: 'utf8' }).trim();
  const root = mkdtempSync(join(tmpdir(), 'ztwim-bench-sdk-'));
  tmpDirs.add(root);
  const dir = join(root, 'fixtures');
  mkdirSync(dir);
  await writeFixtures(dir);
  // The Workload API rows first, in a process that has not yet run the crypto rows (worker
  // threads, a grown heap): after them the same client measured more CPU per call here than in a
  // small process (docs/performance.md, "The SDK beside go-spiffe").
  const fetch = wantWorkload ? await fetchRows(dir, bin, await startAgent(join(root, 'ztwim'))) : [];
  const crypto = wantCrypto ? await cryptoRows(dir, bin) : [];
  const md = report(crypto, fetch, (Date.now() - t0) / 1000);
  process.stdout.write(md);
  writeResults('sdk.md', md);
}

runMain(main);
