import assert from 'node:assert/strict';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { describe, it } from 'node:test';
import { decodeProtectedHeader } from 'jose';
import { isZtwimError, silentLogger } from '@ztwim/core';
import { LocalAuthorityService } from '@ztwim/proto';
import { SpiffeId } from '@ztwim/spiffe';
import { FakeClock } from '@ztwim/testkit';
import { handlerContext } from './handler-context.test-util.ts';
import { MemoryKeyManager } from '../keymanager/memory.ts';
import { Journal } from '../ca/journal.ts';
import { authorityIdOf, CaManager } from '../ca/manager.ts';
import { localAuthorityService } from './localauthority-service.ts';

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 0, 1);

const ctx = (method: keyof typeof LocalAuthorityService.method) => handlerContext(LocalAuthorityService, LocalAuthorityService.method[method]);

function setup() {
  const clock = new FakeClock(T0);
  const ca = new CaManager({ ca: { trustDomain: 'example.org', caTtlMs: 24 * HOUR }, keyManager: new MemoryKeyManager(), clock });
  const svc = localAuthorityService({ ca, log: silentLogger() });
  const x509 = () => svc.getX509AuthorityState!({} as never, ctx('getX509AuthorityState')) as Promise<never>;
  const jwt = () => svc.getJWTAuthorityState!({} as never, ctx('getJWTAuthorityState')) as Promise<never>;
  return { clock, ca, svc, x509: x509 as () => Promise<States>, jwt: jwt as () => Promise<States> };
}

interface State {
  authorityId: string;
  expiresAt: bigint;
  upstreamAuthoritySubjectKeyId: string;
}
interface States {
  active?: State;
  prepared?: State;
  old?: State;
}

const seconds = (ms: number): bigint => BigInt(Math.floor(ms / 1000));
/** The state's slots by name, with their authority IDs, for compact assertions. */
const ids = (s: States): Record<string, string> =>
  Object.fromEntries((['active', 'prepared', 'old'] as const).flatMap((k) => (s[k] === undefined ? [] : [[k, s[k].authorityId]])));

async function rejects(p: unknown, code: string, message: string): Promise<void> {
  await assert.rejects(Promise.resolve(p), (e: unknown) => {
    assert.ok(isZtwimError(e), String(e));
    assert.equal(e.code, code);
    assert.equal(e.message, message);
    return true;
  });
}

