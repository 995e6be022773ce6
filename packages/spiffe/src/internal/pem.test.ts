import { test } from 'node:test';
import assert from 'node:assert/strict';
import { concatDer, derToPem, isSpiffeError, pemToDerList, splitConcatenatedDer } from '../index.ts';

const a = Uint8Array.from([0x30, 0x03, 0x02, 0x01, 0x01]);
const b = Uint8Array.from([0x30, 0x81, 0x80, ...new Array<number>(0x80).fill(0x05)]);

test('derToPem and pemToDerList round-trip several blocks, ignoring text between them', () => {
  const pem = 'subject=foo\n' + derToPem(a, 'CERTIFICATE') + 'junk\r\n' + derToPem(b, 'CERTIFICATE');
  assert.deepEqual(pemToDerList(pem), [a, b]);
  assert.match(derToPem(b, 'CERTIFICATE'), /^-----BEGIN CERTIFICATE-----\n[A-Za-z0-9+/]{64}\n/);
  assert.deepEqual(pemToDerList(derToPem(a, 'PRIVATE KEY'), 'PRIVATE KEY'), [a]);
  assert.deepEqual(pemToDerList(''), []);
  assert.deepEqual(pemToDerList(' \n'), []);
  // blocks of other types are skipped (go-spiffe pemutil), so a key+cert file works for both
  const both = derToPem(b, 'PRIVATE KEY') + derToPem(a, 'CERTIFICATE');
  assert.deepEqual(pemToDerList(both), [a]);
  assert.deepEqual(pemToDerList(both, 'PRIVATE KEY'), [b]);
  assert.deepEqual(pemToDerList(derToPem(a, 'PUBLIC KEY')), []);
});

test('pemToDerList rejects malformed PEM', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['no blocks', 'hello', /no PEM blocks found/],
    ['unterminated', '-----BEGIN CERTIFICATE-----\nMAMCAQE=\n', /unterminated/],
    ['mismatched end', '-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END PRIVATE KEY-----\n', /mismatched END/],
    ['bad base64', '-----BEGIN CERTIFICATE-----\nMAMC*QE=\n-----END CERTIFICATE-----\n', /invalid base64/],
    ['non-canonical base64', '-----BEGIN CERTIFICATE-----\nMAMCAQF=\n-----END CERTIFICATE-----\n', /invalid base64/],
    ['headers', '-----BEGIN CERTIFICATE-----\nProc-Type: 4,ENCRYPTED\nMAMCAQE=\n-----END CERTIFICATE-----\n', /headers/],
    ['empty block', '-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n', /empty/],
  ];
  for (const [name, input, re] of cases) {
    assert.throws(
      () => pemToDerList(input),
      (e: unknown) => isSpiffeError(e, 'ERR_PEM_INVALID') && re.test(e.message),
      name,
    );
  }
});

test('splitConcatenatedDer splits Workload API chains and concatDer joins them', () => {
  const joined = concatDer([a, b, a]);
  assert.equal(joined.length, a.length * 2 + b.length);
  assert.deepEqual(splitConcatenatedDer(joined), [a, b, a]);
  assert.deepEqual(splitConcatenatedDer(new Uint8Array(0)), []);
});

test('splitConcatenatedDer rejects truncated, indefinite-length and non-minimal values', () => {
  const cases: Array<[string, Uint8Array, RegExp]> = [
    ['truncated value', concatDer([a, b]).subarray(0, 20), /truncated value at offset 5/],
    ['truncated length', Uint8Array.from([0x30]), /truncated length/],
    ['indefinite length', Uint8Array.from([0x30, 0x80, 0x00, 0x00]), /indefinite length/],
    ['non-minimal length', Uint8Array.from([0x30, 0x81, 0x03, 0x02, 0x01, 0x01]), /non-minimal/],
    ['huge length', Uint8Array.from([0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), /truncated value/],
    ['multi-byte tag', Uint8Array.from([0x1f, 0x81, 0x01, 0x00]), /multi-byte tags/],
  ];
  for (const [name, input, re] of cases) {
    assert.throws(
      () => splitConcatenatedDer(input),
      (e: unknown) => isSpiffeError(e, 'ERR_X509_INVALID') && re.test(e.message),
      name,
    );
  }
});
