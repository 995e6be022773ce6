// A real SPIRE v1.13.0 server as the producer and consumer of core artefacts: its trust bundle,
// X509-SVIDs (`spire-server x509 mint`) and JWT-SVIDs (`spire-server jwt mint`, RS256 keys here)
// parse and verify with our SDK; SPIFFE bundles we marshal are accepted by `spire-server bundle
// set` and come back unchanged; malformed bundles are refused by `bundle set` (which parses
// with go-spiffe spiffebundle.Parse, not the stricter bundleutil.Decode of federation fetches)
// exactly when our default parser refuses them.
import assert from 'node:assert/strict';
import { generateKeyPairSync, type JsonWebKey } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { JwtSvid, SpiffeBundle, TrustDomain, X509Bundle, X509Svid, parseAndValidateJwtSvid, verifyX509Svid } from './lib/sdk.ts';
import { certSha256, pemBlocks } from './lib/pem.ts';
import { startSpireServer, type SpireServer } from './lib/spire-server.ts';
import { check } from './lib/spiffecheck.ts';
import { makeTmpDir, type TmpDir } from './lib/tmp.ts';

const TD = TrustDomain.parse('example.org');
const FED = TrustDomain.parse('other.test');

describe('real SPIRE server: its SVIDs and bundle verify with ztwim; our bundles load into SPIRE', () => {
  let tmp: TmpDir;
  let spire: SpireServer;
  let bundle: SpiffeBundle;

  before(async () => {
    tmp = makeTmpDir('ztwim-spire-');
    spire = await startSpireServer(tmp, { trustDomain: TD.name, caKeyType: 'ec-p256', jwtKeyType: 'rsa-2048' });
    bundle = SpiffeBundle.parse(TD, spire.cli(['bundle', 'show', '-format', 'spiffe']), { strict: true });
  });
  after(async () => {
    await spire?.stop();
    tmp?.cleanup();
  });

  it('SPIRE bundle (spiffe format) parses strictly with ours and go-spiffe alike', () => {
    assert.equal(bundle.x509Authorities().length, 1);
    assert.equal(bundle.jwtAuthorities().size, 1);
    const [kid, jwk] = [...bundle.jwtAuthorities()][0]!;
    assert.equal(kid.length, 32);
    assert.equal(jwk.kty, 'RSA');
    const go = check('bundle', TD.name, tmp.write('spire-bundle.json', spire.cli(['bundle', 'show', '-format', 'spiffe'])));
    assert.ok(go.ok, go.error);
    assert.deepEqual(
      (go['x509Authorities'] as { sha256: string }[]).map((c) => c.sha256),
      bundle.x509Authorities().map(certSha256),
    );
    assert.deepEqual(
      (go['jwtAuthorities'] as { kid: string }[]).map((k) => k.kid),
      [kid],
    );
    // PEM form of the same bundle.
    const pem = X509Bundle.parse(TD, spire.cli(['bundle', 'show', '-format', 'pem']));
    assert.ok(pem.equals(bundle.x509Bundle()));
  });

  it('X509-SVIDs minted by SPIRE verify and parse with ours', () => {
    const dir = tmp.file('x509');
    mkdirSync(dir);
    spire.cli(['x509', 'mint', '-spiffeID', 'spiffe://example.org/ns/prod/sa/api', '-dns', 'api.example.org', '-ttl', '10m', '-write', dir]);
    const svidPem = readFileSync(`${dir}/svid.pem`, 'utf8');
    const keyPem = readFileSync(`${dir}/key.pem`, 'utf8');
    const svid = X509Svid.parse(svidPem, keyPem);
    assert.equal(svid.id.toString(), 'spiffe://example.org/ns/prod/sa/api');
    const v = verifyX509Svid(pemBlocks(svidPem), bundle, { now: new Date() });
    assert.equal(v.id.toString(), 'spiffe://example.org/ns/prod/sa/api');
    // The bundle.pem SPIRE writes next to it is the same trust anchor set.
    assert.deepEqual(pemBlocks(readFileSync(`${dir}/bundle.pem`, 'utf8')).map(certSha256), bundle.x509Authorities().map(certSha256));
    // Ten minutes TTL: rejected an hour later; rejected under a foreign root.
    assert.throws(() => verifyX509Svid(pemBlocks(svidPem), bundle, { now: new Date(Date.now() + 3600_000) }), /could not verify leaf certificate/);
    const gen = check('gen-bundle', TD.name, tmp.file('foreign'));
    assert.ok(gen.ok, gen.error);
    const foreign = X509Bundle.parse(TD, readFileSync(gen['caPem'] as string, 'utf8'));
    assert.throws(() => verifyX509Svid(pemBlocks(svidPem), foreign, { now: new Date() }), /could not verify leaf certificate/);
  });

  it('JWT-SVIDs minted by SPIRE validate with ours (RS256), audience and signature enforced', async () => {
    const file = tmp.file('jwt.txt');
    spire.cli(['jwt', 'mint', '-spiffeID', 'spiffe://example.org/ns/prod/sa/api', '-audience', 'aud-1', '-audience', 'aud-2', '-write', file]);
    const token = readFileSync(file, 'utf8').trim();
    const header = JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()) as Record<string, unknown>;
    assert.equal(header['alg'], 'RS256');
    assert.equal(header['typ'], 'JWT');
    assert.ok(bundle.findJwtAuthority(String(header['kid'])), 'kid must be in the SPIRE bundle');
    const svid: JwtSvid = await parseAndValidateJwtSvid(token, bundle, ['aud-2']);
    assert.equal(svid.id.toString(), 'spiffe://example.org/ns/prod/sa/api');
    assert.deepEqual(svid.audience, ['aud-1', 'aud-2']);
    await assert.rejects(parseAndValidateJwtSvid(token, bundle, ['aud-3']), /expected audience/);
    const [h, p, s] = token.split('.') as [string, string, string];
    const flipped = `${h}.${p}.${s.startsWith('A') ? 'B' : 'A'}${s.slice(1)}`;
    await assert.rejects(parseAndValidateJwtSvid(flipped, bundle, ['aud-1']), /cryptographic primitive/);
    // go-spiffe agrees on the same token and bundle.
    const go = check('jwtsvid', file, TD.name, tmp.write('spire-bundle-jwt.json', bundle.marshal()), 'aud-2');
    assert.ok(go.ok, go.error);
  });

  it('a SPIFFE bundle we marshal is accepted by `spire-server bundle set` and comes back the same', () => {
    const caDer = pemBlocks(readFileSync(check('gen-bundle', FED.name, tmp.file('fed'))['caPem'] as string, 'utf8'))[0]!;
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const ours = new SpiffeBundle(FED);
    ours.addX509Authority(caDer);
    ours.addJwtAuthority('fed-ec-key', { ...(ec.publicKey.export({ format: 'jwk' }) as JsonWebKey), kid: 'fed-ec-key' });
    ours.addJwtAuthority('fed-rsa-key', { ...(rsa.publicKey.export({ format: 'jwk' }) as JsonWebKey), kid: 'fed-rsa-key' });
    ours.setSequenceNumber(5n);
    ours.setRefreshHintSeconds(300);
    spire.cli(['bundle', 'set', '-format', 'spiffe', '-id', FED.idString(), '-path', tmp.write('ours-fed.json', ours.marshal())]);
    const listed = spire.cli(['bundle', 'list', '-format', 'spiffe', '-id', FED.idString()]);
    const back = SpiffeBundle.parse(FED, listed, { strict: true });
    assert.deepEqual(back.x509Authorities().map(certSha256), [certSha256(caDer)]);
    assert.deepEqual([...back.jwtAuthorities().keys()].sort(), ['fed-ec-key', 'fed-rsa-key']);
    const a = SpiffeBundle.fromParts(FED, { x509: ours.x509Authorities(), jwt: ours.jwtAuthorities() });
    const b = SpiffeBundle.fromParts(FED, { x509: back.x509Authorities(), jwt: back.jwtAuthorities() });
    assert.ok(a.equals(b), `SPIRE returned:\n${listed}`);
  });

  it('malformed federated bundles: SPIRE `bundle set` refuses exactly what our default parser refuses', () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = { ...(ec.publicKey.export({ format: 'jwk' }) as JsonWebKey) };
    const caDer = pemBlocks(readFileSync(check('gen-bundle', FED.name, tmp.file('fed2'))['caPem'] as string, 'utf8'))[0]!;
    const good = new SpiffeBundle(FED);
    good.addX509Authority(caDer);
    good.addJwtAuthority('k1', { ...jwk, kid: 'k1' });
    const doc = JSON.parse(good.marshal()) as { keys: Record<string, unknown>[] };
    const [x509Entry, jwtEntry] = doc.keys as [Record<string, unknown>, Record<string, unknown>];
    const variants: Record<string, unknown> = {
      valid: doc,
      'missing-use': { keys: [x509Entry, { ...jwtEntry, use: undefined }] },
      'unknown-use': { keys: [x509Entry, { ...jwtEntry, use: 'bogus' }] },
      'jwt-missing-kid': { keys: [x509Entry, { ...jwtEntry, kid: undefined }] },
      'x5c-two-certs': { keys: [{ ...x509Entry, x5c: [...(x509Entry['x5c'] as string[]), ...(x509Entry['x5c'] as string[])] }] },
    };
    const got: Record<string, { spire: boolean; ours: boolean }> = {};
    for (const [name, v] of Object.entries(variants)) {
      const json = JSON.stringify(v);
      const r = spire.tryCli(['bundle', 'set', '-format', 'spiffe', '-id', `spiffe://${name}.fed.test`, '-path', tmp.write(`fed-${name}.json`, json)]);
      let ours = true;
      try {
        SpiffeBundle.parse(TrustDomain.parse(`${name}.fed.test`), json);
      } catch {
        ours = false;
      }
      got[name] = { spire: r.status === 0, ours };
    }
    // What SPIRE stored for 'missing-use' is the X.509 authority only, as ours parses it.
    const stored = SpiffeBundle.parse(
      TrustDomain.parse('missing-use.fed.test'),
      spire.cli(['bundle', 'list', '-format', 'spiffe', '-id', 'spiffe://missing-use.fed.test']),
    );
    const oursParsed = SpiffeBundle.parse(TrustDomain.parse('missing-use.fed.test'), JSON.stringify(variants['missing-use']));
    assert.equal(stored.jwtAuthorities().size, 0);
    assert.equal(oursParsed.jwtAuthorities().size, 0);
    assert.deepEqual(stored.x509Authorities().map(certSha256), oursParsed.x509Authorities().map(certSha256));
    assert.deepEqual(got, {
      valid: { spire: true, ours: true },
      // Keys without a known `use` are ignored (spec), not an error.
      'missing-use': { spire: true, ours: true },
      'unknown-use': { spire: true, ours: true },
      'jwt-missing-kid': { spire: false, ours: false },
      'x5c-two-certs': { spire: false, ours: false },
    });
  });
});
