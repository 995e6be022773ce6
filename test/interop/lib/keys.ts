// Key pairs and CSRs for the interop tests. CSRs come from `openssl req`, an implementation
// independent of ours.
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { openssl } from './openssl.ts';
import type { TmpDir } from './tmp.ts';

export type KeyKind = 'ec-p256' | 'ec-p384' | 'rsa-2048';

export interface Pair {
  publicKey: KeyObject;
  privateKey: KeyObject;
}

export function genKey(kind: KeyKind): Pair {
  if (kind === 'rsa-2048') return generateKeyPairSync('rsa', { modulusLength: 2048 });
  return generateKeyPairSync('ec', { namedCurve: kind === 'ec-p256' ? 'P-256' : 'P-384' });
}

export function privatePem(p: Pair): string {
  return p.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
}

/** A DER PKCS#10 CSR made by `openssl req` for the key (subject and SANs the CA must ignore). */
export function opensslCsr(tmp: TmpDir, name: string, p: Pair): Uint8Array {
  const keyFile = tmp.write(`${name}.csr-key.pem`, privatePem(p));
  const out = tmp.file(`${name}.csr.der`);
  openssl([
    'req',
    '-new',
    '-key',
    keyFile,
    '-subj',
    '/CN=evil/O=Evil Corp',
    '-addext',
    'subjectAltName=URI:spiffe://evil.test/x,DNS:evil.test',
    '-outform',
    'DER',
    '-out',
    out,
  ]);
  return new Uint8Array(readFileSync(out));
}
