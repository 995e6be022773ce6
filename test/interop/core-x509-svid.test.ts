// X509-SVID verification: a matrix of good and broken SVIDs made by Go's crypto/x509
// (spiffecheck gen-x509-cases) judged by go-spiffe (x509svid.Verify / x509svid.Parse), by our SDK
// (verifyX509Svid / X509Svid.parse), by py-spiffe (X509Svid.parse) and by `openssl verify`. go-spiffe and ours must agree on
// every case, and the verdicts that matter are pinned so both cannot be wrong together.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { TrustDomain, X509Bundle, X509Svid, verifyX509Svid } from './lib/sdk.ts';
import { opensslVerify } from './lib/openssl.ts';
import { pemFileDers } from './lib/pem.ts';
import { pyBundleCheck } from './lib/python.ts';
import { check, checkBatch, type CheckResult } from './lib/spiffecheck.ts';
import { makeTmpDir, type TmpDir } from './lib/tmp.ts';

interface X509Case {
  name: string;
  description: string;
  chain: string;
  key: string;
  bundle: string;
  trustDomain: string;
}

interface Verdict {
  ok: boolean;
  error?: string;
  id?: string;
}

// [x509svid.Verify, x509svid.Parse] verdicts expected from both go-spiffe and ztwim.
const EXPECTED: Record<string, [verify: boolean, parse: boolean]> = {
  good: [true, true],
  'good-intermediate': [true, true],
  'good-rsa': [true, true],
  'no-eku': [true, true],
  'eku-server-only': [true, true],
  'with-dns': [true, true],
  'ca-leaf': [false, false],
  'ca-flag-leaf': [false, false],
  'no-uri': [false, false],
  'two-uris': [false, false],
  expired: [false, true],
  'not-yet-valid': [false, true],
  'wrong-root': [false, true],
  'keycertsign-leaf': [false, false],
  'crlsign-leaf': [false, false],
  'no-digitalsignature': [true, false],
  'root-path-id': [true, false],
  'other-td': [false, true],
  'bad-uri-uppercase-td': [false, false],
  'bad-uri-scheme': [false, false],
  'intermediate-not-ca': [false, false],
  'missing-intermediate': [false, true],
  'pathlen-exceeded': [false, true],
  'expired-root': [false, true],
  'key-mismatch': [true, false],
};

// openssl verify -x509_strict -purpose <p> verdicts for the cases where path validation decides.
const OPENSSL_EXPECTED: Record<string, { sslclient: boolean; sslserver: boolean }> = {
  good: { sslclient: true, sslserver: true },
  'good-intermediate': { sslclient: true, sslserver: true },
  'good-rsa': { sslclient: true, sslserver: true },
  'no-eku': { sslclient: true, sslserver: true },
  'with-dns': { sslclient: true, sslserver: true },
  'eku-server-only': { sslclient: false, sslserver: true },
  expired: { sslclient: false, sslserver: false },
  'not-yet-valid': { sslclient: false, sslserver: false },
  'wrong-root': { sslclient: false, sslserver: false },
  'intermediate-not-ca': { sslclient: false, sslserver: false },
  'missing-intermediate': { sslclient: false, sslserver: false },
  'pathlen-exceeded': { sslclient: false, sslserver: false },
  'expired-root': { sslclient: false, sslserver: false },
};

function oursVerify(c: X509Case, now: Date): Verdict {
  try {
    const chain = pemFileDers(c.chain);
    const bundle = X509Bundle.parse(TrustDomain.parse(c.trustDomain), readFileSync(c.bundle, 'utf8'));
    const r = verifyX509Svid(chain, bundle, { now });
    return { ok: true, id: r.id.toString() };
  } catch (e) {
    return { ok: false, error: (e as Error).message };
  }
}

function oursParse(c: X509Case): Verdict {
  try {
    const s = X509Svid.parse(readFileSync(c.chain, 'utf8'), readFileSync(c.key, 'utf8'));
    return { ok: true, id: s.id.toString() };
  } catch (e) {
    return { ok: false, error: (e as Error).message };
  }
}

