/**
 * SVID minting benchmark.
 *
 *   node --conditions=ztwim-source --import tsx bench/mint.ts [--ms 1000] [--rounds 3]
 *
 * For a P-256 and an RSA-2048 CA key: X509-SVIDs/s and JWT-SVIDs/s on one thread, next to the
 * raw node:crypto signing rate (crypto.sign with the same key over a payload of the same size:
 * the leaf's tbsCertificate, the JWT signing input), alternating with it in 20 ms slices so both
 * see the same machine load; the median of the rounds is reported. Also shown, without a target: minting from a CSR,
 * which adds parsing the request and checking its self-signature.
 *
 * Everything runs on the main thread (no worker pool), so "raw" is single-thread raw signing.
 * Prints a Markdown table and writes it to bench/results/mint.md. Runs in ~30-40 s.
 */
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { systemClock, cryptoRandom, randomAlnum } from '@ztwim/core';
import { SpiffeId, TrustDomain } from '@ztwim/spiffe';
import { createCaCertificate, JwtSigner, parseCsr, X509Ca, type KeyType } from '@ztwim/server';
import { writeResults } from './lib/results-dir.ts';
import { num } from './lib/args.ts';

const ROUND_MS = num('ms', 1000);
const ROUNDS = num('rounds', 3);
const SLICE_MS = 20;

const td = TrustDomain.parse('example.org');
const workload = SpiffeId.parse('spiffe://example.org/ns/default/sa/web');

/**
 * Runs a and b alternately in short slices until each has had `ms` of wall time, so both see the
 * same machine load; returns operations per second of each.
 */
