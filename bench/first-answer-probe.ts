/**
 * Where the time of the first full GetAuthorizedEntries answer after attestation goes (the row of
 * bench/server.ts): one ztwim server (the built CLI, SQLite), N entries of which N/100 belong to
 * one join_token agent, then the agent attests and calls on a new mTLS connection. With --prof-dir
 * the server runs under --inspect and its CPU profile is taken around each call (an attached
 * inspector slows the server down, so it is off otherwise). ZTWIM_PROBE_BIN runs another built
 * `ztwim` (e.g. a copy of the tree before a change), ZTWIM_PROBE_NODE_ARGS adds node flags to it.
 *
 *   node --conditions=ztwim-source --import tsx bench/first-answer-probe.ts [--entries 100000]
 *     [--owned 1000] [--rounds 3] [--prof-dir DIR] [--split] [--spire] [--server-log FILE]
 *
 * --split: each round first times one call on a raw connection of its own (node:net, node:tls,
 * node:http2, no gRPC library), split as the client sees it: `tcp` connect, `tls` (client
 * `secureConnect`: the server's certificate verified; in TLS 1.3 the server checks the client's
 * certificate after that), `headers` (request sent → response headers: the server's side of the
 * handshake, its HTTP/2 session, the peer check and the handler), `body` (→ the last byte), and
 * the CPU time the server's threads (/proc/PID/task/TID/schedstat) and the probe used meanwhile,
 * which the load of a shared machine moves far less than the wall times. The split is taken right
 * after attestation (`split1`, which is then the first answer) and once more for the same agent
 * (`split2`), before the calls through the agent's client (`first` is then the third connection).
 * --spire runs SPIRE's spire-server on the same configuration (no profile), so both servers'
 * splits come from the same probe. --server-log keeps a copy of the server's output.
 */
import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import * as tls from 'node:tls';
import { fromBinary } from '@bufbuild/protobuf';
import { createClient } from '@connectrpc/connect';
import {
  AgentService,
  BundleService,
  EntryService,
  GetAuthorizedEntriesResponseSchema,
  HealthCheckResponse_ServingStatus,
  HealthService,
  createUnixGrpcTransport,
} from '@ztwim/proto';
import { derToPem, TrustDomain } from '@ztwim/spiffe';
import { startProc, waitReady } from '@ztwim/testkit/procs';
import { WebSocket } from 'undici';
import { ServerClient, attestAgent, type AgentCredentials } from '../packages/agent/src/client/server-client.ts';
import { findSpireBinary, freePort } from '../test/interop/lib/spire-admin.ts';
import { ZTWIM_BIN, ztwimNodeFlags } from '../test/interop/lib/peers.ts';
import { makeTmpDir } from '../test/interop/lib/tmp.ts';
import { serverBenchConf, sqliteDataStore } from './lib/server-bench-conf.ts';
import { agentEntries, bulkEntry, type EntryInit } from './lib/server-bench-entries.ts';
import { flagValue, hasFlag, num } from './lib/args.ts';

const TOTAL = num('entries', 100_000);
const OWNED = num('owned', TOTAL / 100);
const PROF_DIR = flagValue('prof-dir');
const ROUNDS = num('rounds', 1);
const SPIRE = hasFlag('spire');
const SPLIT = hasFlag('split');
const SERVER_LOG = flagValue('server-log');
const TD = 'example.org';

/** CPU time (ms) of every thread of process `pid` so far, from /proc/PID/task/TID/schedstat (ns). */
function threadsCpuMs(pid: number): number {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread ended meanwhile
    }
  }
  return ns / 1e6;
}

interface Split {
  readonly tcp: number;
  readonly tls: number;
  readonly headers: number;
  readonly body: number;
  readonly total: number;
  /** CPU time the server's threads and this process used from the connect to the last byte. */
  readonly serverCpu: number;
  readonly clientCpu: number;
  readonly n: number;
}

