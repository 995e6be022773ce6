// Reading Linux procfs. A "process directory" is `/proc/<pid>` or, to pin one process for good,
// `/proc/self/fd/<fd>` where fd is an open handle on its `/proc/<pid>` directory: lookups through
// the handle fail (ESRCH/ENOENT) once that process is gone, even if its pid has been reused.
import { readlink } from 'node:fs/promises';
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { internal } from '@ztwim/core';

export interface ProcStatus {
  /** Real, effective, saved and filesystem uid (the `Uid:` line). */
  readonly uids: readonly number[];
  /** Real, effective, saved and filesystem gid (the `Gid:` line). */
  readonly gids: readonly number[];
  /** Supplementary group ids as written (the `Groups:` line), in kernel order. */
  readonly groups: readonly string[];
}

function ids(value: string): number[] {
  return value
    .trim()
    .split(/\s+/)
    .filter((f) => f !== '')
    .map((f) => {
      if (!/^\d+$/.test(f)) throw internal(`bad id ${JSON.stringify(f)} in status`);
      return Number(f);
    });
}

/**
 * Parses `/proc/<pid>/status` (only the `Uid:`, `Gid:` and `Groups:` lines, as the kernel writes
 * them). Lines are found with indexOf rather than split: this runs on every Workload API call.
 */
export function parseProcStatus(text: string): ProcStatus {
  let uids: number[] | undefined;
  let gids: number[] | undefined;
  let groups: string[] = [];
  let pos = 0;
  while (pos < text.length) {
    let end = text.indexOf('\n', pos);
    if (end < 0) end = text.length;
    if (text.startsWith('Uid:', pos)) uids = ids(text.slice(pos + 4, end));
    else if (text.startsWith('Gid:', pos)) gids = ids(text.slice(pos + 4, end));
    else if (text.startsWith('Groups:', pos))
      groups = text
        .slice(pos + 7, end)
        .trim()
        .split(/\s+/)
        .filter((g) => g !== '');
    pos = end + 1;
  }
  if (uids === undefined || uids.length === 0) throw internal('no Uid line in status');
  if (gids === undefined || gids.length === 0) throw internal('no Gid line in status');
  return { uids, gids, groups };
}

/** The effective id: the second value when there are several, as SPIRE (gopsutil) does. */
export function effectiveId(values: readonly number[]): number {
  const v = values.length > 1 ? values[1] : values[0];
  if (v === undefined) throw internal('no ids');
  return v;
}

/**
 * Field 22 (`starttime`, clock ticks since boot) of `/proc/<pid>/stat`. The command name (field 2)
 * may contain spaces and parentheses, so fields are counted from the last `)`.
 */
export function parseStartTime(text: string): string {
  const close = text.lastIndexOf(')');
  if (close < 0 || text.indexOf('(') < 0) throw internal('task name is not parenthesized');
  // After ") " come fields 3.. (state, ppid, ...); starttime is field 22 → index 19 here.
  const rest = text
    .slice(close + 2)
    .trim()
    .split(' ');
  if (rest.length < 36) throw internal('bad stat data or unsupported platform');
  const start = rest[19];
  if (start === undefined || !/^\d+$/.test(start)) throw internal('bad starttime in stat');
  return start;
}

/** Scratch space of {@link preadProcFileSync}; grows (doubling) if a file does not fit. */
let scratch = Buffer.allocUnsafe(4096);

/**
 * A procfs file's text, read synchronously into one reused buffer. procfs files report size 0, so
 * readFileSync reads them in fresh 64 KiB chunks: on every Workload API call (status and stat are
 * read per attestation) that was most of the agent's allocation and made V8 collect far more often.
 * The agent's event loop is single-threaded and the read completes before returning, so one
 * buffer serves every call.
 */
export function readProcFileSync(path: string): string {
  const fd = openSync(path, 'r');
  try {
    return preadProcFileSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * The whole text of an open procfs file, read from offset 0 (pread): procfs generates the text
 * anew for a read from the start, so one fd kept open serves every later read without a path
 * lookup. An fd on `/proc/<pid>/status` stays bound to that process: once it is gone, reads fail
 * (ESRCH), whoever holds its pid by then.
 */
export function preadProcFileSync(fd: number): string {
  let n = 0;
  for (;;) {
    const got = readSync(fd, scratch, n, scratch.length - n, n);
    if (got === 0) break;
    n += got;
    if (n === scratch.length) {
      const bigger = Buffer.allocUnsafe(scratch.length * 2);
      scratch.copy(bigger, 0, 0, n);
      scratch = bigger;
    }
  }
  return scratch.toString('utf8', 0, n);
}

export function readStartTimeSync(procDir: string): string {
  return parseStartTime(readProcFileSync(`${procDir}/stat`));
}

export function readProcStatusSync(procDir: string): ProcStatus {
  return parseProcStatus(readProcFileSync(`${procDir}/status`));
}

/** The executable's path as the kernel shows it (may end in ` (deleted)`). */
export async function readExePath(procDir: string): Promise<string> {
  return readlink(`${procDir}/exe`);
}

function errnoCode(e: unknown): string {
  const code = typeof e === 'object' && e !== null ? (e as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : 'EUNKNOWN';
}

/**
 * Identity of the running executable's file (`dev:ino`), or `unavailable:<errno>` when the
 * kernel will not show it (e.g. EACCES). Compared across time to detect an exec.
 */
export function exeIdentitySync(procDir: string): string {
  try {
    const st = statSync(`${procDir}/exe`, { bigint: true });
    return `${st.dev}:${st.ino}`;
  } catch (e) {
    return `unavailable:${errnoCode(e)}`;
  }
}
