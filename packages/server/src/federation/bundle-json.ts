import { spiffeBundleFromWire, spiffeBundleToWire } from '@ztwim/core';
import type { SpiffeBundle } from '@ztwim/spiffe';
import type { Bundle, BundleInput } from '../datastore/datastore.ts';

// The datastore's Bundle as SPIFFE bundle JSON and back, through @ztwim/core's wire conversions.

/** The bundle as SPIRE's bundle endpoint serves it: 4-space JSON, the endpoint's refresh hint. */
export function bundleToSpiffeJson(b: Bundle, refreshHintSeconds: number): string {
  return spiffeBundleFromWire({ ...b, refreshHint: refreshHintSeconds }).marshal({ indent: 4 });
}

/** A fetched SPIFFE bundle as the datastore stores it, its spiffe_sequence kept. */
export function spiffeBundleToInput(sb: SpiffeBundle): BundleInput {
  const w = spiffeBundleToWire(sb);
  return {
    trustDomain: w.trustDomain,
    x509Authorities: w.x509Authorities,
    jwtAuthorities: w.jwtAuthorities.map((k) => ({ ...k, expiresAt: Number(k.expiresAt) })),
    refreshHint: Number(w.refreshHint),
    ...(sb.sequenceNumber === undefined ? {} : { spiffeSequence: sb.sequenceNumber }),
  };
}