/** One GetAuthorizedEntries on a connection of its own, timed step by step (see the header). */
async function splitCall(port: number, serverPid: number, roots: readonly Uint8Array[], creds: AgentCredentials): Promise<Split> {
  const pem = creds.svid.marshal();
  const s0 = threadsCpuMs(serverPid);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const sock = net.connect({ host: '127.0.0.1', port });
  await new Promise<void>((res, rej) => {
    sock.once('connect', res);
    sock.once('error', rej);
  });
  const t1 = performance.now();
  const tlsSock = tls.connect({
    socket: sock,
    servername: '',
    ALPNProtocols: ['h2'],
    ca: roots.map((d) => derToPem(d, 'CERTIFICATE')),
    cert: pem.certificates,
    key: pem.privateKey,
    checkServerIdentity: () => undefined,
  });
  await new Promise<void>((res, rej) => {
    tlsSock.once('secureConnect', res);
    tlsSock.once('error', rej);
  });
  const t2 = performance.now();
  const session = http2.connect(`https://127.0.0.1:${port}`, { createConnection: () => tlsSock });
  try {
    const req = session.request({
      ':method': 'POST',
      ':path': '/spire.api.server.entry.v1.Entry/GetAuthorizedEntries',
      'content-type': 'application/grpc+proto',
      te: 'trailers',
    });
    req.end(Buffer.from([0, 0, 0, 0, 0]));
    const chunks: Buffer[] = [];
    let t3 = 0;
    const status = await new Promise<string>((res, rej) => {
      req.once('response', () => (t3 = performance.now()));
      req.on('data', (c: Buffer) => chunks.push(c));
      req.once('trailers', (t) => res(String(t['grpc-status'])));
      req.once('error', rej);
    });
    const t4 = performance.now();
    const serverCpu = threadsCpuMs(serverPid) - s0;
    const c = process.cpuUsage(c0);
    if (status !== '0') throw new Error(`GetAuthorizedEntries: grpc-status ${status}`);
    const body = Buffer.concat(chunks);
    const n = fromBinary(GetAuthorizedEntriesResponseSchema, body.subarray(5, 5 + body.readUInt32BE(1))).entries.length;
    return { tcp: t1 - t0, tls: t2 - t1, headers: t3 - t2, body: t4 - t3, total: t4 - t0, serverCpu, clientCpu: (c.user + c.system) / 1000, n };
  } finally {
    session.close();
  }
}

const fmtSplit = (s: Split): string =>
  `tcp ${s.tcp.toFixed(1)} tls ${s.tls.toFixed(1)} headers ${s.headers.toFixed(1)} body ${s.body.toFixed(1)} = ${s.total.toFixed(1)} (${s.n}), cpu server ${s.serverCpu.toFixed(1)} client ${s.clientCpu.toFixed(1)}`;

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
const [cmd, args] = SPIRE
  ? [findSpireBinary('spire-server'), ['run', '-config', conf]]
  : [
      process.execPath,
      [
        ...ztwimNodeFlags(),
        ...(process.env['ZTWIM_PROBE_NODE_ARGS'] ?? '').split(' ').filter((a) => a !== ''),
        ...(PROF_DIR === undefined ? [] : [`--inspect=127.0.0.1:${inspectPort}`]),
        bin,
        'server',
        'run',
        '-config',
        conf,
      ],
    ];
const proc = startProc('server', cmd, args, {
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
  // The inspector only when profiling: an attached inspector slows the server down.
  const insp = SPIRE || PROF_DIR === undefined ? undefined : await Inspector.open(inspectPort);
  await insp?.send('Profiler.enable');
  await insp?.send('Profiler.setSamplingInterval', { interval: 100 });
  const profiled = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    if (insp !== undefined) await insp.send('Profiler.start');
    try {
      return await fn();
    } finally {
      if (PROF_DIR !== undefined && insp !== undefined) {
        const r = (await insp.send('Profiler.stop')) as { profile: unknown };
        mkdirSync(PROF_DIR, { recursive: true });
        writeFileSync(join(PROF_DIR, `${name}.cpuprofile`), JSON.stringify(r.profile));
      }
    }
  };
  for (let round = 0; round < ROUNDS; round++) {
    const boot = new ServerClient(opts);
    const ta = performance.now();
    const creds = await attestAgent(boot, { type: 'join_token', token: tokens[round]! });
    const attest = performance.now() - ta;
    boot.close();
    let split: { split1: string; split2: string } | undefined;
    if (SPLIT) {
      const split1 = await profiled(`r${round}-split1`, () => splitCall(port, proc.pid, roots, creds));
      await delay(500);
      const split2 = await profiled(`r${round}-split2`, () => splitCall(port, proc.pid, roots, creds));
      await delay(500);
      split = { split1: fmtSplit(split1), split2: fmtSplit(split2) };
    }
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
        attest: attest.toFixed(1),
        first: first[0].toFixed(1),
        n: first[1],
        second: second[0].toFixed(1),
        newConnSameAgent: third.toFixed(1),
        n3: r3.entries.length,
        ...split,
      }),
    );
  }
  insp?.close();
  transport.close();
} finally {
  await proc.stop();
  if (SERVER_LOG !== undefined) copyFileSync(join(tmp.path, 'server.log'), SERVER_LOG);
  tmp.cleanup();
}
