// SPIFFE ID parsing: our SpiffeId.parse / TrustDomain.parse against go-spiffe's
// spiffeid.FromString / TrustDomainFromString, input by input (spec vectors, a byte sweep, and
// seeded random strings). Verdicts must agree; when both reject, the error text must match too.
// The only allowed difference: we enforce the 2048-byte ID and 255-byte trust-domain limits
// (SPIFFE-ID.md §2.3/§2.2) which go-spiffe does not; that is asserted explicitly.
// py-spiffe's SpiffeId is checked against go-spiffe too (it normalises case; pinned).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_SPIFFE_ID_LENGTH, MAX_TRUST_DOMAIN_LENGTH, SpiffeId, TrustDomain } from '@ztwim/spiffe';
import { pyBundleCheck } from './lib/python.ts';
import { checkBatch, type CheckResult } from './lib/spiffecheck.ts';

interface Ours {
  ok: boolean;
  error?: string;
  id?: string;
  trustDomain?: string;
  path?: string;
}

function oursId(s: string): Ours {
  try {
    const id = SpiffeId.parse(s);
    return { ok: true, id: id.toString(), trustDomain: id.trustDomain.name, path: id.path };
  } catch (e) {
    return { ok: false, error: (e as Error).message };
  }
}

function oursTd(s: string): Ours {
  try {
    return { ok: true, trustDomain: TrustDomain.parse(s).name };
  } catch (e) {
    return { ok: false, error: (e as Error).message };
  }
}

const stripPrefix = (msg: string | undefined): string => (msg ?? '').replace(/^(spiffeid|trustdomain): /, '');

const byteLength = (s: string): number => Buffer.byteLength(s, 'utf8');

/** True when ours rejects only because of a length limit go-spiffe does not enforce. */
function isLengthOnlyDifference(input: string, ours: Ours, go: CheckResult): boolean {
  if (ours.ok || !go.ok) return false;
  if (!/longer than/.test(ours.error ?? '')) return false;
  const td = String(go['trustDomain'] ?? '');
  return byteLength(input) > MAX_SPIFFE_ID_LENGTH || byteLength(td) > MAX_TRUST_DOMAIN_LENGTH;
}

interface Disagreement {
  input: string;
  ours: Ours;
  go: CheckResult;
}

/** Compares ours against go for every input; returns disagreements other than the length limits. */
function compare(inputs: string[], kind: 'id' | 'td'): { disagreements: Disagreement[]; lengthOnly: string[]; accepted: number } {
  const goResults = checkBatch(inputs.map((s) => ({ cmd: kind, args: [s] })));
  const disagreements: Disagreement[] = [];
  const lengthOnly: string[] = [];
  let accepted = 0;
  inputs.forEach((input, i) => {
    const go = goResults[i]!;
    const ours = kind === 'id' ? oursId(input) : oursTd(input);
    if (ours.ok) accepted++;
    if (isLengthOnlyDifference(input, ours, go)) {
      lengthOnly.push(input);
      return;
    }
    if (ours.ok !== go.ok) {
      disagreements.push({ input, ours, go });
      return;
    }
    if (ours.ok) {
      const same =
        kind === 'id' ? ours.id === go['id'] && ours.trustDomain === go['trustDomain'] && ours.path === go['path'] : ours.trustDomain === go['trustDomain'];
      if (!same) disagreements.push({ input, ours, go });
    } else if (stripPrefix(ours.error) !== go.error) {
      disagreements.push({ input, ours, go });
    }
  });
  return { disagreements, lengthOnly, accepted };
}

function show(d: Disagreement[]): string {
  return d
    .slice(0, 20)
    .map((x) => `${JSON.stringify(x.input)}: ours=${JSON.stringify(x.ours)} go=${JSON.stringify(x.go)}`)
    .join('\n');
}

