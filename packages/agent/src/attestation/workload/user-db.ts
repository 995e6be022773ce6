// Name lookups from /etc/passwd and /etc/group, as Go's os/user does without cgo: the first line
// whose id field matches wins; comments, blank lines and malformed lines are skipped.
import { readFile } from 'node:fs/promises';

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

async function readOptional(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if (typeof e === 'object' && e !== null && (e as { code?: unknown }).code === 'ENOENT') return '';
    throw e;
  }
}

/** Reads both files now (small; done per attestation so edits are seen at once). */
export async function loadUserDb(config: UserDbConfig = {}): Promise<UserDb> {
  const [passwd, group] = await Promise.all([
    readOptional(config.passwdFile ?? '/etc/passwd'),
    readOptional(config.groupFile ?? '/etc/group'),
  ]);
  const users = parseIdFile(passwd, 7);
  const groups = parseIdFile(group, 4);
  return {
    userName: (uid) => users.get(uid),
    groupName: (gid) => groups.get(gid),
  };
}
