// The user database's file handling, driven through a stand-in for node:fs's `statSync` and
// `readFileSync` (the module's named imports follow the stand-in through
// `syncBuiltinESMExports`): which paths are read by default (Go's os/user reads /etc/passwd and
// /etc/group), that a file removed between its stat and its read names nobody instead of failing
// the attestation, and the parse cache's rule (user-db.ts `idFile`): a file is read again exactly
// when its device, inode, size, mtime or ctime changed, and not otherwise. A real file cannot
// change one of those alone (every write moves ctime), hence the stand-in stat.
import assert from 'node:assert/strict';
import fs, { type PathLike, type Stats } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { afterEach, describe, it, mock } from 'node:test';

import { loadUserDbSync } from './user-db.ts';

interface FakeStamp {
  dev: number;
  ino: number;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
}

/** Stand-in files by path: the stamp its stat reports, its text (or an error its read throws). */
interface FakeFile {
  stamp: FakeStamp;
  text: string | NodeJS.ErrnoException;
}

const files = new Map<string, FakeFile>();
const reads: string[] = [];
const stats: string[] = [];

function install(): void {
  const realStat = fs.statSync;
  const realRead = fs.readFileSync;
  mock.method(fs, 'statSync', (path: PathLike, options?: unknown): Stats | undefined => {
    const f = files.get(String(path));
    if (f === undefined) return (realStat as (p: PathLike, o?: unknown) => Stats | undefined)(path, options);
    stats.push(String(path));
    return { ...f.stamp } as unknown as Stats;
  });
  mock.method(fs, 'readFileSync', (path: PathLike, options?: unknown): string | Buffer => {
    const f = files.get(String(path));
    if (f === undefined) return (realRead as (p: PathLike, o?: unknown) => string | Buffer)(path, options);
    reads.push(String(path));
    if (typeof f.text !== 'string') throw f.text;
    return f.text;
  });
  syncBuiltinESMExports();
}

afterEach(() => {
  mock.restoreAll();
  syncBuiltinESMExports();
  files.clear();
  reads.length = 0;
  stats.length = 0;
});

let n = 0;
/** A new stand-in path (the module's cache is keyed by path, so each test has its own). */
function fake(text: string | NodeJS.ErrnoException): { path: string; file: FakeFile } {
  const path = `/fake-user-db/${n++}`;
  const file: FakeFile = { stamp: { dev: 1, ino: 100 + n, size: 10, mtimeMs: 1000, ctimeMs: 2000 }, text };
  files.set(path, file);
  return { path, file };
}

const EMPTY_GROUP = '/fake-user-db/no-such-group-file';

describe('loadUserDbSync: default files', () => {
  it('without a config, users come from /etc/passwd and groups from /etc/group', () => {
    install();
    files.set('/etc/passwd', { stamp: { dev: 1, ino: 1, size: 1, mtimeMs: 1, ctimeMs: 1 }, text: 'fakeroot:x:0:0::/:/bin/sh\n' });
    files.set('/etc/group', { stamp: { dev: 1, ino: 2, size: 1, mtimeMs: 1, ctimeMs: 1 }, text: 'fakewheel:x:0:\n' });
    const db = loadUserDbSync();
    assert.equal(db.userName(0), 'fakeroot');
    assert.equal(db.groupName(0), 'fakewheel');
    assert.deepEqual(stats, ['/etc/passwd', '/etc/group']);
  });

  it('the default files are the real ones when nothing stands in for them', async () => {
    const passwd = fs.readFileSync('/etc/passwd', 'utf8');
    const group = fs.readFileSync('/etc/group', 'utf8');
    const rootUser = /^([^:#+-][^:]*):[^:]*:0:/m.exec(passwd)?.[1];
    const rootGroup = /^([^:#+-][^:]*):[^:]*:0:/m.exec(group)?.[1];
    assert.ok(rootUser !== undefined && rootGroup !== undefined, 'this machine names uid 0 and gid 0');
    const db = await import('./user-db.ts').then((m) => m.loadUserDb());
    assert.equal(db.userName(0), rootUser);
    assert.equal(db.groupName(0), rootGroup);
  });
});

describe('loadUserDbSync: a file removed between its stat and its read', () => {
  it('names nobody (as a missing file does) instead of failing the lookup', () => {
    install();
    const gone = Object.assign(new Error('ENOENT: no such file or directory'), { code: 'ENOENT' });
    const { path } = fake(gone);
    const db = loadUserDbSync({ passwdFile: path, groupFile: path });
    assert.equal(db.userName(0), undefined);
    assert.equal(db.groupName(0), undefined);
    assert.deepEqual(reads, [path, path]);
  });

  it('any other read error still fails the lookup with that error', () => {
    install();
    const denied = Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
    const { path } = fake(denied);
    assert.throws(() => loadUserDbSync({ passwdFile: path, groupFile: EMPTY_GROUP }), denied);
  });
});

describe('loadUserDbSync: the parse cache', () => {
  it('an unchanged file is stat-ed on every lookup but read and parsed once', () => {
    install();
    const { path } = fake('alice:x:1000:1000::/:/bin/sh\n');
    for (let i = 0; i < 3; i++) assert.equal(loadUserDbSync({ passwdFile: path, groupFile: EMPTY_GROUP }).userName(1000), 'alice');
    assert.deepEqual(reads, [path]);
    assert.deepEqual(stats, [path, path, path]);
  });

  it('passwd and group caches are apart: one path read as both is read once for each rule', () => {
    install();
    const { path } = fake('both:x:7:7::/:/bin/sh\n');
    for (let i = 0; i < 2; i++) {
      const db = loadUserDbSync({ passwdFile: path, groupFile: path });
      assert.equal(db.userName(7), 'both');
      assert.equal(db.groupName(7), 'both');
    }
    assert.deepEqual(reads, [path, path]);
  });

  for (const field of ['dev', 'ino', 'size', 'mtimeMs', 'ctimeMs'] as const) {
    it(`a change of ${field} alone makes the next lookup read the file again`, () => {
      install();
      const { path, file } = fake('before:x:1000:1000::/:/bin/sh\n');
      const cfg = { passwdFile: path, groupFile: EMPTY_GROUP };
      assert.equal(loadUserDbSync(cfg).userName(1000), 'before');
      file.text = 'after:x:1000:1000::/:/bin/sh\n';
      assert.equal(loadUserDbSync(cfg).userName(1000), 'before', 'same stamp: the parsed names are kept');
      file.stamp[field] += 1;
      assert.equal(loadUserDbSync(cfg).userName(1000), 'after');
      assert.deepEqual(reads, [path, path]);
      assert.equal(loadUserDbSync(cfg).userName(1000), 'after');
      assert.deepEqual(reads, [path, path], 'the new stamp is kept');
    });
  }
});
