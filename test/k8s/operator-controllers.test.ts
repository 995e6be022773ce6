// The operator's controllers on the real test cluster, the operator run as a host process
// (`ztwim operator` from this tree) with exactly its own RBAC (deploy/manifests' ClusterRole and
// Role, through a token of its ServiceAccount): the five CRs → every object of §2.2 created and
// owned (ZTWIM owns the operand CRs), conditions and the ZTWIM aggregation; the agent DaemonSet
// held back until the bundle ConfigMap holds a certificate, the OIDC Deployment until the agent
// and the CSI driver are Ready; a deleted or hand-edited object put back; nothing written at rest;
// create-only leaves a hand edit alone and its removal puts it back; the operator SIGKILLed right
// after a change converges when it comes back; deleting the ZTWIM CR removes everything the
// operator made and nothing else.
// The operand pods are kept off the shared node (a nodeSelector no node has), so this file never
// runs a server, agent or CSI driver; test/k8s/operator-e2e.test.ts runs the whole plane.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { holdsFor } from '@ztwim/testkit';
import { makeTmpDir, type TmpDir } from '../interop/lib/tmp.ts';
import { applyManifest, createNamespace, ensureCluster, kubectl, serviceAccountKubeconfig, waitFor, type ClusterEnv } from './lib/cluster.ts';
import {
  applyOperatorCrds,
  holdOperatorSingletons,
  OPERATOR_KINDS,
  installOperator,
  startHostOperator,
  type HostOperator,
  type InstalledOperator,
} from './lib/operator-install.ts';

const TD = 'operator-runtime.test';
const KINDS = OPERATOR_KINDS;
const Q = (k: string): string => `${k}s.operator.openshift.io`;
const MANAGED = 'app.kubernetes.io/managed-by=zero-trust-workload-identity-manager';
/** No node has this label: the operand pods stay Pending, off the shared node. */
const OFF_NODE = '{operator-runtime.test/never: "true"}';

interface Cond {
  type: string;
  status: string;
  reason: string;
  message: string;
}
interface Meta {
  name: string;
  resourceVersion: string;
  generation?: number;
  ownerReferences?: Array<{ kind: string; uid: string; controller?: boolean }>;
  uid: string;
}

const crs = `
apiVersion: operator.openshift.io/v1alpha1
kind: ZeroTrustWorkloadIdentityManager
metadata: {name: cluster}
spec: {trustDomain: ${TD}, clusterName: test}
---
apiVersion: operator.openshift.io/v1alpha1
kind: SpireServer
metadata: {name: cluster}
spec:
  jwtIssuer: https://oidc.${TD}
  caSubject: {country: US, organization: ztwim, commonName: ${TD}}
  nodeSelector: ${OFF_NODE}
---
apiVersion: operator.openshift.io/v1alpha1
kind: SpireAgent
metadata: {name: cluster}
spec:
  nodeSelector: ${OFF_NODE}
---
apiVersion: operator.openshift.io/v1alpha1
kind: SpiffeCSIDriver
metadata: {name: cluster}
spec:
  nodeSelector: ${OFF_NODE}
---
apiVersion: operator.openshift.io/v1alpha1
kind: SpireOIDCDiscoveryProvider
metadata: {name: cluster}
spec:
  jwtIssuer: https://oidc.${TD}
  nodeSelector: ${OFF_NODE}
`;

