// Test-only DER building for the CSR tests (csr-structure.test.ts, csr-rules.test.ts): requests are
// assembled element by element so that each one breaks exactly one rule. der-writer.ts is the
// CA's own encoder; these tests build their input independently of it.

/** One DER element: tag, minimal definite length (up to 64 KiB), contents. */
export function tlv(tag: number, ...contents: Uint8Array[]): Buffer {
  const body = Buffer.concat(contents);
  const n = body.length;
  const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
  return Buffer.concat([Buffer.from([tag, ...len]), body]);
}
export const seq = (...c: Uint8Array[]): Buffer => tlv(0x30, ...c);
export const set = (...c: Uint8Array[]): Buffer => tlv(0x31, ...c);
export function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number) as [number, number, ...number[]];
  const out = [40 * a + b];
  for (const v of rest) {
    const groups = [v & 0x7f];
    for (let x = v >>> 7; x > 0; x >>>= 7) groups.unshift((x & 0x7f) | 0x80);
    out.push(...groups);
  }
  return tlv(0x06, Buffer.from(out));
}
