import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { DATA_DIR_LOCK_FILE, dataDirHolder, lockDataDir } from './data-dir-lock.ts';
import { isZtwimError } from './errors.ts';

const tmp = fs.mkdtempSync(join(os.tmpdir(), 'ztwim-lock-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const fresh = (): string => join(tmp, `d${n++}`);
const running =
  (pids: number[]) =>
  (pid: number): boolean =>
    pids.includes(pid);
const opts = { what: 'ztwim up', moveWith: '-dataDir' };

test('the first holder writes its PID; a second, while it runs, is refused with that PID', () => {
  const dir = fresh();
  const a = lockDataDir(dir, { ...opts, pid: 111, isRunning: running([111]) });
  assert.equal(fs.readFileSync(join(dir, DATA_DIR_LOCK_FILE), 'utf8'), '111\n');
  assert.equal(dataDirHolder(dir, running([111])), 111);
  assert.throws(
    () => lockDataDir(dir, { ...opts, pid: 222, isRunning: running([111, 222]) }),
    (e: unknown) => isZtwimError(e, 'ERR_FAILED_PRECONDITION') && /in use by process 111 .*-dataDir/.test(e.message),
  );
  a.release();
  assert.equal(fs.existsSync(join(dir, DATA_DIR_LOCK_FILE)), false);
  assert.equal(dataDirHolder(dir), undefined);
  lockDataDir(dir, { ...opts, pid: 222, isRunning: running([222]) }).release();
});

test('a lock left by a dead process, or empty, is taken over', () => {
  for (const content of ['999999\n', '', 'garbage']) {
    const dir = fresh();
    fs.mkdirSync(dir);
    fs.writeFileSync(join(dir, DATA_DIR_LOCK_FILE), content);
    const l = lockDataDir(dir, { ...opts, pid: 333, isRunning: running([333]) });
    assert.equal(fs.readFileSync(l.path, 'utf8'), '333\n', JSON.stringify(content));
    assert.deepEqual(fs.readdirSync(dir), [DATA_DIR_LOCK_FILE]);
    l.release();
  }
});

test('release leaves a lock taken over by another holder alone', () => {
  const dir = fresh();
  const a = lockDataDir(dir, { ...opts, pid: 444, isRunning: running([444]) });
  fs.writeFileSync(a.path, '555\n');
  a.release();
  assert.equal(fs.readFileSync(a.path, 'utf8'), '555\n');
});

test('this process, for real: a second lock in the same directory is refused naming our PID', () => {
  const dir = fresh();
  const a = lockDataDir(dir, opts);
  assert.throws(() => lockDataDir(dir, opts), new RegExp(`in use by process ${process.pid} `));
  a.release();
});
