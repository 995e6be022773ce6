import 'reflect-metadata';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { KeyUsageFlags, KeyUsagesExtension, X509Certificate as PeculiarCertificate } from '@peculiar/x509';
import {
  configError,
  marshalX509PopChallenge,
  parseX509PopPayload,
  permissionDenied,
  sha1Fingerprint,
  verifyX509PopResponse,
  X509POP_NONCE_SIZE,
  type Clock,
  type Random,
} from '@ztwim/core';
import { SpiffeId, type TrustDomain } from '@ztwim/spiffe';
import type { ChallengeFn, NodeAttestationResult, NodeAttestor, Selector } from './node-attestor.ts';

export interface X509PopAttestorConfig {
  readonly trustDomain: TrustDomain;
  readonly mode: 'external_pki' | 'spiffe';
  /** PEM files with the CAs that agent certificates must chain to (external_pki). */
  readonly caBundlePaths: readonly string[];
  /** Returns the trust domain's own X.509 authorities (spiffe mode). */
  readonly spiffeAuthorities?: () => readonly Uint8Array[];
  readonly agentPathTemplate?: string;
  readonly spiffePrefix?: string;
  readonly clock: Clock;
  readonly random: Random;
}

const MAX_CHAIN = 10;

function loadPemCerts(path: string): X509Certificate[] {
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch (e) {
    throw configError(`x509pop: cannot read ca_bundle_path ${path}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw configError(`x509pop: ${path} contains no PEM certificates`);
  return blocks.map((b) => new X509Certificate(b));
}

/** SPIRE's x509pop node attestor: proof of possession of a key certified by a trusted CA. */
export class X509PopAttestor implements NodeAttestor {
  readonly name = 'x509pop';
  private readonly cfg: X509PopAttestorConfig;
  private readonly roots: X509Certificate[];

  constructor(cfg: X509PopAttestorConfig) {
    this.cfg = cfg;
    this.roots = cfg.mode === 'external_pki' ? cfg.caBundlePaths.flatMap(loadPemCerts) : [];
  }

  async attest(payload: Uint8Array, challenge: ChallengeFn): Promise<NodeAttestationResult> {
    const { certificates } = parseX509PopPayload(payload);
    let chain: X509Certificate[];
    try {
      chain = certificates.map((d) => new X509Certificate(d));
    } catch {
      throw permissionDenied('x509pop: unable to parse certificate chain');
    }
    const leaf = chain[0] as X509Certificate;
    const roots = this.cfg.mode === 'spiffe' ? (this.cfg.spiffeAuthorities?.() ?? []).map((d) => new X509Certificate(d)) : this.roots;
    const path = this.verifyChain(leaf, chain.slice(1), roots);
    const ku = new PeculiarCertificate(leaf.raw).getExtension(KeyUsagesExtension);
    if (ku !== null && (ku.usages & KeyUsageFlags.digitalSignature) === 0) {
      throw permissionDenied('x509pop: leaf certificate lacks the digitalSignature key usage');
    }
    const nonce = this.cfg.random(X509POP_NONCE_SIZE);
    const kind = leaf.publicKey.asymmetricKeyType === 'rsa' ? 'rsa' : 'ecdsa';
    const ch = { kind, nonce } as const;
    const response = await challenge(marshalX509PopChallenge(ch));
    verifyX509PopResponse(ch, leaf.publicKey, response);
    return {
      agentId: this.agentId(leaf),
      selectors: this.selectors(leaf, path.slice(1)),
      canReattest: true,
    };
  }

  /** Builds and checks a path leaf → intermediates → one of the roots; returns it, leaf first. */
  private verifyChain(leaf: X509Certificate, intermediates: X509Certificate[], roots: readonly X509Certificate[]): X509Certificate[] {
    const now = this.cfg.clock.now();
    const valid = (c: X509Certificate): boolean => new Date(c.validFrom) <= now && now <= new Date(c.validTo);
    const path = [leaf];
    let current = leaf;
    for (let depth = 0; depth < MAX_CHAIN; depth++) {
      if (!valid(current)) throw permissionDenied('x509pop: certificate verification failed: a certificate is expired or not yet valid');
      const root = roots.find((r) => current.checkIssued(r) && current.verify(r.publicKey));
      if (root !== undefined) {
        if (!valid(root)) throw permissionDenied('x509pop: certificate verification failed: the CA certificate is expired');
        path.push(root);
        return path;
      }
      const next = intermediates.find((c) => c !== current && c.ca && current.checkIssued(c) && current.verify(c.publicKey));
      if (next === undefined) throw permissionDenied('x509pop: certificate verification failed: certificate signed by unknown authority');
      path.push(next);
      current = next;
    }
    throw permissionDenied('x509pop: certificate verification failed: chain too long');
  }

  private agentId(leaf: X509Certificate): SpiffeId {
    const td = this.cfg.trustDomain;
    let suffix: string;
    if (this.cfg.mode === 'spiffe') {
      const uri = /URI:(spiffe:\/\/[^,\s]+)/.exec(leaf.subjectAltName ?? '')?.[1];
      const prefix = this.cfg.spiffePrefix ?? '/spire-exchange/';
      const id = uri === undefined ? undefined : SpiffeId.tryParse(uri);
      if (id === undefined || !id.path.startsWith(prefix)) throw permissionDenied(`x509pop: leaf SPIFFE ID must start with ${prefix}`);
      suffix = this.render(
        { PluginName: 'x509pop', Fingerprint: sha1Fingerprint(leaf.raw), SVIDPathTrimmed: id.path.slice(prefix.length) },
        '/{{ .PluginName }}/{{ .SVIDPathTrimmed }}',
      );
    } else {
      const cn = /(?:^|\n)CN=([^\n]*)/.exec(leaf.subject)?.[1] ?? '';
      suffix = this.render({ PluginName: 'x509pop', Fingerprint: sha1Fingerprint(leaf.raw), CommonName: cn }, '/{{ .PluginName }}/{{ .Fingerprint }}');
    }
    return SpiffeId.fromPath(td, `/spire/agent${suffix}`);
  }

  /** Renders the small subset of Go templates SPIRE's agent_path_template uses: `{{ .Field }}`. */
  private render(fields: Record<string, string>, fallback: string): string {
    const tmpl = this.cfg.agentPathTemplate ?? fallback;
    return tmpl.replace(/\{\{\s*\.(\w+)\s*\}\}/g, (_, k: string) => {
      const v = fields[k];
      if (v === undefined) throw permissionDenied(`x509pop: agent_path_template uses unknown field .${k}`);
      return v;
    });
  }

  private selectors(leaf: X509Certificate, above: X509Certificate[]): Selector[] {
    const out: Selector[] = [];
    const cn = /(?:^|\n)CN=([^\n]*)/.exec(leaf.subject)?.[1];
    if (cn !== undefined && cn !== '') out.push({ type: 'x509pop', value: `subject:cn:${cn}` });
    for (const c of above) out.push({ type: 'x509pop', value: `ca:fingerprint:${sha1Fingerprint(c.raw)}` });
    let serial = leaf.serialNumber.toLowerCase().replace(/^0+(?=.)/, '');
    if (serial.length % 2 === 1) serial = '0' + serial;
    out.push({ type: 'x509pop', value: `serialnumber:${serial}` });
    for (const m of (leaf.subjectAltName ?? '').matchAll(/URI:x509pop:\/\/([^/,\s]+)\/([^/,\s]+)\/([^,\s]+)/g)) {
      if (m[1] === this.cfg.trustDomain.name) out.push({ type: 'x509pop', value: `san:${m[2]}:${m[3]}` });
    }
    return out;
  }
}
