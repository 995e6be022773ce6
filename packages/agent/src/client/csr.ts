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

/** An ECDSA signature as WebCrypto gives it (r ‖ s, 32 bytes each for P-256) in DER (SEQUENCE of two INTEGERs). */
export function p1363ToDer(sig: Uint8Array): Buffer {
  const half = sig.length / 2;
  const int = (b: Uint8Array): Buffer => {
    let i = 0;
    while (i < b.length - 1 && b[i] === 0) i++;
    const v = Buffer.from(b.subarray(i));
    return tlv(0x02, (v[0] as number) & 0x80 ? Buffer.concat([Buffer.from([0]), v]) : v);
  };
  return tlv(0x30, Buffer.concat([int(sig.subarray(0, half)), int(sig.subarray(half))]));
}

const { subtle } = crypto.webcrypto;
const ECDSA_P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const ECDSA_SHA256_PARAMS = { name: 'ECDSA', hash: 'SHA-256' } as const;

/**
 * A fresh P-256 key (PKCS#8 DER) and its CSR (the same CSR as createCsr), made with WebCrypto:
 * generation, both exports and the signature run on libuv's thread pool, on the CryptoKey itself
 * (node:crypto's async sign re-parses a DER key on the calling thread). Measured: about a third of
 * the CPU of generateKeyPairSync + export + sign per key, and off the event loop, which matters
 * when the agent mints thousands of workload SVIDs after it starts.
 */
export async function newKeyAndCsr(): Promise<{ keyDer: Uint8Array; csr: Uint8Array }> {
  const pair = await subtle.generateKey(ECDSA_P256, true, ['sign', 'verify']);
  const [spki, pkcs8] = await Promise.all([subtle.exportKey('spki', pair.publicKey), subtle.exportKey('pkcs8', pair.privateKey)]);
  const info = requestInfo(Buffer.from(spki));
  const sig = await subtle.sign(ECDSA_SHA256_PARAMS, pair.privateKey, info);
  return { keyDer: new Uint8Array(pkcs8), csr: signedRequest(info, p1363ToDer(new Uint8Array(sig))) };
}

/** newKeyAndCsr on the calling thread: for a few keys needed at once. */
export function newKeyAndCsrSync(): { keyDer: Uint8Array; csr: Uint8Array } {
  const { privateKey, publicKey } = generateEcKey();
  return { keyDer: new Uint8Array(privateKey.export({ type: 'pkcs8', format: 'der' })), csr: createCsr(privateKey, publicKey) };
}
