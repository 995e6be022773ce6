// Judges JWT-SVIDs with every validator we interoperate with: ztwim parseAndValidateJwtSvid,
// go-spiffe jwtsvid.ParseAndValidate, PyJWT, py-spiffe and jose jwtVerify (all at real time).
import { createLocalJWKSet, jwtVerify } from 'jose';
import { JwtBundle, TrustDomain, parseAndValidateJwtSvid } from './sdk.ts';
import { pyJwtCheck } from './python.ts';
import { checkBatch } from './spiffecheck.ts';
import type { TmpDir } from './tmp.ts';

export const JWT_SVID_ALGS = ['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512'];
export const VALIDATORS = ['ztwim', 'go-spiffe', 'pyjwt', 'py-spiffe', 'jose'] as const;
export type Validator = (typeof VALIDATORS)[number];
export type Verdicts = Record<Validator, boolean>;
export type Judged = Verdicts & { errors: Record<Validator, string | undefined> };

async function ztwimVerdict(token: string, jwksJson: string, td: string, aud: string): Promise<{ ok: boolean; error?: string }> {
  try {
    const bundle = JwtBundle.parse(TrustDomain.parse(td), jwksJson, { plainJwks: true });
    const svid = await parseAndValidateJwtSvid(token, bundle, [aud]);
    if (svid.token !== token) return { ok: false, error: 'svid.token differs from the input token' };
    return { ok: true };
  } catch (e) {
    return { ok: false, error: (e as Error).message };
  }
}

async function joseVerdict(token: string, jwksJson: string, aud: string): Promise<{ ok: boolean; error?: string }> {
  try {
    const set = createLocalJWKSet(JSON.parse(jwksJson) as never);
    await jwtVerify(token, set, { algorithms: JWT_SVID_ALGS, audience: aud, requiredClaims: ['exp', 'sub', 'aud'] });
    return { ok: true };
  } catch (e) {
    return { ok: false, error: `${(e as Error).name}: ${(e as Error).message}` };
  }
}

/**
 * Verdicts per case name. `jwks` is a JWKS with a kid on every key (JwtBundle.marshal form);
 * go-spiffe also accepts a SPIFFE bundle there.
 */
export async function judge(
  tmp: TmpDir,
  cases: readonly { name: string; token: string; jwks: string }[],
  td: string,
  aud: string,
): Promise<Record<string, Judged>> {
  const go = checkBatch(
    cases.map((c, i) => ({
      cmd: 'jwtsvid',
      args: [tmp.write(`judge-tok-${c.name}-${i}.txt`, c.token), td, tmp.write(`judge-jwks-${c.name}-${i}.json`, c.jwks), aud],
    })),
  );
  const py = pyJwtCheck(cases.map((c) => ({ token: c.token, jwks: c.jwks, trustDomain: td, audience: [aud] })));
  const out: Record<string, Judged> = {};
  for (const [i, c] of cases.entries()) {
    const ours = await ztwimVerdict(c.token, c.jwks, td, aud);
    const jose = await joseVerdict(c.token, c.jwks, aud);
    out[c.name] = {
      ztwim: ours.ok,
      'go-spiffe': go[i]!.ok,
      pyjwt: py[i]!.pyjwt.ok,
      'py-spiffe': py[i]!.pyspiffe.ok,
      jose: jose.ok,
      errors: { ztwim: ours.error, 'go-spiffe': go[i]!.error, pyjwt: py[i]!.pyjwt.error, 'py-spiffe': py[i]!.pyspiffe.error, jose: jose.error },
    };
  }
  return out;
}
