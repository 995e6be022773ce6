import { createPrivateKey, createPublicKey } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { internal } from '@ztwim/core';
import { atomicWriteFile, syncDir, TEMP_PREFIX } from './atomic-file.ts';
import {
  checkKeyId,
  checkKeyType,
  generateManagedKey,
  keyTypeOf,
  type KeyManager,
  type KeyType,
  type ManagedKey,
} from './key-manager.ts';

export interface DiskKeyManagerConfig {
  /** Directory holding one PKCS#8 PEM file per key (`<id>.pem`); created with mode 0700. */
  readonly dir: string;
}

const SUFFIX = '.pem';

/**
 * Persists keys as PKCS#8 PEM files (mode 0600) in a private directory, written atomically, so that
 * keys survive a restart and a crash mid-write never loses or truncates a key.
 */
export class DiskKeyManager implements KeyManager {
  readonly dir: string;
  private keys: Map<string, ManagedKey> | undefined;
  private loading: Promise<Map<string, ManagedKey>> | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(config: DiskKeyManagerConfig) {
    this.dir = config.dir;
  }

  async generateKey(id: string, type: KeyType): Promise<ManagedKey> {
    checkKeyId(id);
    checkKeyType(type);
    const keys = await this.load();
    const key = await generateManagedKey(id, type);
    const pem = key.privateKey.export({ type: 'pkcs8', format: 'pem' });
    await this.serial(() => this.io(`writing key file ${this.fileOf(id)}`, () => atomicWriteFile(this.fileOf(id), pem, 0o600)));
    keys.set(id, key);
    return key;
  }

  async getKey(id: string): Promise<ManagedKey | undefined> {
    checkKeyId(id);
    return (await this.load()).get(id);
  }

  async listKeys(): Promise<ManagedKey[]> {
    const keys = await this.load();
    return [...keys.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  async deleteKey(id: string): Promise<boolean> {
    checkKeyId(id);
    const keys = await this.load();
    if (!keys.has(id)) return false;
    await this.serial(() =>
      this.io(`deleting key file ${this.fileOf(id)}`, async () => {
        await unlink(this.fileOf(id));
        await syncDir(this.dir);
      }),
    );
    keys.delete(id);
    return true;
  }

  private fileOf(id: string): string {
    return join(this.dir, id + SUFFIX);
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
      throw internal(`keymanager(disk): ${what} failed: ${(cause as Error).message}`, { cause, fields: { dir: this.dir } });
    }
  }

  private load(): Promise<Map<string, ManagedKey>> {
    if (this.keys) return Promise.resolve(this.keys);
    this.loading ??= this.readAll().then(
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

  private async readAll(): Promise<Map<string, ManagedKey>> {
    const names = await this.io(`opening key directory ${this.dir}`, async () => {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      await chmod(this.dir, 0o700);
      return readdir(this.dir);
    });
    const keys = new Map<string, ManagedKey>();
    for (const name of names.sort()) {
      const path = join(this.dir, name);
      if (name.startsWith(TEMP_PREFIX)) {
        // left by a crash before its rename: the key it carried was never handed out
        await unlink(path).catch(() => undefined);
        continue;
      }
      if (!name.endsWith(SUFFIX)) continue;
      const id = name.slice(0, -SUFFIX.length);
      keys.set(id, await this.readKeyFile(id, path));
    }
    return keys;
  }

  private async readKeyFile(id: string, path: string): Promise<ManagedKey> {
    const pem = await this.io(`reading key file ${path}`, () => readFile(path));
    let privateKey;
    try {
      privateKey = createPrivateKey({ key: pem, format: 'pem' });
    } catch (cause) {
      throw internal(`keymanager(disk): key file ${path} is corrupt: not a PKCS#8 private key`, { cause, fields: { path } });
    }
    const type = keyTypeOf(privateKey);
    if (type === undefined) {
      throw internal(`keymanager(disk): key file ${path} holds an unsupported key type`, { fields: { path } });
    }
    return Object.freeze({ id, type, privateKey, publicKey: createPublicKey(privateKey) });
  }
}
