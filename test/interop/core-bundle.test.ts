// Trust bundle interop: SPIFFE bundles and JWT bundles we marshal parse with go-spiffe
// (spiffebundle.Parse / jwtbundle.Parse) and py-spiffe, and what they marshal parses with ours,
// with the same authorities, sequence number and refresh hint. Malformed documents are
// rejected (or tolerated) by ours exactly when go-spiffe rejects (or tolerates) them.
import assert from 'node:assert/strict';
import { generateKeyPairSync, type JsonWebKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { JwtBundle, SpiffeBundle, TrustDomain, X509Bundle } from './lib/sdk.ts';
import { certSha256, pemFileDers } from './lib/pem.ts';
import { pyBundleCheck } from './lib/python.ts';
import { check, checkBatch, type CheckResult } from './lib/spiffecheck.ts';
import { makeTmpDir, type TmpDir } from './lib/tmp.ts';

const TD = TrustDomain.parse('example.org');

interface GoKey {
  kid: string;
  type: string;
  spki: string;
}

const spkiB64 = (k: KeyObject): string => (k.export({ format: 'der', type: 'spki' }) as Buffer).toString('base64');

function jwtKeys(): { kid: string; pub: KeyObject; jwk: JsonWebKey }[] {
  const mk = (kid: string, pair: { publicKey: KeyObject }): { kid: string; pub: KeyObject; jwk: JsonWebKey } => ({
    kid,
    pub: pair.publicKey,
    jwk: { ...(pair.publicKey.export({ format: 'jwk' }) as JsonWebKey), kid },
  });
  return [
    mk('kid-p256', generateKeyPairSync('ec', { namedCurve: 'P-256' })),
    mk('kid-p384', generateKeyPairSync('ec', { namedCurve: 'P-384' })),
    mk('kid-p521', generateKeyPairSync('ec', { namedCurve: 'P-521' })),
    mk('kid-rsa', generateKeyPairSync('rsa', { modulusLength: 2048 })),
  ];
}

describe('SPIFFE bundle interop with go-spiffe and py-spiffe', () => {
  let tmp: TmpDir;
  let caDers: Uint8Array[];
  const keys = jwtKeys();

  before(() => {
    tmp = makeTmpDir();
    const gen = check('gen-x509-cases', TD.name, tmp.file('certs'));
    assert.ok(gen.ok, gen.error);
    caDers = [...pemFileDers(gen['root'] as string), ...pemFileDers(gen['intermediate'] as string)];
    assert.equal(caDers.length, 2);
  });
  after(() => tmp.cleanup());

  function ourBundle(seq: bigint | undefined, hint: number | undefined): SpiffeBundle {
    const b = new SpiffeBundle(TD);
    for (const d of caDers) b.addX509Authority(d);
    for (const k of keys) b.addJwtAuthority(k.kid, k.jwk);
    if (seq !== undefined) b.setSequenceNumber(seq);
    if (hint !== undefined) b.setRefreshHintSeconds(hint);
    return b;
  }

  function assertGoSees(go: CheckResult, seq: string | undefined, hint: number | undefined): void {
    assert.ok(go.ok, go.error);
    const x509 = (go['x509Authorities'] as { sha256: string }[]).map((c) => c.sha256);
    assert.deepEqual(x509, caDers.map(certSha256));
    const jwt = go['jwtAuthorities'] as GoKey[];
    assert.deepEqual(
      jwt.map((k) => [k.kid, k.spki]),
      [...keys].sort((a, b) => a.kid.localeCompare(b.kid)).map((k) => [k.kid, spkiB64(k.pub)]),
    );
    assert.equal(go['sequenceNumber'], seq);
    assert.equal(go['refreshHintSeconds'], hint);
  }

  it('our SpiffeBundle.marshal parses with go-spiffe spiffebundle.Parse', () => {
    const variants: [bigint | undefined, number | undefined][] = [
      [42n, 300],
      [undefined, undefined],
      [0n, 1],
      [(1n << 64n) - 1n, 86400],
    ];
    const files = variants.map(([seq, hint], i) => tmp.write(`ours-${i}.json`, ourBundle(seq, hint).marshal()));
    const go = checkBatch(files.map((f) => ({ cmd: 'bundle', args: [TD.name, f] })));
    variants.forEach(([seq, hint], i) => assertGoSees(go[i]!, seq?.toString(), hint));
  });

  it('round trip: ours -> go-spiffe Marshal -> ours is the same bundle', () => {
    const b = ourBundle(7n, 600);
    const go = check('bundle', TD.name, tmp.write('rt.json', b.marshal()));
    assert.ok(go.ok, go.error);
    const back = SpiffeBundle.parse(TD, go['marshaled'] as string);
    assert.ok(back.equals(b), `go re-marshaled:\n${String(go['marshaled'])}\nours:\n${b.marshal()}`);
    assert.equal(back.sequenceNumber, 7n);
    assert.equal(back.refreshHintSeconds, 600);
    // And strict (SPIRE bundleutil) parsing accepts go-spiffe's output too.
    assert.ok(SpiffeBundle.parse(TD, go['marshaled'] as string, { strict: true }).equals(b));
  });

  it('a bundle made by go-spiffe parses with ours (same authorities, sequence, hint)', () => {
    const gen = check('gen-bundle', TD.name, tmp.file('go'));
    assert.ok(gen.ok, gen.error);
    const json = readFileSync(gen['bundle'] as string, 'utf8');
    const b = SpiffeBundle.parse(TD, json, { strict: true });
    assert.equal(b.sequenceNumber, 42n);
    assert.equal(b.refreshHintSeconds, 300);
    assert.deepEqual(b.x509Authorities().map(certSha256), [gen['caSha256']]);
    assert.deepEqual([...b.jwtAuthorities().keys()].sort(), ['go-es256-kid', 'go-es384-kid', 'go-rs256-kid']);
    // Ours re-marshals to something go-spiffe reads back as the same bundle.
    const go = check('bundle', TD.name, tmp.write('go-back.json', b.marshal()));
    const orig = check('bundle', TD.name, gen['bundle'] as string);
    assert.ok(go.ok && orig.ok, go.error ?? orig.error);
    assert.deepEqual(go['x509Authorities'], orig['x509Authorities']);
    assert.deepEqual(go['jwtAuthorities'], orig['jwtAuthorities']);
    assert.equal(go['sequenceNumber'], orig['sequenceNumber']);
    assert.equal(go['refreshHintSeconds'], orig['refreshHintSeconds']);
    // The go-made JWT bundle (jwtbundle.Marshal) parses with ours too.
    const jb = JwtBundle.parse(TD, readFileSync(gen['jwtBundle'] as string, 'utf8'), { plainJwks: true });
    assert.deepEqual([...jb.authorities().keys()].sort(), ['go-es256-kid', 'go-es384-kid', 'go-rs256-kid']);
  });

  it('our JwtBundle.marshal parses with go-spiffe jwtbundle.Parse and py-spiffe JwtBundle.parse', () => {
    const jb = new JwtBundle(TD);
    for (const k of keys) jb.addAuthority(k.kid, k.jwk);
    const json = jb.marshal();
    const go = check('jwtbundle', TD.name, tmp.write('jwt.json', json));
    assert.ok(go.ok, go.error);
    assert.deepEqual(
      (go['jwtAuthorities'] as GoKey[]).map((k) => [k.kid, k.spki]),
      [...keys].sort((a, b) => a.kid.localeCompare(b.kid)).map((k) => [k.kid, spkiB64(k.pub)]),
    );
    const back = JwtBundle.parse(TD, go['marshaled'] as string, { plainJwks: true });
    assert.ok(back.equals(jb));
    const [py] = pyBundleCheck([{ kind: 'jwtbundle', trustDomain: TD.name, data: json }]);
    assert.ok(py!.ok, py!.error);
    assert.deepEqual(py!.kids, keys.map((k) => k.kid).sort());
  });

  it('our X509Bundle (PEM and raw DER) parses with go-spiffe and py-spiffe', () => {
    const xb = X509Bundle.fromAuthorities(TD, caDers);
    const want = caDers.map(certSha256);
    const go = check('x509bundle', TD.name, tmp.write('x509.pem', xb.marshal()));
    assert.ok(go.ok, go.error);
    assert.deepEqual(
      (go['x509Authorities'] as { sha256: string }[]).map((c) => c.sha256),
      want,
    );
    const py = pyBundleCheck([
      { kind: 'x509bundle', trustDomain: TD.name, data: xb.marshal() },
      { kind: 'x509bundle-raw', trustDomain: TD.name, data: Buffer.from(xb.marshalRaw()).toString('base64') },
    ]);
    for (const r of py) {
      assert.ok(r.ok, r.error);
      assert.deepEqual(r.sha256, [...want].sort());
    }
  });

  it('malformed bundles: ours accepts/rejects exactly as go-spiffe spiffebundle.Parse', () => {
    const b = ourBundle(1n, 60);
    const doc = JSON.parse(b.marshal()) as { keys: Record<string, unknown>[] } & Record<string, unknown>;
    const x509Entry = doc.keys[0]!;
    const jwtEntry = doc.keys[2]!;
    const otherX509 = doc.keys[1]!;
    const variants: Record<string, unknown> = {
      valid: doc,
      'no-keys-member': { spiffe_sequence: 1 },
      'empty-keys': { keys: [] },
      'x5c-two-certs': { keys: [{ ...x509Entry, x5c: [...(x509Entry['x5c'] as string[]), ...(otherX509['x5c'] as string[])] }] },
      'x5c-missing': { keys: [{ ...x509Entry, x5c: undefined }] },
      'x5c-key-mismatch': { keys: [{ ...x509Entry, x5c: otherX509['x5c'] }] },
      'jwt-no-kid': { keys: [{ ...jwtEntry, kid: undefined }] },
      'unknown-use-ignored': { keys: [{ ...jwtEntry, use: 'wit-svid-ish' }, x509Entry] },
      'no-use-ignored': { keys: [{ ...jwtEntry, use: undefined }, x509Entry] },
      'not-json': '{"keys": [',
      'keys-not-array': { keys: {} },
    };
    const names = Object.keys(variants);
    const files = names.map((n) => {
      const v = variants[n];
      return tmp.write(`bad-${n}.json`, typeof v === 'string' ? v : JSON.stringify(v));
    });
    const go = checkBatch(files.map((f) => ({ cmd: 'bundle', args: [TD.name, f] })));
    const diffs: string[] = [];
    names.forEach((n, i) => {
      let oursOk: boolean;
      let oursErr = '';
      try {
        SpiffeBundle.parse(TD, readFileSync(files[i]!, 'utf8'));
        oursOk = true;
      } catch (e) {
        oursOk = false;
        oursErr = (e as Error).message;
      }
      if (oursOk !== go[i]!.ok) diffs.push(`${n}: ours ok=${oursOk} (${oursErr}) go ok=${go[i]!.ok} (${go[i]!.error ?? ''})`);
    });
    assert.deepEqual(diffs, []);
    // Pin the go-spiffe verdicts that matter.
    const goOk = Object.fromEntries(names.map((n, i) => [n, go[i]!.ok]));
    assert.deepEqual(goOk, {
      valid: true,
      'no-keys-member': false,
      'empty-keys': true,
      'x5c-two-certs': false,
      'x5c-missing': false,
      'x5c-key-mismatch': false,
      'jwt-no-kid': false,
      'unknown-use-ignored': true,
      'no-use-ignored': true,
      'not-json': false,
      'keys-not-array': false,
    });
  });
});
