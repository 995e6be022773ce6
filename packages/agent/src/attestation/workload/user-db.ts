// Name lookups from /etc/passwd and /etc/group, as Go's os/user does without cgo: the first line
// whose id field matches wins; comments, blank lines and malformed lines are skipped.
import { readFileSync, statSync } from 'node:fs';

export interface UserDbConfig {
  readonly passwdFile?: string;
  readonly groupFile?: string;
}

export interface UserDb {
  userName(uid: number): string | undefined;
  groupName(gid: number): string | undefined;
}

/** Maps id → name from /etc/passwd or /etc/group text (name in column 0, id in column 2). */
export function parseIdFile(text: string, minFields: number): ReadonlyMap<number, string> {
  const out = new Map<number, string>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith('+') || line.startsWith('-')) continue;
    const fields = line.split(':');
    if (fields.length < minFields) continue;
    const [name, , id] = fields;
    if (name === undefined || name === '' || id === undefined || !/^\d+$/.test(id)) continue;
    const n = Number(id);
    if (!out.has(n)) out.set(n, name);
  }
  return out;
}

function readOptional(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    if (typeof e === 'object' && e !== null && (e as { code?: unknown }).code === 'ENOENT') return '';
    throw e;
  }
}

interface Stamp {
  readonly dev: number;
  readonly ino: number;
  readonly size: number;
  readonly mtimeMs: number;
  readonly ctimeMs: number;
}
/** Parsed files by minimum field count (passwd 7, group 4), then by path. */
const parsed = new Map<number, Map<string, { readonly stamp: Stamp; readonly ids: ReadonlyMap<number, string> }>>();

const sameStamp = (a: Stamp, b: Stamp): boolean =>
  a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs;

/**
 * The id → name map of one file, parsed again only when its identity, size or times changed
 * (one stat per call instead of a read and a parse). A missing file is an empty map. The times
 * are compared as the float milliseconds (sub-microsecond) of a plain stat: a bigint stat and a
 * string stamp per lookup were a visible share of every Workload API call's garbage.
 */
function idFile(path: string, minFields: number): ReadonlyMap<number, string> {
  const st = statSync(path, { throwIfNoEntry: false });
  if (st === undefined) return new Map();
  const stamp: Stamp = { dev: st.dev, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs };
  let files = parsed.get(minFields);
  if (files === undefined) parsed.set(minFields, (files = new Map()));
  const hit = files.get(path);
  if (hit !== undefined && sameStamp(hit.stamp, stamp)) return hit.ids;
  const ids = parseIdFile(readOptional(path), minFields);
  files.set(path, { stamp, ids });
  return ids;
}

/**
 * Looks both files up now (done per attestation so edits are seen at once: a changed file has a
 * new size, mtime/ctime or inode and is parsed again). Synchronous: a stat of two small local
 * files costs microseconds, while fs/promises would add thread-pool round trips to every
 * Workload API call.
 */
export function loadUserDbSync(config: UserDbConfig = {}): UserDb {
  const users = idFile(config.passwdFile ?? '/etc/passwd', 7);
  const groups = idFile(config.groupFile ?? '/etc/group', 4);
  return {
    userName: (uid) => users.get(uid),
    groupName: (gid) => groups.get(gid),
  };
}

/** {@link loadUserDbSync}, as a promise. */
export async function loadUserDb(config: UserDbConfig = {}): Promise<UserDb> {
  return loadUserDbSync(config);
}
