import assert from 'node:assert/strict';
import { sign, verify } from 'node:crypto';
import { describe, it } from 'node:test';
import { isZtwimError } from '@ztwim/core';
import type { KeyManager, KeyType } from './key-manager.ts';

const DETAILS: Record<Exclude<KeyType, 'rsa-4096'>, { kty: string; curve?: string; bits?: number }> = {
  'ec-p256': { kty: 'ec', curve: 'prime256v1' },
  'ec-p384': { kty: 'ec', curve: 'secp384r1' },
  'rsa-2048': { kty: 'rsa', bits: 2048 },
};

/** Behaviour every KeyManager implementation must share (SPIRE's keymanagertest). */
export function runKeyManagerContract(name: string, create: () => KeyManager | Promise<KeyManager>): void {
  describe(`KeyManager contract: ${name}`, () => {
    for (const [type, want] of Object.entries(DETAILS) as Array<[KeyType, (typeof DETAILS)['ec-p256']]>) {
      it(`generates a usable ${type} key`, async () => {
        const km = await create();
        const key = await km.generateKey(`k-${type}`, type);
        assert.equal(key.id, `k-${type}`);
        assert.equal(key.type, type);
        assert.equal(key.privateKey.type, 'private');
        assert.equal(key.publicKey.type, 'public');
        assert.equal(key.publicKey.asymmetricKeyType, want.kty);
        if (want.curve) assert.equal(key.publicKey.asymmetricKeyDetails?.namedCurve, want.curve);
        if (want.bits) assert.equal(key.publicKey.asymmetricKeyDetails?.modulusLength, want.bits);
        const data = Buffer.from('payload');
        const sig = sign('sha256', data, key.privateKey);
        assert.ok(verify('sha256', data, key.publicKey, sig), 'public key verifies the private key signature');
      });
    }

    it('gets, lists (sorted) and deletes keys', async () => {
      const km = await create();
      assert.equal(await km.getKey('missing'), undefined);
      const b = await km.generateKey('b', 'ec-p256');
      const a = await km.generateKey('a', 'ec-p384');
      const got = await km.getKey('b');
      assert.ok(got);
      assert.ok(got.publicKey.equals(b.publicKey));
      assert.deepEqual(
        (await km.listKeys()).map((k) => [k.id, k.type]),
        [
          ['a', 'ec-p384'],
          ['b', 'ec-p256'],
        ],
      );
      assert.equal(await km.deleteKey('b'), true);
      assert.equal(await km.deleteKey('b'), false);
      assert.equal(await km.getKey('b'), undefined);
      assert.deepEqual(
        (await km.listKeys()).map((k) => k.id),
        ['a'],
      );
      assert.ok((await km.getKey('a'))?.publicKey.equals(a.publicKey));
    });

    it('replaces a key generated again under the same id', async () => {
      const km = await create();
      const first = await km.generateKey('slot', 'ec-p256');
      const second = await km.generateKey('slot', 'ec-p384');
      assert.ok(!first.publicKey.equals(second.publicKey));
      const got = await km.getKey('slot');
      assert.equal(got?.type, 'ec-p384');
      assert.ok(got?.publicKey.equals(second.publicKey));
      assert.equal((await km.listKeys()).length, 1);
    });

    it('generates distinct keys concurrently', async () => {
      const km = await create();
      const keys = await Promise.all(['c1', 'c2', 'c3', 'c4'].map((id) => km.generateKey(id, 'ec-p256')));
      const listed = await km.listKeys();
      assert.deepEqual(
        listed.map((k) => k.id),
        ['c1', 'c2', 'c3', 'c4'],
      );
      for (const [i, k] of keys.entries()) assert.ok(listed[i]?.publicKey.equals(k.publicKey));
      assert.equal(new Set(keys.map((k) => k.publicKey.export({ format: 'der', type: 'spki' }).toString('hex'))).size, 4);
    });

    const badIds = ['', '.hidden', '../escape', 'a/b', 'sp ace', 'x'.repeat(129)];
    for (const id of badIds) {
      it(`rejects the key id ${JSON.stringify(id.length > 20 ? `${id.slice(0, 10)}…` : id)}`, async () => {
        const km = await create();
        await assert.rejects(km.generateKey(id, 'ec-p256'), (e: unknown) => isZtwimError(e, 'ERR_INVALID_ARGUMENT'));
        await assert.rejects(km.getKey(id), (e: unknown) => isZtwimError(e, 'ERR_INVALID_ARGUMENT'));
      });
    }

    it('rejects an unknown key type naming it', async () => {
      const km = await create();
      await assert.rejects(
        km.generateKey('k', 'ec-p521' as KeyType),
        (e: unknown) => isZtwimError(e, 'ERR_INVALID_ARGUMENT') && e.message.includes('"ec-p521"'),
      );
      assert.deepEqual(await km.listKeys(), []);
    });
  });
}
