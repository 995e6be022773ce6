import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '@ztwim/testkit';
import { silentLogger } from '@ztwim/core';
import { aggregateOperands, operandStatus } from './aggregate.ts';
import { deriveReady, setCondition, type OperatorCondition } from './conditions.ts';
import { createOnlyCondition, createOnlyFromEnv, createOnlyMode } from './create-only.ts';
import { containsDesired, droppedOwnedField } from './drift.ts';
import { workloadHealth } from './workload-health.ts';
import { WorkQueue } from './work-queue.ts';

const T1 = new Date('2026-12-07T01:00:00Z');
const T2 = new Date('2026-12-07T02:00:00Z');
const cond = (type: string, status: 'True' | 'False', reason: string): OperatorCondition => ({
  type,
  status,
  reason,
  message: `${type} ${reason}`,
  lastTransitionTime: T1.toISOString(),
});

describe('conditions', () => {
  it('setCondition keeps lastTransitionTime while the status stays, moves it on a flip', () => {
    let l = setCondition([], { type: 'A', status: 'False', reason: 'X', message: 'm' }, T1);
    assert.equal(l[0]?.lastTransitionTime, '2026-12-07T01:00:00Z');
    l = setCondition(l, { type: 'A', status: 'False', reason: 'Y', message: 'm2' }, T2);
    assert.deepEqual(l, [{ type: 'A', status: 'False', reason: 'Y', message: 'm2', lastTransitionTime: '2026-12-07T01:00:00Z' }]);
    l = setCondition(l, { type: 'A', status: 'True', reason: 'Z', message: '' }, T2);
    assert.equal(l[0]?.lastTransitionTime, '2026-12-07T02:00:00Z');
    l = setCondition(l, { type: 'B', status: 'True', reason: 'Z', message: '' }, T2);
    assert.deepEqual(
      l.map((c) => c.type),
      ['A', 'B'],
    );
  });

  it('sameConditions ignores key order (the apiserver sorts keys), not values', async () => {
    const { sameConditions } = await import('./conditions.ts');
    const mine = [{ type: 'A', status: 'True' as const, reason: 'R', message: 'm', lastTransitionTime: 't', observedGeneration: 1 }];
    const server = JSON.parse(
      '[{"lastTransitionTime":"t","message":"m","observedGeneration":1,"reason":"R","status":"True","type":"A"}]',
    ) as OperatorCondition[];
    assert.equal(sameConditions(server, mine), true);
    assert.equal(sameConditions(server, [{ ...(mine[0] as OperatorCondition), message: 'other' }]), false);
  });

  it('deriveReady: Failed on any other False, Progressing on rollouts only, True otherwise; CreateOnlyMode ignored', () => {
    const cases: Array<[string, OperatorCondition[], string, string]> = [
      ['all true', [cond('ServiceAvailable', 'True', 'Ready')], 'True', 'Ready'],
      ['rollout', [cond('ServiceAvailable', 'True', 'Ready'), cond('DaemonSetAvailable', 'False', 'DaemonSetNotReady')], 'False', 'Progressing'],
      [
        'failure wins',
        [cond('StatefulSetAvailable', 'False', 'StatefulSetNotReady'), cond('ConfigurationValid', 'False', 'InvalidJWTIssuerURL')],
        'False',
        'Failed',
      ],
      ['create-only off ignored', [cond('CreateOnlyMode', 'False', 'CreateOnlyModeDisabled')], 'True', 'Ready'],
      ['old Ready ignored', [cond('Ready', 'False', 'Failed')], 'True', 'Ready'],
    ];
    for (const [name, list, status, reason] of cases) {
      const r = deriveReady(list);
      assert.equal(`${r.status}/${r.reason}`, `${status}/${reason}`, name);
    }
    assert.match(
      deriveReady([cond('ConfigurationValid', 'False', 'InvalidJWTIssuerURL')]).message,
      /ConfigurationValid: ConfigurationValid InvalidJWTIssuerURL/,
    );
  });
});

