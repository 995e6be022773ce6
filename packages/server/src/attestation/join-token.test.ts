// SPIRE's join_token attestation (spire-api-wire.md §2.3) on a real SQLite datastore: expiry,
// single use (in sequence, concurrently, across two stores on one database file) and what a
// crash between taking the token and recording the node leaves behind.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { cryptoRandom, isZtwimError, unixSeconds } from '@ztwim/core';
import { TrustDomain } from '@ztwim/spiffe';
import { FakeClock } from '@ztwim/testkit';
import { SqliteDataStore } from '../datastore/sqlite/sqlite-datastore.ts';
import { withTempSqliteStore } from '../datastore/sqlite/temp-store.test-util.ts';
import { JoinTokenAttestor, nodeAliasEntry } from './join-token.ts';

const TD = TrustDomain.parse('example.org');
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

function rejectsWith(p: Promise<unknown>, code: string, message: RegExp): Promise<void> {
  return assert.rejects(p, (e: unknown) => {
    assert.ok(isZtwimError(e), String(e));
    assert.equal(e.code, code);
    assert.match(e.message, message);
    return true;
  });
}

const USED = /^failed to attest: join token does not exist or has already been used$/;

describe('JoinTokenAttestor', () => {
  it('a valid token names the agent spiffe://<td>/spire/agent/join_token/<token>, no selectors, not reattestable', async () => {
    await withTempSqliteStore(async (ds) => {
      const clock = new FakeClock(Date.now());
      await ds.createJoinToken({ token: 'tok-1', expiresAt: unixSeconds(clock.now()) + 60 });
      const r = await new JoinTokenAttestor({ dataStore: ds, trustDomain: TD, clock }).attest(enc('tok-1'));
      assert.equal(r.agentId.toString(), 'spiffe://example.org/spire/agent/join_token/tok-1');
      assert.deepEqual(r.selectors, []);
      assert.equal(r.canReattest, false);
    });
  });

  it('an unknown or empty token is refused (InvalidArgument)', async () => {
    await withTempSqliteStore(async (ds) => {
      const a = new JoinTokenAttestor({ dataStore: ds, trustDomain: TD, clock: new FakeClock() });
      await rejectsWith(a.attest(enc('nope')), 'ERR_INVALID_ARGUMENT', USED);
      await rejectsWith(a.attest(enc('')), 'ERR_INVALID_ARGUMENT', /join token is empty/);
      // A stored token that cannot be a path segment of the agent ID (not made by CreateJoinToken).
      await ds.createJoinToken({ token: 'a/b', expiresAt: unixSeconds(new Date()) + 600 });
      await rejectsWith(a.attest(enc('a/b')), 'ERR_INVALID_ARGUMENT', /^failed to attest: join token is not a valid path segment$/);
    });
  });

  it('expiry: valid up to its expiry second, refused after it; an expired token is used up by the attempt', async () => {
    await withTempSqliteStore(async (ds) => {
      const clock = new FakeClock(Date.UTC(2026, 0, 1));
      const a = new JoinTokenAttestor({ dataStore: ds, trustDomain: TD, clock });
      const now = unixSeconds(clock.now());
      await ds.createJoinToken({ token: 'edge', expiresAt: now });
      await ds.createJoinToken({ token: 'late', expiresAt: now + 10 });
      // expiresAt == now: not yet expired (SPIRE: expired when now is after expires_at).
      await a.attest(enc('edge'));
      clock.advance(11_000);
      await rejectsWith(a.attest(enc('late')), 'ERR_INVALID_ARGUMENT', /^failed to attest: join token expired$/);
      // SPIRE deletes the token before the expiry check: it is gone, not left to retry.
      await rejectsWith(a.attest(enc('late')), 'ERR_INVALID_ARGUMENT', USED);
    });
  });

  it('single use: a second attestation with the same token is refused and the token is gone from the store', async () => {
    await withTempSqliteStore(async (ds) => {
      const clock = new FakeClock(Date.now());
      const a = new JoinTokenAttestor({ dataStore: ds, trustDomain: TD, clock });
      await ds.createJoinToken({ token: 'once', expiresAt: unixSeconds(clock.now()) + 600 });
      await a.attest(enc('once'));
      await rejectsWith(a.attest(enc('once')), 'ERR_INVALID_ARGUMENT', USED);
      assert.equal(await ds.takeJoinToken('once'), null);
    });
  });

  it('single use under concurrency: of two attestations started together, exactly one succeeds', async () => {
    await withTempSqliteStore(async (ds) => {
      const clock = new FakeClock(Date.now());
      const a = new JoinTokenAttestor({ dataStore: ds, trustDomain: TD, clock });
      for (let i = 0; i < 20; i++) {
        await ds.createJoinToken({ token: `c${i}`, expiresAt: unixSeconds(clock.now()) + 600 });
        const r = await Promise.allSettled([a.attest(enc(`c${i}`)), a.attest(enc(`c${i}`))]);
        assert.equal(r.filter((x) => x.status === 'fulfilled').length, 1, `token c${i}`);
      }
    });
  });

  it('single use across two servers sharing one database file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ztwim-jt-'));
    const clock = new FakeClock(Date.now());
    const path = join(dir, 'ds.sqlite3');
    const s1 = await SqliteDataStore.open({ path, clock, random: cryptoRandom });
    const s2 = await SqliteDataStore.open({ path, clock, random: cryptoRandom });
    try {
      const a1 = new JoinTokenAttestor({ dataStore: s1, trustDomain: TD, clock });
      const a2 = new JoinTokenAttestor({ dataStore: s2, trustDomain: TD, clock });
      for (let i = 0; i < 20; i++) {
        await s1.createJoinToken({ token: `s${i}`, expiresAt: unixSeconds(clock.now()) + 600 });
        const r = await Promise.allSettled([a1.attest(enc(`s${i}`)), a2.attest(enc(`s${i}`))]);
        assert.equal(r.filter((x) => x.status === 'fulfilled').length, 1, `token s${i}`);
      }
    } finally {
      await s1.close();
      await s2.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a crash (kill -9) after the token is taken and before the node is recorded leaves the token used up', async () => {
    // SPIRE's guarantee: the token is deleted in its own transaction before anything else, so a
    // crash after that loses the attestation (the agent needs a new token) but never lets the
    // token attest twice. Here the child takes it and is killed before writing anything else.
    const dir = mkdtempSync(join(tmpdir(), 'ztwim-jt-crash-'));
    const path = join(dir, 'ds.sqlite3');
    const clock = new FakeClock(Date.now());
    try {
      const setup = await SqliteDataStore.open({ path, clock, random: cryptoRandom });
      await setup.createJoinToken({ token: 'crash', expiresAt: unixSeconds(new Date()) + 600 });
      await setup.close();
      const child = spawn(
        process.execPath,
        ['--conditions=ztwim-source', '--import', 'tsx', new URL('./join-token-crash-child.test-util.ts', import.meta.url).pathname, path, 'crash'],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let out = '';
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const exited = new Promise<void>((r) => child.on('exit', () => r()));
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('\n')) resolve();
        });
        child.on('exit', (code) => reject(new Error(`child exited (${String(code)}) before taking the token: ${err}`)));
      });
      assert.match(out, /^taken spiffe:\/\/example\.org\/spire\/agent\/join_token\/crash\n$/);
      child.kill('SIGKILL');
      await exited;
      const after = await SqliteDataStore.open({ path, clock, random: cryptoRandom });
      try {
        await rejectsWith(new JoinTokenAttestor({ dataStore: after, trustDomain: TD, clock }).attest(enc('crash')), 'ERR_INVALID_ARGUMENT', USED);
        assert.equal(await after.getAttestedNode('spiffe://example.org/spire/agent/join_token/crash'), null);
      } finally {
        await after.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('nodeAliasEntry', () => {
  it('is the entry spire-server token generate -spiffeID registers: the alias, parented to the agent, selected by spiffe_id', () => {
    const agent = 'spiffe://example.org/spire/agent/join_token/tok-1';
    assert.deepEqual(nodeAliasEntry(agent, 'spiffe://example.org/host'), {
      spiffeId: 'spiffe://example.org/host',
      parentId: agent,
      selectors: [{ type: 'spiffe_id', value: agent }],
    });
  });
});
