// PKCS#10 structure rules of parseCsr (RFC 2986), one per test: requests are assembled here
// element by element with a small DER writer and signed with node:crypto, so each rule is hit by
// a request that breaks only that rule, and the error names it exactly. csr.test.ts covers
// requests made by @peculiar/x509 and the openssl binary; csr.fuzz.test.ts random damage.
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { describe, it } from 'node:test';
import { isZtwimError } from '@ztwim/core';
import { parseCsr } from './csr.ts';
import { oid, seq, set, tlv } from './der-build.test-util.ts';
import { P256, P384, RSA2048, type Pair } from './fixtures.test-util.ts';

const NULL = Buffer.from([0x05, 0x00]);
const V1 = tlv(0x02, Buffer.from([0]));
const SUBJECT = seq(set(seq(oid('2.5.4.3'), tlv(0x0c, Buffer.from('workload')))));
const ECDSA_SHA256 = '1.2.840.10045.4.3.2';
const EXTENSION_REQUEST = '1.2.840.113549.1.9.14';
const SAN = '2.5.29.17';

interface Parts {
  info?: Buffer[];
  /** Replaces the whole CertificationRequestInfo element. */
  infoTlv?: Buffer;
  attributes?: Buffer | null;
  alg?: Buffer;
  sigBits?: Buffer;
  /** Appended after the three elements. */
  extra?: Buffer[];
}

const spkiOf = (p: Pair): Buffer => p.publicKey.export({ type: 'spki', format: 'der' });
const hashOf: Record<string, string | null> = {
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.3.101.112': null,
};

/** A request for `pair` signed with `algOid` (or whatever `parts` replaces). */
function request(pair: Pair, algOid = ECDSA_SHA256, parts: Parts = {}): Buffer {
  const attrs = parts.attributes === null ? [] : [parts.attributes ?? tlv(0xa0)];
  const info = parts.infoTlv ?? seq(...(parts.info ?? [V1, SUBJECT, spkiOf(pair), ...attrs]));
  const alg = parts.alg ?? (algOid.startsWith('1.2.840.113549') ? seq(oid(algOid), NULL) : seq(oid(algOid)));
  const key: KeyObject = pair.privateKey;
  const sig = sign(hashOf[algOid] ?? null, info, key);
  const sigBits = parts.sigBits ?? tlv(0x03, Buffer.from([0]), sig);
  return seq(info, alg, sigBits, ...(parts.extra ?? []));
}

/** extensionRequest attribute holding these extensions. */
const extReq = (...exts: Buffer[]): Buffer => tlv(0xa0, seq(oid(EXTENSION_REQUEST), set(seq(...exts))));
const sanExt = (...names: Buffer[]): Buffer => seq(oid(SAN), tlv(0x04, seq(...names)));

function refused(der: Uint8Array, message: string): void {
  assert.throws(
    () => parseCsr(der),
    (e: unknown) => {
      assert.ok(isZtwimError(e, 'ERR_INVALID_ARGUMENT'), String(e));
      assert.equal(e.message, `csr: ${message}`);
      return true;
    },
  );
}

describe('parseCsr: request envelope', () => {
  it('only bytes are parsed', () => {
    refused('MIIB' as unknown as Uint8Array, 'expected DER bytes');
  });

  it('the size limit is 64 KiB: a request of exactly 64 KiB is parsed, one byte more is refused unread', () => {
    const limit = new Uint8Array(64 * 1024);
    assert.throws(
      () => parseCsr(limit),
      (e: unknown) => isZtwimError(e, 'ERR_INVALID_ARGUMENT') && e.message.startsWith('csr: malformed DER: '),
    );
    refused(new Uint8Array(64 * 1024 + 1), 'request larger than 65536 bytes');
  });

  it('exactly three elements: info, signature algorithm, signature', () => {
    const good = request(P256);
    const [info, alg] = [seq(V1, SUBJECT, spkiOf(P256)), seq(oid(ECDSA_SHA256))];
    refused(seq(info, alg), 'expected info, signature algorithm and signature');
    refused(request(P256, ECDSA_SHA256, { extra: [tlv(0x05)] }), 'expected info, signature algorithm and signature');
    assert.ok(parseCsr(good).publicKey.equals(P256.publicKey));
  });

  it('each element has its type: info and algorithm sequences, signature a bit string', () => {
    refused(request(P256, ECDSA_SHA256, { infoTlv: set(V1, SUBJECT, spkiOf(P256)) }), 'unexpected element types in the request');
    refused(request(P256, ECDSA_SHA256, { alg: set(oid(ECDSA_SHA256)) }), 'unexpected element types in the request');
    refused(request(P256, ECDSA_SHA256, { sigBits: tlv(0x04, Buffer.from([0, 1, 2])) }), 'unexpected element types in the request');
  });
});

