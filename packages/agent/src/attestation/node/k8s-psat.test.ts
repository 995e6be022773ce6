import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isZtwimError, parseK8sPsatPayload } from '@ztwim/core';
import { k8sPsatAttestationData } from './k8s-psat.ts';

test('k8s_psat agent data: {"cluster","token"} from the token file, read again at each attestation (the kubelet rotates it)', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ztwim-psat-agent-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const tokenPath = join(dir, 'spire-agent');
  writeFileSync(tokenPath, 'token-1');
  const first = k8sPsatAttestationData({ cluster: 'test', tokenPath });
  assert.equal(first.type === 'custom' && first.pluginType, 'k8s_psat');
  assert.deepEqual(first.type === 'custom' && JSON.parse(Buffer.from(first.payload).toString()), { cluster: 'test', token: 'token-1' });
  writeFileSync(tokenPath, 'token-2');
  const second = k8sPsatAttestationData({ cluster: 'test', tokenPath });
  assert.deepEqual(second.type === 'custom' && parseK8sPsatPayload(second.payload), { cluster: 'test', token: 'token-2' });
});

test('k8s_psat agent data: a missing or empty token file is a config error naming the path', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ztwim-psat-agent-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const missing = join(dir, 'nope');
  assert.throws(
    () => k8sPsatAttestationData({ cluster: 'test', tokenPath: missing }),
    (e: unknown) =>
      isZtwimError(e, 'ERR_CONFIG') && e.message === `k8s_psat: unable to load token from ${missing}: no such file (is the projected token volume mounted?)`,
  );
  const empty = join(dir, 'empty');
  writeFileSync(empty, '');
  assert.throws(
    () => k8sPsatAttestationData({ cluster: 'test', tokenPath: empty }),
    (e: unknown) => isZtwimError(e, 'ERR_CONFIG') && e.message === `k8s_psat: unable to load token from ${empty}: the file is empty`,
  );
});
