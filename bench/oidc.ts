/**
 * OIDC discovery provider benchmark: ztwim next to SPIRE's own oidc-discovery-provider.
 *
 *   node --conditions=ztwim-source --import tsx bench/oidc.ts [--duration 5] [--rounds 3] [--connections 64] [--rotations 6]
 *
 * 1. Throughput and latency of GET /keys and GET /.well-known/openid-configuration with 64
 *    concurrent keep-alive connections (autocannon, same settings for every server), three columns:
 *    - SPIRE v1.13.0 `oidc-discovery-provider` (the real binary, `server_api` source on the admin
 *      socket of a real `spire-server`, `insecure_addr`, `allow_insecure_scheme`, domains localhost);
 *    - ztwim's provider serving the same JWT keys, taken from that spire-server's bundle;
 *    - a minimal static Node HTTP server serving ztwim's bytes (the floor).
 *    Every server runs in its own process; the load generator is this process. The servers take
 *    turns (rounds, order rotated each round) so load from elsewhere on the machine hits all of them
 *    alike; each figure is the median over the rounds.
 * 2. Time from a JWT key rotation on the server to the new key at /keys:
 *    - SPIRE: `spire-server localauthority jwt prepare` returns → the kid appears at SPIRE's
 *      provider /keys (server_api source, default poll_interval 10 s);
 *    - ztwim: an in-process ztwim server with the composition `ztwim up` uses (CaManager → bundle in
 *      the datastore → CallbackJwksSource polling it every 1 s → provider). Its clock is the wall clock
 *      plus a jump, so the CA manager's real rotation (prepare at ½ of the key's life, activate at ⅚)
 *      happens on demand; t0 is the CA manager's "JWT key prepared" log line. While it runs, a minter
 *      fetches /keys, then mints a JWT-SVID over the admin API, and fails the bench if any token
 *      carries a kid that was not in the /keys it fetched just before: keys are published before
 *      anything is signed with them;
 *    - ztwim pushed (StaticJwksSource.set) and file-polled (FileJwksSource, 100 ms) sources.
 *
 * SPIRE binaries: ~/.cache/ztwim/spire-v1.13.0/bin (scripts/setup-interop.sh); when the provider or
 * the server is missing the bench builds it there itself (go build from test/interop/spire, the Go
 * proxy refuses `go install` of SPIRE); if that fails the table says so and shows ztwim and the floor.
 *
 * Prints a Markdown report and writes it to bench/results/oidc.md.
 */
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { createServer, request, type IncomingMessage } from 'node:http';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { createClient } from '@connectrpc/connect';
import { createLogger, parseConfigText, sleepWith, type Cancel, type Clock } from '@ztwim/core';
import { FileJwksSource, StaticJwksSource, startOidcProvider, type JsonWebKey } from '@ztwim/oidc';
import { SvidService, createUnixGrpcTransport } from '@ztwim/proto';
import { buildServerConfig, startServer } from '@ztwim/server';
import { serverBundleJwksSource } from '@ztwim/cli';
import { REPO_ROOT, SPIRE_VERSION, cacheDir } from '../test/interop/lib/peers.ts';
import { startSpireServer, type SpireServer } from '../test/interop/lib/spire-server.ts';
import { makeTmpDir, type TmpDir } from '../test/interop/lib/tmp.ts';
import { writeResults } from './lib/results-dir.ts';
import { num } from './lib/args.ts';
import { freePort, startProc, waitReady } from '@ztwim/testkit/procs';

const here = fileURLToPath(import.meta.url);

function key(type: 'ec' | 'rsa'): JsonWebKey {
  const pair = type === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { ...(pair.publicKey.export({ format: 'jwk' }) as Record<string, unknown>), kid: randomBytes(16).toString('hex') } as JsonWebKey;
}

function fetchBody(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: Buffer; type: string }> {
  return new Promise((resolve, reject) => {
    request(url, { headers, agent: false }, (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), type: String(res.headers['content-type']) }));
      res.on('error', reject);
    })
      .on('error', reject)
      .end();
  });
}

async function kidsAt(url: string): Promise<Set<string>> {
  const r = await fetchBody(url, { host: 'localhost' });
  if (r.status !== 200) return new Set();
  const doc = JSON.parse(r.body.toString('utf8')) as { keys?: Array<{ kid?: string }> };
  return new Set((doc.keys ?? []).map((k) => k.kid ?? ''));
}