describe('parseCsr: request info', () => {
  it('version, subject and key are required; attributes are optional; nothing else', () => {
    refused(request(P256, ECDSA_SHA256, { info: [V1, SUBJECT] }), 'request info must hold version, subject, key and attributes');
    refused(
      request(P256, ECDSA_SHA256, { info: [V1, SUBJECT, spkiOf(P256), tlv(0xa0), tlv(0xa0)] }),
      'request info must hold version, subject, key and attributes',
    );
    const noAttrs = parseCsr(request(P256, ECDSA_SHA256, { attributes: null }));
    assert.deepEqual([noAttrs.uris, noAttrs.dnsNames], [[], []]);
  });

  it('version is INTEGER 0 (v1)', () => {
    for (const v of [tlv(0x04, Buffer.from([0])), tlv(0x02, Buffer.from([1])), tlv(0x02, Buffer.from([0, 0]))]) {
      refused(request(P256, ECDSA_SHA256, { info: [v, SUBJECT, spkiOf(P256), tlv(0xa0)] }), 'unsupported version (want v1 = 0)');
    }
  });

  it('subject is a Name, key a SubjectPublicKeyInfo sequence, attributes a [0] set', () => {
    refused(request(P256, ECDSA_SHA256, { info: [V1, set(), spkiOf(P256), tlv(0xa0)] }), 'subject is not a name');
    refused(request(P256, ECDSA_SHA256, { info: [V1, SUBJECT, tlv(0x04, spkiOf(P256)), tlv(0xa0)] }), 'subject public key info is not a sequence');
    refused(request(P256, ECDSA_SHA256, { attributes: tlv(0xa1) }), 'attributes must be [0] set');
    refused(
      request(P256, ECDSA_SHA256, { info: [V1, SUBJECT, seq(seq(oid('1.2.840.10045.2.1')), tlv(0x03, Buffer.from([0, 4])))] }),
      'invalid subject public key',
    );
  });

  it('the subject is returned as its DER', () => {
    assert.deepEqual(parseCsr(request(P256)).subject, SUBJECT);
  });
});

describe('parseCsr: signature algorithm and key', () => {
  it('each supported algorithm with its own hash: ECDSA and RSA PKCS#1 v1.5 with SHA-256/384/512, Ed25519', () => {
    const ed = generateKeyPairSync('ed25519');
    for (const [pair, alg] of [
      [P256, '1.2.840.10045.4.3.2'],
      [P256, '1.2.840.10045.4.3.3'],
      [P384, '1.2.840.10045.4.3.4'],
      [RSA2048, '1.2.840.113549.1.1.11'],
      [RSA2048, '1.2.840.113549.1.1.12'],
      [RSA2048, '1.2.840.113549.1.1.13'],
      [ed, '1.3.101.112'],
    ] as const) {
      const csr = parseCsr(request(pair, alg));
      assert.equal(csr.signatureAlgorithm, alg);
      assert.ok(csr.publicKey.equals(pair.publicKey), alg);
      // Signed with another hash than the algorithm names: refused.
      if (alg !== '1.3.101.112') {
        const other = hashOf[alg] === 'sha256' ? 'sha384' : 'sha256';
        const info = seq(V1, SUBJECT, spkiOf(pair), tlv(0xa0));
        const bits = tlv(0x03, Buffer.from([0]), sign(other, info, pair.privateKey));
        refused(request(pair, alg, { sigBits: bits }), 'signature does not verify with the request public key');
      }
    }
  });

  it('the algorithm must be named, known, and without parameters other than NULL', () => {
    refused(request(P256, ECDSA_SHA256, { alg: seq() }), 'missing signature algorithm');
    refused(request(P256, ECDSA_SHA256, { alg: seq(oid('1.2.840.10045.4.1')) }), 'unsupported signature algorithm 1.2.840.10045.4.1');
    assert.ok(parseCsr(request(P256, ECDSA_SHA256, { alg: seq(oid(ECDSA_SHA256), NULL) })));
    for (const params of [[NULL, NULL], [tlv(0x02, Buffer.from([0]))], [tlv(0x05, Buffer.from([0]))]]) {
      refused(request(P256, ECDSA_SHA256, { alg: seq(oid(ECDSA_SHA256), ...params) }), 'unexpected signature algorithm parameters');
    }
  });

  it('the key must be of the algorithm type, on a supported curve, RSA of 2048 bits or more', () => {
    refused(request(P256, '1.2.840.113549.1.1.11'), 'signature algorithm does not match the ec public key');
    refused(request(RSA2048, ECDSA_SHA256), 'signature algorithm does not match the rsa public key');
    const k1 = generateKeyPairSync('ec', { namedCurve: 'secp256k1' });
    refused(request(k1, ECDSA_SHA256), 'unsupported curve secp256k1');
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 });
    refused(request(small, '1.2.840.113549.1.1.11'), 'rsa key too small (1024 bits, want >= 2048)');
    const p521 = generateKeyPairSync('ec', { namedCurve: 'P-521' });
    assert.ok(parseCsr(request(p521, '1.2.840.10045.4.3.4')).publicKey.equals(p521.publicKey));
  });

  it('the signature is a bit string with no unused bits', () => {
    refused(request(P256, ECDSA_SHA256, { sigBits: tlv(0x03, Buffer.from([0])) }), 'malformed signature bit string');
    const good = request(P256);
    const info = seq(V1, SUBJECT, spkiOf(P256), tlv(0xa0));
    const sig = sign('sha256', info, P256.privateKey);
    refused(request(P256, ECDSA_SHA256, { sigBits: tlv(0x03, Buffer.from([1]), sig) }), 'malformed signature bit string');
    assert.ok(parseCsr(good));
  });
});

