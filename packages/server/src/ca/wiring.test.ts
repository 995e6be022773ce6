import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { cryptoRandom, silentLogger } from '@ztwim/core';
import { SqliteDataStore } from '../datastore/sqlite/sqlite-datastore.ts';
import { journalNameFor } from './journal.ts';
import { authorityIdOf } from './manager.ts';
import { TrustDomain } from '@ztwim/spiffe';
import { FakeClock } from '@ztwim/testkit';
import { createCaManager, type CreateCaManagerDeps } from './wiring.ts';

const root = mkdtempSync(join(tmpdir(), 'ztwim-wiring-'));
after(() => rmSync(root, { recursive: true, force: true }));

function config(dataDir: string, keyManager: CreateCaManagerDeps['config']['keyManager']): CreateCaManagerDeps['config'] {
  return {
    trustDomain: TrustDomain.parse('example.org'),
    dataDir,
    caSubject: { country: ['US'], organization: ['SPIFFE'], commonName: '' },
    caKeyType: 'ec-p256',
    jwtKeyType: 'ec-p384',
    caTtlMs: 24 * 3_600_000,
    x509SvidTtlMs: 3_600_000,
    jwtSvidTtlMs: 300_000,
    jwtIssuer: 'http://oidc.local:8080',
    keyManager,
  };
}

it('createCaManager starts a manager on the configured disk key manager and journal', async () => {
  const dataDir = join(root, 'disk');
  const keys = join(dataDir, 'keys.json');
  const clock = new FakeClock();
  const dataStore = await SqliteDataStore.open({ path: join(dataDir, 'datastore.sqlite3'), clock, random: cryptoRandom });
  after(() => dataStore.close());
  const deps = { config: config(dataDir, { type: 'disk', path: keys }), clock, random: cryptoRandom, log: silentLogger(), dataStore };
  const m = await createCaManager(deps);
  assert.deepEqual(Object.keys((JSON.parse(readFileSync(keys, 'utf8')) as { keys: object }).keys).sort(), ['JWT-Signer-A', 'x509-CA-A']);
  assert.ok((await dataStore.getCaJournal(journalNameFor(authorityIdOf(m.x509Ca())))) !== null);
  assert.ok(!existsSync(join(dataDir, 'ca-journal.json')), 'no journal file any more');
  assert.equal(m.jwtSigner().alg, 'ES384');
  const { token } = await m.jwtSigner().signJwtSvid({ spiffeId: m.config.trustDomain.id(), audience: ['x'] });
  assert.equal(JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString()).iss, 'http://oidc.local:8080');
  const again = await createCaManager(deps);
  assert.deepEqual(again.x509Ca().certificate, m.x509Ca().certificate);
});

it('createCaManager with the memory key manager writes no key files', async () => {
  const dataDir = join(root, 'mem');
  const clock = new FakeClock();
  const dataStore = await SqliteDataStore.open({ path: ':memory:', clock, random: cryptoRandom });
  after(() => dataStore.close());
  const m = await createCaManager({ config: config(dataDir, { type: 'memory' }), clock, random: cryptoRandom, log: silentLogger(), dataStore });
  assert.ok(!existsSync(join(dataDir, 'keys.json')));
  assert.equal(m.bundle().x509Authorities.length, 1);
});