describe('ZTWIM aggregation (§2.6)', () => {
  it('operand entries from their CRs', () => {
    assert.deepEqual(operandStatus('SpireAgent', undefined), {
      name: 'cluster',
      kind: 'SpireAgent',
      ready: 'false',
      message: 'CR not found',
      state: 'progressing',
    });
    assert.equal(operandStatus('SpireAgent', { metadata: { name: 'cluster' } }).message, 'Waiting for initial reconciliation');
    const ready = operandStatus('SpireServer', { metadata: { name: 'cluster' }, status: { conditions: [cond('Ready', 'True', 'Ready')] } });
    assert.equal(ready.ready, 'true');
    assert.equal(ready.message, 'Ready');
    const failed = operandStatus('SpireServer', {
      metadata: { name: 'cluster' },
      status: { conditions: [cond('Ready', 'False', 'Failed'), cond('ConfigurationValid', 'False', 'InvalidJWTIssuerURL')] },
    });
    assert.equal(failed.state, 'failed');
    assert.match(failed.message, /ConfigurationValid: InvalidJWTIssuerURL/);
    assert.equal(operandStatus('SpireServer', { metadata: {}, status: { conditions: [cond('Ready', 'False', 'Progressing')] } }).state, 'progressing');
  });

  it('OperandsAvailable: Ready, Progressing with the waiting kinds, Failed when one failed', () => {
    const r = (k: 'SpireServer' | 'SpireAgent', c?: OperatorCondition) =>
      operandStatus(k, { metadata: { name: 'cluster' }, status: { conditions: c === undefined ? [] : [c] } });
    assert.equal(aggregateOperands([r('SpireServer', cond('Ready', 'True', 'Ready'))]).ready.status, 'True');
    const p = aggregateOperands([r('SpireServer', cond('Ready', 'True', 'Ready')), r('SpireAgent')]).operandsAvailable;
    assert.deepEqual([p.status, p.reason, p.message], ['False', 'Progressing', 'Waiting for operands: [SpireAgent]']);
    const f = aggregateOperands([r('SpireServer', cond('Ready', 'False', 'Failed')), r('SpireAgent')]).ready;
    assert.deepEqual([f.status, f.reason, f.message], ['False', 'Failed', 'Some operands not ready: [SpireServer, SpireAgent]']);
  });
});

describe('create-only mode', () => {
  it('env CREATE_ONLY_MODE (case-insensitive) or the annotation on the CR or on ZTWIM', () => {
    assert.equal(createOnlyFromEnv({ CREATE_ONLY_MODE: 'TRUE' }), true);
    assert.equal(createOnlyFromEnv({ CREATE_ONLY_MODE: 'yes' }), false);
    assert.equal(createOnlyFromEnv({}), false);
    assert.equal(createOnlyMode(false, { 'ztwim.openshift.io/create-only': 'true' }), true);
    assert.equal(createOnlyMode(false, undefined, { 'ztwim.openshift.io/create-only': 'True' }), true);
    assert.equal(createOnlyMode(false, { 'ztwim.openshift.io/create-only': 'false' }), false);
    assert.equal(createOnlyMode(true), true);
  });
  it('condition True while on, False only after a True', () => {
    assert.equal(createOnlyCondition(false, []), undefined);
    assert.equal(createOnlyCondition(true, [])?.reason, 'CreateOnlyModeEnabled');
    assert.equal(createOnlyCondition(false, [cond('CreateOnlyMode', 'True', 'CreateOnlyModeEnabled')])?.reason, 'CreateOnlyModeDisabled');
  });
});

