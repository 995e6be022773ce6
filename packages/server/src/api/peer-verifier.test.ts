import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SpiffeId, TrustDomain, verifyX509Svid } from '@ztwim/spiffe';
import { FakeClock } from '@ztwim/testkit';
import { P256, P384 } from '../ca/fixtures.test-util.ts';
import { createCaCertificate, X509Ca } from '../ca/x509-ca.ts';
import { cachingPeerVerifier } from './peer-verifier.ts';

const td = TrustDomain.parse('example.org');
const HOUR = 3_600_000;
const agent = SpiffeId.parse('spiffe://example.org/spire/agent/join_token/t');

/** A CA of the trust domain (P-256) on a fake clock. */
function issuer(): { clock: FakeClock; caChain: Uint8Array[]; ca: X509Ca } {
  const clock = new FakeClock();
  const caChain = createCaCertificate({ trustDomain: td, key: P256, ttlMs: 24 * HOUR, now: clock.now() });
  return { clock, caChain, ca: new X509Ca({ trustDomain: td, key: P256, chain: caChain, clock, x509SvidTtlMs: HOUR }) };
}

/** verifyX509Svid, counting its runs (a run = a verification from scratch). */
function countingVerify(): { verify: typeof verifyX509Svid; runs: () => number } {
  let n = 0;
  return {
    verify: (...a) => {
      n++;
      return verifyX509Svid(...a);
    },
    runs: () => n,
  };
}

describe('cachingPeerVerifier', () => {
  it('reuses a result only for the same chain and authorities, and only while every certificate is valid', () => {
    const { clock, caChain, ca } = issuer();
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

  it('reuses a result for a chain of the same bytes in other buffers (a new connection), under the same conditions', () => {
    const { clock, caChain, ca } = issuer();
    const svid = ca.signX509Svid({ publicKey: P384.publicKey, spiffeId: agent, ttlMs: HOUR });
    let authorities: Uint8Array[] = [...caChain];
    const counted = countingVerify();
    const verify = cachingPeerVerifier(td, () => authorities, { verify: counted.verify });
    const copy = (): Uint8Array[] => svid.certChain.map((d) => new Uint8Array(d));

    // Verified from one connection's buffers, then presented from another connection's.
    assert.equal(verify(svid.certChain, clock.now()).toString(), agent.toString());
    const conn = copy();
    assert.equal(verify(conn, clock.now()).toString(), agent.toString());
    assert.equal(verify(conn, clock.now()).toString(), agent.toString());
    assert.equal(counted.runs(), 1);

    // The same leaf with other certificates after it is another chain: verified again.
    const other = ca.signX509Svid({ publicKey: P256.publicKey, spiffeId: agent, ttlMs: HOUR });
    assert.equal(verify([copy()[0]!, ...other.certChain], clock.now()).toString(), agent.toString());
    assert.equal(counted.runs(), 2);

    // The authority removed: a new connection with the same bytes is refused at once.
    const otherCa = createCaCertificate({ trustDomain: td, key: P384, ttlMs: 24 * HOUR, now: clock.now() });
    authorities = [...otherCa];
    assert.throws(() => verify(copy(), clock.now()), /could not verify leaf certificate/);
    authorities = [...caChain];
    assert.equal(verify(copy(), clock.now()).toString(), agent.toString());
    // Past the leaf's notAfter: refused from new buffers too.
    clock.advance(HOUR + 2000);
    assert.throws(() => verify(copy(), clock.now()), /expired/);
  });

  it('remembers the bytes of the last `remembered` chains only', () => {
    const { clock, caChain, ca } = issuer();
    const a = ca.signX509Svid({ publicKey: P384.publicKey, spiffeId: agent, ttlMs: HOUR }).certChain;
    const b = ca.signX509Svid({ publicKey: P256.publicKey, spiffeId: agent, ttlMs: HOUR }).certChain;
    const counted = countingVerify();
    const verify = cachingPeerVerifier(td, () => caChain, { remembered: 1, verify: counted.verify });
    const copy = (c: Uint8Array[]): Uint8Array[] => c.map((d) => new Uint8Array(d));
    verify(a, clock.now());
    verify(copy(a), clock.now());
    assert.equal(counted.runs(), 1);
    verify(b, clock.now());
    verify(copy(a), clock.now());
    assert.equal(counted.runs(), 3, 'a was dropped for b');
    verify(a, clock.now());
    assert.equal(counted.runs(), 3, 'the first buffers are still remembered by reference');
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