describe('LocalAuthority API', () => {
  it('answers Unavailable "server is initializing" before the CA has a key', async () => {
    const { x509, jwt } = setup();
    await rejects(x509(), 'ERR_UNAVAILABLE', 'server is initializing');
    await rejects(jwt(), 'ERR_UNAVAILABLE', 'server is initializing');
  });

  it('shows active, prepared and old keys through an automatic rotation (fake clock)', async () => {
    const { clock, ca, x509, jwt } = setup();
    await ca.start();
    const first = authorityIdOf(ca.x509Ca());
    const firstKid = ca.jwtSigner().kid;
    let s = await x509();
    assert.deepEqual(ids(s), { active: first });
    assert.equal(s.active?.expiresAt, seconds(T0 + 24 * HOUR));
    assert.equal(s.active?.upstreamAuthoritySubjectKeyId, '', 'no upstream authority');
    assert.deepEqual(ids(await jwt()), { active: firstKid });
    assert.equal((await jwt()).active?.expiresAt, seconds(T0 + 24 * HOUR));

    // past ½ of the CA's life: a new key is prepared (published, not signing)
    clock.advance(12 * HOUR + 1000);
    await ca.tick();
    const second = authorityIdOf(ca.nextX509Ca()!);
    const secondKid = ca.nextJwtSigner()!.kid;
    assert.notEqual(second, first);
    s = await x509();
    assert.deepEqual(ids(s), { active: first, prepared: second });
    assert.equal(s.prepared?.expiresAt, seconds(ca.nextX509Ca()!.notAfter.getTime()));
    assert.deepEqual(ids(await jwt()), { active: firstKid, prepared: secondKid });

    // past ⅚: the prepared key signs, the first one is old
    clock.advance(8 * HOUR);
    await ca.tick();
    assert.equal(authorityIdOf(ca.x509Ca()), second);
    assert.deepEqual(ids(await x509()), { active: second, old: first });
    assert.deepEqual(ids(await jwt()), { active: secondKid, old: firstKid });

    // at 24h the old keys expire and leave; the second CA (valid 12h-36h, backdated 10 s) is past its
    // half-life: a third is prepared; the second JWT key (from 12h+1s) is not yet
    clock.advance(4 * HOUR);
    await ca.tick();
    const third = authorityIdOf(ca.nextX509Ca()!);
    assert.deepEqual(ids(await x509()), { active: second, prepared: third });
    assert.deepEqual(ids(await jwt()), { active: secondKid });
  });

  it("prepares and activates an X.509 authority on request, with SPIRE's refusals", async () => {
    const { ca, svc, x509 } = setup();
    await ca.start();
    const first = authorityIdOf(ca.x509Ca());
    const activate = (authorityId: string) => svc.activateX509Authority!({ authorityId } as never, ctx('activateX509Authority'));

    await rejects(activate(''), 'ERR_INVALID_ARGUMENT', 'no authority ID provided');
    await rejects(activate(first), 'ERR_INVALID_ARGUMENT', 'unexpected authority ID');

    const prepared = (await svc.prepareX509Authority!({} as never, ctx('prepareX509Authority'))) as { preparedAuthority: State };
    const second = prepared.preparedAuthority.authorityId;
    assert.notEqual(second, first);
    assert.equal(authorityIdOf(ca.nextX509Ca()!), second);
    assert.deepEqual(ids(await x509()), { active: first, prepared: second });
    assert.ok(
      ca
        .bundle()
        .x509Authorities.some(
          (d) => new X509Certificate(d).subjectAltName?.includes('spiffe://example.org') && Buffer.from(d).equals(Buffer.from(ca.nextX509Ca()!.certificate)),
        ),
      'the prepared CA is in the bundle',
    );
    assert.equal(authorityIdOf(ca.x509Ca()), first, 'preparing does not change the signing CA');

    await rejects(activate('deadbeef'), 'ERR_INVALID_ARGUMENT', 'unexpected authority ID');
    const res = (await activate(second)) as { activatedAuthority: State };
    assert.equal(res.activatedAuthority.authorityId, second);
    assert.equal(authorityIdOf(ca.x509Ca()), second, 'the activated CA signs');
    const svid = ca.signX509Svid({
      spiffeId: SpiffeId.parse('spiffe://example.org/w'),
      publicKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey,
    });
    assert.ok(new X509Certificate(svid.certChain[0]!).checkIssued(new X509Certificate(ca.x509Ca().certificate)));
    assert.deepEqual(ids(await x509()), { active: second, old: first });

    // the old authority is in SPIRE's next slot but cannot be activated again
    await rejects(activate(first), 'ERR_INTERNAL', 'only Prepared authorities can be activated: unsupported local authority status: OLD');
    // a new preparation replaces the old key
    const third = ((await svc.prepareX509Authority!({} as never, ctx('prepareX509Authority'))) as { preparedAuthority: State }).preparedAuthority.authorityId;
    assert.deepEqual(ids(await x509()), { active: second, prepared: third });
  });

  it('prepares and activates a JWT authority on request', async () => {
    const { ca, svc, jwt } = setup();
    await ca.start();
    const firstKid = ca.jwtSigner().kid;
    const activate = (authorityId: string) => svc.activateJWTAuthority!({ authorityId } as never, ctx('activateJWTAuthority'));
    await rejects(activate(''), 'ERR_INVALID_ARGUMENT', 'no authority ID provided');
    await rejects(activate(firstKid), 'ERR_INVALID_ARGUMENT', 'unexpected authority ID');

    const prepared = ((await svc.prepareJWTAuthority!({} as never, ctx('prepareJWTAuthority'))) as { preparedAuthority: State }).preparedAuthority;
    assert.notEqual(prepared.authorityId, firstKid);
    assert.ok(
      ca.bundle().jwtAuthorities.some((a) => a.kid === prepared.authorityId),
      'the prepared key is in the bundle',
    );
    assert.deepEqual(ids(await jwt()), { active: firstKid, prepared: prepared.authorityId });

    await activate(prepared.authorityId);
    const token = await ca.signJwtSvid({ spiffeId: SpiffeId.parse('spiffe://example.org/w'), audience: ['rp'] });
    assert.equal(decodeProtectedHeader(token.token).kid, prepared.authorityId, 'tokens are signed with the activated key');
    assert.deepEqual(ids(await jwt()), { active: prepared.authorityId, old: firstKid });
    await rejects(activate(firstKid), 'ERR_INTERNAL', 'only Prepared authorities can be activated: unsupported local authority status: OLD');
  });

  it('a restarted server still knows its old keys (journaled)', async () => {
    const clock = new FakeClock(T0);
    const keyManager = new MemoryKeyManager();
    const stored = new Map<string, Uint8Array>();
    const store = { getCaJournal: async (n: string) => stored.get(n) ?? null, setCaJournal: async (n: string, d: Uint8Array) => void stored.set(n, d) };
    const make = () => new CaManager({ ca: { trustDomain: 'example.org', caTtlMs: 24 * HOUR }, keyManager, clock, journal: new Journal({ store }) });
    const before = make();
    await before.start();
    const first = authorityIdOf(before.x509Ca());
    const firstKid = before.jwtSigner().kid;
    // (the journal is named after the signing CA; the newest one is read back, so time moves between steps)
    clock.advance(1000);
    const second = (await before.prepareX509Authority()).authorityId;
    clock.advance(1000);
    await before.activateX509Authority();
    clock.advance(1000);
    const secondKid = (await before.prepareJwtAuthority()).authorityId;
    clock.advance(1000);
    await before.activateJwtAuthority();

    const after = make();
    await after.start();
    const svc = localAuthorityService({ ca: after, log: silentLogger() });
    assert.deepEqual(ids((await svc.getX509AuthorityState!({} as never, ctx('getX509AuthorityState'))) as States), { active: second, old: first });
    assert.deepEqual(ids((await svc.getJWTAuthorityState!({} as never, ctx('getJWTAuthorityState'))) as States), { active: secondKid, old: firstKid });
  });
});
