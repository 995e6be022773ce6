import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '@ztwim/core';
import { FakeClock } from '@ztwim/testkit';
import type { OperandKind } from './aggregate.ts';
import type { OperatorCondition } from './conditions.ts';
import { FakeKube } from './fake-kube.test-util.ts';
import type { KubeObj } from './kube-port.ts';
import { OperandReconciler, type CrSet, type OperandRender } from './operand-reconciler.ts';
import { OPERATOR_API_VERSION } from './resources.ts';
import { ZtwimReconciler } from './ztwim-reconciler.ts';

const NS = 'ztwim-test';

/** A stand-in for operator-api's renderers: a few objects per operand, one validation rule. */
function render(kind: OperandKind, crs: CrSet): OperandRender {
  const r = renderObjects(kind, crs);
  return {
    conditions: r.conditions,
    objects: r.objects.map((object) => ({ object, ...(object.metadata.name === 'spire-bundle' ? { createOnly: true } : {}) })),
  };
}

function renderObjects(kind: OperandKind, crs: CrSet): { objects: KubeObj[]; conditions: OperandRender['conditions'] } {
  const labels = { 'app.kubernetes.io/managed-by': 'zero-trust-workload-identity-manager' };
  const td = (crs.ztwim['spec'] as { trustDomain: string }).trustDomain;
  const meta = (name: string, namespaced = true) => ({ name, ...(namespaced ? { namespace: NS } : {}), labels });
  switch (kind) {
    case 'SpireServer': {
      const issuer = ((crs.SpireServer?.['spec'] ?? {}) as { jwtIssuer?: string }).jwtIssuer ?? '';
      if (!/^https?:\/\//.test(issuer))
        return {
          objects: [],
          conditions: [
            { type: 'ConfigurationValid', status: 'False', reason: 'InvalidJWTIssuerURL', message: `spec.jwtIssuer "${issuer}" is not an http(s) URL` },
          ],
        };
      return {
        conditions: [{ type: 'ConfigurationValid', status: 'True', reason: 'Valid', message: 'configuration is valid' }],
        objects: [
          { apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta('spire-server') },
          { apiVersion: 'v1', kind: 'ConfigMap', metadata: meta('spire-server'), data: { 'server.conf': `trust_domain = "${td}"` } },
          { apiVersion: 'v1', kind: 'ConfigMap', metadata: meta('spire-bundle'), data: {} },
          { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: meta('spire-server', false), rules: [] },
          {
            apiVersion: 'apps/v1',
            kind: 'StatefulSet',
            metadata: meta('spire-server'),
            spec: { replicas: 1, template: { metadata: { annotations: { 'ztwim.openshift.io/spire-server-config-hash': td } } } },
          },
        ],
      };
    }
    case 'SpireAgent':
      return {
        conditions: [],
        objects: [
          { apiVersion: 'v1', kind: 'ConfigMap', metadata: meta('spire-agent'), data: { 'agent.conf': td } },
          { apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: meta('spire-agent'), spec: { template: {} } },
        ],
      };
    case 'SpiffeCSIDriver':
      return {
        conditions: [],
        objects: [{ apiVersion: 'storage.k8s.io/v1', kind: 'CSIDriver', metadata: meta('csi.spiffe.io', false), spec: { attachRequired: false } }],
      };
    case 'SpireOIDCDiscoveryProvider':
      return {
        conditions: [],
        objects: [
          {
            apiVersion: 'spire.spiffe.io/v1alpha1',
            kind: 'ClusterSPIFFEID',
            metadata: meta('zero-trust-workload-identity-manager-spire-oidc-discovery-provider', false),
            spec: {},
          },
          { apiVersion: 'apps/v1', kind: 'Deployment', metadata: meta('spire-spiffe-oidc-discovery-provider'), spec: { replicas: 1 } },
        ],
      };
  }
}

function setup(opts: { createOnlyEnv?: boolean } = {}) {
  const kube = new FakeKube();
  const clock = new FakeClock(Date.parse('2026-12-07T01:00:00Z'));
  const deps = { kube, clock, log: silentLogger(), createOnlyEnv: opts.createOnlyEnv ?? false };
  const operands = new OperandReconciler({ ...deps, render, namespace: NS, recheckMs: 1000 });
  const ztwim = new ZtwimReconciler(deps);
  const cr = (kind: string, spec: Record<string, unknown>, annotations?: Record<string, string>): KubeObj =>
    kube.put({ apiVersion: OPERATOR_API_VERSION, kind, metadata: { name: 'cluster', ...(annotations === undefined ? {} : { annotations }) }, spec });
  const conds = (kind: string): OperatorCondition[] =>
    (kube.find(OPERATOR_API_VERSION, kind, 'cluster')?.['status'] as { conditions?: OperatorCondition[] } | undefined)?.conditions ?? [];
  const cond = (kind: string, type: string) => conds(kind).find((c) => c.type === type);
  /** Marks a workload rolled out, as its controller would. */
  const rollOut = (kind: 'StatefulSet' | 'DaemonSet' | 'Deployment', name: string): void => {
    const o = kube.find('apps/v1', kind, name, NS);
    assert.ok(o, `${kind} ${name} exists`);
    const g = o.metadata.generation ?? 1;
    const status =
      kind === 'DaemonSet'
        ? { observedGeneration: g, desiredNumberScheduled: 1, numberReady: 1, updatedNumberScheduled: 1, numberAvailable: 1 }
        : { observedGeneration: g, readyReplicas: 1, updatedReplicas: 1, availableReplicas: 1 };
    kube.objects.set(`apps/v1/${kind}/${NS}/${name}`, { ...o, status });
  };
  return { kube, clock, operands, ztwim, cr, conds, cond, rollOut };
}

describe('operand reconciler', () => {
  it('no ZTWIM CR: Ready=False/Failed naming it, nothing generated', async () => {
    const t = setup();
    t.cr('SpireServer', { jwtIssuer: 'https://oidc.example.org' });
    assert.deepEqual(await t.operands.reconcile('SpireServer'), {});
    assert.deepEqual([t.cond('SpireServer', 'Ready')?.status, t.cond('SpireServer', 'Ready')?.reason], ['False', 'Failed']);
    assert.match(t.cond('SpireServer', 'Ready')?.message ?? '', /ZeroTrustWorkloadIdentityManager "cluster" not found/);
    assert.equal(t.kube.find('apps/v1', 'StatefulSet', 'spire-server', NS), undefined);
  });

  it('creates every object owned by the CR, ZTWIM owns the CR; a second pass at rest writes nothing', async () => {
    const t = setup();
    const z = t.cr('ZeroTrustWorkloadIdentityManager', { trustDomain: 'example.org', clusterName: 'c1' });
    const s = t.cr('SpireServer', { jwtIssuer: 'https://oidc.example.org' });
    const r = await t.operands.reconcile('SpireServer');
    assert.deepEqual(r, { requeueAfterMs: 1000 }, 'the StatefulSet is not rolled out yet');
    const sts = t.kube.find('apps/v1', 'StatefulSet', 'spire-server', NS);
    assert.deepEqual(sts?.metadata.ownerReferences, [
      { apiVersion: OPERATOR_API_VERSION, kind: 'SpireServer', name: 'cluster', uid: s.metadata.uid, controller: true, blockOwnerDeletion: true },
    ]);
    assert.equal(t.kube.find('rbac.authorization.k8s.io/v1', 'ClusterRole', 'spire-server')?.metadata.ownerReferences?.[0]?.kind, 'SpireServer');
    assert.equal(t.kube.find(OPERATOR_API_VERSION, 'SpireServer', 'cluster')?.metadata.ownerReferences?.[0]?.uid, z.metadata.uid);
    assert.deepEqual(
      [t.cond('SpireServer', 'StatefulSetAvailable')?.status, t.cond('SpireServer', 'StatefulSetAvailable')?.reason],
      ['False', 'StatefulSetNotReady'],
    );
    assert.deepEqual([t.cond('SpireServer', 'Ready')?.status, t.cond('SpireServer', 'Ready')?.reason], ['False', 'Progressing']);
    assert.equal(t.cond('SpireServer', 'BundleConfigAvailable')?.status, 'True');
    assert.equal(t.cond('SpireServer', 'ServerConfigMapAvailable')?.status, 'True');
    assert.equal(t.cond('SpireServer', 'CreateOnlyMode'), undefined, 'never in create-only mode: no such condition');

    t.rollOut('StatefulSet', 'spire-server');
    assert.deepEqual(await t.operands.reconcile('SpireServer'), {});
    assert.deepEqual([t.cond('SpireServer', 'Ready')?.status, t.cond('SpireServer', 'Ready')?.reason], ['True', 'Ready']);
    const writes = t.kube.writes.length;
    await t.operands.reconcile('SpireServer');
    await t.operands.reconcile('SpireServer');
    assert.deepEqual(t.kube.writes.slice(writes), [], 'nothing changed: no apply, no status write');
  });

  it('a hand-edited or deleted object is put back; a changed CR rolls the workload (config hash)', async () => {
    const t = setup();
    const z = t.cr('ZeroTrustWorkloadIdentityManager', { trustDomain: 'example.org', clusterName: 'c1' });
    t.cr('SpireServer', { jwtIssuer: 'https://oidc.example.org' });
    await t.operands.reconcile('SpireServer');
    const cm = t.kube.find('v1', 'ConfigMap', 'spire-server', NS);
    assert.ok(cm);
    t.kube.put({ ...cm, data: { 'server.conf': 'edited' } });
    t.kube.remove('v1', 'ServiceAccount', 'spire-server', NS);
    await t.operands.reconcile('SpireServer');
    assert.equal((t.kube.find('v1', 'ConfigMap', 'spire-server', NS)?.['data'] as Record<string, string>)['server.conf'], 'trust_domain = "example.org"');
    assert.ok(t.kube.find('v1', 'ServiceAccount', 'spire-server', NS));
    const before = t.kube.find('apps/v1', 'StatefulSet', 'spire-server', NS)?.metadata.generation ?? 0;
    t.kube.put({ ...z, spec: { trustDomain: 'other.org', clusterName: 'c1' } });
    await t.operands.reconcile('SpireServer');
    const sts = t.kube.find('apps/v1', 'StatefulSet', 'spire-server', NS);
    assert.equal(sts?.metadata.generation, before + 1);
    assert.equal(
      (sts?.['spec'] as { template: { metadata: { annotations: Record<string, string> } } }).template.metadata.annotations[
        'ztwim.openshift.io/spire-server-config-hash'
      ],
      'other.org',
    );
  });

  it('create-only (annotation or env): missing objects are created, existing ones left alone, with its condition', async () => {
    for (const how of ['annotation', 'env'] as const) {
      const t = setup({ createOnlyEnv: how === 'env' });
      t.cr('ZeroTrustWorkloadIdentityManager', { trustDomain: 'example.org', clusterName: 'c1' });
      const s = t.cr('SpireServer', { jwtIssuer: 'https://oidc.example.org' }, how === 'annotation' ? { 'ztwim.openshift.io/create-only': 'true' } : undefined);
      await t.operands.reconcile('SpireServer');
      const cm = t.kube.find('v1', 'ConfigMap', 'spire-server', NS);
      assert.ok(cm, how);
      t.kube.put({ ...cm, data: { 'server.conf': 'edited by hand' } });
      t.kube.remove('v1', 'ServiceAccount', 'spire-server', NS);
      await t.operands.reconcile('SpireServer');
      assert.equal((t.kube.find('v1', 'ConfigMap', 'spire-server', NS)?.['data'] as Record<string, string>)['server.conf'], 'edited by hand', how);
      assert.ok(t.kube.find('v1', 'ServiceAccount', 'spire-server', NS), `${how}: a missing object is still created`);
      assert.deepEqual(
        [t.cond('SpireServer', 'CreateOnlyMode')?.status, t.cond('SpireServer', 'CreateOnlyMode')?.reason],
        ['True', 'CreateOnlyModeEnabled'],
        how,
      );
      if (how === 'annotation') {
        // Live annotation (lift): removing it turns the mode off and the edit is reverted.
        const cur = t.kube.find(OPERATOR_API_VERSION, 'SpireServer', 'cluster');
        assert.ok(cur);
        t.kube.put({ ...cur, metadata: { ...cur.metadata, annotations: {} }, spec: s['spec'] });
        await t.operands.reconcile('SpireServer');
        assert.equal((t.kube.find('v1', 'ConfigMap', 'spire-server', NS)?.['data'] as Record<string, string>)['server.conf'], 'trust_domain = "example.org"');
        assert.deepEqual(
          [t.cond('SpireServer', 'CreateOnlyMode')?.status, t.cond('SpireServer', 'CreateOnlyMode')?.reason],
          ['False', 'CreateOnlyModeDisabled'],
        );
      }
    }
  });

  it('invalid CR: the condition names the field, nothing is applied, no requeue', async () => {
    const t = setup();
    t.cr('ZeroTrustWorkloadIdentityManager', { trustDomain: 'example.org', clusterName: 'c1' });
    t.cr('SpireServer', { jwtIssuer: 'not a url' });
    assert.deepEqual(await t.operands.reconcile('SpireServer'), {});
    assert.deepEqual(
      [t.cond('SpireServer', 'ConfigurationValid')?.status, t.cond('SpireServer', 'ConfigurationValid')?.reason],
      ['False', 'InvalidJWTIssuerURL'],
    );
    assert.deepEqual([t.cond('SpireServer', 'Ready')?.status, t.cond('SpireServer', 'Ready')?.reason], ['False', 'Failed']);
    assert.ok(
      t.kube.writes.every((w) => !w.startsWith('apply')),
      t.kube.writes.join(', '),
    );
  });

  it('the agent DaemonSet waits for a bundle in the bundle ConfigMap; the OIDC Deployment waits for agent and CSI', async () => {
    const t = setup();
    t.cr('ZeroTrustWorkloadIdentityManager', { trustDomain: 'example.org', clusterName: 'c1' });
    t.cr('SpireServer', { jwtIssuer: 'https://oidc.example.org' });
    t.cr('SpireAgent', {});
    t.cr('SpiffeCSIDriver', {});
    t.cr('SpireOIDCDiscoveryProvider', {});
    await t.operands.reconcile('SpireServer');
    assert.deepEqual(await t.operands.reconcile('SpireAgent'), { requeueAfterMs: 1000 });
    assert.ok(t.kube.find('v1', 'ConfigMap', 'spire-agent', NS), 'the rest is created');
    assert.equal(t.kube.find('apps/v1', 'DaemonSet', 'spire-agent', NS), undefined);
    assert.deepEqual([t.cond('SpireAgent', 'DaemonSetAvailable')?.status, t.cond('SpireAgent', 'DaemonSetAvailable')?.reason], ['False', 'WaitingForBundle']);
    assert.deepEqual([t.cond('SpireAgent', 'Ready')?.status, t.cond('SpireAgent', 'Ready')?.reason], ['False', 'Progressing']);

    await t.operands.reconcile('SpireOIDCDiscoveryProvider');
    assert.equal(t.kube.find('apps/v1', 'Deployment', 'spire-spiffe-oidc-discovery-provider', NS), undefined);
    assert.ok(
      t.kube.find('spire.spiffe.io/v1alpha1', 'ClusterSPIFFEID', 'zero-trust-workload-identity-manager-spire-oidc-discovery-provider'),
      'its ClusterSPIFFEID comes first',
    );
    assert.equal(t.cond('SpireOIDCDiscoveryProvider', 'DeploymentAvailable')?.reason, 'WaitingForAgent');

    // The server writes the bundle (k8sbundle notifier).
    const bundle = t.kube.find('v1', 'ConfigMap', 'spire-bundle', NS);
    assert.ok(bundle);
    t.kube.put({ ...bundle, data: { 'bundle.crt': '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n' } });
    await t.operands.reconcile('SpireAgent');
    t.rollOut('DaemonSet', 'spire-agent');
    await t.operands.reconcile('SpireAgent');
    assert.equal(t.cond('SpireAgent', 'Ready')?.status, 'True');
    await t.operands.reconcile('SpiffeCSIDriver');
    assert.equal(t.cond('SpiffeCSIDriver', 'Ready')?.status, 'True');
    await t.operands.reconcile('SpireOIDCDiscoveryProvider');
    assert.ok(t.kube.find('apps/v1', 'Deployment', 'spire-spiffe-oidc-discovery-provider', NS));
  });

  it('an API error is a <Type>CreationFailed condition and is rethrown for a retry', async () => {
    const t = setup();
    t.cr('ZeroTrustWorkloadIdentityManager', { trustDomain: 'example.org', clusterName: 'c1' });
    t.cr('SpireServer', { jwtIssuer: 'https://oidc.example.org' });
    t.kube.failWrites.set('ClusterRole', new Error('clusterroles.rbac.authorization.k8s.io is forbidden'));
    await assert.rejects(t.operands.reconcile('SpireServer'), /forbidden/);
    const c = t.cond('SpireServer', 'RBACAvailable');
    assert.deepEqual([c?.status, c?.reason], ['False', 'RBACCreationFailed']);
    assert.match(c?.message ?? '', /ClusterRole spire-server: clusterroles.* is forbidden/);
    assert.ok(t.kube.find('apps/v1', 'StatefulSet', 'spire-server', NS), 'the other objects are still applied');
  });
});

describe('optional objects', () => {
  /** A render whose OIDC provider has a Route when managedRoute is on and the Route API is served. */
  function routeSetup(served: { route: boolean }) {
    const t = setup();
    const labels = { 'app.kubernetes.io/managed-by': 'zero-trust-workload-identity-manager' };
    const routeRender = (kind: OperandKind, crs: CrSet): OperandRender => {
      const on = ((crs.SpireOIDCDiscoveryProvider?.['spec'] ?? {}) as { managedRoute?: string }).managedRoute !== 'false';
      if (kind !== 'SpireOIDCDiscoveryProvider') return render(kind, crs);
      if (!served.route)
        return {
          conditions: [{ type: 'OpenShiftObjectsSkipped', status: 'True', reason: 'RouteAPINotServed', message: 'route.openshift.io is not served' }],
          objects: [],
        };
      return {
        conditions: on ? [] : [{ type: 'RouteAvailable', status: 'False', reason: 'ManagedRouteDisabled', message: 'off' }],
        objects: on
          ? [
              {
                object: {
                  apiVersion: 'route.openshift.io/v1',
                  kind: 'Route',
                  metadata: { name: 'spire-oidc-discovery-provider', namespace: NS, labels },
                  spec: { host: 'oidc.example.org' },
                },
              },
            ]
          : [],
      };
    };
    const operands = new OperandReconciler({
      kube: t.kube,
      clock: t.clock,
      log: silentLogger(),
      createOnlyEnv: false,
      render: routeRender,
      namespace: NS,
      recheckMs: 1000,
    });
    return { ...t, operands };
  }

  it('skipped with a condition while the group is not served; created once it is; deleted (ours only) when the CR turns it off', async () => {
    const served = { route: false };
    const t = routeSetup(served);
    t.kube.unserved.add('Route');
    t.cr('ZeroTrustWorkloadIdentityManager', { trustDomain: 'example.org', clusterName: 'c1' });
    t.cr('SpireOIDCDiscoveryProvider', { jwtIssuer: 'https://oidc.example.org' });
    await t.operands.reconcile('SpireOIDCDiscoveryProvider');
    assert.equal(t.cond('SpireOIDCDiscoveryProvider', 'OpenShiftObjectsSkipped')?.reason, 'RouteAPINotServed');
    assert.equal(t.kube.find('route.openshift.io/v1', 'Route', 'spire-oidc-discovery-provider', NS), undefined);

    served.route = true;
    t.kube.unserved.delete('Route');
    await t.operands.reconcile('SpireOIDCDiscoveryProvider');
    const route = t.kube.find('route.openshift.io/v1', 'Route', 'spire-oidc-discovery-provider', NS);
    assert.equal(route?.metadata.ownerReferences?.[0]?.kind, 'SpireOIDCDiscoveryProvider');
    assert.equal(t.cond('SpireOIDCDiscoveryProvider', 'RouteAvailable')?.status, 'True');
    assert.equal(t.cond('SpireOIDCDiscoveryProvider', 'OpenShiftObjectsSkipped'), undefined, 'the skip note is dropped once the group is served');

    t.cr('SpireOIDCDiscoveryProvider', { jwtIssuer: 'https://oidc.example.org', managedRoute: 'false' });
    await t.operands.reconcile('SpireOIDCDiscoveryProvider');
    assert.equal(t.kube.find('route.openshift.io/v1', 'Route', 'spire-oidc-discovery-provider', NS), undefined, 'the disabled Route is deleted');
    assert.ok(t.kube.writes.includes('delete Route spire-oidc-discovery-provider'));
    assert.equal(t.operands.stats.deletes, 1);
    assert.deepEqual(
      [t.cond('SpireOIDCDiscoveryProvider', 'RouteAvailable')?.status, t.cond('SpireOIDCDiscoveryProvider', 'RouteAvailable')?.reason],
      ['False', 'ManagedRouteDisabled'],
    );
    assert.notEqual(t.cond('SpireOIDCDiscoveryProvider', 'Ready')?.reason, 'Failed', 'a Route turned off is not a failure');

    // someone else's Route of that name (not owned by the CR) is left alone
    t.kube.put({
      apiVersion: 'route.openshift.io/v1',
      kind: 'Route',
      metadata: { name: 'spire-oidc-discovery-provider', namespace: NS, labels: { 'app.kubernetes.io/managed-by': 'zero-trust-workload-identity-manager' } },
      spec: {},
    });
    await t.operands.reconcile('SpireOIDCDiscoveryProvider');
    assert.ok(t.kube.find('route.openshift.io/v1', 'Route', 'spire-oidc-discovery-provider', NS), 'not ours: kept');
    assert.equal(t.operands.stats.deletes, 1);
  });
});

describe('ZTWIM reconciler', () => {
  it('owns the operand CRs and aggregates them into operands[], OperandsAvailable and Ready; at rest no writes', async () => {
    const t = setup();
    const z = t.cr('ZeroTrustWorkloadIdentityManager', { trustDomain: 'example.org', clusterName: 'c1' });
    t.cr('SpireServer', { jwtIssuer: 'https://oidc.example.org' });
    await t.ztwim.reconcile();
    assert.equal(t.kube.find(OPERATOR_API_VERSION, 'SpireServer', 'cluster')?.metadata.ownerReferences?.[0]?.uid, z.metadata.uid);
    const status = t.kube.find(OPERATOR_API_VERSION, 'ZeroTrustWorkloadIdentityManager', 'cluster')?.['status'] as {
      operands: Array<{ kind: string; ready: string; message: string }>;
    };
    assert.deepEqual(
      status.operands.map((o) => `${o.kind}:${o.ready}:${o.message}`),
      [
        'SpireServer:false:Waiting for initial reconciliation',
        'SpireAgent:false:CR not found',
        'SpiffeCSIDriver:false:CR not found',
        'SpireOIDCDiscoveryProvider:false:CR not found',
      ],
    );
    assert.equal(t.cond('ZeroTrustWorkloadIdentityManager', 'OperandsAvailable')?.reason, 'Progressing');
    const n = t.kube.writes.length;
    await t.ztwim.reconcile();
    assert.deepEqual(t.kube.writes.slice(n), []);

    t.cr('SpireServer', { jwtIssuer: 'bad' });
    await t.operands.reconcile('SpireServer');
    await t.ztwim.reconcile();
    const ready = t.cond('ZeroTrustWorkloadIdentityManager', 'Ready');
    assert.deepEqual([ready?.status, ready?.reason], ['False', 'Failed']);
    assert.match(ready?.message ?? '', /Some operands not ready: \[SpireServer, SpireAgent, SpiffeCSIDriver, SpireOIDCDiscoveryProvider\]/);
  });
});