describe("operator controllers on the real apiserver, under the operator's own RBAC", { timeout: 900_000 }, () => {
  let env: ClusterEnv;
  let ns: string;
  let tmp: TmpDir;
  let kubeconfig: string;
  let installed: InstalledOperator;
  let releaseCrs: (() => void) | undefined;
  let operator: HostOperator | undefined;

  const startOperator = (): void => {
    operator = startHostOperator({ kubeconfig, ns, podName: 'host-test' });
  };
  const json = async <T>(args: string[]): Promise<T | undefined> => {
    try {
      return JSON.parse(await kubectl(env, [...args, '-o', 'json'])) as T;
    } catch {
      return undefined;
    }
  };
  const obj = (what: string) =>
    json<{
      metadata: Meta;
      data?: Record<string, string>;
      status?: { conditions?: Cond[]; operands?: Array<{ kind: string; ready: string; message: string }> };
    }>(['get', '-n', ns, what]);
  const cr = (kind: string) =>
    json<{ metadata: Meta; status?: { conditions?: Cond[]; operands?: Array<{ kind: string; ready: string; message: string }> } }>(['get', kind, 'cluster']);
  const cond = async (kind: string, type: string): Promise<Cond | undefined> => (await cr(kind))?.status?.conditions?.find((c) => c.type === type);
  const waitCond = (kind: string, type: string, pred: (c: Cond) => boolean, ms = 60_000) =>
    waitFor(
      `${kind} ${type}`,
      async () => {
        const c = await cond(kind, type);
        return c !== undefined && pred(c) ? c : undefined;
      },
      ms,
    ).catch((e: unknown) => {
      throw new Error(`${(e as Error).message}\noperator log:\n${operator?.logs().slice(-4000) ?? ''}`);
    });
  const managed = async (): Promise<string[]> => {
    const a = await kubectl(env, [
      'get',
      'serviceaccounts,services,configmaps,statefulsets,daemonsets,deployments,roles,rolebindings',
      '-n',
      ns,
      '-l',
      MANAGED,
      '-o',
      'name',
    ]);
    const b = await kubectl(env, [
      'get',
      'clusterroles,clusterrolebindings,csidrivers,validatingwebhookconfigurations,clusterspiffeids',
      '-l',
      MANAGED,
      '-o',
      'name',
    ]);
    return [...a.split('\n'), ...b.split('\n')].filter((l) => l !== '').sort();
  };

  before(async () => {
    env = await ensureCluster();
    tmp = makeTmpDir('ztwim-operator-');
    await applyOperatorCrds(env);
    releaseCrs = await holdOperatorSingletons(env);
    ns = await createNamespace(env, 'operator-runtime');
    installed = await installOperator(env, ns, {}, { deployment: false });
    kubeconfig = await serviceAccountKubeconfig(env, ns, 'ztwim-operator', tmp.file('operator.kubeconfig'));
    startOperator();
  });

  after(async () => {
    await operator?.stop();
    await kubectl(env, ['delete', ...KINDS.map((k) => `${k}/cluster`), '--ignore-not-found', '--wait=false']).catch(() => '');
    await installed?.uninstall();
    releaseCrs?.();
    tmp?.cleanup();
  });

  it('the five CRs: every object created and owned, ZTWIM owns the CRs and aggregates them', async () => {
    await applyManifest(env, crs);
    const ready = await waitCond(Q('spireserver'), 'StatefulSetAvailable', (c) => c.status === 'False');
    assert.equal(ready.reason, 'StatefulSetNotReady', 'the pods cannot schedule (nodeSelector): rolling out');
    const server = await cr(Q('spireserver'));
    const ztwim = await cr(Q('zerotrustworkloadidentitymanager'));
    assert.deepEqual(
      server?.metadata.ownerReferences?.map((o) => [o.kind, o.uid, o.controller]),
      [['ZeroTrustWorkloadIdentityManager', ztwim?.metadata.uid, true]],
    );
    for (const what of [
      'statefulset/spire-server',
      'configmap/spire-server',
      'configmap/spire-controller-manager',
      'configmap/spire-bundle',
      'serviceaccount/spire-server',
      'service/spire-server',
    ]) {
      const o = await obj(what);
      assert.ok(o, `${what} exists`);
      assert.equal(o.metadata.ownerReferences?.[0]?.uid, server?.metadata.uid, `${what} is owned by the SpireServer`);
    }
    const crole = await json<{ metadata: Meta }>(['get', 'clusterrole', 'spire-server']);
    assert.equal(crole?.metadata.ownerReferences?.[0]?.kind, 'SpireServer', 'cluster-scoped objects are owned too');
    for (const t of ['ServiceAccountAvailable', 'ServiceAvailable', 'RBACAvailable', 'ServerConfigMapAvailable', 'BundleConfigAvailable']) {
      const c = await cond(Q('spireserver'), t);
      assert.equal(c?.status, 'True', `${t}: ${c?.reason ?? ''} ${c?.message ?? ''}`);
    }
    assert.equal((await cond(Q('spireserver'), 'Ready'))?.reason, 'Progressing');
    const z = await waitFor('ZTWIM operands[]', async () =>
      (await cr(Q('zerotrustworkloadidentitymanager')))?.status?.operands?.length === 4 ? await cr(Q('zerotrustworkloadidentitymanager')) : undefined,
    );
    assert.deepEqual(
      z?.status?.operands?.map((o) => o.kind),
      ['SpireServer', 'SpireAgent', 'SpiffeCSIDriver', 'SpireOIDCDiscoveryProvider'],
    );
    assert.equal(z?.status?.conditions?.find((c) => c.type === 'OperandsAvailable')?.reason, 'Progressing');
    for (const k of KINDS)
      assert.ok(
        !((await cr(k))?.status?.conditions ?? []).some((c) => c.reason.endsWith('CreationFailed')),
        `${k}: no API error under the operator's own RBAC: ${JSON.stringify((await cr(k))?.status?.conditions)}`,
      );
  });

  it('the agent DaemonSet waits for a bundle, the OIDC Deployment for agent and CSI driver', async () => {
    await waitCond(Q('spireagent'), 'DaemonSetAvailable', (c) => c.reason === 'WaitingForBundle');
    assert.equal(await obj('daemonset/spire-agent'), undefined);
    assert.ok(await obj('configmap/spire-agent'), 'the rest of the agent is there');
    await waitCond(Q('spireoidcdiscoveryprovider'), 'DeploymentAvailable', (c) => c.reason === 'WaitingForAgent');
    assert.equal(await obj('deployment/spire-spiffe-oidc-discovery-provider'), undefined);
    // What the server's k8sbundle notifier does.
    await kubectl(env, [
      'patch',
      'configmap',
      '-n',
      ns,
      'spire-bundle',
      '--type=merge',
      '-p',
      JSON.stringify({ data: { 'bundle.crt': '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n' } }),
    ]);
    await waitFor('the agent DaemonSet', async () => obj('daemonset/spire-agent'), 60_000);
    await waitCond(Q('spireagent'), 'DaemonSetAvailable', (c) => c.reason === 'DaemonSetNotReady');
    assert.equal(
      (await obj('configmap/spire-bundle'))?.data?.['bundle.crt']?.includes('MIIB'),
      true,
      "the bundle ConfigMap is create-only: the operator leaves the notifier's bundle alone",
    );
  });

  it('a deleted object comes back; a hand edit is put back', async () => {
    const before = (await obj('configmap/spire-server'))?.data?.['server.conf'];
    assert.ok(before);
    await kubectl(env, ['delete', 'configmap', '-n', ns, 'spire-server']);
    await kubectl(env, ['delete', 'clusterrole', 'spire-server']);
    await waitFor(
      'ConfigMap and ClusterRole back',
      async () =>
        (await obj('configmap/spire-server')) !== undefined && (await json(['get', 'clusterrole', 'spire-server'])) !== undefined ? true : undefined,
      60_000,
    );
    await kubectl(env, ['patch', 'configmap', '-n', ns, 'spire-server', '--type=merge', '-p', '{"data":{"server.conf":"edited"}}']);
    await waitFor('the edit put back', async () => ((await obj('configmap/spire-server'))?.data?.['server.conf'] === before ? true : undefined), 60_000);
  });

  it('at rest nothing is written', async () => {
    const snapshot = async (): Promise<string> => {
      const crsRv = await kubectl(env, ['get', KINDS.join(','), '-o', 'jsonpath={range .items[*]}{.kind}={.metadata.resourceVersion} {end}']);
      const objs = await kubectl(env, [
        'get',
        'serviceaccounts,services,configmaps,statefulsets,daemonsets,roles,rolebindings',
        '-n',
        ns,
        '-l',
        MANAGED,
        '-o',
        'jsonpath={range .items[*]}{.kind}/{.metadata.name}={.metadata.resourceVersion} {end}',
      ]);
      return `${crsRv}\n${objs}`;
    };
    await new Promise((r) => setTimeout(r, 5_000)); // let the last passes finish
    const a = await snapshot();
    // Real time: the operator runs on the real clock; 20 s spans its resync and requeue periods.
    let last = a;
    await holdsFor('no CR status or managed object changes', async () => (last = await snapshot()) === a, { forMs: 20_000, intervalMs: 2_000 }).catch(() =>
      assert.equal(last, a),
    );
  });

  it('create-only (annotation) keeps a hand edit; removing the annotation puts the config back', async () => {
    const orig = (await obj('configmap/spire-agent'))?.data?.['agent.conf'];
    await kubectl(env, ['annotate', Q('spireagent'), 'cluster', 'ztwim.openshift.io/create-only=true']);
    await waitCond(Q('spireagent'), 'CreateOnlyMode', (c) => c.status === 'True' && c.reason === 'CreateOnlyModeEnabled');
    await kubectl(env, ['patch', 'configmap', '-n', ns, 'spire-agent', '--type=merge', '-p', '{"data":{"agent.conf":"hand edited"}}']);
    await kubectl(env, ['delete', 'serviceaccount', '-n', ns, 'spire-agent']);
    await waitFor('the ServiceAccount created again (create-only still creates)', async () => obj('serviceaccount/spire-agent'), 60_000);
    assert.equal((await obj('configmap/spire-agent'))?.data?.['agent.conf'], 'hand edited');
    await kubectl(env, ['annotate', Q('spireagent'), 'cluster', 'ztwim.openshift.io/create-only-']);
    await waitFor('agent.conf put back', async () => ((await obj('configmap/spire-agent'))?.data?.['agent.conf'] === orig ? true : undefined), 60_000);
    assert.equal((await cond(Q('spireagent'), 'CreateOnlyMode'))?.reason, 'CreateOnlyModeDisabled');
  });

  it('the operator SIGKILLed right after a change converges when it comes back', async () => {
    await operator?.stop();
    await kubectl(env, ['patch', Q('spireserver'), 'cluster', '--type=merge', '-p', '{"spec":{"logLevel":"debug"}}']);
    await kubectl(env, ['delete', 'configmap', '-n', ns, 'spire-controller-manager']);
    startOperator();
    await waitFor(
      'server.conf at log level debug and the registrar config back',
      async () => {
        const conf = (await obj('configmap/spire-server'))?.data?.['server.conf'] ?? '';
        return /"log_level"\s*[:=]\s*"DEBUG"|log_level\s*=\s*"(debug|DEBUG)"/i.test(conf) && (await obj('configmap/spire-controller-manager')) !== undefined
          ? true
          : undefined;
      },
      120_000,
    ).catch((e: unknown) => {
      throw new Error(`${(e as Error).message}\n${operator?.logs().slice(-3000) ?? ''}`);
    });
  });

  it('deleting the ZTWIM CR removes every object the operator made and nothing else', async () => {
    await applyManifest(env, `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: not-ours, namespace: ${ns}}\ndata: {keep: "yes"}\n`);
    const made = await managed();
    assert.ok(made.length >= 15, made.join(', '));
    await kubectl(env, ['delete', Q('zerotrustworkloadidentitymanager'), 'cluster']);
    await waitFor('every managed object gone', async () => ((await managed()).length === 0 ? true : undefined), 180_000).catch(async (e: unknown) => {
      throw new Error(`${(e as Error).message}: left ${(await managed()).join(', ')}`);
    });
    assert.equal((await kubectl(env, ['get', KINDS.join(','), '-o', 'name'])).trim(), '', 'the operand CRs went with the ZTWIM CR');
    assert.ok(await obj('configmap/not-ours'));
    assert.ok(await obj('serviceaccount/ztwim-operator'), "the operator's own objects stay");
    assert.equal(operator?.exited(), undefined, 'the operator is still running');
  });
});
