import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SpiffeId, TrustDomain } from '@ztwim/spiffe';
import { FakeClock } from '@ztwim/testkit';
import { P256, P384 } from '../ca/fixtures.test-util.ts';
import { createCaCertificate, X509Ca } from '../ca/x509-ca.ts';
import { cachingPeerVerifier } from './peer-verifier.ts';

const td = TrustDomain.parse('example.org');
const HOUR = 3_600_000;
const agent = SpiffeId.parse('spiffe://example.org/spire/agent/join_token/t');

describe('cachingPeerVerifier', () => {
  it('reuses a result only for the same chain and authorities, and only while every certificate is valid', () => {
    const clock = new FakeClock();
    const caChain = createCaCertificate({ trustDomain: td, key: P256, ttlMs: 24 * HOUR, now: clock.now() });
    const ca = new X509Ca({ trustDomain: td, key: P256, chain: caChain, clock, x509SvidTtlMs: HOUR });
    const svid = ca.signX509Svid({ publicKey: P384.publicKey, spiffeId: agent, ttlMs: HOUR });
    let authorities: Uint8Array[] = [...caChain];
    const verify = cachingPeerVerifier(td, () => authorities);
    const chain = svid.certChain;

    assert.equal(verify(chain, clock.now()).toString(), agent.toString());
    assert.equal(verify(chain, clock.now()).toString(), agent.toString());

    // The authority is removed: refused at once, although the chain was verified before.
    const otherCa = createCaCertificate({ trustDomain: td, key: P384, ttlMs: 24 * HOUR, now: clock.now() });
    authorities = [...otherCa];
    assert.throws(() => verify(chain, clock.now()), /could not verify leaf certificate/);
    // Back again (new array, same buffers): accepted.
    authorities = [...caChain];
    assert.equal(verify(chain, clock.now()).toString(), agent.toString());

    // Past the leaf's notAfter: refused, although the previous answer is remembered.
    clock.advance(HOUR + 2000);
    assert.throws(() => verify(chain, clock.now()), /expired/);
  });

  it('refuses a chain from another trust domain authority every time', () => {
    const clock = new FakeClock();
    const caChain = createCaCertificate({ trustDomain: td, key: P256, ttlMs: 24 * HOUR, now: clock.now() });
    const rogueChain = createCaCertificate({ trustDomain: td, key: P384, ttlMs: 24 * HOUR, now: clock.now() });
    const rogue = new X509Ca({ trustDomain: td, key: P384, chain: rogueChain, clock, x509SvidTtlMs: HOUR });
    const svid = rogue.signX509Svid({ publicKey: P256.publicKey, spiffeId: agent, ttlMs: HOUR });
    const verify = cachingPeerVerifier(td, () => caChain);
    for (let i = 0; i < 2; i++) assert.throws(() => verify(svid.certChain, clock.now()), /could not verify leaf certificate/);
  });
});
