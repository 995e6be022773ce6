/**
 * Where the time of the first full GetAuthorizedEntries answer after attestation goes (the row of
 * bench/server.ts): one ztwim server (the built CLI, SQLite), N entries of which N/100 belong to
 * one join_token agent, then the agent attests and calls on a new mTLS connection. The server runs
 * under --inspect; its CPU profile is taken around the first call and around a later one.
 *
 *   node --conditions=ztwim-source --import tsx bench/first-answer-probe.ts [--entries 100000] [--owned 1000] [--prof-dir DIR] [--rounds 3]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { createClient } from '@connectrpc/connect';
import { AgentService, BundleService, EntryService, HealthCheckResponse_ServingStatus, HealthService, createUnixGrpcTransport } from '@ztwim/proto';
import { TrustDomain } from '@ztwim/spiffe';
import { startProc, waitReady } from '@ztwim/testkit/procs';
import { WebSocket } from 'undici';
import { ServerClient, attestAgent } from '../packages/agent/src/client/server-client.ts';
import { freePort } from '../test/interop/lib/spire-admin.ts';
import { ZTWIM_BIN, ztwimNodeFlags } from '../test/interop/lib/peers.ts';
import { makeTmpDir } from '../test/interop/lib/tmp.ts';
import { serverBenchConf, sqliteDataStore } from './lib/server-bench-conf.ts';
import { agentEntries, bulkEntry, type EntryInit } from './lib/server-bench-entries.ts';
import { flagValue, num } from './lib/args.ts';

const TOTAL = num('entries', 100_000);
const OWNED = num('owned', TOTAL / 100);
const PROF_DIR = flagValue('prof-dir');
const ROUNDS = num('rounds', 1);
const TD = 'example.org';

/** A minimal Chrome DevTools protocol client on the server's inspector. */
class Inspector {
  readonly #ws: WebSocket;
  #id = 0;
  readonly #pending = new Map<number, (r: unknown) => void>();
  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.addEventListener('message', (ev) => {
      const m = JSON.parse(String(ev.data)) as { id?: number; result?: unknown };
      if (m.id !== undefined) this.#pending.get(m.id)?.(m.result);
    });
  }
  static async open(port: number): Promise<Inspector> {
    const list = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as Array<{ webSocketDebuggerUrl: string }>;
    const ws = new WebSocket(list[0]!.webSocketDebuggerUrl);
    await new Promise((res, rej) => {
      ws.addEventListener('open', res, { once: true });
      ws.addEventListener('error', rej, { once: true });
    });
    return new Inspector(ws);
  }
  send(method: string, params: object = {}): Promise<unknown> {
    const id = ++this.#id;
    return new Promise((res) => {
      this.#pending.set(id, res);
      this.#ws.send(JSON.stringify({ id, method, params }));
    });
  }
  close(): void {
    this.#ws.close();
  }
}

const tmp = makeTmpDir('ztwim-first-answer-');
const dataDir = join(tmp.path, 'data');
mkdirSync(dataDir, { recursive: true });
const socketPath = join(tmp.path, 'api.sock');
const port = await freePort();
const inspectPort = await freePort();
const conf = tmp.write('server.conf', serverBenchConf({ port, socketPath, trustDomain: TD, dataDir, dataStore: sqliteDataStore(dataDir) }));
const bin = process.env['ZTWIM_PROBE_BIN'] ?? ZTWIM_BIN;
const proc = startProc('server', process.execPath, [...ztwimNodeFlags(), `--inspect=127.0.0.1:${inspectPort}`, bin, 'server', 'run', '-config', conf], {
  cwd: tmp.path,
  outputFile: join(tmp.path, 'server.log'),
});
try {
  const transport = createUnixGrpcTransport(socketPath, { defaultTimeoutMs: 300_000 });
  const health = createClient(HealthService, transport);
  await waitReady(
    'server healthy',
    proc,
    async () => ((await health.check({}).catch(() => undefined))?.status === HealthCheckResponse_ServingStatus.SERVING ? true : undefined),
    {
      timeoutMs: 60_000,
      intervalMs: 20,
    },
  );
  const entry = createClient(EntryService, transport);
  const agent = createClient(AgentService, transport);
  const bundle = createClient(BundleService, transport);
  const create = async (list: EntryInit[]): Promise<void> => {
    for (let i = 0; i < list.length; i += 50) {
      const r = await entry.batchCreateEntry({ entries: list.slice(i, i + 50) });
      if (r.results.some((x) => x.status?.code !== 0)) throw new Error('create failed');
    }
  };
  const tokens = Array.from({ length: ROUNDS }, (_, r) => `probe-token-${r}`);
  for (const token of tokens) {
    await agent.createJoinToken({ ttl: 3600, token });
    const owned = agentEntries(TD, `/spire/agent/join_token/${token}`, `/${token}`, OWNED);
    await create(owned);
  }
  const bulk = Array.from({ length: TOTAL - OWNED * ROUNDS }, (_, i) => bulkEntry(TD, i));
  await create(bulk);
  const b = await bundle.getBundle({});
  const roots = b.x509Authorities.map((x) => x.asn1);
  const opts = { host: '127.0.0.1', port, trustDomain: TrustDomain.parse(TD), roots };
  await delay(6000); // the index's periodic refresh and GC after the import
  const insp = await Inspector.open(inspectPort);
  await insp.send('Profiler.enable');
  await insp.send('Profiler.setSamplingInterval', { interval: 100 });
  const profiled = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    if (PROF_DIR !== undefined) await insp.send('Profiler.start');
    try {
      return await fn();
    } finally {
      if (PROF_DIR !== undefined) {
        const r = (await insp.send('Profiler.stop')) as { profile: unknown };
        mkdirSync(PROF_DIR, { recursive: true });
        writeFileSync(join(PROF_DIR, `${name}.cpuprofile`), JSON.stringify(r.profile));
      }
    }
  };
  for (let round = 0; round < ROUNDS; round++) {
    const boot = new ServerClient(opts);
    const creds = await attestAgent(boot, { type: 'join_token', token: tokens[round]! });
    boot.close();
    const c = new ServerClient(opts, creds);
    const timeCall = async (): Promise<[number, number]> => {
      const t0 = performance.now();
      const r = await c.entry.getAuthorizedEntries({});
      return [performance.now() - t0, r.entries.length];
    };
    const first = await profiled(`r${round}-first`, timeCall);
    await delay(500);
    const second = await profiled(`r${round}-second`, timeCall);
    await delay(500);
    const c2 = new ServerClient(opts, creds);
    const t0 = performance.now();
    const r3 = await profiled(`r${round}-newconn`, () => c2.entry.getAuthorizedEntries({}));
    const third = performance.now() - t0;
    c.close();
    c2.close();
    console.log(
      JSON.stringify({
        round,
        first: first[0].toFixed(1),
        n: first[1],
        second: second[0].toFixed(1),
        newConnSameAgent: third.toFixed(1),
        n3: r3.entries.length,
      }),
    );
  }
  insp.close();
  transport.close();
} finally {
  await proc.stop();
  tmp.cleanup();
}
