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
 *
 * Second part (`--rotations N`, default 3; 0 skips it): the time from a CA rotation in a foreign
 * trust domain to the new bundle at our workloads, ztwim federating with ztwim and SPIRE with
 * SPIRE, the same 1 min refresh hint on both foreign bundle endpoints and each agent's default
 * 5 s sync. The clock starts when the prepared CA shows in the foreign server's own bundle (its
 * Bundle API, polled every 100 ms) and stops when it shows in the federated bundle of a workload
 * of the other domain (a FetchX509Bundles stream on that domain's agent). SPIRE's rotation is
 * started with `spire-server localauthority x509 prepare` (then activated); ztwim's comes from a
 * 90 s `ca_ttl` (prepared at half life on its 10 s rotation tick). `--part endpoint|rotation`
 * runs one part and rewrites only its section of the results file. `--ca-ttl S` (default 90)
 * changes ztwim's CA TTL (the smoke run's 30 s rotates sooner). `--warmup N` (default 1)
 * rotations come first and are not counted (SPIRE's first poll after start-up follows its
 * bootstrap); SPIRE's prepares start at a random point of the 15 s poll period (ztwim's follow
 * its 10 s rotation tick, so their phase against the poll cycles).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { join } from 'node:path';
import { createClient } from '@connectrpc/connect';
import { BundleService, SpiffeWorkloadAPI, createUnixGrpcTransport, headersInterceptor } from '@ztwim/proto';
import { SpiffeBundle, TrustDomain, splitConcatenatedDer } from '@ztwim/spiffe';
import { federate } from '../test/interop/lib/federation.ts';
import { eventually } from '@ztwim/testkit';
import { freePort, startProc, waitReady } from '@ztwim/testkit/procs';
import { ZTWIM_BIN } from '../test/interop/lib/peers.ts';
import { serverConf } from '../test/interop/lib/server-conf.ts';
import { startSpireAgent } from '../test/interop/lib/spire-agent.ts';
import { startSpireServer } from '../test/interop/lib/spire-server.ts';
import { makeTmpDir, type TmpDir } from '../test/interop/lib/tmp.ts';
import { spiffeIdParts, startStack } from '../test/interop/lib/ztwim-stack.ts';
import { resultsDir } from './lib/results-dir.ts';
import { flagValue, num } from './lib/args.ts';

const durationS = num('duration', 5);
const rounds = num('rounds', 3);
const connections = num('connections', 32);
const rotations = num('rotations', 3);
/** Uncounted rotations first (the smoke run skips it: its figures are not kept). */
const warmups = num('warmup', 1);
/**
 * ztwim's foreign CA TTL in seconds: its rotation is prepared at half of it, so the first one
 * waits that long (the smoke run shortens it; the figures are measured with the default).
 */
const caTtlS = num('ca-ttl', 90);
const part = flagValue('part') ?? 'all';
const HINT_S = 60;

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

/** Whether the bundle endpoint on `port` answers a GET now. */
function endpointAnswers(port: number): Promise<boolean> {
  return getOnce(new Agent({ keepAlive: false }), port).then(
    () => true,
    () => false,
  );
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

async function endpointBench(): Promise<string> {
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
    // its output to a file: the measured process never waits on this one to drain a pipe
    const zt = startProc('ztwim server', process.execPath, [ZTWIM_BIN, 'server', 'run', '-config', confPath], {
      outputFile: join(tmp.path, 'ztwim-server.log'),
    });
    stops.push(() => zt.stop());
    await Promise.all([
      eventually("SPIRE's bundle endpoint", () => endpointAnswers(spirePort), { timeoutMs: 30_000, intervalMs: 100 }),
      waitReady("ztwim's bundle endpoint", zt, () => endpointAnswers(ztPort), { timeoutMs: 30_000, intervalMs: 100 }),
    ]);
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
    return [
      `# Federation bundle endpoint (${new Date().toISOString().slice(0, 10)})`,
      '',
      `GET / over keep-alive HTTPS, ${connections} connections, ${durationS} s × ${rounds} rounds (median), https_spiffe, 2-core machine shared with other work.`,
      '',
      '| server | req/s | p99 ms |',
      '|---|--:|--:|',
      ...rows,
      '',
    ].join('\n');
  } finally {
    for (const s of stops.reverse()) await s();
    tmp.cleanup();
  }
}

const ROTATION_HEADING = '# Federation: CA rotation to the workloads of the other domain';
const hexes = (ders: readonly Uint8Array[]): string[] => ders.map((d) => Buffer.from(d).toString('hex'));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** One direction of federation to measure: a foreign server that rotates, a workload of ours that follows. */
interface RotationLeg {
  readonly name: string;
  readonly foreignTd: string;
  /** The foreign server's admin socket (SPIRE's Bundle API; ztwim speaks the same). */
  readonly foreignSocket: string;
  /** Our agent's Workload API socket. */
  readonly workloadSocket: string;
  /** Whether prepare() starts the rotation (SPIRE); ztwim's start on their own CA schedule. */
  readonly startsRotation: boolean;
  prepare(): void;
  /** After the new CA arrived: activate it (SPIRE), so the next prepare can follow. */
  activate(): void;
}

