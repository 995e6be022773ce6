// Minimal PKCS#10 CSR (empty subject, no attributes) signed with ECDSA P-256/SHA-256.
import * as crypto from 'node:crypto';

function len(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v >>= 8) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), len(body.length), body]);
}

const ECDSA_SHA256 = tlv(0x30, Buffer.from([0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]));

/** A fresh EC P-256 key pair. */
export function generateEcKey(): crypto.KeyPairKeyObjectResult {
  return crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
}

/** DER CSR for `key` (private) / `pub`. */
export function createCsr(key: crypto.KeyObject, pub: crypto.KeyObject): Uint8Array {
  const spki = pub.export({ type: 'spki', format: 'der' });
  const info = tlv(0x30, Buffer.concat([
    Buffer.from([0x02, 0x01, 0x00]),
    tlv(0x30, Buffer.alloc(0)),
    spki,
    Buffer.from([0xa0, 0x00]),
  ]));
  const sig = crypto.sign('sha256', info, key);
  const bits = tlv(0x03, Buffer.concat([Buffer.from([0x00]), sig]));
  return new Uint8Array(tlv(0x30, Buffer.concat([info, ECDSA_SHA256, bits])));
}