describe('parseCsr: requested subject alternative names', () => {
  it('DNS and URI names come from the SAN extension of the extensionRequest; other names, extensions and attributes are skipped', () => {
    const challengePassword = seq(oid('1.2.840.113549.1.9.7'), set(tlv(0x0c, Buffer.from('secret'))));
    const basicConstraints = seq(oid('2.5.29.19'), tlv(0x01, Buffer.from([0xff])), tlv(0x04, seq()));
    const san = sanExt(
      tlv(0x82, Buffer.from('a.example')),
      tlv(0x81, Buffer.from('x@example.org')),
      tlv(0x86, Buffer.from('spiffe://example.org/w')),
      tlv(0x87, Buffer.from([127, 0, 0, 1])),
    );
    const attrs = tlv(0xa0, challengePassword, seq(oid(EXTENSION_REQUEST), set(seq(basicConstraints, san))));
    const csr = parseCsr(request(P256, ECDSA_SHA256, { attributes: attrs }));
    assert.deepEqual(csr.dnsNames, ['a.example']);
    assert.deepEqual(csr.uris, ['spiffe://example.org/w']);
  });

  it('malformed attributes and extensions are refused by what is wrong', () => {
    const cases: Array<[Buffer, string]> = [
      [tlv(0xa0, set()), 'attribute is not a sequence'],
      [tlv(0xa0, seq(oid(EXTENSION_REQUEST))), 'malformed attribute'],
      [tlv(0xa0, seq(oid(EXTENSION_REQUEST), seq(seq()))), 'malformed attribute'],
      [tlv(0xa0, seq(oid(EXTENSION_REQUEST), set())), 'malformed extension request'],
      [tlv(0xa0, seq(oid(EXTENSION_REQUEST), set(set()))), 'malformed extension request'],
      [extReq(set(oid(SAN), tlv(0x04, seq()))), 'malformed extension'],
      [extReq(seq(oid(SAN))), 'malformed extension'],
      [extReq(seq(oid(SAN), seq())), 'malformed extension'],
      [extReq(seq(tlv(0x04, seq()), tlv(0x04, seq()))), 'malformed DER: unexpected tag for extension ID'],
      [extReq(seq(oid(SAN), tlv(0x04, set()))), 'malformed subject alternative names'],
      [extReq(seq(oid(SAN), tlv(0x04, seq(), Buffer.from([0x05, 0x00])))), 'malformed subject alternative names'],
    ];
    for (const [attributes, message] of cases) refused(request(P256, ECDSA_SHA256, { attributes }), message);
  });
});
