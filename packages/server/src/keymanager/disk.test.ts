import assert from 'node:assert/strict';
import { createPrivateKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { isZtwimError, silentLogger } from '@ztwim/core';
import { DiskKeyManager, MIGRATED_SUFFIX } from './disk.ts';
import { runKeyManagerContract } from './key-manager.test-suite.ts';

const root = mkdtempSync(join(tmpdir(), 'ztwim-diskkm-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
/** A fresh data dir (not created) and SPIRE's keys_path inside it. */
const fresh = (): { dir: string; path: string } => {
  const dir = join(root, `km-${n++}`, 'data');
  return { dir, path: join(dir, 'keys.json') };
};

runKeyManagerContract('disk', () => new DiskKeyManager({ path: fresh().path }));

const der = (k: KeyObject): string => k.export({ type: 'pkcs8', format: 'der' }).toString('base64');
const pem = (k: KeyObject): string => k.export({ type: 'pkcs8', format: 'pem' }).toString();
const readKeys = (path: string): Record<string, string> => (JSON.parse(readFileSync(path, 'utf8')) as { keys: Record<string, string> }).keys;
const sameKey = (a: KeyObject | undefined, b: KeyObject): boolean =>
  a !== undefined && a.export({ type: 'pkcs8', format: 'der' }).equals(b.export({ type: 'pkcs8', format: 'der' }));
const ec256 = (): KeyObject => generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;

/** An earlier ztwim's key directory: one `<id>.pem` per key. */
function writeLegacyDir(dir: string, keys: Record<string, KeyObject>): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  for (const [id, k] of Object.entries(keys)) writeFileSync(join(dir, `${id}.pem`), pem(k), { mode: 0o600 });
}

describe("DiskKeyManager: keys_path is one file in the format of SPIRE's disk KeyManager", () => {
  it('a new file: created with mode 0600 as {"keys": {id: base64 PKCS#8}}, tab-indented like Go, no temp file left', async () => {
    const { dir, path } = fresh();
    const km = new DiskKeyManager({ path });
    const key = await km.generateKey('x509-CA-A', 'ec-p256');
    await km.generateKey('JWT-Signer-A', 'ec-p384');
    assert.equal(statSync(path).isFile(), true);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const text = readFileSync(path, 'utf8');
    assert.match(text, /^\{\n\t"keys": \{\n\t\t"JWT-Signer-A": "[A-Za-z0-9+/=]+",\n\t\t"x509-CA-A": "/);
    const loaded = createPrivateKey({ key: Buffer.from(readKeys(path)['x509-CA-A'] ?? '', 'base64'), format: 'der', type: 'pkcs8' });
    const sig = sign('sha256', Buffer.from('x'), loaded);
    assert.ok(verify('sha256', Buffer.from('x'), key.publicKey, sig));
    assert.deepEqual(readdirSync(dir), ['keys.json'], 'no temp files, no key directory');
  });

  it('reloads the same keys after a restart, and forgets deleted ones', async () => {
    const { path } = fresh();
    const km = new DiskKeyManager({ path });
    const a = await km.generateKey('a', 'ec-p384');
    const b = await km.generateKey('b', 'rsa-2048');
    await km.generateKey('c', 'ec-p256');
    assert.equal(await km.deleteKey('c'), true);
    assert.equal(await km.deleteKey('c'), false);
    const listed = await new DiskKeyManager({ path }).listKeys();
    assert.deepEqual(
      listed.map((k) => [k.id, k.type]),
      [
        ['a', 'ec-p384'],
        ['b', 'rsa-2048'],
      ],
    );
    assert.ok(listed[0]?.publicKey.equals(a.publicKey));
    assert.ok(listed[1]?.publicKey.equals(b.publicKey));
    assert.deepEqual(Object.keys(readKeys(path)), ['a', 'b']);
  });

  it('an existing SPIRE-style keys.json: its keys are read, and kept byte for byte when ztwim adds one', async () => {
    const { dir, path } = fresh();
    mkdirSync(dir, { recursive: true });
    const ca = ec256();
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    // as spire-server writes it: Go's MarshalIndent with "\t", []byte as standard base64
    const spire = `{\n\t"keys": {\n\t\t"JWT-Signer-A": "${der(rsa)}",\n\t\t"x509-CA-A": "${der(ca)}"\n\t}\n}`;
    writeFileSync(path, spire, { mode: 0o600 });
    const km = new DiskKeyManager({ path });
    assert.deepEqual(
      (await km.listKeys()).map((k) => [k.id, k.type]),
      [
        ['JWT-Signer-A', 'rsa-2048'],
        ['x509-CA-A', 'ec-p256'],
      ],
    );
    assert.ok(sameKey((await km.getKey('x509-CA-A'))?.privateKey, ca));
    await km.generateKey('x509-CA-B', 'ec-p256');
    const after = readKeys(path);
    assert.equal(after['x509-CA-A'], der(ca));
    assert.equal(after['JWT-Signer-A'], der(rsa));
    assert.ok(after['x509-CA-B']);
    assert.equal(statSync(path).mode & 0o777, 0o600);
  });

  it('an earlier ztwim key directory at keys_path itself is migrated into the file, the directory kept aside', async () => {
    const { dir, path } = fresh();
    const a = ec256();
    const b = ec256();
    writeLegacyDir(path, { 'x509-CA-A': a, 'JWT-Signer-A': b }); // earlier ztwim made a *directory* named keys.json
    const warnings: unknown[] = [];
    const log = silentLogger();
    log.warn = ((obj: unknown) => void warnings.push(obj)) as typeof log.warn;
    const km = new DiskKeyManager({ path, log });
    assert.ok(sameKey((await km.getKey('x509-CA-A'))?.privateKey, a));
    assert.ok(sameKey((await km.getKey('JWT-Signer-A'))?.privateKey, b));
    assert.equal(statSync(path).isFile(), true);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.deepEqual(Object.keys(readKeys(path)).sort(), ['JWT-Signer-A', 'x509-CA-A']);
    assert.deepEqual(readdirSync(dir).sort(), ['keys.json', `keys.json${MIGRATED_SUFFIX}`]);
    assert.equal(warnings.length, 1, 'the migration is logged');
    assert.match(JSON.stringify(warnings[0]), /"from":".*keys\.json\.ztwim-migrated"/);
    // the next start reads the file and leaves the backup alone
    assert.ok(sameKey((await new DiskKeyManager({ path }).getKey('x509-CA-A'))?.privateKey, a));
  });

  it('the key directory of an earlier ztwim data dir (<data>/keys beside keys.json) is migrated', async () => {
    const { dir, path } = fresh();
    const a = ec256();
    writeLegacyDir(join(dir, 'keys'), { 'x509-CA-A': a });
    const km = new DiskKeyManager({ path });
    assert.ok(sameKey((await km.getKey('x509-CA-A'))?.privateKey, a));
    assert.deepEqual(readdirSync(dir).sort(), ['keys.json', `keys${MIGRATED_SUFFIX}`]);
  });

  it('crash leftovers: a temp file from an interrupted write is removed; the old file survives', async () => {
    const { dir, path } = fresh();
    const old = await new DiskKeyManager({ path }).generateKey('slot', 'ec-p256');
    // a crash after writing the temp file but before the rename leaves exactly this
    writeFileSync(join(dir, '.tmp-keys.json.abc123'), '{"keys": {"slot": "trunc');
    writeFileSync(join(dir, 'other-file'), 'not ours');
    const again = new DiskKeyManager({ path });
    assert.ok((await again.getKey('slot'))?.publicKey.equals(old.publicKey));
    assert.deepEqual(readdirSync(dir).sort(), ['keys.json', 'other-file']);
  });

  it('crash leftovers: a migration interrupted after moving the directory aside resumes from the moved directory', async () => {
    const { dir, path } = fresh();
    const a = ec256();
    writeLegacyDir(path + MIGRATED_SUFFIX, { 'x509-CA-A': a }); // renamed aside, the file not yet written
    writeFileSync(join(dir, '.tmp-keys.json.dead01'), 'partial');
    const km = new DiskKeyManager({ path });
    assert.ok(sameKey((await km.getKey('x509-CA-A'))?.privateKey, a));
    assert.deepEqual(readdirSync(dir).sort(), ['keys.json', `keys.json${MIGRATED_SUFFIX}`]);
  });

  const corrupt: Array<{ name: string; content: string; want: RegExp }> = [
    { name: 'garbage', content: 'not json at all', want: /is corrupt: not JSON/ },
    { name: 'empty file', content: '', want: /is corrupt: not JSON/ },
    { name: 'a JSON array', content: '[]', want: /is corrupt: want \{"keys"/ },
    { name: 'keys not an object', content: '{"keys": 3}', want: /is corrupt: want \{"keys"/ },
    { name: 'a value that is not base64', content: '{"keys": {"a": "@@@"}}', want: /key "a" is not base64/ },
    {
      name: 'truncated DER',
      content: '{"keys": {"a": "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg"}}',
      want: /key "a" in .* is corrupt: not a PKCS#8 private key/,
    },
  ];
  for (const c of corrupt) {
    it(`fails with an error naming the corrupt key file and leaves it as it was (${c.name})`, async () => {
      const { dir, path } = fresh();
      mkdirSync(dir, { recursive: true });
      writeFileSync(path, c.content, { mode: 0o600 });
      const km = new DiskKeyManager({ path });
      await assert.rejects(km.listKeys(), (e: unknown) => isZtwimError(e, 'ERR_INTERNAL') && e.message.includes(path) && c.want.test(e.message));
      assert.equal(readFileSync(path, 'utf8'), c.content);
    });
  }

  it('rejects a key of an unsupported type, naming it', async () => {
    const { dir, path } = fresh();
    mkdirSync(dir, { recursive: true });
    writeFileSync(path, JSON.stringify({ keys: { ed: der(generateKeyPairSync('ed25519').privateKey) } }));
    await assert.rejects(
      new DiskKeyManager({ path }).getKey('ed'),
      (e: unknown) => isZtwimError(e) && e.message.includes('"ed"') && e.message.includes('unsupported key type'),
    );
  });

  it('reports an unusable keys_path clearly', async () => {
    const file = join(root, `plainfile-${n++}`);
    writeFileSync(file, 'x');
    await assert.rejects(
      new DiskKeyManager({ path: join(file, 'keys.json') }).listKeys(),
      (e: unknown) => isZtwimError(e, 'ERR_INTERNAL') && e.message.includes('creating key directory'),
    );
    assert.ok(!existsSync(join(file, 'keys.json.ztwim-migrated')));
  });
});
