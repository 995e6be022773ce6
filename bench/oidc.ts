/**
 * OIDC discovery provider benchmark.
 *
 *   node --conditions=ztwim-source --import tsx bench/oidc.ts [--duration 8] [--connections 64]
 *
 * 1. Throughput and p99 latency of GET /keys and GET /.well-known/openid-configuration with
 *    64 concurrent keep-alive connections (autocannon), side by side with a minimal Node
 *    static-file HTTP server serving the same bytes (the floor). The servers run in a child
 *    process so the load generator does not share their event loop.
 * 2. Time from a key change in the source to the new key appearing at /keys: pushed
 *    (StaticJwksSource.set) and file-polled (FileJwksSource, 100 ms poll).
 *
 * Prints a Markdown table and writes it to bench/results/oidc.md. Stays under ~60 s.
 */
import { fork } from 'node:child_process';
import { createServer, request, type IncomingMessage } from 'node:http';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { FileJwksSource, StaticJwksSource, startOidcProvider, type JsonWebKey } from '@ztwim/oidc';

const here = fileURLToPath(import.meta.url);
const args = process.argv.slice(2);
const arg = (name: string, dflt: number): number => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};

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

// ---------------------------------------------------------------------------------------------
// Child: the provider and the static floor server.
async function serve(): Promise<void> {
  const source = new StaticJwksSource([key('ec'), key('rsa'), key('ec')]);
  const p = await startOidcProvider(
    { domains: ['localhost'], insecureAddr: '127.0.0.1:0', jwtIssuer: 'https://oidc.example.org', setKeyUse: true },
    { source },
  );
  const keys = await fetchBody(`${p.urls.http}/keys`);
  const disc = await fetchBody(`${p.urls.http}/.well-known/openid-configuration`, { host: 'localhost' });
  // The floor: a minimal static server with the same bytes and content type.
  const files = new Map([
    ['/keys', keys.body],
    ['/.well-known/openid-configuration', disc.body],
  ]);
  const floor = createServer((req, res) => {
    const body = files.get(req.url ?? '');
    if (body === undefined) {
      res.writeHead(404);
      res.end();
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': body.length });
    res.end(body);
  });
  await new Promise<void>((resolve) => floor.listen(0, '127.0.0.1', resolve));
  const floorPort = (floor.address() as { port: number }).port;
  process.send?.({ provider: p.urls.http, floor: `http://127.0.0.1:${floorPort}`, keysBytes: keys.body.length, discBytes: disc.body.length });
  process.on('message', (m: unknown) => {
    if (m === 'stop') {
      floor.close();
      void p.close().then(() => process.exit(0));
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Parent: load generation and key-change latency.
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

async function load(server: string, base: string, path: string, bytes: number, duration: number, connections: number): Promise<Row> {
  const opts = { url: `${base}${path}`, connections, duration, pipelining: 1, headers: { host: 'localhost' } };
  await autocannon({ ...opts, duration: 1 }); // warm-up
  const r = await autocannon(opts);
  return {
    server,
    path,
    bytes,
    rps: r.requests.average,
    p50: r.latency.p50,
    p99: r.latency.p99,
    non2xx: r.non2xx,
    errors: r.errors,
  };
}

function stats(ms: number[]): { mean: number; p50: number; p99: number; max: number } {
  const s = [...ms].sort((a, b) => a - b);
  const at = (q: number): number => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
  return { mean: s.reduce((a, b) => a + b, 0) / s.length, p50: at(0.5), p99: at(0.99), max: s[s.length - 1] ?? NaN };
}

async function waitForKid(url: string, kid: string, deadlineMs: number): Promise<void> {
  for (;;) {
    const r = await fetchBody(url);
    if (r.status === 200 && r.body.includes(kid)) return;
    if (performance.now() > deadlineMs) throw new Error(`kid ${kid} did not appear at ${url}`);
  }
}

async function rotationLatency(iterations: number): Promise<{ pushed: number[]; file: number[]; pollMs: number }> {
  const base = [key('ec')];
  // Pushed source.
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
  // File source, polled.
  const pollMs = 100;
  const dir = mkdtempSync(join(tmpdir(), 'ztwim-oidc-bench-'));
  const path = join(dir, 'bundle.json');
  const bundle = (keys: JsonWebKey[]): string => JSON.stringify({ keys: keys.map((k) => ({ use: 'jwt-svid', ...k })) });
  writeFileSync(path, bundle(base));
  const fileSrc = new FileJwksSource(path, { pollIntervalMs: pollMs });
  await new Promise<void>((resolve) => (fileSrc.current() !== undefined ? resolve() : fileSrc.onChange(() => resolve())));
  const p2 = await startOidcProvider({ domains: ['localhost'], insecureAddr: '127.0.0.1:0' }, { source: fileSrc });
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
  return { pushed, file, pollMs };
}

async function main(): Promise<void> {
  const duration = arg('duration', 8);
  const connections = arg('connections', 64);
  const child = fork(here, ['serve'], { execArgv: ['--conditions=ztwim-source', '--import', 'tsx'], stdio: 'inherit' });
  const info = await new Promise<{ provider: string; floor: string; keysBytes: number; discBytes: number }>((resolve, reject) => {
    child.once('message', (m) => resolve(m as never));
    child.once('exit', (c) => reject(new Error(`server process exited with ${String(c)}`)));
  });
  const rows: Row[] = [];
  try {
    for (const [path, bytes] of [
      ['/keys', info.keysBytes],
      ['/.well-known/openid-configuration', info.discBytes],
    ] as const) {
      rows.push(await load('ztwim oidc', info.provider, path, bytes, duration, connections));
      rows.push(await load('node static floor', info.floor, path, bytes, duration, connections));
    }
  } finally {
    child.send('stop');
  }
  const rot = await rotationLatency(30);
  const ps = stats(rot.pushed);
  const fs = stats(rot.file);

  const f1 = (n: number): string => n.toFixed(1);
  const f2 = (n: number): string => n.toFixed(2);
  const lines = [
    `# OIDC discovery provider benchmark`,
    '',
    `${new Date().toISOString()} · Node ${process.version} · ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}) · autocannon, ${connections} keep-alive connections, ${duration} s per run (after 1 s warm-up); servers in a separate process on 127.0.0.1, load generator sharing the same machine.`,
    '',
    '## Throughput and latency',
    '',
    '| server | path | body bytes | req/s | p50 ms | p99 ms | non-2xx | errors | % of floor |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map((r) => {
      const floor = rows.find((x) => x.server === 'node static floor' && x.path === r.path);
      const pct = floor === undefined || floor.rps === 0 ? '' : `${((r.rps / floor.rps) * 100).toFixed(0)}%`;
      return `| ${r.server} | \`${r.path}\` | ${r.bytes} | ${Math.round(r.rps)} | ${f1(r.p50)} | ${f1(r.p99)} | ${r.non2xx} | ${r.errors} | ${pct} |`;
    }),
    '',
    'SPIRE `oidc-discovery-provider`: not measured here (binary not available to this bench yet).',
    '',
    '## Key change → visible at /keys',
    '',
    '| source | samples | mean ms | p50 ms | p99 ms | max ms |',
    '|---|---:|---:|---:|---:|---:|',
    `| pushed (StaticJwksSource.set) | ${rot.pushed.length} | ${f2(ps.mean)} | ${f2(ps.p50)} | ${f2(ps.p99)} | ${f2(ps.max)} |`,
    `| file (FileJwksSource, ${rot.pollMs} ms poll) | ${rot.file.length} | ${f2(fs.mean)} | ${f2(fs.p50)} | ${f2(fs.p99)} | ${f2(fs.max)} |`,
    '',
    'Pushed sources rebuild the document synchronously on change, so the time is one HTTP round trip; file sources are bounded by the poll interval (SPIRE default 10 s).',
    '',
  ];
  const md = lines.join('\n');
  process.stdout.write(md);
  const out = join(fileURLToPath(new URL('.', import.meta.url)), 'results');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'oidc.md'), md);
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
