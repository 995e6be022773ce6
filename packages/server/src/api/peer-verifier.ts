import { X509Certificate } from 'node:crypto';
import { verifyX509Svid, X509Bundle, type SpiffeId, type TrustDomain } from '@ztwim/spiffe';

interface Verified {
  /** The exact chain buffers and authority buffers the result was computed from. */
  readonly chain: readonly Uint8Array[];
  readonly authorities: readonly Uint8Array[];
  readonly id: SpiffeId;
  /** Intersection of the validity periods of every certificate on the verified path (ms). */
  readonly from: number;
  readonly until: number;
}

function sameRefs(a: readonly Uint8Array[], b: readonly Uint8Array[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Verifies client X509-SVID chains against the trust domain's current authorities, remembering
 * each result per chain buffer (an endpoint hands every call on a connection the same buffers).
 * A remembered result is used only while the very same chain buffers are presented, the
 * authority list holds the very same buffers in the same order, and `now` lies inside every
 * certificate's validity period on the verified path: under those conditions a fresh
 * verification gives the same answer. Anything else (a rotated or removed authority, an expired
 * certificate, another chain) verifies from scratch, which throws when the chain is refused.
 */
export function cachingPeerVerifier(td: TrustDomain, authorities: () => readonly Uint8Array[]): (chain: readonly Uint8Array[], now: Date) => SpiffeId {
  const results = new WeakMap<Uint8Array, Verified>();
  let bundleAuths: readonly Uint8Array[] = [];
  let bundle: X509Bundle | undefined;
  return (chain, now) => {
    const auths = authorities();
    const leaf = chain[0];
    const t = now.getTime();
    if (leaf !== undefined) {
      const hit = results.get(leaf);
      if (hit !== undefined && t >= hit.from && t <= hit.until && sameRefs(hit.chain, chain) && sameRefs(hit.authorities, auths)) return hit.id;
    }
    if (bundle === undefined || !sameRefs(bundleAuths, auths)) {
      bundle = X509Bundle.fromAuthorities(td, auths);
      bundleAuths = [...auths];
    }
    const v = verifyX509Svid([...chain], bundle, { now });
    if (leaf !== undefined) {
      let from = -Infinity;
      let until = Infinity;
      for (const der of v.verifiedChains[0] ?? []) {
        const c = new X509Certificate(der);
        from = Math.max(from, Date.parse(c.validFrom));
        until = Math.min(until, Date.parse(c.validTo));
      }
      if (Number.isFinite(from) && Number.isFinite(until)) {
        results.set(leaf, { chain: [...chain], authorities: [...auths], id: v.id, from, until });
      }
    }
    return v.id;
  };
}
