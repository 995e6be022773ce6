import { createPublicKey, type JsonWebKey } from 'node:crypto';
import { SpiffeBundle, TrustDomain } from '@ztwim/spiffe';
import type { Bundle, BundleInput } from '../datastore/datastore.ts';

/*
 * Glue between the datastore's Bundle and the SDK's SpiffeBundle (which owns the SPIFFE bundle
 * JSON format, parse and marshal). The key conversions are node:crypto's; the `ca-slots` branch
 * brings one conversion layer for every bundle form, which replaces this file when it lands.
 */

/** The bundle as SPIFFE bundle JSON (SPIRE's bundle endpoint: 4-space indent, its refresh hint). */
export function bundleToSpiffeJson(b: Bundle, refreshHintSeconds: number): string {
  const jwt = new Map<string, JsonWebKey>();
  for (const k of b.jwtAuthorities) jwt.set(k.keyId, createPublicKey({ key: Buffer.from(k.publicKey), format: 'der', type: 'spki' }).export({ format: 'jwk' }));
  return SpiffeBundle.fromParts(TrustDomain.parse(b.trustDomain), {
    x509: b.x509Authorities.map((a) => a.asn1),
    jwt,
    sequenceNumber: b.sequenceNumber,
    refreshHintSeconds,
  }).marshal({ indent: 4 });
}

/** A fetched SPIFFE bundle as the datastore stores it, its spiffe_sequence kept. */
export function spiffeBundleToInput(sb: SpiffeBundle): BundleInput {
  return {
    trustDomain: sb.trustDomain.name,
    x509Authorities: sb.x509Authorities().map((asn1) => ({ asn1, tainted: false })),
    jwtAuthorities: [...sb.jwtAuthorities()].map(([keyId, jwk]) => ({
      keyId,
      publicKey: new Uint8Array(createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'der' })),
      expiresAt: 0,
      tainted: false,
    })),
    refreshHint: sb.refreshHintSeconds ?? 0,
    ...(sb.sequenceNumber === undefined ? {} : { spiffeSequence: sb.sequenceNumber }),
  };
}
