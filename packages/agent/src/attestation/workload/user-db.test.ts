import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import { loadUserDb, loadUserDbSync, parseIdFile } from './user-db.ts';

describe('parseIdFile', () => {
  it('first match wins; comments, NIS lines and malformed lines are skipped', () => {
    const passwd = [
      '# comment',
      '',
      '+nis',
      'alice:x:1000:1000:Alice:/home/alice:/bin/sh',
      'short:x:1001',
      'bob:x:1000:1000::/home/bob:/bin/sh',
      'carol:x:notanumber:1:::',
      '  dave:x:1002:1002::/:/bin/sh  ',
    ].join('\n');
    assert.deepEqual(
      [...parseIdFile(passwd, 7)],
      [
        [1000, 'alice'],
        [1002, 'dave'],
      ],
    );
    assert.deepEqual([...parseIdFile('wheel:x:10:alice,bob\nbad:x:\n', 4)], [[10, 'wheel']]);
  });
});

describe('loadUserDb', () => {
  it('reads both files; a missing file means no names', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ztwim-userdb-'));
    try {
      writeFileSync(join(dir, 'passwd'), 'svc:x:900:901::/:/bin/false\n');
      const db = await loadUserDb({ passwdFile: join(dir, 'passwd'), groupFile: join(dir, 'missing') });
      assert.equal(db.userName(900), 'svc');
      assert.equal(db.userName(901), undefined);
      assert.equal(db.groupName(901), undefined);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('loadUserDbSync', () => {
  it('sees every edit at once: rewritten in place, replaced by rename, removed', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ztwim-userdb-'));
    try {
      const passwd = join(dir, 'passwd');
      const cfg = { passwdFile: passwd, groupFile: join(dir, 'group') };
      writeFileSync(passwd, 'svc:x:900:901::/:/bin/false\n');
      assert.equal(loadUserDbSync(cfg).userName(900), 'svc');
      assert.equal(loadUserDbSync(cfg).userName(900), 'svc'); // cached parse
      writeFileSync(passwd, 'service:x:900:901::/:/bin/false\n'); // in place, new size
      assert.equal(loadUserDbSync(cfg).userName(900), 'service');
      writeFileSync(join(dir, 'passwd.new'), 'another:x:900:901::/:/bin/false\n'); // same size, new inode
      renameSync(join(dir, 'passwd.new'), passwd);
      assert.equal(loadUserDbSync(cfg).userName(900), 'another');
      rmSync(passwd);
      assert.equal(loadUserDbSync(cfg).userName(900), undefined);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
