// The user database rules of the unix attestor's `user`, `group` and `supplementary_group`
// selectors, as Go's os/user reads /etc/passwd and /etc/group without cgo (what spire-agent
// does): a name comes from the first well-formed line with that id; comment and NIS (`+`/`-`)
// lines never name anyone, however many fields they have.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { loadUserDbSync, parseIdFile } from './user-db.ts';

const dir = mkdtempSync(join(tmpdir(), 'ztwim-userdb-rules-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const file = (text: string): string => {
  const p = join(dir, `f${n++}`);
  writeFileSync(p, text);
  return p;
};

describe('parseIdFile: which lines name an id', () => {
  it('comment and NIS lines are skipped even when they have every field', () => {
    const passwd = [
      '#commented:x:1001:1001::/:/bin/sh',
      '+nisuser:x:1002:1002::/:/bin/sh',
      '-excluded:x:1003:1003::/:/bin/sh',
      'real:x:1004:1004::/:/bin/sh',
    ].join('\n');
    assert.deepEqual([...parseIdFile(passwd, 7)], [[1004, 'real']]);
  });

  it('a line with an empty name names nobody, and the next line with that id does', () => {
    assert.deepEqual([...parseIdFile(':x:1005:1005::/:/bin/sh\nlater:x:1005:1005::/:/bin/sh\n', 7)], [[1005, 'later']]);
  });

  it('the id field must be all digits: a sign, a letter or a blank before or after refuses the line', () => {
    for (const id of ['x12', '12x', '-12', '+12', '1.5', ' 12', '12 ', '']) {
      assert.deepEqual([...parseIdFile(`bad:x:${id}:0::/:/bin/sh`, 7)], [], JSON.stringify(id));
    }
    assert.deepEqual(
      [...parseIdFile('big:x:4294967294:0::/:/bin/sh\nzero:x:0:0::/:/bin/sh', 7)],
      [
        [4294967294, 'big'],
        [0, 'zero'],
      ],
    );
  });

  it('a line needs the minimum field count: group lines (4) are not passwd lines (7)', () => {
    const text = 'grp:x:20:alice\nusr:x:21:21::/:/bin/sh\n';
    assert.deepEqual(
      [...parseIdFile(text, 4)],
      [
        [20, 'grp'],
        [21, 'usr'],
      ],
    );
    assert.deepEqual([...parseIdFile(text, 7)], [[21, 'usr']]);
    assert.deepEqual([...parseIdFile('six:x:22:22::/\n', 7)], []);
  });

  it('CRLF line ends and surrounding blanks are not part of the name', () => {
    assert.deepEqual([...parseIdFile('\tdos:x:30:30::/:/bin/sh\r\n', 7)], [[30, 'dos']]);
  });
});

describe('loadUserDbSync: reading the files', () => {
  it('one file given as both passwd and group is read by each rule (7 and 4 fields)', () => {
    const both = file('grp:x:40:\nusr:x:41:41::/:/bin/sh\n');
    const db = loadUserDbSync({ passwdFile: both, groupFile: both });
    assert.equal(db.userName(40), undefined, 'a 4-field line is no user');
    assert.equal(db.groupName(40), 'grp');
    assert.equal(db.userName(41), 'usr');
    assert.equal(db.groupName(41), 'usr');
  });

  it('a file that exists but cannot be read fails the lookup (not an empty database)', () => {
    const sub = join(dir, 'a-directory');
    mkdirSync(sub);
    assert.throws(() => loadUserDbSync({ passwdFile: sub, groupFile: join(dir, 'missing') }), { code: 'EISDIR' });
    assert.throws(() => loadUserDbSync({ passwdFile: join(dir, 'missing'), groupFile: sub }), { code: 'EISDIR' });
  });

  it('an edit that keeps size, inode and mtime is still seen (its ctime moved)', () => {
    const p = file('old:x:50:50::/:/bin/sh\n');
    const when = new Date('2020-01-01T00:00:00Z');
    utimesSync(p, when, when);
    const cfg = { passwdFile: p, groupFile: join(dir, 'missing') };
    assert.equal(loadUserDbSync(cfg).userName(50), 'old');
    const before = statSync(p);
    writeFileSync(p, 'new:x:50:50::/:/bin/sh\n'); // same length, same inode
    utimesSync(p, when, when);
    const now = statSync(p);
    assert.deepEqual([now.ino, now.size, now.mtimeMs], [before.ino, before.size, before.mtimeMs]);
    assert.notEqual(now.ctimeMs, before.ctimeMs);
    assert.equal(loadUserDbSync(cfg).userName(50), 'new');
  });
});
