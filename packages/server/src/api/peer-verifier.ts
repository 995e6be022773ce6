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

/** How many verified chains are also remembered by their bytes (see cachingPeerVerifier). */
export const REMEMBERED_CHAINS = 1024;

function bytesKey(der: Uint8Array): string {
  return Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64');
}

function sameBytes(a: readonly Uint8Array[], b: readonly Uint8Array[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (Buffer.compare(a[i] as Uint8Array, b[i] as Uint8Array) !== 0) return false;
  return true;
}

/**
 * Verifies client X509-SVID chains against the trust domain's current authorities, remembering
 * each result per chain buffer (an endpoint hands every call on a connection the same buffers)
 * and, for the last `remembered` chains, per chain bytes: a new connection presenting a chain
 * verified before (an agent that reconnects, or opens another connection, with the same SVID)
 * finds the result too. A remembered result is used only while the very same chain
 * (the same buffers, or buffers of the same bytes) is presented, the authority list holds the
 * very same buffers in the same order, and `now` lies inside every certificate's validity period
 * on the verified path: under those conditions a fresh verification gives the same answer.
 * Anything else (a rotated or removed authority, an expired certificate, another chain) verifies
 * from scratch, which throws when the chain is refused.
 */
export function cachingPeerVerifier(
  td: TrustDomain,
  authorities: () => readonly Uint8Array[],
  opts: { readonly remembered?: number; readonly verify?: typeof verifyX509Svid } = {},
): (chain: readonly Uint8Array[], now: Date) => SpiffeId {
  const remembered = opts.remembered ?? REMEMBERED_CHAINS;
  const verify = opts.verify ?? verifyX509Svid;
  const results = new WeakMap<Uint8Array, Verified>();
  // Insertion order is age: the oldest is dropped first.
  const byBytes = new Map<string, Verified>();
  let bundleAuths: readonly Uint8Array[] = [];
  let bundle: X509Bundle | undefined;
  const usable = (v: Verified | undefined, auths: readonly Uint8Array[], t: number): v is Verified =>
    v !== undefined && t >= v.from && t <= v.until && sameRefs(v.authorities, auths);
  return (chain, now) => {
    const auths = authorities();
    const leaf = chain[0];
    const t = now.getTime();
    let key: string | undefined;
    if (leaf !== undefined) {
      const hit = results.get(leaf);
      if (hit !== undefined && sameRefs(hit.chain, chain) && usable(hit, auths, t)) return hit.id;
      key = bytesKey(leaf);
      const seen = byBytes.get(key);
      if (seen !== undefined && sameBytes(seen.chain, chain) && usable(seen, auths, t)) {
        results.set(leaf, { ...seen, chain: [...chain] });
        return seen.id;
      }
    }
    if (bundle === undefined || !sameRefs(bundleAuths, auths)) {
      bundle = X509Bundle.fromAuthorities(td, auths);
      bundleAuths = [...auths];
    }
    const v = verify([...chain], bundle, { now });
    if (leaf !== undefined) {
      let from = -Infinity;
      let until = Infinity;
      for (const der of v.verifiedChains[0] ?? []) {
        const c = new X509Certificate(der);
        from = Math.max(from, Date.parse(c.validFrom));
        until = Math.min(until, Date.parse(c.validTo));
      }
      if (Number.isFinite(from) && Number.isFinite(until)) {
        const r: Verified = { chain: [...chain], authorities: [...auths], id: v.id, from, until };
        results.set(leaf, r);
        if (remembered > 0 && key !== undefined) {
          byBytes.delete(key);
          byBytes.set(key, r);
          if (byBytes.size > remembered) byBytes.delete(byBytes.keys().next().value as string);
        }
      }
    }
    return v.id;
  };
}