async function sideBySide(a: () => unknown, b: () => unknown, ms: number): Promise<[number, number]> {
  const count = [0, 0];
  const spent = [0, 0];
  const fns = [a, b];
  while ((spent[0] as number) < ms || (spent[1] as number) < ms) {
    for (let k = 0; k < 2; k++) {
      const fn = fns[k] as () => unknown;
      const start = performance.now();
      const end = start + SLICE_MS;
      let n = 0;
      while (performance.now() < end) {
        for (let i = 0; i < 4; i++) {
          const r = fn();
          if (r instanceof Promise) await r;
        }
        n += 4;
      }
      count[k] = (count[k] as number) + n;
      spent[k] = (spent[k] as number) + performance.now() - start;
    }
  }
  return [((count[0] as number) / (spent[0] as number)) * 1000, ((count[1] as number) / (spent[1] as number)) * 1000];
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

/** The length of the tbsCertificate inside a DER certificate (second length field of the outer SEQUENCE). */
function tbsLength(cert: Uint8Array): number {
  let p = 1;
  const lenByte = cert[p] as number;
  p += lenByte < 0x80 ? 1 : 1 + (lenByte & 0x7f);
  const start = p;
  const l = cert[p + 1] as number;
  let len = l;
  let hdr = 2;
  if (l >= 0x80) {
    len = 0;
    for (let i = 0; i < (l & 0x7f); i++) len = len * 256 + (cert[p + 2 + i] as number);
    hdr = 2 + (l & 0x7f);
  }
  return p - start + hdr + len;
}

function opensslCsr(privateKey: KeyObject): Uint8Array {
  const dir = mkdtempSync(join(tmpdir(), 'ztwim-bench-'));
  try {
    writeFileSync(join(dir, 'k.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const r = spawnSync('openssl', ['req', '-new', '-key', join(dir, 'k.pem'), '-subj', '/CN=w', '-outform', 'DER']);
    if (r.status !== 0) throw new Error(`openssl req failed: ${String(r.stderr)}`);
    return new Uint8Array(r.stdout);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface Row {
  key: string;
  op: string;
  mints: number;
  raw: number | undefined;
  payload: number;
  target: number | undefined;
}

async function benchKey(keyType: KeyType, label: string): Promise<Row[]> {
  const caKey = keyType === 'ec-p256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('rsa', { modulusLength: 2048 });
  const requester = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const chain = createCaCertificate({ trustDomain: td, key: caKey, ttlMs: 86_400_000, now: new Date() });
  const ca = new X509Ca({ trustDomain: td, key: caKey, chain, clock: systemClock, x509SvidTtlMs: 3_600_000 });
  const jwt = new JwtSigner({
    trustDomain: td,
    kid: randomAlnum(cryptoRandom, 32),
    keyType,
    privateKey: caKey.privateKey,
    publicKey: caKey.publicKey,
    notAfter: new Date(Date.now() + 86_400_000),
    clock: systemClock,
    jwtSvidTtlMs: 300_000,
  });
  const csr = opensslCsr(requester.privateKey);
  const mintX509 = () => ca.signX509Svid({ publicKey: requester.publicKey, spiffeId: workload, dnsNames: ['web.example.org'] });
  const mintFromCsr = () => ca.signX509Svid({ publicKey: parseCsr(csr).publicKey, spiffeId: workload, dnsNames: ['web.example.org'] });
  const mintJwt = () => jwt.signJwtSvid({ spiffeId: workload, audience: ['spiffe://example.org/db'] });

  const x509Payload = Buffer.alloc(tbsLength(mintX509().certChain[0] as Uint8Array), 0x5a);
  const token = (await mintJwt()).token;
  const jwtPayload = Buffer.alloc(token.lastIndexOf('.'), 0x61);
  const hash = 'sha256';
  const rawX509 = () => sign(hash, x509Payload, caKey.privateKey);
  const jwtKey = keyType === 'ec-p256' ? { key: caKey.privateKey, dsaEncoding: 'ieee-p1363' as const } : caKey.privateKey;
  const rawJwt = () => sign(hash, jwtPayload, jwtKey);

  const series: Record<string, number[]> = { rawX509: [], x509: [], csr: [], rawJwt: [], jwt: [], rawCsr: [] };
  await sideBySide(rawX509, mintX509, 300); // warm-up (JIT), discarded
  await sideBySide(rawJwt, mintJwt, 300);
  await sideBySide(rawX509, mintFromCsr, 300);
  const pairs: Array<[string, string, () => unknown, () => unknown]> = [
    ['rawX509', 'x509', rawX509, mintX509],
    ['rawJwt', 'jwt', rawJwt, mintJwt],
    ['rawCsr', 'csr', rawX509, mintFromCsr],
  ];
  for (let r = 0; r < ROUNDS; r++) {
    for (const [rawName, mintName, raw, mint] of pairs) {
      const [rr, mm] = await sideBySide(raw, mint, ROUND_MS);
      series[rawName]?.push(rr);
      series[mintName]?.push(mm);
    }
  }
  const m = (k: string): number => median(series[k] ?? []);
  return [
    { key: label, op: 'X509-SVID', mints: m('x509'), raw: m('rawX509'), payload: x509Payload.length, target: 0.5 },
    { key: label, op: 'JWT-SVID', mints: m('jwt'), raw: m('rawJwt'), payload: jwtPayload.length, target: 0.8 },
    { key: label, op: 'X509-SVID from CSR (+parse, +verify P-256 CSR)', mints: m('csr'), raw: m('rawCsr'), payload: x509Payload.length, target: undefined },
  ];
}

const rows = [...(await benchKey('ec-p256', 'P-256 (ES256)')), ...(await benchKey('rsa-2048', 'RSA-2048 (RS256)'))];
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
const lines = [
  '# SVID minting throughput',
  '',
  `node ${process.version}, ${cpus()[0]?.model ?? 'unknown cpu'} x${cpus().length}, load average ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')} at the end, ${new Date().toISOString()}`,
  `One thread (no worker pool); median of ${ROUNDS} rounds; in each round mint and raw signing alternate in ${SLICE_MS} ms slices for ${ROUND_MS} ms each, so both see the same load. Raw = node:crypto \`crypto.sign\` with the same key over a payload of the same size, single thread.`,
  '',
  '| CA key | operation | mints/s | raw sign/s (payload bytes) | ratio | target | met |',
  '|---|---|---:|---:|---:|---:|:-:|',
  ...rows.map((r) => {
    const ratio = r.raw ? r.mints / r.raw : Number.NaN;
    const met = r.target === undefined ? 'n/a' : ratio >= r.target ? 'yes' : 'NO';
    return `| ${r.key} | ${r.op} | ${fmt(r.mints)} | ${r.raw ? fmt(r.raw) : '-'} (${r.payload}) | ${ratio.toFixed(2)}x | ${r.target === undefined ? '-' : `>= ${r.target}x`} | ${met} |`;
  }),
  '',
  'Workload keys are P-256. The shared 2-core machine was running other work, so absolute numbers vary from run to run; the ratios are measured side by side in the same rounds.',
  '',
];
const out = lines.join('\n');
console.log(out);
writeResults('mint.md', out);
