// CA rotation seen from the outside: across a CaManager rotation (prepare at 1/2 life, activate
// at 5/6), the bundle we publish parses with go-spiffe and lists old and new authorities, SVIDs
// from the old and the new CA / JWT key both verify (go-spiffe, openssl, ours) during the
// overlap, and once the old CA expires the pruned bundle no longer accepts the old SVIDs.
// Time is a FakeClock; the peers get it explicitly (x509svid-verify / jwtsvid [unix-time],
// openssl -attime, our {now}).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FakeClock } from '@ztwim/testkit';
import { CaManager, MemoryKeyManager, type CaBundle } from '@ztwim/server';
import { SpiffeBundle, SpiffeId, TrustDomain, parseAndValidateJwtSvid, verifyX509Svid } from './lib/sdk.ts';
import { genKey } from './lib/keys.ts';
import { opensslVerify } from './lib/openssl.ts';
import { certSha256, dersToPem } from './lib/pem.ts';
import { checkBatch } from './lib/spiffecheck.ts';
import { makeTmpDir, type TmpDir } from './lib/tmp.ts';

const TD = TrustDomain.parse('example.org');
const HOUR = 3600_000;
const MIN = 60_000;
const AUD = 'rotation-test';

function toSpiffeBundle(b: CaBundle): SpiffeBundle {
  const sb = new SpiffeBundle(TD);
  for (const der of b.x509Authorities) sb.addX509Authority(der);
  for (const k of b.jwtAuthorities) sb.addJwtAuthority(k.kid, k.publicKey);
  sb.setSequenceNumber(BigInt(b.sequence));
  return sb;
}

interface Svid {
  chain: Uint8Array[];
  chainFile: string;
  leafFile: string;
  id: string;
}