describe('drift check (desired ⊆ live)', () => {
  it('extra live fields are fine; a changed or missing desired field is drift', () => {
    const desired = { metadata: { labels: { a: '1' } }, spec: { replicas: 1, template: { spec: { containers: [{ name: 'c', image: 'i' }] } } } };
    const live = {
      metadata: { labels: { a: '1', extra: 'x' }, uid: 'u' },
      spec: { replicas: 1, revisionHistoryLimit: 10, template: { spec: { containers: [{ name: 'c', image: 'i', imagePullPolicy: 'Never' }] } } },
    };
    assert.equal(containsDesired(desired, live), true);
    assert.equal(containsDesired(desired, { ...live, spec: { ...live.spec, replicas: 2 } }), false);
    assert.equal(containsDesired(desired, { ...live, metadata: { labels: { extra: 'x' } } }), false);
    assert.equal(containsDesired({ data: { k: 'v' } }, { data: { k: 'edited' } }), false);
    assert.equal(containsDesired({ l: [1, 2] }, { l: [1, 2, 3] }), false, 'a list is compared whole');
    // Zero values the apiserver drops (omitempty) are not drift.
    assert.equal(containsDesired({ v: [{ readOnly: false, emptyDir: {} }], data: {}, n: 0, s: '' }, { v: [{}] }), true);
    assert.equal(containsDesired({ v: [{ readOnly: true }] }, { v: [{}] }), false);
  });

  it('a map key the operator applied before and no longer renders is drift (managedFields)', () => {
    const ann = 'service.beta.openshift.io/serving-cert-secret-name';
    const managed = (manager: string) => ({
      manager,
      operation: 'Apply',
      fieldsV1: {
        'f:metadata': { 'f:annotations': { [`f:${ann}`]: {} }, 'f:labels': { 'f:a': {} }, 'f:ownerReferences': { 'k:{"uid":"u"}': {} } },
        'f:spec': { 'f:ports': { 'k:{"port":443}': { '.': {}, 'f:port': {} } } },
      },
    });
    const live = {
      metadata: {
        annotations: { [ann]: 'oidc-serving-cert' },
        labels: { a: '1' },
        ownerReferences: [{ uid: 'u' }],
        managedFields: [managed('ztwim-operator')],
      },
      spec: { ports: [{ port: 443 }] },
    };
    const desired = { metadata: { labels: { a: '1' }, ownerReferences: [{ uid: 'u' }] }, spec: { ports: [{ port: 443 }] } };
    assert.equal(containsDesired(desired, live), true, 'the subset test alone cannot see it');
    assert.equal(droppedOwnedField(desired, live, 'ztwim-operator'), '.metadata.annotations', 'the whole map is gone from what is rendered');
    assert.equal(
      droppedOwnedField({ ...desired, metadata: { ...desired.metadata, annotations: { other: 'y' } } }, live, 'ztwim-operator'),
      `.metadata.annotations.${ann}`,
    );
    assert.equal(droppedOwnedField({ ...desired, metadata: { ...desired.metadata, annotations: { [ann]: 'x' } } }, live, 'ztwim-operator'), undefined);
    assert.equal(
      droppedOwnedField(desired, { ...live, metadata: { ...live.metadata, managedFields: [managed('kubectl')] } }, 'ztwim-operator'),
      undefined,
      "another manager's field is not ours to remove",
    );
  });
});

describe('workload health (§1.6)', () => {
  it('ready = updated = available = desired, generation observed; DaemonSet desired > 0', () => {
    const ds = (desired: number, ready: number, gen = 1, observed = 1) => ({
      kind: 'DaemonSet',
      metadata: { name: 'a', generation: gen },
      status: { observedGeneration: observed, desiredNumberScheduled: desired, numberReady: ready, updatedNumberScheduled: ready, numberAvailable: ready },
    });
    assert.equal(workloadHealth(ds(1, 1)).ready, true);
    assert.equal(workloadHealth(ds(0, 0)).ready, false);
    assert.equal(workloadHealth(ds(1, 0)).ready, false);
    assert.equal(workloadHealth(ds(1, 1, 2, 1)).ready, false);
    const dep = {
      kind: 'Deployment',
      metadata: { name: 'o', generation: 3 },
      spec: { replicas: 2 },
      status: { observedGeneration: 3, readyReplicas: 2, updatedReplicas: 2, availableReplicas: 1 },
    };
    assert.equal(workloadHealth(dep).ready, false);
    assert.equal(workloadHealth({ ...dep, status: { ...dep.status, availableReplicas: 2 } }).ready, true);
  });
});