// ---------------------------------------------------------------------------------------------
// Child: ztwim's provider (static key set handed over by the parent) and the static floor server.
async function serve(): Promise<void> {
  const keys = await new Promise<JsonWebKey[]>((resolve) => process.once('message', (m) => resolve((m as { keys: JsonWebKey[] }).keys)));
  const source = new StaticJwksSource(keys);
  // Same settings as the SPIRE provider below: no jwt_issuer (derived from the request), set_key_use.
  const p = await startOidcProvider({ domains: ['localhost'], insecureAddr: '127.0.0.1:0', allowInsecureScheme: true, setKeyUse: true }, { source });
  const body = await fetchBody(`${p.urls.http}/keys`, { host: 'localhost' });
  const disc = await fetchBody(`${p.urls.http}/.well-known/openid-configuration`, { host: 'localhost' });
  // The floor: a minimal static server with the same bytes and content type.
  const files = new Map([
    ['/keys', body.body],
    ['/.well-known/openid-configuration', disc.body],
  ]);
  const floor = createServer((req, res) => {
    const b = files.get(req.url ?? '');
    if (b === undefined) {
      res.writeHead(404);
      res.end();
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': b.length });
    res.end(b);
  });
  await new Promise<void>((resolve) => floor.listen(0, '127.0.0.1', resolve));
  const floorPort = (floor.address() as { port: number }).port;
  process.send?.({ provider: p.urls.http, floor: `http://127.0.0.1:${floorPort}` });
  process.on('message', (m: unknown) => {
    if (m === 'stop') {
      floor.close();
      void p.close().then(() => process.exit(0));
    }
  });
}

// ---------------------------------------------------------------------------------------------
// SPIRE: binaries, server, provider.
interface Spire {
  server: SpireServer;
  provider: ChildProcess;
  url: string;
  logs: () => string;
  stop(): Promise<void>;
}

/** Makes sure spire-server and oidc-discovery-provider exist; builds what is missing. Returns the bin dir or why not. */
function ensureSpireBins(): { bin: string } | { missing: string } {
  const bin = join(cacheDir(), `spire-${SPIRE_VERSION}`, 'bin');
  const want: Array<[string, string]> = [
    ['spire-server', 'github.com/spiffe/spire/cmd/spire-server'],
    ['oidc-discovery-provider', 'github.com/spiffe/spire/support/oidc-discovery-provider'],
  ];
  const todo = want.filter(([name]) => !existsSync(join(bin, name)));
  if (todo.length === 0) return { bin };
  process.stderr.write(`[bench] building SPIRE ${SPIRE_VERSION} ${todo.map(([n]) => n).join(', ')} into ${bin} (several minutes the first time)\n`);
  try {
    mkdirSync(bin, { recursive: true });
    execFileSync('go', ['build', '-o', `${bin}/`, ...todo.map(([, pkg]) => pkg)], {
      cwd: join(REPO_ROOT, 'test', 'interop', 'spire'),
      env: { ...process.env, PATH: `${process.env['PATH'] ?? ''}:/usr/local/go/bin`, GOSUMDB: 'off', GOFLAGS: '-mod=mod' },
      stdio: ['ignore', 'inherit', 'inherit'],
      timeout: 30 * 60_000,
    });
  } catch (e) {
    return { missing: `go build failed: ${(e as Error).message.split('\n')[0] ?? ''}` };
  }
  const still = want.filter(([name]) => !existsSync(join(bin, name)));
  return still.length === 0 ? { bin } : { missing: `${still.map(([n]) => n).join(', ')} not built` };
}

async function startSpire(tmp: TmpDir, bin: string): Promise<Spire> {
  process.env['ZTWIM_SPIRE_SERVER'] ??= join(bin, 'spire-server');
  const server = await startSpireServer(tmp);
  const port = await freePort();
  const conf = tmp.write(
    'oidc-discovery-provider.conf',
    `log_level = "error"
domains = ["localhost"]
insecure_addr = "127.0.0.1:${port}"
allow_insecure_scheme = true
set_key_use = true
server_api {
  address = "unix://${server.socketPath}"
}
`,
  );
  const provider = startProc('oidc-discovery-provider', join(bin, 'oidc-discovery-provider'), ['-config', conf]);
  const stop = async (): Promise<void> => {
    await provider.stop();
    await server.stop();
  };
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitReady('oidc-discovery-provider serving keys', provider, async () => (await kidsAt(`${url}/keys`).catch(() => new Set<string>())).size > 0, {
      timeoutMs: 30_000,
      intervalMs: 100,
    });
  } catch (e) {
    await stop();
    throw e;
  }
  return { server, provider: provider.child, url, logs: provider.output, stop };
}