// spire-core.md §1.2 vectors plus go-spiffe's own test table.
const SPEC_VECTORS: string[] = [
  '',
  's',
  'spiffe:/',
  'spiffe:',
  'spiffe',
  'Spiffe://',
  'SPIFFE://x',
  'https://example.org/path',
  'spiffe://',
  'spiffe:///',
  'spiffe:///path',
  'spiffe://trustdomain',
  'spiffe://trustdomain/',
  'spiffe://trustdomain/path/',
  'spiffe://trustdomain//',
  'spiffe://trustdomain//path',
  'spiffe://trustdomain/path//other',
  'spiffe://trustdomain/.',
  'spiffe://trustdomain/./path',
  'spiffe://trustdomain/path/./other',
  'spiffe://trustdomain/path/..',
  'spiffe://trustdomain/..',
  'spiffe://trustdomain/../path',
  'spiffe://trustdomain/path/.',
  'spiffe://trustdomain/.path',
  'spiffe://trustdomain/..path',
  'spiffe://trustdomain/...',
  'spiffe://trustdomain/path/.../x',
  'spiffe://%62%61%64/path',
  'spiffe://trustdomain/%62%61%64',
  'spiffe://trustdomain/path?query',
  'spiffe://trustdomain/path#fragment',
  'spiffe://trustdomain?query',
  'spiffe://trustdomain#frag',
  'spiffe://user@trustdomain/path',
  'spiffe://trustdomain:8080/path',
  'spiffe://TrustDomain/path',
  'spiffe://trustdomain/Path/UPPER',
  'spiffe://127.0.0.1/path',
  'spiffe://[::1]/path',
  'spiffe://example.org/ns/default/sa/default',
  'spiffe://example.org/spire/agent/join_token/abc-123',
  'spiffe://a_b-c.d/e_f-g.h',
  'spiffe://example.org/path with space',
  'spiffe://example.org/caf\u00e9',
  'spiffe://exampl\u00e9.org/x',
  'spiffe://example.org/\u{1F600}',
  ' spiffe://example.org/x',
  'spiffe://example.org/x ',
  'spiffe://example.org/x\n',
  'spiffe://example.org/x\u0000',
  'spiffe://-/x',
  'spiffe://./x',
  'spiffe://../x',
  'spiffe://.../x',
  'spiffe:///x',
  'spiffe://example.org/$',
];

// Every code point 0x00-0xFF (minus '/') in the trust domain, in the path, and as a whole segment,
// plus a few multi-byte characters.
function sweepInputs(): string[] {
  const chars: string[] = [];
  for (let c = 0; c <= 0xff; c++) if (c !== 0x2f) chars.push(String.fromCharCode(c));
  chars.push('\u0100', '\u2028', '\ufffd', '\u{10000}', '\u{1F600}');
  const out: string[] = [];
  for (const ch of chars) {
    out.push(`spiffe://a${ch}b/path`);
    out.push(`spiffe://${ch}/path`);
    out.push(`spiffe://td/a${ch}b`);
    out.push(`spiffe://td/${ch}`);
    out.push(`spiffe://td/x/${ch}/y`);
    out.push(`spiffe://td${ch}`);
  }
  return out;
}

