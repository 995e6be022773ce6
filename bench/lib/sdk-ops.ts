// The @ztwim/spiffe operations of bench/sdk.ts, built from the fixtures it writes (the same files
// bench/go/sdkbench reads), and a timed loop over one of them. Used on the bench's main thread
// and in its worker threads (bench/lib/sdk-worker.ts) for the all-cores rows.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { JwtBundle, parseAndValidateJwtSvid, TrustDomain, verifyX509Svid, X509Bundle } from '@ztwim/spiffe';

export const CRYPTO_KINDS = ['jwt-es256', 'jwt-rs256', 'x509-root', 'x509-inter'] as const;
export type CryptoKind = (typeof CRYPTO_KINDS)[number];

/** fixtures.json in the fixtures dir (beside bundle.pem and jwks.json). */
export interface SdkFixtures {
  readonly trustDomain: string;
  readonly audience: string;
  readonly tokens: Record<string, string>;
  /** DER certificates in base64, leaf first. */
  readonly chains: Record<string, string[]>;
}

/** One operation per kind; bundles are parsed once, as a workload keeps them in a source. */
export function sdkOps(dir: string): Record<CryptoKind, () => unknown> {
  const f = JSON.parse(readFileSync(join(dir, 'fixtures.json'), 'utf8')) as SdkFixtures;
  const td = TrustDomain.parse(f.trustDomain);
  const x509 = X509Bundle.parse(td, readFileSync(join(dir, 'bundle.pem'), 'utf8'));
  const jwt = JwtBundle.parse(td, readFileSync(join(dir, 'jwks.json')));
  const audience = [f.audience];
  const token = (k: string): string => f.tokens[k] ?? '';
  const chain = (k: string): Uint8Array[] => (f.chains[k] ?? []).map((b) => new Uint8Array(Buffer.from(b, 'base64')));
  const es256 = token('jwt-es256');
  const rs256 = token('jwt-rs256');
  const root = chain('x509-root');
  const inter = chain('x509-inter');
  return {
    'jwt-es256': () => parseAndValidateJwtSvid(es256, jwt, audience),
    'jwt-rs256': () => parseAndValidateJwtSvid(rs256, jwt, audience),
    'x509-root': () => verifyX509Svid(root, x509),
    'x509-inter': () => verifyX509Svid(inter, x509),
  };
}

export interface LoopResult {
  readonly ops: number;
  readonly wallMs: number;
}

/** Runs `fn` back to back for `ms` of wall time (awaiting it when it returns a promise). */
export async function loopFor(fn: () => unknown, ms: number): Promise<LoopResult> {
  const t0 = performance.now();
  let n = 0;
  while (performance.now() - t0 < ms) {
    for (let i = 0; i < 4; i++) {
      const r = fn();
      if (r instanceof Promise) await r;
    }
    n += 4;
  }
  return { ops: n, wallMs: performance.now() - t0 };
}