describe('WorkQueue', () => {
  it('coalesces adds during a run into one more run; retries failures with capped backoff', async () => {
    const clock = new FakeClock();
    const runs: string[] = [];
    let fail = 2;
    let release: (() => void) | undefined;
    const q = new WorkQueue(
      async (key) => {
        runs.push(key);
        if (key === 'slow' && runs.length === 1) await new Promise<void>((r) => (release = r));
        if (key === 'bad' && fail-- > 0) throw new Error('api down');
        return {};
      },
      { clock, log: silentLogger(), baseDelayMs: 100, maxDelayMs: 150 },
    );
    q.add('slow');
    await new Promise((r) => setImmediate(r));
    q.add('slow');
    q.add('slow');
    q.add('slow');
    release?.();
    await q.idle();
    assert.deepEqual(runs, ['slow', 'slow'], 'three adds while running: one more run, never two at once');
    runs.length = 0;
    q.add('bad');
    await q.idle();
    assert.equal(q.failuresOf('bad'), 1);
    clock.advance(99);
    assert.deepEqual(runs, ['bad']);
    clock.advance(1);
    await q.idle();
    assert.equal(q.failuresOf('bad'), 2);
    clock.advance(150); // 200 capped at 150
    await q.idle();
    assert.deepEqual(runs, ['bad', 'bad', 'bad']);
    assert.equal(q.failuresOf('bad'), 0);
    q.stop();
  });

  it('requeueAfterMs runs the key again after the delay; an add() in between runs it at once', async () => {
    const clock = new FakeClock();
    let n = 0;
    const q = new WorkQueue(
      async () => {
        n++;
        return { requeueAfterMs: 5000 };
      },
      { clock, log: silentLogger() },
    );
    q.add('k');
    await q.idle();
    assert.equal(n, 1);
    clock.advance(5000);
    await q.idle();
    assert.equal(n, 2);
    q.add('k');
    await q.idle();
    assert.equal(n, 3);
    clock.advance(4999);
    await q.idle();
    assert.equal(n, 3, 'the add() replaced the pending timer');
    q.stop();
  });
});

describe('test-only apiserver env', () => {
  it('adds KUBERNETES_SERVICE_HOST/PORT to every container of a pod template, replacing earlier ones; other objects unchanged', async () => {
    const { withApiserverEnv } = await import('./test-host-network.ts');
    const ds = {
      apiVersion: 'apps/v1',
      kind: 'DaemonSet',
      metadata: { name: 'a' },
      spec: {
        template: {
          spec: {
            initContainers: [{ name: 'i' }],
            containers: [
              {
                name: 'c',
                env: [
                  { name: 'X', value: '1' },
                  { name: 'KUBERNETES_SERVICE_HOST', value: 'old' },
                ],
              },
            ],
          },
        },
      },
    };
    const out = withApiserverEnv(ds, '127.0.0.1', '26443') as unknown as typeof ds & {
      spec: { template: { spec: { containers: Array<{ env: unknown }>; initContainers: Array<{ env: unknown }> } } };
    };
    assert.deepEqual(out.spec.template.spec.containers[0]?.env, [
      { name: 'X', value: '1' },
      { name: 'KUBERNETES_SERVICE_HOST', value: '127.0.0.1' },
      { name: 'KUBERNETES_SERVICE_PORT', value: '26443' },
    ]);
    assert.deepEqual(out.spec.template.spec.initContainers[0]?.env, [
      { name: 'KUBERNETES_SERVICE_HOST', value: '127.0.0.1' },
      { name: 'KUBERNETES_SERVICE_PORT', value: '26443' },
    ]);
    const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' }, data: {} };
    assert.equal(withApiserverEnv(cm, 'h', 'p'), cm);
  });
});

describe('countingKube', () => {
  it('counts reads and writes', async () => {
    const { countingKube } = await import('./counting-kube.ts');
    const { FakeKube } = await import('./fake-kube.test-util.ts');
    const counts = { reads: 0, writes: 0 };
    const k = countingKube(new FakeKube(), counts);
    const ref = { apiVersion: 'v1', kind: 'ConfigMap', resource: 'configmaps', namespaced: true };
    await k.get(ref, 'a', 'ns');
    await k.apply(ref, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a', namespace: 'ns' } });
    await k.get(ref, 'a', 'ns');
    await k.resourceFor('v1', 'ConfigMap');
    assert.deepEqual(counts, { reads: 2, writes: 1 });
  });
});
