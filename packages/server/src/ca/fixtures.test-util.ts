// Test-only helpers shared by the CA tests: pre-generated keys, CSR building with @peculiar/x509
// (an independent implementation), and the real openssl binary as a relying party.
import 'reflect-metadata';
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync, webcrypto, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import type { KeyType } from '../keymanager/key-manager.ts';
import type { ManagedKey } from '../keymanager/key-manager.ts';

x509.cryptoProvider.set(webcrypto as never);

export interface Pair {
  readonly publicKey: KeyObject;
  readonly privateKey: KeyObject;
}

export const P256: Pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
export const P384: Pair = generateKeyPairSync('ec', { namedCurve: 'P-384' });
export const RSA2048: Pair = generateKeyPairSync('rsa', { modulusLength: 2048 });

export function managed(id: string, type: KeyType, pair: Pair): ManagedKey {
  return { id, type, publicKey: pair.publicKey, privateKey: pair.privateKey };
}

function algFor(pair: Pair): { import: webcrypto.EcKeyImportParams | webcrypto.RsaHashedImportParams; sign: webcrypto.Algorithm | webcrypto.EcdsaParams } {
  if (pair.publicKey.asymmetricKeyType === 'rsa') {
    return { import: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, sign: { name: 'RSASSA-PKCS1-v1_5' } };
  }
  const crv = pair.publicKey.asymmetricKeyDetails?.namedCurve === 'secp384r1' ? 'P-384' : 'P-256';
  return { import: { name: 'ECDSA', namedCurve: crv }, sign: { name: 'ECDSA', hash: crv === 'P-384' ? 'SHA-384' : 'SHA-256' } as webcrypto.EcdsaParams };
}

export async function cryptoPair(pair: Pair): Promise<webcrypto.CryptoKeyPair> {
  const a = algFor(pair);
  const privateKey = await webcrypto.subtle.importKey('pkcs8', pair.privateKey.export({ type: 'pkcs8', format: 'der' }), a.import, true, ['sign']);
  const publicKey = await webcrypto.subtle.importKey('spki', pair.publicKey.export({ type: 'spki', format: 'der' }), a.import, true, ['verify']);
  return { privateKey, publicKey } as webcrypto.CryptoKeyPair;
}

export interface CsrOptions {
  readonly subject?: string;
  readonly dnsNames?: readonly string[];
  readonly uris?: readonly string[];
}

/** A DER PKCS#10 request signed by pair, built by @peculiar/x509. */
export async function makeCsr(pair: Pair, opts: CsrOptions = {}): Promise<Uint8Array> {
  const names: x509.JsonGeneralName[] = [
    ...(opts.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(opts.uris ?? []).map((value) => ({ type: 'url' as const, value })),
  ];
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: opts.subject ?? 'CN=workload, O=Evil Corp',
    keys: (await cryptoPair(pair)) as never,
    signingAlgorithm: algFor(pair).sign as never,
    extensions: names.length > 0 ? [new x509.SubjectAlternativeNameExtension(names)] : [],
  });
  return new Uint8Array(csr.rawData);
}

export const toPem = (der: Uint8Array): string => new X509Certificate(der).toString();

export interface OpensslResult {
  readonly ok: boolean;
  readonly output: string;
}

/** Runs `openssl verify -x509_strict` on a leaf with the given trust anchors and untrusted intermediates. */
export function opensslVerify(
  leaf: Uint8Array,
  roots: readonly Uint8Array[],
  opts: { intermediates?: readonly Uint8Array[]; purpose?: 'sslclient' | 'sslserver'; partialChain?: boolean; atTime?: Date } = {},
): OpensslResult {
  const dir = mkdtempSync(join(tmpdir(), 'ztwim-ossl-'));
  try {
    writeFileSync(join(dir, 'roots.pem'), roots.map(toPem).join(''));
    writeFileSync(join(dir, 'leaf.pem'), toPem(leaf));
    const args = ['verify', '-x509_strict', '-purpose', opts.purpose ?? 'sslclient', '-CAfile', join(dir, 'roots.pem')];
    if (opts.intermediates && opts.intermediates.length > 0) {
      writeFileSync(join(dir, 'untrusted.pem'), opts.intermediates.map(toPem).join(''));
      args.push('-untrusted', join(dir, 'untrusted.pem'));
    }
    if (opts.partialChain) args.push('-partial_chain');
    if (opts.atTime) args.push('-attime', String(Math.floor(opts.atTime.getTime() / 1000)));
    args.push(join(dir, 'leaf.pem'));
    const r = spawnSync('/usr/bin/openssl', args, { encoding: 'utf8' });
    return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export { x509 };

/** A DER CSR made by the openssl binary for the given private key (subject /CN=x, no extensions). */
export function opensslCsr(privateKey: KeyObject): Uint8Array {
  const dir = mkdtempSync(join(tmpdir(), 'ztwim-ossl-'));
  try {
    const keyFile = join(dir, 'key.pem');
    writeFileSync(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const r = spawnSync('/usr/bin/openssl', ['req', '-new', '-key', keyFile, '-subj', '/CN=x', '-outform', 'DER']);
    if (r.status !== 0) throw new Error(`openssl req failed: ${String(r.stderr)}`);
    return new Uint8Array(r.stdout);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