/** The JWT authorities of the spire-server's bundle, as JWKs without `use` (the provider sets it). */
function spireJwtKeys(server: SpireServer): JsonWebKey[] {
  const doc = JSON.parse(server.cli(['bundle', 'show', '-format', 'spiffe'])) as { keys: Array<Record<string, unknown>> };
  return doc.keys.filter((k) => k['use'] === 'jwt-svid').map(({ use: _use, ...k }) => k as unknown as JsonWebKey);
}

interface Prepared {
  authorityId: string;
}

function spirePrepare(server: SpireServer): Prepared {
  const out = JSON.parse(server.cli(['localauthority', 'jwt', 'prepare', '-output', 'json'])) as { prepared_authority?: { authority_id?: string } };
  const id = out.prepared_authority?.authority_id;
  if (id === undefined || id === '') throw new Error(`localauthority jwt prepare: no authority id in ${JSON.stringify(out)}`);
  return { authorityId: id };
}

// ---------------------------------------------------------------------------------------------
// Load.
interface Row {
  server: string;
  path: string;
  bytes: number;
  rps: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
}

async function load(server: string, base: string, path: string, duration: number, connections: number): Promise<Row> {
  const bytes = (await fetchBody(`${base}${path}`, { host: 'localhost' })).body.length;
  const opts = { url: `${base}${path}`, connections, duration, pipelining: 1, headers: { host: 'localhost' } };
  await autocannon({ ...opts, duration: 1 }); // warm-up
  const r = await autocannon(opts);
  return { server, path, bytes, rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, non2xx: r.non2xx, errors: r.errors };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n === 0 ? NaN : n % 2 === 1 ? (s[(n - 1) / 2] as number) : ((s[n / 2 - 1] as number) + (s[n / 2] as number)) / 2;
}

/** One row per server and path: medians over the rounds. */
function combine(runs: Row[]): Row[] {
  const out: Row[] = [];
  for (const r of runs) {
    if (out.some((o) => o.server === r.server && o.path === r.path)) continue;
    const same = runs.filter((x) => x.server === r.server && x.path === r.path);
    out.push({
      server: r.server,
      path: r.path,
      bytes: r.bytes,
      rps: median(same.map((x) => x.rps)),
      p50: median(same.map((x) => x.p50)),
      p99: median(same.map((x) => x.p99)),
      non2xx: same.reduce((a, x) => a + x.non2xx, 0),
      errors: same.reduce((a, x) => a + x.errors, 0),
    });
  }
  return out;
}

function stats(ms: number[]): { mean: number; p50: number; p99: number; max: number } {
  const s = [...ms].sort((a, b) => a - b);
  const at = (q: number): number => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
  return { mean: s.reduce((a, b) => a + b, 0) / s.length, p50: at(0.5), p99: at(0.99), max: s[s.length - 1] ?? NaN };
}

async function waitForKid(url: string, kid: string, deadlineMs: number, pauseMs = 0): Promise<void> {
  for (;;) {
    if ((await kidsAt(url)).has(kid)) return;
    if (performance.now() > deadlineMs) throw new Error(`kid ${kid} did not appear at ${url}`);
    if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
  }
}