// Deterministic PRNG (mulberry32) so failures are reproducible.
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomInputs(n: number, seed: number): string[] {
  const rnd = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const prefixes = ['spiffe://', 'spiffe://', 'spiffe://', 'spiffe://', 'spiffe:/', 'SPIFFE://', 'spiffe:', '', 'http://'];
  const atoms = [
    'a',
    'z',
    'Z',
    '0',
    '9',
    '.',
    '..',
    '-',
    '_',
    '/',
    '/',
    '//',
    '/.',
    '/..',
    '%2f',
    ':',
    '@',
    '?',
    '#',
    ' ',
    'é',
    '~',
    '+',
    '*',
    'ex',
    'org',
    'A',
  ];
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    let s = pick(prefixes);
    const len = 1 + Math.floor(rnd() * 12);
    for (let j = 0; j < len; j++) s += pick(atoms);
    out.push(s);
  }
  // Mostly-valid IDs with one random mutation.
  const lower = 'abcdefghijklmnopqrstuvwxyz0123456789.-_';
  const pathCh = lower + 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
  for (let i = 0; i < n; i++) {
    let td = '';
    for (let j = 0, l = 1 + Math.floor(rnd() * 10); j < l; j++) td += pick([...lower]);
    let path = '';
    for (let s = 0, segs = Math.floor(rnd() * 4); s < segs; s++) {
      path += '/';
      for (let j = 0, l = 1 + Math.floor(rnd() * 6); j < l; j++) path += pick([...pathCh]);
    }
    let id = `spiffe://${td}${path}`;
    if (rnd() < 0.5) {
      const at = Math.floor(rnd() * id.length);
      id = id.slice(0, at) + String.fromCharCode(Math.floor(rnd() * 128)) + id.slice(at + 1);
    }
    out.push(id);
  }
  return out;
}

describe('SPIFFE ID parsing agrees with go-spiffe spiffeid.FromString', () => {
  it('spec vectors', () => {
    const { disagreements, accepted } = compare(SPEC_VECTORS, 'id');
    assert.equal(disagreements.length, 0, show(disagreements));
    // Sanity: the vector set exercises both outcomes.
    assert.ok(accepted >= 8 && accepted < SPEC_VECTORS.length - 20, `accepted ${accepted}`);
  });

  it('byte sweep 0x00-0xff in trust domain and path', () => {
    const inputs = sweepInputs();
    const { disagreements, accepted } = compare(inputs, 'id');
    assert.equal(disagreements.length, 0, show(disagreements));
    // TD allows [a-z0-9._-] (39 chars); path allows [a-zA-Z0-9._-]: make sure the sweep saw acceptances.
    assert.ok(accepted > 100, `accepted ${accepted}`);
  });

  it('seeded random strings', () => {
    const inputs = randomInputs(400, 0x5eed);
    const { disagreements, accepted } = compare(inputs, 'id');
    assert.equal(disagreements.length, 0, show(disagreements));
    assert.ok(accepted > 50 && accepted < inputs.length - 50, `accepted ${accepted} of ${inputs.length}`);
  });

  it('length limits are the only allowed difference (ours stricter)', () => {
    const td255 = 'a'.repeat(MAX_TRUST_DOMAIN_LENGTH);
    const td256 = 'a'.repeat(MAX_TRUST_DOMAIN_LENGTH + 1);
    const base = 'spiffe://example.org/';
    const idMax = base + 'p'.repeat(MAX_SPIFFE_ID_LENGTH - base.length);
    const idOver = base + 'p'.repeat(MAX_SPIFFE_ID_LENGTH - base.length + 1);
    const inputs = [`spiffe://${td255}/x`, `spiffe://${td256}/x`, idMax, idOver, `spiffe://${td256}`];
    assert.equal(byteLength(idMax), MAX_SPIFFE_ID_LENGTH);
    const go = checkBatch(inputs.map((s) => ({ cmd: 'id', args: [s] })));
    const ours = inputs.map(oursId);
    // go-spiffe accepts all of them (no length checks).
    assert.deepEqual(
      go.map((r) => r.ok),
      [true, true, true, true, true],
      JSON.stringify(go.map((r) => r.error)),
    );
    // We accept exactly-at-limit and reject one byte over, naming the length rule.
    assert.deepEqual(
      ours.map((r) => r.ok),
      [true, false, true, false, false],
    );
    for (const i of [1, 3, 4]) assert.match(ours[i]!.error!, /longer than/);
    const { disagreements, lengthOnly } = compare(inputs, 'id');
    assert.equal(disagreements.length, 0, show(disagreements));
    assert.deepEqual(lengthOnly, [inputs[1], inputs[3], inputs[4]]);
    // Trust domain parsing: same limit.
    const tdGo = checkBatch([td255, td256].map((s) => ({ cmd: 'td', args: [s] })));
    assert.deepEqual(
      tdGo.map((r) => r.ok),
      [true, true],
    );
    assert.deepEqual(
      [td255, td256].map(oursTd).map((r) => r.ok),
      [true, false],
    );
  });
});