describe('CA rotation: bundles and SVIDs across the overlap', () => {
  let tmp: TmpDir;
  const t0 = Date.now();
  const clock = new FakeClock(t0);
  let mgr: CaManager;
  const unix = (): string => String(Math.floor(clock.nowMs() / 1000));

  function mint(name: string): Svid {
    const id = SpiffeId.fromSegments(TD, 'rot', name);
    const r = mgr.signX509Svid({ publicKey: genKey('ec-p256').publicKey, spiffeId: id });
    return {
      chain: r.certChain,
      chainFile: tmp.write(`${name}.chain.pem`, dersToPem(r.certChain)),
      leafFile: tmp.write(`${name}.leaf.pem`, dersToPem([r.certChain[0]!])),
      id: id.toString(),
    };
  }

  before(async () => {
    tmp = makeTmpDir();
    mgr = new CaManager({ ca: { trustDomain: TD, caTtlMs: 24 * HOUR }, keyManager: new MemoryKeyManager(), clock });
    await mgr.tick();
  });
  after(() => tmp.cleanup());

  it('walks through prepare, activate and prune with every peer agreeing', async () => {
    const b0 = mgr.bundle();
    assert.equal(b0.x509Authorities.length, 1);
    assert.equal(b0.jwtAuthorities.length, 1);

    // 13h: the next CA and JWT key are prepared (published, not used).
    clock.advance(13 * HOUR);
    await mgr.tick();
    const b1 = mgr.bundle();
    assert.equal(b1.x509Authorities.length, 2);
    assert.equal(b1.jwtAuthorities.length, 2);
    assert.ok(b1.sequence > b0.sequence);

    // 19h30: still signing with the old CA / key.
    clock.advance(6 * HOUR + 30 * MIN);
    await mgr.tick();
    const oldSvid = mint('old');
    const oldJwt = await mgr.signJwtSvid({ spiffeId: SpiffeId.fromSegments(TD, 'rot', 'old'), audience: [AUD] });
    // JWT-SVIDs live 5 min: the old token is checked at its own time (+1 min) against the
    // overlap bundle, the new one at the overlap time.
    const oldJwtAt = clock.nowMs() + MIN;

    // 20h05: the prepared CA and key are active.
    clock.advance(35 * MIN);
    await mgr.tick();
    const newSvid = mint('new');
    const newJwt = await mgr.signJwtSvid({ spiffeId: SpiffeId.fromSegments(TD, 'rot', 'new'), audience: [AUD] });
    assert.notEqual(oldJwt.kid, newJwt.kid, 'JWT key must have rotated');
    const bundle = toSpiffeBundle(mgr.bundle());
    assert.notDeepEqual(oldSvid.chain[0], newSvid.chain[0]);

    // go-spiffe reads the bundle with both authorities of each kind.
    const bundleFile = tmp.write('overlap-bundle.json', bundle.marshal());
    const rootsFile = tmp.write('overlap-roots.pem', dersToPem(bundle.x509Authorities()));
    const tokOld = tmp.write('old.jwt', oldJwt.token);
    const tokNew = tmp.write('new.jwt', newJwt.token);
    const at = unix();
    const go = checkBatch([
      { cmd: 'bundle', args: [TD.name, bundleFile] },
      { cmd: 'x509svid-verify', args: [oldSvid.chainFile, TD.name, rootsFile, at] },
      { cmd: 'x509svid-verify', args: [newSvid.chainFile, TD.name, rootsFile, at] },
      { cmd: 'jwtsvid', args: [tokOld, TD.name, bundleFile, AUD, String(Math.floor(oldJwtAt / 1000))] },
      { cmd: 'jwtsvid', args: [tokNew, TD.name, bundleFile, AUD, at] },
    ]);
    assert.ok(
      go.every((r) => r.ok),
      JSON.stringify(go.map((r) => r.error)),
    );
    assert.equal((go[0]!['x509Authorities'] as unknown[]).length, 2);
    assert.deepEqual((go[0]!['jwtAuthorities'] as { kid: string }[]).map((k) => k.kid).sort(), [oldJwt.kid, newJwt.kid].sort());
    assert.equal(go[0]!['sequenceNumber'], String(mgr.bundle().sequence));
    assert.equal(go[1]!['id'], oldSvid.id);
    assert.equal(go[2]!['id'], newSvid.id);

    // openssl and ours agree during the overlap.
    const now = new Date(clock.nowMs());
    for (const s of [oldSvid, newSvid]) {
      assert.ok(opensslVerify(s.leafFile, { trusted: rootsFile, purpose: 'sslclient', atTime: Number(at) }).ok, s.id);
      assert.equal(verifyX509Svid(s.chain, bundle, { now }).id.toString(), s.id);
    }
    assert.equal((await parseAndValidateJwtSvid(oldJwt.token, bundle, [AUD], { now: new Date(oldJwtAt) })).id.toString(), 'spiffe://example.org/rot/old');
    assert.equal((await parseAndValidateJwtSvid(newJwt.token, bundle, [AUD], { now })).id.toString(), 'spiffe://example.org/rot/new');

    // 24h + 1 min: the first CA and JWT key have expired and are pruned from the bundle.
    const firstCa = b0.x509Authorities[0]!;
    clock.set(t0 + 24 * HOUR + MIN);
    await mgr.tick();
    const pruned = toSpiffeBundle(mgr.bundle());
    assert.ok(!pruned.x509Authorities().some((d) => certSha256(d) === certSha256(firstCa)), 'expired CA still in the bundle');
    assert.equal(pruned.findJwtAuthority(oldJwt.kid), undefined, 'expired JWT key still in the bundle');
    const prunedRoots = tmp.write('pruned-roots.pem', dersToPem(pruned.x509Authorities()));
    const goPruned = checkBatch([
      { cmd: 'bundle', args: [TD.name, tmp.write('pruned.json', pruned.marshal())] },
      // The old SVID, checked at its own validity time, no longer chains to the pruned bundle.
      { cmd: 'x509svid-verify', args: [oldSvid.chainFile, TD.name, prunedRoots, at] },
      { cmd: 'x509svid-verify', args: [newSvid.chainFile, TD.name, prunedRoots, at] },
    ]);
    assert.ok(goPruned[0]!.ok, goPruned[0]!.error);
    assert.deepEqual(
      goPruned.slice(1).map((r) => r.ok),
      [false, true],
      JSON.stringify(goPruned),
    );
    assert.throws(() => verifyX509Svid(oldSvid.chain, pruned, { now }), /could not verify leaf certificate/);
    assert.equal(verifyX509Svid(newSvid.chain, pruned, { now }).id.toString(), newSvid.id);
    await assert.rejects(parseAndValidateJwtSvid(oldJwt.token, pruned, [AUD], { now: new Date(oldJwtAt) }), /no JWT authority/);
  });
});
