import type { KeyObject } from 'node:crypto';
import { cryptoRandom, failedPrecondition, internal, invalidArgument, type Clock, type Random } from '@ztwim/core';
import { SpiffeId, type TrustDomain } from '@ztwim/spiffe';
import { expectTag, OID_SUBJECT_KEY_ID, parseCertificate, readTlv, TAG_OCTET_STRING, value, type ParsedCertificate } from '@ztwim/spiffe/internal';
import {
  encodeName,
  EXT_BC_CA,
  EXT_BC_LEAF,
  EXT_EKU_SERVER_CLIENT,
  EXT_KU_CA,
  EXT_KU_LEAF,
  extAuthorityKeyId,
  extSubjectAltName,
  extSubjectKeyId,
  randomSerial,
  signatureSchemeFor,
  signCertificate,
  type CaSubject,
  type SignatureScheme,
} from './cert-builder.ts';
import { parseCsr } from './csr.ts';
import { pooledRandom } from './random-pool.ts';
import { keyIdOf, spkiOf } from './spki.ts';

/** What the CA needs of a CA certificate (its own or the upstream's), read with the SDK's parser. */
interface CaCertificate {
  readonly subject: Buffer;
  readonly issuer: Buffer;
  readonly publicKey: KeyObject;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** The subject key identifier extension's value, or the SHA-1 of the key when it is absent. */
  readonly subjectKeyId: Buffer;
}

function readCaCertificate(der: Uint8Array): CaCertificate {
  let cert: ParsedCertificate;
  let ski: Buffer;
  try {
    cert = parseCertificate(der);
    const ext = cert.extensions.find((e) => e.oid === OID_SUBJECT_KEY_ID);
    ski =
      ext === undefined
        ? keyIdOf(cert.publicKey.export({ type: 'spki', format: 'der' }))
        : Buffer.from(value(ext.value, expectTag(readTlv(ext.value, 0), TAG_OCTET_STRING, 'subject key identifier')));
  } catch (cause) {
    throw internal(`ca: cannot parse certificate: ${(cause as Error).message}`, { cause });
  }
  return {
    subject: Buffer.from(cert.rawSubject),
    issuer: Buffer.from(cert.rawIssuer),
    publicKey: cert.publicKey,
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    subjectKeyId: ski,
  };
}

/** SPIRE's NotBeforeCushion: certificates are backdated to tolerate clock skew. */
export const NOT_BEFORE_CUSHION_MS = 10_000;
export const DEFAULT_CA_SUBJECT: CaSubject = Object.freeze({ country: ['US'], organization: ['SPIFFE'] });

export interface KeyPair {
  readonly publicKey: KeyObject;
  readonly privateKey: KeyObject;
}

/** An upstream CA that signs our CA certificate, making it an intermediate. */
export interface UpstreamAuthority {
  /** The upstream signing certificate first, then any intermediates above it (trust anchors are left out of SVID chains). */
  readonly certChain: readonly Uint8Array[];
  readonly privateKey: KeyObject;
  /** Trust anchors the bundle publishes instead of our CA certificate. */
  readonly roots: readonly Uint8Array[];
}

/** The subject key ID (hex) of the upstream certificate that signs our CA certificates (SPIRE's UpstreamAuthorityID). */
export function upstreamAuthorityIdOf(upstream: UpstreamAuthority): string {
  const [top] = upstream.certChain;
  if (!top) throw invalidArgument('ca: upstream authority has no certificate');
  return readCaCertificate(top).subjectKeyId.toString('hex');
}

export interface CreateCaCertificateOptions {
  readonly trustDomain: TrustDomain;
  readonly key: KeyPair;
  readonly subject?: CaSubject;
  readonly ttlMs: number;
  readonly now: Date;
  readonly random?: Random;
  readonly upstream?: UpstreamAuthority;
}

/**
 * Creates a CA certificate for the trust domain: self-signed unless an upstream authority signs it.
 * Returns the chain to send with SVIDs' CA: [our CA cert, ...upstream intermediates].
 */