// ---------------------------------------------------------------------------------------------
// Rotation: SPIRE.
async function spireRotation(spire: Spire, iterations: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const p = spirePrepare(spire.server);
    const t0 = performance.now();
    await waitForKid(`${spire.url}/keys`, p.authorityId, t0 + 60_000, 10);
    out.push(performance.now() - t0);
    // Make the prepared key the active one so the next prepare makes a new one.
    spire.server.cli(['localauthority', 'jwt', 'activate', '-authorityID', p.authorityId]);
    // Start the next rotation at a uniformly random phase of the provider's 10 s poll.
    await new Promise((r) => setTimeout(r, Math.random() * 10_000));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Rotation: ztwim server → provider, composed as `ztwim up` does.

/** The wall clock plus an offset that jump() moves forward, firing every timer that falls due. */
class JumpClock implements Clock {
  private offset = 0;
  private seq = 0;
  private readonly timers = new Map<number, { at: number; fn: () => void; t: NodeJS.Timeout }>();
  now(): Date {
    return new Date(this.nowMs());
  }
  nowMs(): number {
    return Date.now() + this.offset;
  }
  setTimer(ms: number, fn: () => void): Cancel {
    const id = ++this.seq;
    const t = setTimeout(() => this.fire(id), Math.max(0, ms));
    t.unref();
    this.timers.set(id, { at: this.nowMs() + Math.max(0, ms), fn, t });
    return () => {
      clearTimeout(t);
      this.timers.delete(id);
    };
  }
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return sleepWith(this, ms, signal);
  }
  jump(ms: number): void {
    this.offset += ms;
    const now = this.nowMs();
    for (const [id, e] of [...this.timers]) if (e.at <= now) this.fire(id);
  }
  private fire(id: number): void {
    const e = this.timers.get(id);
    if (e === undefined) return;
    this.timers.delete(id);
    clearTimeout(e.t);
    e.fn();
  }
}

interface ZtwimRotation {
  latencies: number[];
  tokens: number;
  kidsSigned: number;
  violations: string[];
  gapHours: number;
}

async function ztwimRotation(iterations: number): Promise<ZtwimRotation> {
  const tmp = makeTmpDir('ztwim-oidc-bench-');
  const clock = new JumpClock();
  // t0: the CA manager's own "JWT key prepared" line (logged right after the key joins its bundle).
  const events: Array<{ msg: string; kid: string; at: number }> = [];
  let onEvent: (() => void) | undefined;
  const log = createLogger({
    level: 'info',
    destination: {
      write(line: string) {
        if (!line.includes('JWT key')) return;
        const j = JSON.parse(line) as { msg?: string; kid?: string };
        events.push({ msg: j.msg ?? '', kid: j.kid ?? '', at: performance.now() });
        onEvent?.();
      },
    },
  });
  const nextEvent = (msg: string, after: number, deadline: number): Promise<{ kid: string; at: number }> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const e = events.slice(after).find((x) => x.msg === msg);
        if (e !== undefined) {
          onEvent = undefined;
          clearTimeout(t);
          resolve(e);
        }
      };
      const t = setTimeout(() => reject(new Error(`no "${msg}" log line`)), deadline);
      onEvent = check;
      check();
    });
  const sock = join(tmp.path, 'admin.sock');
  const conf = `server {
  bind_address = "127.0.0.1"
  bind_port = 0
  socket_path = "${sock}"
  trust_domain = "example.org"
  data_dir = "${join(tmp.path, 'server')}"
  log_level = "info"
}
plugins {
  DataStore "sql" {
    plugin_data {
      database_type = "sqlite3"
      connection_string = "${join(tmp.path, 'server', 'datastore.sqlite3')}"
    }
  }
  KeyManager "memory" {
    plugin_data {}
  }
  NodeAttestor "join_token" {
    plugin_data {}
  }
}
telemetry {
  disabled = true
}
`;
  const server = await startServer(buildServerConfig(parseConfigText(conf, 'hcl'), 'bench (server)', {}, tmp.path), { clock, log });
  // The very source `ztwim up` builds (@ztwim/cli serverBundleJwksSource): the bundle polled every 1 s.
  const source = serverBundleJwksSource(server);
  const oidc = await startOidcProvider({ domains: ['localhost'], insecureAddr: '127.0.0.1:0', allowInsecureScheme: true, setKeyUse: true }, { source });
  const keysUrl = `${oidc.urls.http}/keys`;
  const transport = createUnixGrpcTransport(sock);
  const svid = createClient(SvidService, transport);

  // The minter: /keys first, then a token; its kid must have been in that /keys.
  const violations: string[] = [];
  const signedKids = new Set<string>();
  let tokens = 0;
  let minting = true;
  const minter = (async () => {
    while (minting) {
      const published = await kidsAt(keysUrl);
      const r = await svid.mintJWTSVID({ id: { trustDomain: 'example.org', path: '/bench/minter' }, audience: ['bench'] });
      const header = JSON.parse(Buffer.from((r.svid?.token ?? '').split('.')[0] ?? '', 'base64url').toString('utf8')) as { kid?: string };
      const kid = header.kid ?? '';
      tokens++;
      signedKids.add(kid);
      if (!published.has(kid)) violations.push(`token signed with kid ${kid} before it was at /keys (published: ${[...published].join(', ')})`);
      await new Promise((r2) => setTimeout(r2, 20));
    }
  })();

  const latencies: number[] = [];
  const H = 3600_000;
  const MARGIN = 60_000; // past each threshold by a minute of virtual time
  // ca_ttl is the default 24 h: prepare at ½ life (12 h), activate at ⅚ (20 h) of the current key.
  let keyStart = clock.nowMs();
  try {
    for (const deadline = performance.now() + 10_000; (await kidsAt(keysUrl)).size === 0;) {
      if (performance.now() > deadline) throw new Error('the provider has no keys 10 s after start');
      await new Promise((r) => setTimeout(r, 50));
    }
    for (let i = 0; i < iterations; i++) {
      const before = events.length;
      clock.jump(keyStart + 12 * H + MARGIN - clock.nowMs());
      const prepared = await nextEvent('JWT key prepared', before, 30_000);
      await waitForKid(keysUrl, prepared.kid, prepared.at + 10_000);
      latencies.push(performance.now() - prepared.at);
      const beforeAct = events.length;
      clock.jump(keyStart + 20 * H + MARGIN - clock.nowMs());
      await nextEvent('JWT key activated', beforeAct, 30_000);
      keyStart = keyStart + 12 * H + MARGIN; // at most the new key's issuedAt (its prepare time)
      // Let the minter sign with the new key before the next rotation, at a random phase of the 1 s poll.
      const deadline = performance.now() + 10_000;
      while (!signedKids.has(prepared.kid) && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      if (!signedKids.has(prepared.kid)) throw new Error(`no token was signed with the activated key ${prepared.kid}`);
      await new Promise((r) => setTimeout(r, Math.random() * 1000));
    }
  } finally {
    minting = false;
    await minter.catch(() => undefined);
    transport.close();
    await oidc.close();
    source.close();
    await server.close();
    tmp.cleanup();
  }
  return { latencies, tokens, kidsSigned: signedKids.size, violations, gapHours: 20 - 12 };
}