async function measureRotations(leg: RotationLeg, n: number): Promise<number[]> {
  const admin = createUnixGrpcTransport(leg.foreignSocket);
  const wlTransport = createUnixGrpcTransport(leg.workloadSocket, { interceptors: [headersInterceptor({ 'workload.spiffe.io': 'true' })] });
  const ac = new AbortController();
  let atWorkload = new Set<string>();
  const stream = (async () => {
    // Until the agent has synced the workload's entry it answers PermissionDenied: call again.
    while (!ac.signal.aborted) {
      try {
        for await (const r of createClient(SpiffeWorkloadAPI, wlTransport).fetchX509Bundles({}, { signal: ac.signal })) {
          const der = r.bundles[`spiffe://${leg.foreignTd}`];
          atWorkload = new Set(der === undefined ? [] : hexes(splitConcatenatedDer(der)));
        }
      } catch {
        if (!ac.signal.aborted) await sleep(200);
      }
    }
  })();
  const foreign = async (): Promise<string[]> => hexes((await createClient(BundleService, admin).getBundle({})).x509Authorities.map((a) => a.asn1));
  const lags: number[] = [];
  try {
    const deadline = Date.now() + 120_000;
    while (atWorkload.size === 0) {
      if (Date.now() > deadline) throw new Error(`${leg.name}: no ${leg.foreignTd} bundle at the workload`);
      await sleep(100);
    }
    // One warm-up rotation, not counted: the first poll after start-up follows the bootstrap, not the hint.
    for (let i = -warmups; i < n; i++) {
      const before = new Set(await foreign());
      // A prepare right after the last arrival would land just after a poll (the worst case every
      // time): start it at a random point of the poll period instead.
      if (leg.startsRotation) await sleep(Math.random() * (HINT_S / 4) * 1000);
      leg.prepare();
      let t0 = 0;
      let next = '';
      for (const end = Date.now() + 180_000; next === ''; await sleep(100)) {
        if (Date.now() > end) throw new Error(`${leg.name}: the foreign CA never rotated`);
        next = (await foreign()).find((x) => !before.has(x)) ?? '';
        t0 = Date.now();
      }
      for (const end = t0 + (HINT_S * 2 + 30) * 1000; !atWorkload.has(next); await sleep(20)) {
        if (Date.now() > end) throw new Error(`${leg.name}: the new CA never reached the workload`);
      }
      const lag = Date.now() - t0;
      if (i >= 0) lags.push(lag);
      process.stderr.write(`${leg.name}: rotation ${i < 0 ? 'warm-up' : i + 1}: ${lag} ms\n`);
      leg.activate();
    }
  } finally {
    ac.abort();
    await stream;
    admin.close();
    wlTransport.close();
  }
  return lags;
}

const uid = process.getuid?.() ?? 0;
const endpointConf = (port: number | string): string =>
  `federation {\n    bundle_endpoint {\n      address = "127.0.0.1"\n      port = ${port}\n      refresh_hint = "${HINT_S}s"\n    }\n  }\n`;

/** ztwim B federating with ztwim A (90 s CA, --ca-ttl); B's agent serves a workload that federates with A. */
async function ztwimLeg(n: number): Promise<number[]> {
  const a = await startStack({ trustDomain: 'za.test', serverExtra: `ca_ttl = "${caTtlS}s"\n${endpointConf(0)}` });
  const b = await startStack({ trustDomain: 'zb.test' });
  try {
    await federate(b, a);
    const { agent } = await b.startAgent();
    const r = await b.entry.batchCreateEntry({
      entries: [
        {
          parentId: spiffeIdParts(agent.agentId),
          spiffeId: { trustDomain: 'zb.test', path: '/w' },
          selectors: [{ type: 'unix', value: `uid:${uid}` }],
          federatesWith: ['za.test'],
        },
      ],
    });
    if (r.results[0]?.status?.code !== 0) throw new Error(`entry: ${r.results[0]?.status?.message ?? ''}`);
    return await measureRotations(
      {
        name: 'ztwim ← ztwim',
        foreignTd: 'za.test',
        foreignSocket: a.server.socketPath,
        workloadSocket: agent.socketPath,
        startsRotation: false,
        prepare() {},
        activate() {},
      },
      n,
    );
  } finally {
    await b.close();
    await a.close();
  }
}

