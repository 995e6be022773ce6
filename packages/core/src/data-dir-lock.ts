// An exclusive, process-lifetime lock on a data directory: a `ztwim.lock` file holding the
// holder's PID, created atomically (O_EXCL). A lock whose PID is no longer running (the holder
// was killed) is taken over. Node has no flock(2); a PID file also lets the refusal name the
// holder, which an advisory lock cannot.
import * as fs from 'node:fs';
import { join } from 'node:path';
import { ZtwimError } from './errors.ts';

export const DATA_DIR_LOCK_FILE = 'ztwim.lock';

export interface DataDirLock {
  readonly path: string;
  /** Removes the lock file (idempotent); also done when the process exits. */
  release(): void;
}

export interface LockDataDirOptions {
  /** What holds the directory, for the refusal text: `ztwim up`, `the server`. */
  readonly what: string;
  /** How to pick another directory: `-dataDir`, `data_dir`. */
  readonly moveWith: string;
  /**
   * The lock file's name in `dir` (default DATA_DIR_LOCK_FILE). A server and an agent may share
   * one data dir, as SPIRE's sample configs do (both `./.data`): each locks a file of its own.
   */
  readonly file?: string;
  /** The PID written (default this process). */
  readonly pid?: number;
  /** Whether a PID runs (default: signal 0). */
  readonly isRunning?: (pid: number) => boolean;
}

function pidRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readPid(file: string): number | undefined {
  try {
    const n = Number.parseInt(fs.readFileSync(file, 'utf8').trim(), 10);
    return Number.isSafeInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/** The PID in `dir`'s lock file when that process runs; undefined when the dir is free. */
export function dataDirHolder(dir: string, isRunning: (pid: number) => boolean = pidRunning): number | undefined {
  const pid = readPid(join(dir, DATA_DIR_LOCK_FILE));
  return pid !== undefined && isRunning(pid) ? pid : undefined;
}

/** Locks `dir` (created 0700 if missing) or throws ERR_FAILED_PRECONDITION naming the holder's PID. */
export function lockDataDir(dir: string, opts: LockDataDirOptions): DataDirLock {
  const pid = opts.pid ?? process.pid;
  const isRunning = opts.isRunning ?? pidRunning;
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, opts.file ?? DATA_DIR_LOCK_FILE);
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = fs.openSync(file, 'wx', 0o644);
      try {
        fs.writeSync(fd, `${pid}\n`);
      } finally {
        fs.closeSync(fd);
      }
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 3) throw e;
    }
    const holder = readPid(file);
    if (holder !== undefined && isRunning(holder)) {
      throw new ZtwimError(
        'ERR_FAILED_PRECONDITION',
        `data directory ${dir} is in use by process ${holder} (lock file ${file}); stop that process or give ${opts.what} another directory with ${opts.moveWith}`,
        { fields: { data_dir: dir, pid: holder } },
      );
    }
    // Stale (holder gone, or killed between create and write): move it aside, and take over only
    // if what was moved is the stale file read above; a lock made meanwhile goes back in place.
    const aside = `${file}.stale.${pid}`;
    try {
      fs.renameSync(file, aside);
    } catch {
      continue;
    }
    const moved = readPid(aside);
    if (moved !== holder && moved !== undefined && isRunning(moved)) {
      try {
        fs.linkSync(aside, file);
      } catch {
        /* a third process locked meanwhile; the next attempt reports it */
      }
    }
    fs.rmSync(aside, { force: true });
  }
  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    process.off('exit', release);
    if (readPid(file) === pid) fs.rmSync(file, { force: true });
  };
  process.on('exit', release);
  return { path: file, release };
}
