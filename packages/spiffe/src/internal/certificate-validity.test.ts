import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { certificateValidity } from './x509.ts';
import { isSpiffeError } from '../errors.ts';
import { keyPair, makeCert } from '../testdata/fixtures.ts';

test("certificateValidity: the same notBefore/notAfter as node's X509Certificate (UTCTime and GeneralizedTime)", async () => {
  const keys = await keyPair('validity');
  for (const [nb, na] of [
    ['2026-01-01T00:00:00Z', '2026-01-02T12:34:56Z'],
    ['2049-12-31T23:59:59Z', '2050-01-01T00:00:01Z'],
  ] as const) {
    const { der } = await makeCert({ subject: 'CN=v', keys, notBefore: new Date(nb), notAfter: new Date(na) });
    const got = certificateValidity(der);
    const node = new X509Certificate(der);
    assert.equal(got.notBefore.getTime(), Date.parse(node.validFrom));
    assert.equal(got.notAfter.getTime(), Date.parse(node.validTo));
    assert.equal(got.notBefore.toISOString(), new Date(nb).toISOString());
  }
});

test('certificateValidity: a malformed prefix is ERR_X509_INVALID, never a crash', async () => {
  const { der } = await makeCert({ subject: 'CN=v', keys: await keyPair('validity') });
  for (const bad of [new Uint8Array(), der.subarray(0, 40), Uint8Array.from([0x31, 0x00]), Uint8Array.from([0x30, 0x03, 0x02, 0x01, 0x01])]) {
    assert.throws(
      () => certificateValidity(bad),
      (e: unknown) => isSpiffeError(e, 'ERR_X509_INVALID'),
    );
  }
});