/** SPIRE B federating with SPIRE A; a spire-agent of B serves a workload that federates with A. */
async function spireLeg(n: number, tmpA: TmpDir, tmpB: TmpDir): Promise<number[]> {
  const aPort = await freePort();
  const a = await startSpireServer(tmpA, { trustDomain: 'sa.test', bindPort: await freePort(), extraServerConfig: endpointConf(aPort) });
  const bPort = await freePort();
  const stops: Array<() => Promise<void>> = [() => a.stop()];
  try {
    const b = await startSpireServer(tmpB, {
      trustDomain: 'sb.test',
      bindPort: bPort,
      extraServerConfig: `federation {\n    federates_with "sa.test" {\n      bundle_endpoint_url = "https://127.0.0.1:${aPort}"\n      bundle_endpoint_profile "https_spiffe" {\n        endpoint_spiffe_id = "spiffe://sa.test/spire/server"\n      }\n    }\n  }\n`,
    });
    stops.unshift(() => b.stop());
    const own = SpiffeBundle.parse(TrustDomain.parse('sa.test'), a.cli(['bundle', 'show', '-format', 'spiffe']));
    b.cli(
      ['bundle', 'set', '-format', 'spiffe', '-id', 'spiffe://sa.test'],
      SpiffeBundle.fromParts(TrustDomain.parse('sa.test'), { x509: own.x509Authorities() }).marshal(),
    );
    b.cli(['federation', 'refresh', '-id', 'sa.test']);
    const agent = await startSpireAgent(tmpB, b, {
      trustDomain: 'sb.test',
      serverPort: bPort,
      beforeStart: (agentId) =>
        void b.cli([
          'entry',
          'create',
          '-parentID',
          agentId,
          '-spiffeID',
          'spiffe://sb.test/w',
          '-selector',
          `unix:uid:${uid}`,
          '-federatesWith',
          'spiffe://sa.test',
        ]),
    });
    stops.unshift(() => agent.stop());
    return await measureRotations(
      {
        name: 'SPIRE ← SPIRE',
        foreignTd: 'sa.test',
        foreignSocket: a.socketPath,
        workloadSocket: agent.socketPath,
        startsRotation: true,
        prepare: () => void a.cli(['localauthority', 'x509', 'prepare']),
        activate() {
          // The prepared authority's ID is the one `localauthority x509 show` lists as prepared.
          const shown = a.cli(['localauthority', 'x509', 'show', '-output', 'json']);
          const id = (JSON.parse(shown) as { prepared?: { authority_id?: string } }).prepared?.authority_id;
          if (id !== undefined) a.cli(['localauthority', 'x509', 'activate', '-authorityID', id]);
        },
      },
      n,
    );
  } finally {
    for (const s of stops) await s();
  }
}

const stats = (xs: number[]): string => {
  const s = [...xs].sort((p, q) => p - q);
  const fmt = (ms: number | undefined): string => ((ms ?? 0) / 1000).toFixed(1);
  return `${fmt(median(s))} | ${fmt(s[0])} | ${fmt(s[s.length - 1])} | ${s.map((x) => fmt(x)).join(', ')}`;
};

async function rotationBench(): Promise<string> {
  const tmpA = makeTmpDir('ztwim-bench-fedrot-a-');
  const tmpB = makeTmpDir('ztwim-bench-fedrot-b-');
  try {
    const spire = await spireLeg(rotations, tmpA, tmpB);
    const zt = await ztwimLeg(rotations);
    return [
      `${ROTATION_HEADING} (${new Date().toISOString().slice(0, 10)})`,
      '',
      `${rotations} rotations each after ${warmups} warm-up, refresh hint ${HINT_S} s on both foreign bundle endpoints (so each side polls every ${HINT_S / 4} s), agents at their default 5 s sync, https_spiffe. Seconds from the new CA in the foreign server's bundle to the same CA in the federated bundle of a workload of the other domain (FetchX509Bundles). SPIRE's prepares start at a random point of the poll period; ztwim's follow its 10 s rotation tick, so their phase against the 15 s poll takes few values: read the spread, not only the median. 2-core machine shared with other work.`,
      '',
      '| federation | median s | min s | max s | each s |',
      '|---|--:|--:|--:|---|',
      `| SPIRE v1.13.0 ← SPIRE v1.13.0 | ${stats(spire)} |`,
      `| ztwim ← ztwim | ${stats(zt)} |`,
      '',
    ].join('\n');
  } finally {
    tmpA.cleanup();
    tmpB.cleanup();
  }
}

async function main(): Promise<void> {
  const file = join(resultsDir(), 'federation.md');
  const old = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const cut = old.indexOf(ROTATION_HEADING);
  let endpointPart = cut >= 0 ? old.slice(0, cut) : old;
  let rotationPart = cut >= 0 ? old.slice(cut) : '';
  if (part === 'all' || part === 'endpoint') endpointPart = await endpointBench();
  if ((part === 'all' || part === 'rotation') && rotations > 0) rotationPart = await rotationBench();
  const report = [endpointPart.trimEnd(), rotationPart.trimEnd()].filter((x) => x !== '').join('\n\n') + '\n';
  process.stdout.write(report);
  writeFileSync(file, report);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
