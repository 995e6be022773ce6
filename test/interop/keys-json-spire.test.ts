// SPIRE's disk KeyManager file and ztwim's are one format: ztwim reads the keys.json a real
// spire-server wrote, adds a key without disturbing SPIRE's, and spire-server starts again on the
// file ztwim rewrote, with the same CA (its bundle unchanged).
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { DiskKeyManager } from '@ztwim/server';
import { startSpireServer } from './lib/spire-server.ts';
import { makeTmpDir } from './lib/tmp.ts';

const tmp = makeTmpDir('ztwim-keysjson-');
after(() => tmp.cleanup());

it("reads spire-server's keys.json, keeps SPIRE's keys byte for byte, and spire-server runs on ztwim's rewrite", async () => {
  const first = await startSpireServer(tmp, { keyManager: 'disk', caKeyType: 'ec-p256', jwtKeyType: 'rsa-2048' });
  const bundleBefore = first.cli(['bundle', 'show']);
  await first.stop();
  const path = join(first.dir, 'data', 'keys.json');
  const spireKeys = (JSON.parse(readFileSync(path, 'utf8')) as { keys: Record<string, string> }).keys;
  assert.ok(Object.keys(spireKeys).length >= 2, JSON.stringify(Object.keys(spireKeys)));

  const km = new DiskKeyManager({ path });
  const listed = await km.listKeys();
  assert.deepEqual(listed.map((k) => k.id).sort(), Object.keys(spireKeys).sort());
  assert.ok(
    listed.some((k) => k.type === 'rsa-2048'),
    'the RSA JWT key SPIRE made is read',
  );
  assert.ok(
    listed.some((k) => k.type === 'ec-p256'),
    'the EC CA key SPIRE made is read',
  );
  await km.generateKey('ztwim-extra', 'ec-p256');
  const after = (JSON.parse(readFileSync(path, 'utf8')) as { keys: Record<string, string> }).keys;
  for (const [id, der] of Object.entries(spireKeys)) assert.equal(after[id], der, `SPIRE's key ${id} unchanged`);
  assert.equal(statSync(path).mode & 0o777, 0o600);

  const second = await startSpireServer(tmp, { keyManager: 'disk', caKeyType: 'ec-p256', jwtKeyType: 'rsa-2048' });
  try {
    assert.equal(second.cli(['bundle', 'show']), bundleBefore, 'spire-server kept its CA from the file ztwim rewrote');
  } finally {
    await second.stop();
  }
});
