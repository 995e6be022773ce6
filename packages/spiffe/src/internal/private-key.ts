import { createHash, createPrivateKey, type KeyObject } from 'node:crypto';
import { BoundedCache } from './bounded-cache.ts';

/** Keys kept: a workload holds a handful of SVIDs; the Workload API resends the same ones. */
/** Imported keys by SHA-256 of their PKCS#8 DER (the hash, not the key bytes, is the map key). */
const cache = new BoundedCache<string, KeyObject>(32);

/**
 * Imports a PKCS#8 DER private key, reusing the KeyObject of the same bytes imported before.
 *
 * Why a cache: node's `createPrivateKey` on PKCS#8 goes through OpenSSL 3's generic decoder,
 * ~0.5–0.6 ms of CPU per P-256 or RSA-2048 key (bench/results/sdk.md), more than the rest of a
 * FetchX509SVID answer; the Workload API sends the same key in every response until the SVID
 * rotates, so each later response costs a hash (~2 µs) instead. KeyObjects are immutable, so
 * SVIDs may share one. Throws what `createPrivateKey` throws for bytes that are not a key.
 */
export function importPkcs8PrivateKey(der: Uint8Array): KeyObject {
  const digest = createHash('sha256').update(der).digest('base64');
  const hit = cache.get(digest);
  if (hit !== undefined) return hit;
  const key = createPrivateKey({ key: Buffer.from(der.buffer, der.byteOffset, der.byteLength), format: 'der', type: 'pkcs8' });
  cache.set(digest, key);
  return key;
}
