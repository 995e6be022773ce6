import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normalize } from './normalize.ts';
import { cr, crs0_2, crs1_0, minimalSet } from '../testdata/fixtures.ts';

test('1.0 shape: unchanged except for the CRD defaults; no conversion notes', () => {
  const n = normalize(crs1_0());
  assert.equal(n.shape, '1.0');
  assert.deepEqual(n.conversions, []);
  assert.deepEqual(n.ztwim?.spec, { trustDomain: 'example.org', clusterName: 'test', bundleConfigMap: 'spire-bundle' });
  const s = n.server?.spec;
  assert.equal(s?.caValidity, '48h');
  assert.equal(s?.keyManager.diskEnabled, 'true');
  assert.equal(s?.datastore.maxOpenConns, 100);
  assert.equal(s?.replicas, 1);
  assert.equal(s?.federation, undefined);
  assert.equal(n.csi?.spec.pluginName, 'csi.spiffe.io');
  assert.equal(n.oidc?.spec.managedRoute, 'true');
});

test('0.2 shape: the operand copies become the ZTWIM fields, 0.2-only fields are dropped with a note', () => {
  const n = normalize(crs0_2());
  assert.equal(n.shape, '0.2');
  assert.deepEqual(n.ztwim?.metadata, { name: 'cluster' });
  assert.deepEqual(n.ztwim?.spec, { trustDomain: 'apps.example.com', clusterName: 'demo', bundleConfigMap: 'spire-bundle' });
  const s = n.server?.spec as Record<string, unknown> & { persistence: Record<string, unknown>; datastore: Record<string, unknown> };
  assert.equal(s['trustDomain'], undefined);
  assert.equal(s['clusterName'], undefined);
  assert.equal(s.persistence['type'], undefined, 'pvc is what 1.0 does');
  assert.equal(s.persistence['size'], '5Gi');
  assert.equal(s.datastore['connMaxLifetime'], 3600);
  assert.equal((n.agent?.spec as Record<string, unknown>)['bundleConfigMap'], undefined);
  assert.equal(n.csi?.spec.agentSocketPath, '/run/spire/agent-sockets', 'the socket file becomes its directory');
  assert.equal((n.oidc?.spec as Record<string, unknown>)['agentSocketName'], undefined);
  assert.equal((n.oidc?.spec as Record<string, unknown>)['trustDomain'], undefined);
  const fields = n.conversions.map((c) => `${c.kind} ${c.field}`);
  for (const f of [
    'SpireServer spec.trustDomain',
    'SpireServer spec.clusterName',
    'SpireAgent spec.bundleConfigMap',
    'SpireServer spec.persistence.type',
    'SpiffeCSIDriver spec.agentSocketPath',
    'SpireOIDCDiscoveryProvider spec.agentSocketName',
  ]) {
    assert.ok(fields.includes(f), `${f} in ${fields.join(', ')}`);
  }
});

test('0.2 and 1.0 shapes of the same plane normalize to the same 1.0 specs', () => {
  const v02 = normalize({
    server: cr('SpireServer', {
      trustDomain: 'example.org',
      clusterName: 'test',
      jwtIssuer: 'https://oidc.example.org',
      caSubject: { commonName: 'x' },
      persistence: { type: 'pvc' },
    }),
    agent: cr('SpireAgent', { trustDomain: 'example.org', clusterName: 'test', bundleConfigMap: 'spire-bundle' }),
    csi: cr('SpiffeCSIDriver', { agentSocketPath: '/run/spire/agent-sockets/spire-agent.sock' }),
    oidc: cr('SpireOIDCDiscoveryProvider', { trustDomain: 'example.org', agentSocketName: 'spire-agent.sock', jwtIssuer: 'https://oidc.example.org' }),
  });
  const v10 = normalize({
    ztwim: cr('ZeroTrustWorkloadIdentityManager', { trustDomain: 'example.org', clusterName: 'test' }),
    server: cr('SpireServer', { jwtIssuer: 'https://oidc.example.org', caSubject: { commonName: 'x' }, persistence: {} }),
    agent: cr('SpireAgent', {}),
    csi: cr('SpiffeCSIDriver', {}),
    oidc: cr('SpireOIDCDiscoveryProvider', { jwtIssuer: 'https://oidc.example.org' }),
  });
  assert.deepEqual(v02.ztwim?.spec, v10.ztwim?.spec);
  for (const k of ['server', 'agent', 'csi', 'oidc'] as const) assert.deepEqual(v02[k]?.spec, v10[k]?.spec, k);
});

test('a ZTWIM value wins over an operand copy; the differing copy stays for validate() to report', () => {
  const n = normalize(minimalSet({ agent: { trustDomain: 'other.org' } }));
  assert.equal(n.ztwim?.spec.trustDomain, 'example.org');
});

test('a 0.2 bundleConfigMap on an operand replaces the ZTWIM default', () => {
  const n = normalize({
    ztwim: cr('ZeroTrustWorkloadIdentityManager', { trustDomain: 'a.org', clusterName: 'c', bundleConfigMap: 'spire-bundle' }),
    agent: cr('SpireAgent', { bundleConfigMap: 'my-bundle' }),
  });
  assert.equal(n.ztwim?.spec.bundleConfigMap, 'my-bundle');
});

test('input CRs are not modified', () => {
  const set = crs0_2();
  const before = JSON.stringify(set);
  normalize(set);
  assert.equal(JSON.stringify(set), before);
});

test('no ZTWIM and no operand trust domain: no ZTWIM in the result', () => {
  const n = normalize({ csi: cr('SpiffeCSIDriver', {}) });
  assert.equal(n.ztwim, undefined);
});