describe('py-spiffe SpiffeId agrees with go-spiffe, except its case normalisation', () => {
  it('spec vectors, sweep and random strings', () => {
    const inputs = [...SPEC_VECTORS, ...sweepInputs(), ...randomInputs(200, 0xbeef)].filter((s) => s !== '');
    const go = checkBatch(inputs.map((s) => ({ cmd: 'id', args: [s] })));
    const py = pyBundleCheck(inputs.map((s) => ({ kind: 'spiffeid' as const, data: s })));
    // py-spiffe lower-cases the scheme and trust domain (SPIFFE-ID.md calls them case-insensitive)
    // where go-spiffe (and ours) reject upper case; and it accepts one trailing "\n" (a Python
    // regex `$` quirk: a py-spiffe bug). Those are the only differences allowed.
    const lowerSchemeAndTd = (s: string): string => {
      const m = /^([a-zA-Z]+:\/\/)([^/]*)(.*)$/s.exec(s);
      return m === null ? s : m[1]!.toLowerCase() + m[2]!.toLowerCase() + m[3]!;
    };
    const needNormalised = inputs.filter((s, i) => !go[i]!.ok && py[i]!.ok);
    const trailingNewline = new Set(needNormalised.filter((s) => s.endsWith('\n')));
    const goNoNewline = checkBatch([...trailingNewline].map((s) => ({ cmd: 'id', args: [s.slice(0, -1)] })));
    assert.ok(
      goNoNewline.every((r) => r.ok),
      'py-spiffe accepted a trailing newline on an otherwise invalid ID',
    );
    const goNorm = checkBatch(needNormalised.map((s) => ({ cmd: 'id', args: [lowerSchemeAndTd(s)] })));
    const diffs: string[] = [];
    let normalised = 0;
    inputs.forEach((s, i) => {
      if (go[i]!.ok === py[i]!.ok) {
        if (go[i]!.ok && go[i]!['id'] !== py[i]!.id) diffs.push(`${JSON.stringify(s)}: id go=${String(go[i]!['id'])} py=${py[i]!.id}`);
        return;
      }
      if (trailingNewline.has(s)) return;
      const j = needNormalised.indexOf(s);
      if (j >= 0 && goNorm[j]!.ok && py[i]!.id === lowerSchemeAndTd(s) && s !== lowerSchemeAndTd(s)) {
        normalised++;
        return;
      }
      diffs.push(`${JSON.stringify(s)}: go=${JSON.stringify(go[i])} py=${JSON.stringify(py[i])}`);
    });
    assert.deepEqual(diffs.slice(0, 20), []);
    assert.ok(normalised > 0, 'expected some upper-case inputs that py-spiffe normalises');
  });
});

describe('trust domain parsing agrees with go-spiffe spiffeid.TrustDomainFromString', () => {
  it('names, IDs and sweep', () => {
    const inputs = [
      '',
      'example.org',
      'Example.org',
      'spiffe://example.org',
      'spiffe://example.org/path',
      'spiffe://example.org/',
      'spiffe://Example.org/path',
      'spiffe://',
      'spiffe:///x',
      'x:/y',
      'http://example.org',
      'example.org:8080',
      'example.org/path',
      'a_b-c.d',
      '127.0.0.1',
      '[::1]',
      ...Array.from({ length: 0x80 }, (_, c) => `td${String.fromCharCode(c)}x`),
    ];
    const { disagreements, accepted } = compare(inputs, 'td');
    assert.equal(disagreements.length, 0, show(disagreements));
    assert.ok(accepted > 30, `accepted ${accepted}`);
  });
});