/**
 * Our SDK prefixes every SpiffeError with its module (`spiffeid: ...`) also when nested inside an
 * x509svid error; go-spiffe's spiffeid errors carry no prefix. That nested prefix is the only
 * text difference tolerated.
 */
function normalize(msg: string | undefined): string {
  return (msg ?? '').replace(/: spiffeid: /, ': ');
}

/** "x509svid: could not verify leaf certificate: x509: ..." -> "x509svid: could not verify leaf certificate". */
function stage(msg: string | undefined): string {
  const parts = (msg ?? '').split(': ');
  return parts.slice(0, 2).join(': ');
}

describe('X509-SVID verdicts: go-spiffe vs ztwim vs openssl (Go-made certificates)', () => {
  let tmp: TmpDir;
  let cases: X509Case[];
  let goVerify: CheckResult[];
  let goParse: CheckResult[];
  const now = new Date();

  before(() => {
    tmp = makeTmpDir();
    const gen = check('gen-x509-cases', 'example.org', tmp.path);
    assert.ok(gen.ok, gen.error);
    cases = JSON.parse(readFileSync(gen['manifest'] as string, 'utf8')) as X509Case[];
    goVerify = checkBatch(cases.map((c) => ({ cmd: 'x509svid-verify', args: [c.chain, c.trustDomain, c.bundle, String(Math.floor(now.getTime() / 1000))] })));
    goParse = checkBatch(cases.map((c) => ({ cmd: 'x509svid-parse', args: [c.chain, c.key] })));
  });
  after(() => tmp.cleanup());

  it('covers every pinned case', () => {
    assert.deepEqual(cases.map((c) => c.name).sort(), Object.keys(EXPECTED).sort());
  });

  it('go-spiffe x509svid.Verify gives the pinned verdicts', () => {
    const got = Object.fromEntries(cases.map((c, i) => [c.name, goVerify[i]!.ok]));
    const want = Object.fromEntries(cases.map((c) => [c.name, EXPECTED[c.name]![0]]));
    assert.deepEqual(
      got,
      want,
      JSON.stringify(
        goVerify.map((r, i) => [cases[i]!.name, r.error]),
        null,
        1,
      ),
    );
  });

  it('go-spiffe x509svid.Parse gives the pinned verdicts', () => {
    const got = Object.fromEntries(cases.map((c, i) => [c.name, goParse[i]!.ok]));
    const want = Object.fromEntries(cases.map((c) => [c.name, EXPECTED[c.name]![1]]));
    assert.deepEqual(got, want);
  });

  it('ztwim verifyX509Svid agrees with go-spiffe (verdict, ID and failing stage), except where the spec is stricter', () => {
    // X509-SVID §3.1, §5.2: a leaf's ID has a non-root path; go-spiffe's Verify does not check it.
    const SPEC_STRICTER: Record<string, string> = { 'root-path-id': 'x509svid: leaf certificate SPIFFE ID must have a non-root path' };
    const diffs: string[] = [];
    cases.forEach((c, i) => {
      const go = goVerify[i]!;
      const ours = oursVerify(c, now);
      const stricter = SPEC_STRICTER[c.name];
      if (stricter !== undefined) {
        if (!go.ok || ours.ok || ours.error !== stricter) diffs.push(`${c.name}: ours=${JSON.stringify(ours)} go=${JSON.stringify(go)}`);
      } else if (ours.ok !== go.ok) diffs.push(`${c.name}: ours=${JSON.stringify(ours)} go=${JSON.stringify(go)}`);
      else if (ours.ok && ours.id !== go['id']) diffs.push(`${c.name}: id ours=${ours.id} go=${String(go['id'])}`);
      else if (!ours.ok && stage(ours.error) !== stage(go.error)) {
        diffs.push(`${c.name}: stage ours="${ours.error}" go="${go.error}"`);
      }
    });
    assert.deepEqual(diffs, []);
  });

  it('ztwim X509Svid.parse agrees with go-spiffe (verdict, ID, error text)', () => {
    const diffs: string[] = [];
    cases.forEach((c, i) => {
      const go = goParse[i]!;
      const ours = oursParse(c);
      if (ours.ok !== go.ok) diffs.push(`${c.name}: ours=${JSON.stringify(ours)} go=${JSON.stringify(go)}`);
      else if (ours.ok && ours.id !== go['id']) diffs.push(`${c.name}: id ours=${ours.id} go=${String(go['id'])}`);
      else if (!ours.ok && normalize(ours.error) !== go.error) diffs.push(`${c.name}: error ours="${ours.error}" go="${go.error}"`);
    });
    assert.deepEqual(diffs, []);
  });

  it('py-spiffe X509Svid.parse agrees with go-spiffe x509svid.Parse, except two pinned py-spiffe gaps', () => {
    const py = pyBundleCheck(cases.map((c) => ({ kind: 'x509svid' as const, data: readFileSync(c.chain, 'utf8'), key: readFileSync(c.key, 'utf8') })));
    // py-spiffe lower-cases the trust domain instead of rejecting it, and does not check that
    // the private key matches the leaf.
    const PY_SPIFFE_LENIENT = new Set(['bad-uri-uppercase-td', 'key-mismatch']);
    const diffs: string[] = [];
    cases.forEach((c, i) => {
      const want = PY_SPIFFE_LENIENT.has(c.name) ? true : goParse[i]!.ok;
      if (py[i]!.ok !== want) diffs.push(`${c.name}: py-spiffe ok=${py[i]!.ok} (${py[i]!.error ?? ''}) want ${want}`);
    });
    assert.deepEqual(diffs, []);
    for (const n of PY_SPIFFE_LENIENT) assert.equal(EXPECTED[n]![1], false, `${n} must be one go-spiffe rejects`);
  });

  it('ztwim verifyX509Svid honours the verification time (expired / not-yet-valid)', () => {
    const byName = (n: string): X509Case => cases.find((c) => c.name === n)!;
    // "expired" expired an hour ago: valid 90 minutes ago.
    assert.equal(oursVerify(byName('expired'), new Date(now.getTime() - 90 * 60_000)).ok, true);
    assert.equal(oursVerify(byName('not-yet-valid'), new Date(now.getTime() + 90 * 60_000)).ok, true);
    assert.equal(oursVerify(byName('good'), new Date(now.getTime() + 2 * 3600_000)).ok, false);
    // go-spiffe agrees when given the same times.
    const at = (d: number): string => String(Math.floor((now.getTime() + d) / 1000));
    const go = checkBatch([
      { cmd: 'x509svid-verify', args: [byName('expired').chain, 'example.org', byName('expired').bundle, at(-90 * 60_000)] },
      { cmd: 'x509svid-verify', args: [byName('not-yet-valid').chain, 'example.org', byName('not-yet-valid').bundle, at(90 * 60_000)] },
      { cmd: 'x509svid-verify', args: [byName('good').chain, 'example.org', byName('good').bundle, at(2 * 3600_000)] },
    ]);
    assert.deepEqual(
      go.map((r) => r.ok),
      [true, true, false],
    );
  });

  it('openssl verify -x509_strict gives the pinned verdicts for sslclient and sslserver', () => {
    const diffs: string[] = [];
    for (const c of cases) {
      const want = OPENSSL_EXPECTED[c.name];
      if (want === undefined) continue;
      const chain = pemFileDers(c.chain);
      const leaf = tmp.write(`${c.name}.leaf-only.pem`, readFileSync(c.chain, 'utf8').split(/(?<=-----END CERTIFICATE-----\n)/)[0]!);
      const untrusted =
        chain.length > 1
          ? tmp.write(
              `${c.name}.untrusted.pem`,
              readFileSync(c.chain, 'utf8')
                .split(/(?<=-----END CERTIFICATE-----\n)/)
                .slice(1)
                .join(''),
            )
          : undefined;
      for (const purpose of ['sslclient', 'sslserver'] as const) {
        const r = opensslVerify(leaf, { trusted: c.bundle, ...(untrusted !== undefined ? { untrusted } : {}), purpose });
        if (r.ok !== want[purpose]) diffs.push(`${c.name} ${purpose}: openssl ok=${r.ok} want ${want[purpose]}: ${r.output}`);
      }
    }
    assert.deepEqual(diffs, []);
  });
});