export function createCaCertificate(opts: CreateCaCertificateOptions): Uint8Array[] {
  if (!Number.isInteger(opts.ttlMs) || opts.ttlMs <= 0) throw invalidArgument('ca: ttlMs must be a positive integer');
  const random = opts.random ?? cryptoRandom;
  const serial = randomSerial(random);
  const subjectFields = opts.subject ?? DEFAULT_CA_SUBJECT;
  const subject = encodeName({ ...subjectFields, serialNumber: serial.toString() });
  const spki = opts.key.publicKey.export({ type: 'spki', format: 'der' });
  const ski = keyIdOf(spki);
  const notBefore = new Date(opts.now.getTime() - NOT_BEFORE_CUSHION_MS);
  let notAfter = new Date(opts.now.getTime() + opts.ttlMs);
  let issuer = subject;
  let aki = ski;
  let signer = opts.key.privateKey;
  let upstreamChain: Uint8Array[] = [];
  if (opts.upstream) {
    const [top] = opts.upstream.certChain;
    if (!top) throw invalidArgument('ca: upstream authority has no certificate');
    const up = readCaCertificate(top);
    issuer = up.subject;
    aki = up.subjectKeyId;
    signer = opts.upstream.privateKey;
    if (up.notAfter < notAfter) notAfter = up.notAfter;
    const roots = opts.upstream.roots.map((r) => Buffer.from(r));
    upstreamChain = opts.upstream.certChain.filter((c) => !roots.some((r) => r.equals(c)));
  }
  const cert = signCertificate(
    {
      serial,
      issuer,
      subject,
      notBefore,
      notAfter,
      spki,
      extensions: [EXT_KU_CA, EXT_BC_CA, extSubjectKeyId(ski), extAuthorityKeyId(aki), extSubjectAltName([opts.trustDomain.idString()], [])],
    },
    signatureSchemeFor(signer),
    signer,
  );
  return [new Uint8Array(cert), ...upstreamChain];
}

export interface X509CaConfig {
  readonly trustDomain: TrustDomain;
  readonly key: KeyPair;
  /** [CA cert, ...upstream intermediates] as returned by createCaCertificate. */
  readonly chain: readonly Uint8Array[];
  readonly clock: Clock;
  readonly random?: Random;
  /** Default X509-SVID TTL (1h unless configured). */
  readonly x509SvidTtlMs: number;
}

export interface SignX509SvidParams {
  readonly publicKey: KeyObject;
  readonly spiffeId: SpiffeId;
  readonly dnsNames?: readonly string[];
  /** 0 or absent: the default TTL. */
  readonly ttlMs?: number;
}

export interface X509SvidResult {
  readonly spiffeId: SpiffeId;
  /** [leaf, ...intermediates]; [leaf] for a self-signed CA. */
  readonly certChain: Uint8Array[];
  readonly serial: bigint;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

const DNS_RE = /^[A-Za-z0-9*_-][A-Za-z0-9*_.-]{0,252}$/;

/** Signs X509-SVIDs with one CA key (SPIRE's CA: it only signs; rotation lives in the manager). */
export class X509Ca {
  readonly trustDomain: TrustDomain;
  readonly certificate: Uint8Array;
  readonly chain: readonly Uint8Array[];
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly publicKey: KeyObject;
  private readonly info: CaCertificate;
  private readonly privateKey: KeyObject;
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly defaultTtlMs: number;
  private readonly scheme: SignatureScheme;
  private readonly intermediates: Uint8Array[];
  private readonly staticExts: { aki: Buffer };
  private readonly subjects = new Map<string, Buffer>();

  constructor(config: X509CaConfig) {
    const [cert] = config.chain;
    if (!cert) throw invalidArgument('ca: empty CA chain');
    if (!Number.isInteger(config.x509SvidTtlMs) || config.x509SvidTtlMs <= 0) throw invalidArgument('ca: x509SvidTtlMs must be a positive integer');
    this.info = readCaCertificate(cert);
    if (!this.info.publicKey.equals(config.key.publicKey)) throw invalidArgument('ca: CA key does not match the CA certificate');
    this.trustDomain = config.trustDomain;
    this.certificate = cert;
    this.chain = [...config.chain];
    this.notBefore = this.info.notBefore;
    this.notAfter = this.info.notAfter;
    this.publicKey = config.key.publicKey;
    this.privateKey = config.key.privateKey;
    this.clock = config.clock;
    this.random = pooledRandom(config.random ?? cryptoRandom);
    this.defaultTtlMs = config.x509SvidTtlMs;
    this.scheme = signatureSchemeFor(config.key.privateKey);
    const selfSigned = this.info.subject.equals(this.info.issuer);
    this.intermediates = selfSigned ? [] : [...config.chain];
    this.staticExts = { aki: extAuthorityKeyId(this.info.subjectKeyId) };
  }

