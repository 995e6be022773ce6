import { createPrivateKey, createPublicKey } from 'node:crypto';
import { lstat, mkdir, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { atomicWriteFile, internal, syncDir, TEMP_PREFIX, type Logger } from '@ztwim/core';
import { checkKeyId, checkKeyType, generateManagedKey, keyTypeOf, type KeyManager, type KeyType, type ManagedKey } from './key-manager.ts';

export interface DiskKeyManagerConfig {
  /**
   * SPIRE's `keys_path`: one JSON file, `{"keys": {"<id>": "<base64 PKCS#8 DER>"}}` (the format of
   * SPIRE's disk KeyManager, so either server can read the other's file), written atomically, mode 0600.
   */
  readonly path: string;
  /** Told about a migration from an earlier ztwim's key directory. */
  readonly log?: Logger;
}

/** Suffix given to an earlier ztwim's key directory (one `<id>.pem` per key) once its keys are in the file. */
export const MIGRATED_SUFFIX = '.ztwim-migrated';
const PEM_SUFFIX = '.pem';

type KeyMap = ReadonlyMap<string, ManagedKey>;

/**
 * Persists keys in one file in the format of SPIRE's disk KeyManager. Every change rewrites the
 * whole file atomically (temp file, fsync, rename, fsync directory), so a crash leaves the old or
 * the new file, never a mix; leftover temp files are removed at load.
 *
 * An earlier ztwim kept one PEM file per key in a directory (at `keys_path` itself, or at
 * `keys_path` without its `.json` suffix for the default and `ztwim up` layouts). Such a directory
 * is migrated into the file at load and renamed to `<dir>.ztwim-migrated`; the migration resumes
 * after a crash at any step.
 */
export class DiskKeyManager implements KeyManager {
  readonly path: string;
  private readonly log: Logger | undefined;
  private keys: KeyMap | undefined;
  private loading: Promise<KeyMap> | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(config: DiskKeyManagerConfig) {
    this.path = config.path;
    this.log = config.log;
  }

  async generateKey(id: string, type: KeyType): Promise<ManagedKey> {
    checkKeyId(id);
    checkKeyType(type);
    await this.load();
    const key = await generateManagedKey(id, type);
    await this.update((m) => m.set(id, key));
    return key;
  }

  async getKey(id: string): Promise<ManagedKey | undefined> {
    checkKeyId(id);
    return (await this.load()).get(id);
  }

  async listKeys(): Promise<ManagedKey[]> {
    return sortedKeys(await this.load());
  }

  async deleteKey(id: string): Promise<boolean> {
    checkKeyId(id);
    await this.load();
    let existed = false;
    await this.update((m) => {
      existed = m.delete(id);
      return existed;
    });
    return existed;
  }

  /** Applies change to a copy of the keys and writes the copy; the keys change only once it is on disk. */
  private update(change: (m: Map<string, ManagedKey>) => unknown): Promise<void> {
    return this.serial(async () => {
      const next = new Map(this.keys);
      if (change(next) === false) return;
      await this.write(next);
      this.keys = next;
    });
  }

  private async write(keys: KeyMap): Promise<void> {
    await this.io(`writing key file ${this.path}`, () => atomicWriteFile(this.path, encodeKeysFile(keys), 0o600));
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async io<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (cause) {
      throw internal(`keymanager(disk): ${what} failed: ${(cause as Error).message}`, { cause, fields: { path: this.path } });
    }
  }

  private load(): Promise<KeyMap> {
    if (this.keys) return Promise.resolve(this.keys);
    this.loading ??= this.serial(() => this.readAll()).then(
      (m) => {
        this.keys = m;
        return m;
      },
      (e: unknown) => {
        this.loading = undefined;
        throw e;
      },
    );
    return this.loading;
  }

  private async readAll(): Promise<KeyMap> {
    const dir = dirname(this.path);
    const name = basename(this.path);
    await this.io(`creating key directory ${dir}`, () => mkdir(dir, { recursive: true, mode: 0o700 }));
    await this.removeTempFiles(dir, `${TEMP_PREFIX}${name}.`);
    const kind = await fileKind(this.path);
    if (kind === 'file') {
      const keys = decodeKeysFile(this.path, await this.io(`reading key file ${this.path}`, () => readFile(this.path, 'utf8')));
      const legacy = legacySibling(this.path);
      if (legacy !== undefined && (await pemFiles(legacy)).length > 0) {
        this.log?.warn(
          { keys_path: this.path, legacy_dir: legacy },
          'An earlier ztwim key directory is still present and is not read; remove it once the server runs on keys_path',
        );
      }
      return keys;
    }
    if (kind === 'directory') {
      // An earlier ztwim made keys_path itself a directory: move it aside first, then migrate from there.
      const aside = this.path + MIGRATED_SUFFIX;
      await this.io(`moving the earlier key directory ${this.path} to ${aside}`, async () => {
        await rename(this.path, aside);
        await syncDir(dir);
      });
      return this.migrate(aside, aside);
    }
    if (kind !== 'missing') {
      throw internal(`keymanager(disk): keys_path ${this.path} is neither a file nor missing; point keys_path at a file`, { fields: { path: this.path } });
    }
    const aside = this.path + MIGRATED_SUFFIX;
    if ((await fileKind(aside)) === 'directory') return this.migrate(aside, aside); // interrupted in-place migration
    const sibling = legacySibling(this.path);
    if (sibling !== undefined && (await pemFiles(sibling)).length > 0) return this.migrate(sibling, sibling + MIGRATED_SUFFIX);
    return new Map();
  }

  /** Reads the PEM files of an earlier ztwim's key directory into the file, then renames the directory to `backup`. */
  private async migrate(from: string, backup: string): Promise<KeyMap> {
    const keys = new Map<string, ManagedKey>();
    for (const file of await pemFiles(from)) {
      const id = file.slice(0, -PEM_SUFFIX.length);
      const path = join(from, file);
      const pem = await this.io(`reading key file ${path}`, () => readFile(path));
      keys.set(
        id,
        parseKey(id, path, () => createPrivateKey({ key: pem, format: 'pem' })),
      );
    }
    await this.write(keys);
    if (from !== backup) {
      await this.io(`renaming the migrated key directory ${from} to ${backup}`, async () => {
        await rename(from, backup);
        await syncDir(dirname(from));
      });
    }
    this.log?.warn(
      { keys_path: this.path, from, backup, keys: keys.size },
      "Migrated the keys of an earlier ztwim key directory into keys_path, the single file of SPIRE's disk KeyManager; the old directory can be removed",
    );
    return keys;
  }

  private async removeTempFiles(dir: string, prefix: string): Promise<void> {
    const names = await this.io(`listing ${dir}`, () => readdir(dir));
    for (const n of names) {
      // left by a crash before its rename: the content it carried never replaced the file
      if (n.startsWith(prefix)) await unlink(join(dir, n)).catch(() => undefined);
    }
  }
}

function sortedKeys(keys: KeyMap): ManagedKey[] {
  return [...keys.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** SPIRE's layout: Go's json.MarshalIndent(data, "", "\t") of `{Keys map[string][]byte}` (ids sorted, base64 values). */
export function encodeKeysFile(keys: KeyMap): string {
  const out: Record<string, string> = {};
  for (const k of sortedKeys(keys)) out[k.id] = k.privateKey.export({ type: 'pkcs8', format: 'der' }).toString('base64');
  return JSON.stringify({ keys: out }, null, '\t');
}

function decodeKeysFile(path: string, text: string): Map<string, ManagedKey> {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (cause) {
    throw internal(`keymanager(disk): key file ${path} is corrupt: not JSON (${(cause as Error).message})`, { cause, fields: { path } });
  }
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  const entries = isObject(doc) ? (doc['keys'] ?? {}) : undefined;
  if (!isObject(entries)) {
    throw internal(`keymanager(disk): key file ${path} is corrupt: want {"keys": {"<id>": "<base64 PKCS#8>"}}`, { fields: { path } });
  }
  const keys = new Map<string, ManagedKey>();
  for (const [id, value] of Object.entries(entries)) {
    if (typeof value !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) {
      throw internal(`keymanager(disk): key file ${path} is corrupt: key ${JSON.stringify(id)} is not base64`, { fields: { path, key_id: id } });
    }
    keys.set(
      id,
      parseKey(id, path, () => createPrivateKey({ key: Buffer.from(value, 'base64'), format: 'der', type: 'pkcs8' })),
    );
  }
  return keys;
}

function parseKey(id: string, path: string, parse: () => ReturnType<typeof createPrivateKey>): ManagedKey {
  let privateKey;
  try {
    privateKey = parse();
  } catch (cause) {
    throw internal(`keymanager(disk): key ${JSON.stringify(id)} in ${path} is corrupt: not a PKCS#8 private key`, { cause, fields: { path, key_id: id } });
  }
  const type = keyTypeOf(privateKey);
  if (type === undefined) {
    throw internal(`keymanager(disk): key ${JSON.stringify(id)} in ${path} holds an unsupported key type (want ec-p256, ec-p384, rsa-2048 or rsa-4096)`, {
      fields: { path, key_id: id },
    });
  }
  return Object.freeze({ id, type, privateKey, publicKey: createPublicKey(privateKey) });
}

async function fileKind(path: string): Promise<'missing' | 'file' | 'directory' | 'other'> {
  try {
    const st = await lstat(path);
    return st.isFile() ? 'file' : st.isDirectory() ? 'directory' : 'other';
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    throw internal(`keymanager(disk): cannot inspect ${path}: ${(e as Error).message}`, { cause: e, fields: { path } });
  }
}

/** `<dir>/keys` for `<dir>/keys.json`: where an earlier ztwim kept the keys of the default and `ztwim up` layouts. */
function legacySibling(path: string): string | undefined {
  return path.endsWith('.json') ? path.slice(0, -'.json'.length) : undefined;
}

/** The `<id>.pem` files of an earlier ztwim's key directory (none when it is missing or not a directory). */
async function pemFiles(dir: string): Promise<string[]> {
  if ((await fileKind(dir)) !== 'directory') return [];
  return (await readdir(dir)).filter((n) => n.endsWith(PEM_SUFFIX) && !n.startsWith(TEMP_PREFIX)).sort();
}