// ---------------------------------------------------------------------------------------------
// Rotation: pushed and file-polled sources (the provider alone).
async function sourceLatency(iterations: number): Promise<{ pushed: number[]; file: number[]; pollMs: number }> {
  const base = [key('ec')];
  const pushedSrc = new StaticJwksSource(base);
  const p = await startOidcProvider({ domains: ['localhost'], insecureAddr: '127.0.0.1:0' }, { source: pushedSrc });
  const pushed: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const k = key('ec');
    const t0 = performance.now();
    pushedSrc.set([...base, k]);
    await waitForKid(`${p.urls.http}/keys`, k.kid as string, t0 + 5000);
    pushed.push(performance.now() - t0);
  }
  await p.close();
  const pollMs = 100;
  const dir = mkdtempSync(join(tmpdir(), 'ztwim-oidc-bench-'));
  const path = join(dir, 'bundle.json');
  const bundle = (keys: JsonWebKey[]): string => JSON.stringify({ keys: keys.map((k) => ({ use: 'jwt-svid', ...k })) });
  writeFileSync(path, bundle(base));
  const fileSrc = new FileJwksSource(path, { pollIntervalMs: pollMs });
  // The provider runs the source's poll loop; its first read publishes the base key.
  const p2 = await startOidcProvider({ domains: ['localhost'], insecureAddr: '127.0.0.1:0' }, { source: fileSrc });
  await new Promise<void>((resolve) => (fileSrc.current() !== undefined ? resolve() : fileSrc.onChange(() => resolve())));
  const file: number[] = [];
  for (let i = 0; i < Math.min(iterations, 15); i++) {
    const k = key('ec');
    const t0 = performance.now();
    writeFileSync(`${path}.tmp`, bundle([...base, k]));
    renameSync(`${path}.tmp`, path);
    await waitForKid(`${p2.urls.http}/keys`, k.kid as string, t0 + 5000);
    file.push(performance.now() - t0);
  }
  fileSrc.close();
  await p2.close();
  rmSync(dir, { recursive: true, force: true });
  return { pushed, file, pollMs };
}

