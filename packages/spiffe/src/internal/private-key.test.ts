import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { importPkcs8PrivateKey } from './private-key.ts';

const der = (k: ReturnType<typeof generateKeyPairSync>['privateKey']): Uint8Array => new Uint8Array(k.export({ type: 'pkcs8', format: 'der' }));

test('the same PKCS#8 bytes give the same KeyObject; other bytes another one', () => {
  const a = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const b = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  const ka = importPkcs8PrivateKey(der(a));
  assert.ok(ka.equals(a));
  assert.equal(importPkcs8PrivateKey(Uint8Array.from(der(a))), ka, 'a copy of the bytes hits the cache');
  const kb = importPkcs8PrivateKey(der(b));
  assert.ok(kb.equals(b));
  assert.notEqual(kb, ka);
});

test('bytes that are not a key throw and are not cached; the cache keeps at most 32 keys', () => {
  const bad = Uint8Array.from([0x30, 0x03, 0x02, 0x01, 0x00]);
  assert.throws(() => importPkcs8PrivateKey(bad));
  assert.throws(() => importPkcs8PrivateKey(bad));
  const first = der(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
  const k = importPkcs8PrivateKey(first);
  for (let i = 0; i < 32; i++) importPkcs8PrivateKey(der(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey));
  const again = importPkcs8PrivateKey(first);
  assert.ok(again.equals(k));
  assert.notEqual(again, k, 'evicted after 32 newer keys');
});
