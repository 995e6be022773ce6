// Minimal PEM helpers for the interop tests (independent of the SDK's own PEM code).
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';

/** DER bodies of every `-----BEGIN <label>-----` block, in order. */
export function pemBlocks(pem: string, label = 'CERTIFICATE'): Uint8Array[] {
  const re = new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`, 'g');
  const out: Uint8Array[] = [];
  for (const m of pem.matchAll(re)) out.push(new Uint8Array(Buffer.from((m[1] ?? '').replace(/\s+/g, ''), 'base64')));
  return out;
}

export function pemFileDers(path: string, label = 'CERTIFICATE'): Uint8Array[] {
  return pemBlocks(readFileSync(path, 'utf8'), label);
}

export function derToPem(der: Uint8Array, label = 'CERTIFICATE'): string {
  const b64 = Buffer.from(der)
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

export function dersToPem(ders: readonly Uint8Array[], label = 'CERTIFICATE'): string {
  return ders.map((d) => derToPem(d, label)).join('');
}

/** Lower-case hex SHA-256 of a DER certificate (matches spiffecheck's "sha256"). */
export function certSha256(der: Uint8Array): string {
  return new X509Certificate(Buffer.from(der)).fingerprint256.replace(/:/g, '').toLowerCase();
}
