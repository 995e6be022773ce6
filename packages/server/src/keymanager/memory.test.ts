import assert from 'node:assert/strict';
import { it } from 'node:test';
import { runKeyManagerContract } from './key-manager.test-suite.ts';
import { MemoryKeyManager } from './memory.ts';
import type { KeyManager } from './key-manager.ts';

runKeyManagerContract('memory', () => new MemoryKeyManager());

it('memory key manager: a new instance starts empty', async () => {
  const km: KeyManager = new MemoryKeyManager();
  await km.generateKey('a', 'ec-p256');
  assert.deepEqual(await new MemoryKeyManager().listKeys(), []);
});
