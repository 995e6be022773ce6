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

/** CertificationRequestInfo: version 0, empty subject, the SPKI, no attributes. */
function requestInfo(spki: Buffer): Buffer {
  return tlv(0x30, Buffer.concat([Buffer.from([0x02, 0x01, 0x00]), tlv(0x30, Buffer.alloc(0)), spki, Buffer.from([0xa0, 0x00])]));
}

function signedRequest(info: Buffer, sig: Buffer): Uint8Array {
  const bits = tlv(0x03, Buffer.concat([Buffer.from([0x00]), sig]));
  return new Uint8Array(tlv(0x30, Buffer.concat([info, ECDSA_SHA256, bits])));
}

/** DER CSR for `key` (private) / `pub`. */
export function createCsr(key: crypto.KeyObject, pub: crypto.KeyObject): Uint8Array {
  const info = requestInfo(pub.export({ type: 'spki', format: 'der' }));
  return signedRequest(info, crypto.sign('sha256', info, key));
}

function signAsync(data: Buffer, keyDer: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    crypto.sign('sha256', data, { key: keyDer, format: 'der', type: 'pkcs8' }, (err, sig) => (err === null ? resolve(sig) : reject(err)));
  });
}

/**
 * A fresh P-256 key (PKCS#8 DER) and its CSR, made on libuv's thread pool: key generation,
 * encoding and signing cost ~0.3–1 ms of CPU per key with OpenSSL 3, so minting thousands of
 * workload SVIDs with the sync calls above would block the agent's event loop (and its Workload
 * API) for seconds. Same CSR as createCsr.
 */
export async function newKeyAndCsr(): Promise<{ keyDer: Uint8Array; csr: Uint8Array }> {
  const [spki, pkcs8] = await new Promise<[Buffer, Buffer]>((resolve, reject) => {
    crypto.generateKeyPair('ec', {
      namedCurve: 'P-256',
      publicKeyEncoding: { type: 'spki', format: 'der' },
      privateKeyEncoding: { type: 'pkcs8', format: 'der' },
    }, (err, pub, priv) => (err === null ? resolve([pub, priv]) : reject(err)));
  });
  const info = requestInfo(spki);
  return { keyDer: new Uint8Array(pkcs8), csr: signedRequest(info, await signAsync(info, pkcs8)) };
}