// ---------------------------------------------------------------------------------------------
async function main(): Promise<void> {
  const duration = num('duration', 5);
  const rounds = num('rounds', 3);
  const connections = num('connections', 64);
  const rotations = num('rotations', 6);
  const tmp = makeTmpDir('ztwim-oidc-bench-spire-');
  const bins = ensureSpireBins();
  let spire: Spire | undefined;
  let spireWhy = '';
  let keys: JsonWebKey[];
  if ('bin' in bins) {
    spire = await startSpire(tmp, bins.bin);
    // Two JWT keys on both sides: the active one and a prepared one.
    const p = spirePrepare(spire.server);
    await waitForKid(`${spire.url}/keys`, p.authorityId, performance.now() + 30_000, 50);
    keys = spireJwtKeys(spire.server);
  } else {
    spireWhy = bins.missing;
    keys = [key('ec'), key('ec')];
  }
  const child = fork(here, ['serve'], { execArgv: ['--conditions=ztwim-source', '--import', 'tsx'], stdio: 'inherit' });
  child.send({ keys });
  const info = await new Promise<{ provider: string; floor: string }>((resolve, reject) => {
    child.once('message', (m) => resolve(m as never));
    child.once('exit', (c) => reject(new Error(`server process exited with ${String(c)}`)));
  });
  const runs: Row[] = [];
  let sameKeys = '';
  let spireRot: number[] = [];
  try {
    if (spire !== undefined) {
      const a = [...(await kidsAt(`${spire.url}/keys`))].sort().join(',');
      const b = [...(await kidsAt(`${info.provider}/keys`))].sort().join(',');
      if (a !== b) throw new Error(`the providers serve different key sets: SPIRE ${a} / ztwim ${b}`);
      sameKeys = a;
    }
    const servers: Array<[string, string]> = [
      ...(spire === undefined ? [] : ([['SPIRE oidc-discovery-provider', spire.url]] as Array<[string, string]>)),
      ['ztwim oidc', info.provider],
      ['node static floor', info.floor],
    ];
    for (const path of ['/keys', '/.well-known/openid-configuration']) {
      for (let round = 0; round < rounds; round++) {
        for (let i = 0; i < servers.length; i++) {
          const [name, url] = servers[(i + round) % servers.length] as [string, string];
          runs.push(await load(name, url, path, duration, connections));
        }
      }
    }
  } finally {
    child.send('stop');
  }
  if (spire !== undefined) {
    try {
      spireRot = await spireRotation(spire, rotations);
    } finally {
      await spire.stop();
    }
  }
  tmp.cleanup();
  const rows = combine(runs);
  const zr = await ztwimRotation(rotations * 2);
  const rot = await sourceLatency(30);

  const f1 = (n: number): string => n.toFixed(1);
  const f2 = (n: number): string => n.toFixed(2);
  const statRow = (name: string, xs: number[]): string => {
    const s = stats(xs);
    return `| ${name} | ${xs.length} | ${f2(s.mean)} | ${f2(s.p50)} | ${f2(s.p99)} | ${f2(s.max)} |`;
  };
  const get = (server: string, path: string): Row | undefined => rows.find((x) => x.server === server && x.path === path);
  const cell = (r: Row | undefined): string => (r === undefined ? `not measured | —` : `${Math.round(r.rps)} | ${f1(r.p99)}`);
  const verdict = (path: string): string => {
    const s = get('SPIRE oidc-discovery-provider', path);
    const z = get('ztwim oidc', path);
    if (s === undefined || z === undefined) return 'no SPIRE column';
    return `${(z.rps / s.rps).toFixed(2)}× SPIRE's req/s, p99 ${z.p99 <= s.p99 ? 'no worse' : `worse (+${f1(z.p99 - s.p99)} ms)`}`;
  };
  const lines = [
    `# OIDC discovery provider benchmark`,
    '',
    `${new Date().toISOString()} · Node ${process.version} · ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}) · autocannon, ${connections} keep-alive connections, ${duration} s per run (after 1 s warm-up), ${rounds} interleaved rounds per server and path, medians shown; each server in its own process on 127.0.0.1, load generator on the same machine (2 cores shared with other work, so absolute figures move between runs).`,
    '',
    spire === undefined
      ? `SPIRE ${SPIRE_VERSION} \`oidc-discovery-provider\` could not be installed (${spireWhy}); the SPIRE column is empty and the static Node server is the floor.`
      : `SPIRE column: the real \`oidc-discovery-provider\` (SPIRE ${SPIRE_VERSION}, built from source by scripts/setup-interop.sh) with \`server_api\` on a real \`spire-server\`'s admin socket, \`insecure_addr\`, \`allow_insecure_scheme\`, \`set_key_use\`, domains \`localhost\`. ztwim serves the same JWT keys (taken from that server's bundle; kids ${sameKeys}) with the same settings. The floor serves ztwim's bytes.`,
    '',
    '## Throughput and latency',
    '',
    '| path | SPIRE req/s | SPIRE p99 ms | ztwim req/s | ztwim p99 ms | floor req/s | floor p99 ms | ztwim vs SPIRE |',
    '|---|--:|--:|--:|--:|--:|--:|---|',
    ...['/keys', '/.well-known/openid-configuration'].map(
      (path) =>
        `| \`${path}\` | ${cell(get('SPIRE oidc-discovery-provider', path))} | ${cell(get('ztwim oidc', path))} | ${cell(get('node static floor', path))} | ${verdict(path)} |`,
    ),
    '',
    '| server | path | body bytes | req/s | p50 ms | p99 ms | non-2xx | errors |',
    '|---|---|--:|--:|--:|--:|--:|--:|',
    ...rows.map((r) => `| ${r.server} | \`${r.path}\` | ${r.bytes} | ${Math.round(r.rps)} | ${f1(r.p50)} | ${f1(r.p99)} | ${r.non2xx} | ${r.errors} |`),
    '',
    '## JWT key rotation → new key at /keys',
    '',
    '| server → provider | samples | mean ms | p50 ms | p99 ms | max ms |',
    '|---|--:|--:|--:|--:|--:|',
    spire === undefined
      ? '| SPIRE (not installed) | 0 | — | — | — | — |'
      : statRow('SPIRE: `localauthority jwt prepare` → provider (`server_api`, default poll_interval 10 s)', spireRot),
    statRow('ztwim: CA manager prepare → provider (`ztwim up` composition, 1 s bundle poll)', zr.latencies),
    statRow('ztwim provider alone: pushed (StaticJwksSource.set)', rot.pushed),
    statRow(`ztwim provider alone: file (FileJwksSource, ${rot.pollMs} ms poll)`, rot.file),
    '',
    `SPIRE's t0 is the return of \`spire-server localauthority jwt prepare\`; its provider polls the server API every 10 s by default (\`poll_interval\` in \`server_api\`), so the wait is up to 10 s. ztwim's t0 is the CA manager's "JWT key prepared" log line (the key has joined the CA's bundle); the wait is the datastore publish plus up to one 1 s poll of \`ztwim up\`'s bundle source.`,
    '',
    `Published before use (ztwim): ${zr.tokens} JWT-SVIDs minted over the admin API during ${zr.latencies.length} real CA rotations (${zr.kidsSigned} signing keys), each one after fetching /keys; ${zr.violations.length === 0 ? "every token's kid was already in the /keys fetched before it" : `${zr.violations.length} VIOLATIONS`}. The CA manager activates a prepared key ${zr.gapHours} h (⅓ of ca_ttl 24 h) after preparing it; the largest publish delay measured was ${f2(stats(zr.latencies).max)} ms. The bench compresses those hours with a clock jump after the key is seen at /keys.`,
    '',
  ];
  const md = lines.join('\n');
  process.stdout.write(md);
  writeResults('oidc.md', md);
  if (zr.violations.length > 0) {
    for (const v of zr.violations.slice(0, 5)) console.error(v);
    throw new Error('a JWT-SVID was signed with a key that was not yet published at /keys');
  }
}

if (process.argv[2] === 'serve') {
  void serve();
} else {
  main().then(
    () => process.exit(0),
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
}