  /** Signs an X509-SVID for the public key: the SPIFFE ID must be in this trust domain with a non-root path. */
  signX509Svid(params: SignX509SvidParams): X509SvidResult {
    const id = params.spiffeId;
    if (!id.memberOf(this.trustDomain)) throw invalidArgument(`ca: ${id.toString()} is not in trust domain ${this.trustDomain.name}`);
    if (id.isTrustDomainId()) throw invalidArgument('ca: an X509-SVID needs a SPIFFE ID with a non-root path');
    const dnsNames = params.dnsNames ?? [];
    for (const d of dnsNames) if (!DNS_RE.test(d)) throw invalidArgument(`ca: invalid DNS name ${JSON.stringify(d)}`);
    const ttlMs = params.ttlMs ?? 0;
    if (!Number.isInteger(ttlMs) || ttlMs < 0) throw invalidArgument('ca: ttl must be a non-negative integer');
    const nowMs = this.clock.nowMs();
    if (nowMs >= this.notAfter.getTime()) throw failedPrecondition('ca: X509 CA has expired');
    if (params.publicKey.type !== 'public') throw invalidArgument('ca: expected a public key');
    const spki = spkiOf(params.publicKey);
    const notBefore = new Date(nowMs - NOT_BEFORE_CUSHION_MS);
    const notAfter = new Date(Math.min(nowMs + (ttlMs || this.defaultTtlMs), this.notAfter.getTime()));
    const serial = randomSerial(this.random);
    const subject = this.leafSubject(dnsNames[0]);
    const leaf = signCertificate(
      {
        serial,
        issuer: this.info.subject,
        subject,
        notBefore,
        notAfter,
        spki,
        extensions: [
          EXT_KU_LEAF,
          EXT_EKU_SERVER_CLIENT,
          EXT_BC_LEAF,
          extSubjectKeyId(keyIdOf(spki)),
          this.staticExts.aki,
          extSubjectAltName([id.toString()], dnsNames),
        ],
      },
      this.scheme,
      this.privateKey,
    );
    return { spiffeId: id, certChain: [leaf, ...this.intermediates], serial, notBefore, notAfter };
  }

  /** `C=US, O=SPIRE[, CN=<first DNS name>]`; encodings of recent CNs are reused. */
  private leafSubject(commonName: string | undefined): Buffer {
    const key = commonName ?? '';
    let name = this.subjects.get(key);
    if (name === undefined) {
      name = encodeName(commonName === undefined ? { country: ['US'], organization: ['SPIRE'] } : { country: ['US'], organization: ['SPIRE'], commonName });
      if (this.subjects.size >= 256) this.subjects.clear();
      this.subjects.set(key, name);
    }
    return name;
  }

  /** Parses and checks a CSR, then signs an SVID for its public key only (subject and extensions are ignored). */
  signX509SvidFromCsr(csr: Uint8Array, params: Omit<SignX509SvidParams, 'publicKey'>): X509SvidResult {
    return this.signX509Svid({ ...params, publicKey: parseCsr(csr).publicKey });
  }

  /** The server's own SVID, `spiffe://<td>/spire/server`. */
  signServerSvid(publicKey: KeyObject, ttlMs?: number): X509SvidResult {
    const spiffeId = SpiffeId.fromSegments(this.trustDomain, 'spire', 'server');
    return this.signX509Svid(ttlMs === undefined ? { publicKey, spiffeId } : { publicKey, spiffeId, ttlMs });
  }

  /** An agent SVID; the ID must be under `spiffe://<td>/spire/agent/`. */
  signAgentSvid(publicKey: KeyObject, agentId: SpiffeId, ttlMs?: number): X509SvidResult {
    if (!agentId.path.startsWith('/spire/agent/')) throw invalidArgument(`ca: ${agentId.toString()} is not an agent ID`);
    return this.signX509Svid(ttlMs === undefined ? { publicKey, spiffeId: agentId } : { publicKey, spiffeId: agentId, ttlMs });
  }
}
