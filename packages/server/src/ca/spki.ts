import { createHash, type KeyObject } from 'node:crypto';
import { children, expectTag, readTlv, TAG_BIT_STRING, TAG_SEQUENCE, value } from '@ztwim/spiffe/internal';

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

/** SHA-1 of the subjectPublicKey bits (RFC 5280 §4.2.1.2 method 1), as Go and SPIRE compute key IDs. */
export function keyIdOf(spki: Uint8Array): Buffer {
  const outer = expectTag(readTlv(spki, 0), TAG_SEQUENCE, 'subject public key info');
  const [, bits] = children(spki, outer);
  return createHash('sha1')
    .update(value(spki, expectTag(bits, TAG_BIT_STRING, 'subject public key')).subarray(1))
    .digest();
}
