import assert from 'node:assert/strict';
import { createPrivateKey, sign, verify } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { isZtwimError } from '@ztwim/core';
import { DiskKeyManager } from './disk.ts';
import { runKeyManagerContract } from './key-manager.test-suite.ts';

const root = mkdtempSync(join(tmpdir(), 'ztwim-diskkm-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshDir = (): string => join(root, `km-${n++}`, 'keys');

runKeyManagerContract('disk', () => new DiskKeyManager({ dir: freshDir() }));

describe('DiskKeyManager', () => {
  it('stores PKCS#8 files with mode 0600 in a 0700 directory', async () => {
    const dir = freshDir();
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    chmodSync(dir, 0o755);
    const km = new DiskKeyManager({ dir });
    const key = await km.generateKey('ca-a', 'ec-p256');
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    const file = join(dir, 'ca-a.pem');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const pem = readFileSync(file, 'utf8');
    assert.match(pem, /^-----BEGIN PRIVATE KEY-----\n/);
    const loaded = createPrivateKey(pem);
    const sig = sign('sha256', Buffer.from('x'), loaded);
    assert.ok(verify('sha256', Buffer.from('x'), key.publicKey, sig));
    assert.deepEqual(readdirSync(dir), ['ca-a.pem'], 'no temp files left behind');
  });

  it('reloads the same keys after a restart, and forgets deleted ones', async () => {
    const dir = freshDir();
    const km = new DiskKeyManager({ dir });
    const a = await km.generateKey('a', 'ec-p384');
    const b = await km.generateKey('b', 'rsa-4096'); // the only RSA-4096 generation in this file
    await km.generateKey('c', 'ec-p256');
    await km.deleteKey('c');
    const again = new DiskKeyManager({ dir });
    const listed = await again.listKeys();
    assert.deepEqual(listed.map((k) => [k.id, k.type]), [
      ['a', 'ec-p384'],
      ['b', 'rsa-4096'],
    ]);
    assert.ok(listed[0]?.publicKey.equals(a.publicKey));
    assert.ok(listed[1]?.publicKey.equals(b.publicKey));
  });

  it('ignores and removes a temp file left by a crash mid-write; the old key survives', async () => {
    const dir = freshDir();
    const km = new DiskKeyManager({ dir });
    const old = await km.generateKey('slot', 'ec-p256');
    // a crash after writing the temp file but before the rename leaves exactly this
    writeFileSync(join(dir, '.tmp-slot.pem.abc123'), '-----BEGIN PRIVATE KEY-----\ntrunc');
    const again = new DiskKeyManager({ dir });
    const got = await again.getKey('slot');
    assert.ok(got?.publicKey.equals(old.publicKey));
    assert.deepEqual((await again.listKeys()).map((k) => k.id), ['slot']);
    assert.deepEqual(readdirSync(dir), ['slot.pem']);
  });

  const corrupt: Array<{ name: string; content: string }> = [
    { name: 'garbage', content: 'not a key at all' },
    { name: 'truncated PEM', content: '-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n' },
    { name: 'empty file', content: '' },
  ];
  for (const c of corrupt) {
    it(`fails with an error naming a corrupt key file (${c.name})`, async () => {
      const dir = freshDir();
      await new DiskKeyManager({ dir }).generateKey('good', 'ec-p256');
      writeFileSync(join(dir, 'bad.pem'), c.content, { mode: 0o600 });
      const km = new DiskKeyManager({ dir });
      await assert.rejects(
        km.listKeys(),
        (e: unknown) => isZtwimError(e, 'ERR_INTERNAL') && e.message.includes(join(dir, 'bad.pem')) && e.message.includes('corrupt'),
      );
    });
  }

  it('rejects a key file holding an unsupported key type', async () => {
    const dir = freshDir();
    mkdirSync(dir, { recursive: true });
    const { generateKeyPairSync } = await import('node:crypto');
    const ed = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' });
    writeFileSync(join(dir, 'ed.pem'), ed);
    await assert.rejects(
      new DiskKeyManager({ dir }).getKey('ed'),
      (e: unknown) => isZtwimError(e) && e.message.includes('ed.pem') && e.message.includes('unsupported key type'),
    );
  });

  it('reports an unusable directory clearly', async () => {
    const file = join(root, `plainfile-${n++}`);
    writeFileSync(file, 'x');
    await assert.rejects(
      new DiskKeyManager({ dir: join(file, 'keys') }).listKeys(),
      (e: unknown) => isZtwimError(e, 'ERR_INTERNAL') && e.message.includes('opening key directory'),
    );
  });
});
