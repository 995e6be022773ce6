import type { KeyObject } from 'node:crypto';

// KeyObject.export() to SPKI costs ~100µs under OpenSSL 3; CSR parsing already has the bytes.
const cache = new WeakMap<KeyObject, Buffer>();

/** The DER SubjectPublicKeyInfo of a public key, exported once per KeyObject. */
export function spkiOf(key: KeyObject): Buffer {
  let der = cache.get(key);
  if (der === undefined) {
    der = key.export({ type: 'spki', format: 'der' });
    cache.set(key, der);
  }
  return der;
}

/** Records the SPKI a KeyObject was created from, so spkiOf never has to export it. */
export function rememberSpki(key: KeyObject, der: Buffer): void {
  cache.set(key, der);
}
