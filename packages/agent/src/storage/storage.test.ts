import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TrustDomain } from '@ztwim/spiffe';
import { opensslAgentSvid } from '../svid/openssl-svid.test-util.ts';
import { AgentDataStore, loadData, storedAgentId } from './storage.ts';

const tmp = mkdtempSync(join(tmpdir(), 'ztwim-agent-storage-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const td = TrustDomain.parse('example.org');

test('save then load: the SVID, its key and the bundle come back; the ID is read from the certificate', async () => {
  const dir = join(tmp, 'a');
  const svid = opensslAgentSvid();
  const store = new AgentDataStore(dir);
  const roots = [svid.leaf()];
  await store.save({ svid, reattestable: true }, roots);
  assert.equal(statSync(join(dir, 'agent-svid.key')).mode & 0o777, 0o600);
  assert.equal(storedAgentId(dir), 'spiffe://example.org/spire/agent/join_token/t');
  // A tampered "id" field changes nothing: the ID comes from the SVID.
  const f = join(dir, 'agent-data.json');
  writeFileSync(f, readFileSync(f, 'utf8').replace('/join_token/t', '/join_token/someone-else'));
  const loaded = loadData(dir, td);
  assert.ok(loaded !== undefined && 'creds' in loaded, JSON.stringify(loaded));
  assert.equal(loaded.creds.svid.id.toString(), 'spiffe://example.org/spire/agent/join_token/t');
  assert.equal(loaded.creds.reattestable, true);
  assert.deepEqual(loaded.roots, roots);
  // Another trust domain's agent data is refused, naming the data file.
  const other = loadData(dir, TrustDomain.parse('other.org'));
  assert.deepEqual(other, { file: f, reason: 'svid[0] is not an agent SVID of trust domain other.org' });
});

test('an unchanged save writes nothing; a changed bundle or SVID is written', async () => {
  const dir = join(tmp, 'b');
  const svid = opensslAgentSvid();
  const store = new AgentDataStore(dir);
  await store.save({ svid, reattestable: false }, [svid.leaf()]);
  const ino = (): number => statSync(join(dir, 'agent-data.json')).ino;
  const first = ino();
  await store.save({ svid, reattestable: false }, [svid.leaf()]);
  assert.equal(ino(), first, 'same content: not rewritten (the agent saves after every sync)');
  const next = opensslAgentSvid();
  await store.save({ svid: next, reattestable: false }, [svid.leaf()]);
  assert.notEqual(ino(), first, 'replaced by an atomic rename');
  const loaded = loadData(dir, td);
  assert.ok(loaded !== undefined && 'creds' in loaded);
  assert.deepEqual(loaded.creds.svid.certificates, next.certificates);
});

test('a key that is not the SVID key is reported against the key file', async () => {
  const dir = join(tmp, 'c');
  const svid = opensslAgentSvid();
  await new AgentDataStore(dir).save({ svid, reattestable: false }, [svid.leaf()]);
  writeFileSync(join(dir, 'agent-svid.key'), opensslAgentSvid().marshalRaw().privateKey);
  assert.deepEqual(loadData(dir, td), { file: join(dir, 'agent-svid.key'), reason: 'the key does not belong to the stored agent SVID' });
});
