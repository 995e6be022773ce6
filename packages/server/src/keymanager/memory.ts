import { checkKeyId, checkKeyType, generateManagedKey, type KeyManager, type KeyType, type ManagedKey } from './key-manager.ts';

/** Keeps keys in process memory only: a restart loses them (SPIRE's `KeyManager "memory"`). */
export class MemoryKeyManager implements KeyManager {
  private readonly keys = new Map<string, ManagedKey>();

  async generateKey(id: string, type: KeyType): Promise<ManagedKey> {
    checkKeyId(id);
    checkKeyType(type);
    const key = await generateManagedKey(id, type);
    this.keys.set(id, key);
    return key;
  }

  async getKey(id: string): Promise<ManagedKey | undefined> {
    checkKeyId(id);
    return this.keys.get(id);
  }

  async listKeys(): Promise<ManagedKey[]> {
    return [...this.keys.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  async deleteKey(id: string): Promise<boolean> {
    checkKeyId(id);
    return this.keys.delete(id);
  }
}
