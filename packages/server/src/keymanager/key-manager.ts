import { generateKeyPair, type KeyObject } from 'node:crypto';
import { internal, invalidArgument } from '@ztwim/core';

/** Key types a key manager can generate (SPIRE's `ca_key_type` / `jwt_key_type` values). */
export const KEY_TYPES = ['ec-p256', 'ec-p384', 'rsa-2048', 'rsa-4096'] as const;
export type KeyType = (typeof KEY_TYPES)[number];

export function isKeyType(v: unknown): v is KeyType {
  return typeof v === 'string' && (KEY_TYPES as readonly string[]).includes(v);
}

/** A key held by a KeyManager. The private key never leaves the process except to its store. */
export interface ManagedKey {
  readonly id: string;
  readonly type: KeyType;
  readonly publicKey: KeyObject;
  readonly privateKey: KeyObject;
}

/** Generates, stores and hands out named signing keys (SPIRE's KeyManager plugin). */
export interface KeyManager {
  /** Generates a key of the given type under id, replacing any key already stored there. */
  generateKey(id: string, type: KeyType): Promise<ManagedKey>;
  getKey(id: string): Promise<ManagedKey | undefined>;
  /** Every stored key, sorted by id. */
  listKeys(): Promise<ManagedKey[]>;
  /** Removes the key; returns whether it existed. */
  deleteKey(id: string): Promise<boolean>;
}

const KEY_ID_RE = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;

/** Key ids are also file names for the disk key manager, so both implementations restrict them. */
export function checkKeyId(id: string): void {
  if (!KEY_ID_RE.test(id)) {
    throw invalidArgument(`keymanager: invalid key id ${JSON.stringify(id)}: want 1-128 chars of [A-Za-z0-9._-], not starting with "."`);
  }
}

export function checkKeyType(type: unknown): asserts type is KeyType {
  if (!isKeyType(type)) {
    throw invalidArgument(`keymanager: unsupported key type ${JSON.stringify(type)}: want one of ${KEY_TYPES.join(', ')}`);
  }
}

function generatePair(type: KeyType): Promise<{ publicKey: KeyObject; privateKey: KeyObject }> {
  return new Promise((resolve, reject) => {
    const done = (err: Error | null, publicKey: KeyObject, privateKey: KeyObject): void => {
      if (err) reject(err);
      else resolve({ publicKey, privateKey });
    };
    switch (type) {
      case 'ec-p256':
        generateKeyPair('ec', { namedCurve: 'P-256' }, done);
        break;
      case 'ec-p384':
        generateKeyPair('ec', { namedCurve: 'P-384' }, done);
        break;
      case 'rsa-2048':
        generateKeyPair('rsa', { modulusLength: 2048, publicExponent: 65537 }, done);
        break;
      case 'rsa-4096':
        generateKeyPair('rsa', { modulusLength: 4096, publicExponent: 65537 }, done);
        break;
    }
  });
}

/** Generates a fresh key pair off the main thread. */
export async function generateManagedKey(id: string, type: KeyType): Promise<ManagedKey> {
  checkKeyId(id);
  checkKeyType(type);
  try {
    const { publicKey, privateKey } = await generatePair(type);
    return Object.freeze({ id, type, publicKey, privateKey });
  } catch (cause) {
    throw internal(`keymanager: generating ${type} key ${id} failed`, { cause });
  }
}

/** The KeyType of an asymmetric key, or undefined when it is not one we support. */
export function keyTypeOf(key: KeyObject): KeyType | undefined {
  const d = key.asymmetricKeyDetails;
  if (key.asymmetricKeyType === 'ec') {
    if (d?.namedCurve === 'prime256v1') return 'ec-p256';
    if (d?.namedCurve === 'secp384r1') return 'ec-p384';
    return undefined;
  }
  if (key.asymmetricKeyType === 'rsa') {
    if (d?.modulusLength === 2048) return 'rsa-2048';
    if (d?.modulusLength === 4096) return 'rsa-4096';
  }
  return undefined;
}
