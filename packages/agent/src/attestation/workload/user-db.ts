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

const parsed = new Map<string, { readonly stamp: string; readonly ids: ReadonlyMap<number, string> }>();

/**
 * The id → name map of one file, parsed again only when its identity, size or times changed
 * (one stat per call instead of a read and a parse). A missing file is an empty map.
 */
function idFile(path: string, minFields: number): ReadonlyMap<number, string> {
  let stamp: string;
  try {
    const st = statSync(path, { bigint: true });
    stamp = `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
  } catch (e) {
    if (typeof e === 'object' && e !== null && (e as { code?: unknown }).code === 'ENOENT') return new Map();
    throw e;
  }
  const key = `${minFields}\0${path}`;
  const hit = parsed.get(key);
  if (hit !== undefined && hit.stamp === stamp) return hit.ids;
  const ids = parseIdFile(readOptional(path), minFields);
  parsed.set(key, { stamp, ids });
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
