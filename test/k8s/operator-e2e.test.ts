// UNFINISHED (see the commit message): on the test node the agent's k8s workload attestor dials the
// kubelet at 10250 (the node's kubelet is on 26250; no CR or render-context field sets
// kubelet_secure_port yet), so the OIDC pod never gets its SVID and ZTWIM never turns Ready.
// The operator end to end on the shared test cluster (docs/operator.md): deploy/manifests'
// operator, running in its pod under exactly its own ServiceAccount and RBAC, with the branch's
// image; the five CRs applied → server StatefulSet (with the registrar), agent DaemonSet, CSI
// DaemonSet and OIDC Deployment Running on the node; a workload pod with the CSI volume gets its
// X509-SVID through the default ClusterSPIFFEID; the OIDC discovery document and JWKS answer;
// invalid CRs are refused or reported; a deleted owned object comes back; the operator killed
// mid-reconcile converges; create-only leaves a hand-edited ConfigMap alone; nothing is written at
// rest; uninstall removes what the operator created and nothing else.
// The CRs are cluster-scoped singletons (`cluster`): one operator test file at a time holds them
// (a lock in the cluster dir, like the kubelet plugin lock), and this file deletes them at the end.
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  applyManifest, createNamespace, ensureCluster, holdKubeletPlugin, httpCall, kubectl, waitFor, type ClusterEnv,
} from './lib/cluster.ts';
import { applyOperatorCrds, holdOperatorSingletons, OPERATOR_KINDS, importBranchImage, installOperator, operatorPod, OPERATOR_TEST_IMAGE, type InstalledOperator } from './lib/operator-install.ts';

const TD = 'operator-runtime.test';
const KINDS = OPERATOR_KINDS;
const Q = (k: string): string => `${k}s.operator.openshift.io`;

interface Cond { type: string; status: string; reason: string; message: string }
interface CrStatus { conditions?: Cond[]; operands?: Array<{ kind: string; ready: string; message: string }> }

const crs = (issuer: string): string => `
apiVersion: operator.openshift.io/v1alpha1
kind: ZeroTrustWorkloadIdentityManager
metadata: {name: cluster}
spec: {trustDomain: ${TD}, clusterName: test}
---
apiVersion: operator.openshift.io/v1alpha1
kind: SpireServer
metadata: {name: cluster}
spec:
  jwtIssuer: ${issuer}
  caSubject: {country: US, organization: ztwim, commonName: ${TD}}
---
apiVersion: operator.openshift.io/v1alpha1
kind: SpireAgent
metadata: {name: cluster}
spec:
  nodeAttestor: {k8sPSATEnabled: "true"}
  workloadAttestors:
    k8sEnabled: "true"
    workloadAttestorsVerification: {type: skip}
---
apiVersion: operator.openshift.io/v1alpha1
kind: SpiffeCSIDriver
metadata: {name: cluster}
spec: {}
---
apiVersion: operator.openshift.io/v1alpha1
kind: SpireOIDCDiscoveryProvider
metadata: {name: cluster}
spec: {jwtIssuer: ${issuer}}
`;

describe('ztwim operator end to end', { timeout: 1_500_000 }, () => {
  let env: ClusterEnv;
  let ns: string;
  let op: InstalledOperator;
  let releaseCsi: (() => void) | undefined;
  let releaseCrs: (() => void) | undefined;
  let dataDir: string | undefined;
  const figures: Record<string, number> = {};

  const status = async (kind: string): Promise<CrStatus> =>
    (JSON.parse(await kubectl(env, ['get', kind, 'cluster', '-o', 'json'])) as { status?: CrStatus }).status ?? {};
  const cond = async (kind: string, type: string): Promise<Cond | undefined> => (await status(kind)).conditions?.find((c) => c.type === type);
  const get = async (what: string): Promise<Record<string, unknown> | undefined> => {
    try {
      return JSON.parse(await kubectl(env, ['get', '-n', ns, what, '-o', 'json'])) as Record<string, unknown>;
    } catch {
      return undefined;
    }
  };
  const managed = async (): Promise<string[]> => {
    const out = await kubectl(env, ['get', 'serviceaccounts,services,configmaps,statefulsets,daemonsets,deployments,roles,rolebindings', '-n', ns, '-l', 'app.kubernetes.io/managed-by=zero-trust-workload-identity-manager', '-o', 'name']);
    const cluster = await kubectl(env, ['get', 'clusterroles,clusterrolebindings,csidrivers,validatingwebhookconfigurations,clusterspiffeids', '-l', 'app.kubernetes.io/managed-by=zero-trust-workload-identity-manager', '-o', 'name']);
    return [...out.split('\n'), ...cluster.split('\n')].filter((l) => l !== '').sort();
  };
  const ztwimReady = (ms: number) => waitFor('ZTWIM Ready=True', async () => {
    const s = await status(Q('zerotrustworkloadidentitymanager')).catch(() => ({} as CrStatus));
    return s.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true ? s : undefined;
  }, ms).catch(async (e: unknown) => {
    const dump = await Promise.all(KINDS.map(async (k) => `${k}: ${JSON.stringify(await status(k).catch(() => ({})))}`));
    const pods = await kubectl(env, ['get', 'pods', '-n', ns, '-o', 'wide']).catch(() => '');
    const logs = await kubectl(env, ['logs', '-n', ns, 'deployment/ztwim-operator', '--tail=60']).catch(() => '');
    throw new Error(`${(e as Error).message}\n${dump.join('\n')}\n${pods}\n${logs}`);
  });

  before(async () => {
    env = await ensureCluster();
    await importBranchImage(env);
    await applyOperatorCrds(env);
    // The singleton CRs: one holder at a time on this node.
    releaseCrs = await holdOperatorSingletons(env);
    releaseCsi = await holdKubeletPlugin(env, 'csi.spiffe.io');
    ns = await createNamespace(env, 'operator-runtime');
    await kubectl(env, ['label', 'namespace', ns, 'pod-security.kubernetes.io/enforce=privileged', '--overwrite']);
    // The test cluster has no volume provisioner: a hostPath PersistentVolume for the server's
    // claim (spire-data-spire-server-0), writable by its non-root user.
    dataDir = join(tmpdir(), `ztwim-${ns}`);
    mkdirSync(dataDir, { recursive: true, mode: 0o777 });
    chmodSync(dataDir, 0o777);
    await applyManifest(env, `
apiVersion: v1
kind: PersistentVolume
metadata: {name: ${ns}-spire-data}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: ""
  claimRef: {namespace: ${ns}, name: spire-data-spire-server-0}
  hostPath: {path: ${dataDir}, type: Directory}
`);
    op = await installOperator(env, ns);
    await operatorPod(env, ns);
  });

  after(async () => {
    await kubectl(env, ['delete', ...KINDS.map((k) => `${k}/cluster`), '--ignore-not-found', '--wait=false']).catch(() => '');
    await op?.uninstall();
    await kubectl(env, ['delete', 'pv', `${ns}-spire-data`, '--ignore-not-found', '--wait=false']).catch(() => '');
    if (dataDir !== undefined) rmSync(dataDir, { recursive: true, force: true });
    releaseCsi?.();
    releaseCrs?.();
    if (Object.keys(figures).length > 0) console.log(`operator-e2e figures: ${JSON.stringify(figures)}`);
  });

  it('the five CRs give a Running server, agent, CSI driver and OIDC provider; ZTWIM aggregates them', async () => {
    const t0 = Date.now();
    await applyManifest(env, crs(`https://oidc.${TD}`));
    const s = await ztwimReady(600_000);
    figures['apply_to_ready_ms'] = Date.now() - t0;
    assert.deepEqual(s.operands?.map((o) => `${o.kind}:${o.ready}`), ['SpireServer:true', 'SpireAgent:true', 'SpiffeCSIDriver:true', 'SpireOIDCDiscoveryProvider:true']);
    for (const [w, n] of [['statefulset', 'spire-server'], ['daemonset', 'spire-agent'], ['daemonset', 'spire-spiffe-csi-driver'], ['deployment', 'spire-spiffe-oidc-discovery-provider']] as const) {
      const o = await get(`${w}/${n}`);
      assert.ok(o, `${w}/${n} exists`);
      assert.equal(((o['metadata'] as { ownerReferences: Array<{ kind: string }> }).ownerReferences)[0]?.kind !== undefined, true);
    }
    const server = await get('statefulset/spire-server');
    const containers = ((server?.['spec'] as { template: { spec: { containers: Array<{ name: string; image: string }> } } }).template.spec.containers);
    assert.ok(containers.length >= 2, 'the registrar runs beside the server');
    assert.ok(containers.every((c) => c.image === OPERATOR_TEST_IMAGE));
    const bundle = await get('configmap/spire-bundle');
    assert.match(((bundle?.['data'] ?? {}) as Record<string, string>)['bundle.crt'] ?? '', /-----BEGIN CERTIFICATE-----/, 'the server\'s k8sbundle notifier wrote the bundle');
  });

  it('a workload pod with the CSI volume gets its X509-SVID through the default ClusterSPIFFEID', async () => {
    const wl = await createNamespace(env, 'operator-runtime-wl');
    const t0 = Date.now();
    await applyManifest(env, `
apiVersion: v1
kind: ServiceAccount
metadata: {name: app, namespace: ${wl}}
---
apiVersion: v1
kind: Pod
metadata: {name: fetch, namespace: ${wl}}
spec:
  hostNetwork: true
  serviceAccountName: app
  restartPolicy: OnFailure
  terminationGracePeriodSeconds: 0
  containers:
  - name: fetch
    image: ${OPERATOR_TEST_IMAGE}
    imagePullPolicy: Never
    args: [api, fetch, x509, -socketPath, /spiffe-workload-api/spire-agent.sock, -timeout, 60s]
    volumeMounts: [{name: spiffe, mountPath: /spiffe-workload-api, readOnly: true}]
  volumes:
  - name: spiffe
    csi: {driver: csi.spiffe.io, readOnly: true}
`);
    const want = `spiffe://${TD}/ns/${wl}/sa/app`;
    const logs = await waitFor(`the pod's SVID ${want}`, async () => {
      const l = await kubectl(env, ['logs', '-n', wl, 'fetch']).catch(() => '');
      return l.includes(want) ? l : undefined;
    }, 240_000).catch(async (e: unknown) => {
      throw new Error(`${(e as Error).message}\n${await kubectl(env, ['describe', 'pod', '-n', wl, 'fetch']).catch(() => '')}\n${await kubectl(env, ['logs', '-n', wl, 'fetch']).catch(() => '')}`);
    });
    figures['workload_svid_ms'] = Date.now() - t0;
    assert.match(logs, new RegExp(`SPIFFE ID:\\s+${want.replaceAll('.', '\\.')}`));
  });

  it('the OIDC provider serves the discovery document and the JWKS', async () => {
    const port = op.ports['oidcHttps'] as number;
    const doc = await waitFor('the discovery document', async () => {
      const r = await httpCall(env, `https://127.0.0.1:${port}/.well-known/openid-configuration`, { token: null }).catch(() => undefined);
      return r?.status === 200 ? r.body : undefined;
    }, 120_000).catch(async () => {
      // Its serving certificate is not signed by the cluster CA: ask without verification.
      const { request } = await import('node:https');
      return await new Promise<string>((resolve, reject) => {
        request(`https://127.0.0.1:${port}/.well-known/openid-configuration`, { rejectUnauthorized: false, headers: { host: `oidc.${TD}` } }, (res) => {
          let b = '';
          res.on('data', (c: Buffer) => (b += c.toString())).on('end', () => resolve(b));
        }).on('error', reject).end();
      });
    });
    const d = JSON.parse(doc) as { issuer: string; jwks_uri: string };
    assert.equal(d.issuer, `https://oidc.${TD}`);
    assert.match(d.jwks_uri, /\/keys$/);
  });

  it('invalid CRs: a name other than cluster refused by the apiserver; a bad jwtIssuer refused or reported', async () => {
    await assert.rejects(applyManifest(env, 'apiVersion: operator.openshift.io/v1alpha1\nkind: SpireAgent\nmetadata: {name: other}\nspec: {}\n'), /cluster/);
    await assert.rejects(kubectl(env, ['patch', Q('zerotrustworkloadidentitymanager'), 'cluster', '--type=merge', '-p', '{"spec":{"trustDomain":"changed.test"}}']), /immutable/i);
    await assert.rejects(kubectl(env, ['patch', Q('spireserver'), 'cluster', '--type=merge', '-p', '{"spec":{"jwtIssuer":"not a url"}}']), /jwtIssuer|should match/i);
  });

  it('a deleted owned object is created again; a hand edit is put back', async () => {
    await kubectl(env, ['delete', 'configmap', '-n', ns, 'spire-agent']);
    await waitFor('ConfigMap spire-agent back', async () => ((await get('configmap/spire-agent')) === undefined ? undefined : true), 60_000);
    const before = ((await get('configmap/spire-agent'))?.['data'] ?? {}) as Record<string, string>;
    await kubectl(env, ['patch', 'configmap', '-n', ns, 'spire-agent', '--type=merge', '-p', '{"data":{"agent.conf":"edited"}}']);
    await waitFor('the edit put back', async () => {
      const d = ((await get('configmap/spire-agent'))?.['data'] ?? {}) as Record<string, string>;
      return d['agent.conf'] === before['agent.conf'] ? true : undefined;
    }, 60_000);
  });

  it('at rest the operator writes nothing', async () => {
    const rvs = async (): Promise<string> => (await kubectl(env, ['get', ...KINDS.map((k) => `${k}/cluster`), '-o', 'jsonpath={range .items[*]}{.metadata.resourceVersion} {end}'])) +
      (await kubectl(env, ['get', 'configmaps,statefulsets,daemonsets,deployments', '-n', ns, '-l', 'app.kubernetes.io/managed-by=zero-trust-workload-identity-manager', '-o', 'jsonpath={range .items[*]}{.metadata.name}={.metadata.generation} {end}']));
    await ztwimReady(120_000);
    const a = await rvs();
    await new Promise((r) => setTimeout(r, 20_000)); // a real interval: the operator's own timers and resyncs run on real time
    assert.equal(await rvs(), a, 'no CR status or object changed in 20 s');
  });

  it('create-only (annotation) leaves a hand-edited ConfigMap alone; removing it puts the config back', async () => {
    await kubectl(env, ['annotate', Q('spireagent'), 'cluster', 'ztwim.openshift.io/create-only=true', '--overwrite']);
    await waitFor('CreateOnlyMode=True', async () => ((await cond(Q('spireagent'), 'CreateOnlyMode'))?.status === 'True' ? true : undefined), 60_000);
    const orig = (((await get('configmap/spire-agent'))?.['data'] ?? {}) as Record<string, string>)['agent.conf'];
    await kubectl(env, ['patch', 'configmap', '-n', ns, 'spire-agent', '--type=merge', '-p', '{"data":{"agent.conf":"hand edited"}}']);
    await new Promise((r) => setTimeout(r, 8_000));
    assert.equal((((await get('configmap/spire-agent'))?.['data'] ?? {}) as Record<string, string>)['agent.conf'], 'hand edited');
    await kubectl(env, ['annotate', Q('spireagent'), 'cluster', 'ztwim.openshift.io/create-only-']);
    await waitFor('the config back', async () => ((((await get('configmap/spire-agent'))?.['data'] ?? {}) as Record<string, string>)['agent.conf'] === orig ? true : undefined), 60_000);
    assert.equal((await cond(Q('spireagent'), 'CreateOnlyMode'))?.reason, 'CreateOnlyModeDisabled');
  });

  it('the operator killed mid-reconcile converges', async () => {
    const pod = await operatorPod(env, ns);
    // A change that needs a pass, and the operator killed at once.
    await kubectl(env, ['patch', Q('spireserver'), 'cluster', '--type=merge', '-p', '{"spec":{"logLevel":"debug"}}']);
    await kubectl(env, ['delete', 'pod', '-n', ns, pod, '--grace-period=0', '--force', '--wait=false']);
    await waitFor('a new operator pod', async () => ((await operatorPod(env, ns)) !== pod ? true : undefined), 120_000);
    await waitFor('server.conf with log_level debug', async () => {
      const d = (((await get('configmap/spire-server'))?.['data'] ?? {}) as Record<string, string>);
      return /"?log_level"?\s*[=:]\s*"(debug|DEBUG)"/.test(d['server.conf'] ?? '') ? true : undefined;
    }, 120_000);
    await ztwimReady(300_000);
  });

  it('uninstall: deleting the CRs removes what the operator created and nothing else', async () => {
    await applyManifest(env, `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: not-ours, namespace: ${ns}}\ndata: {keep: "yes"}\n`);
    assert.ok((await managed()).length > 10);
    await kubectl(env, ['delete', Q('zerotrustworkloadidentitymanager'), 'cluster']);
    await waitFor('every managed object gone', async () => ((await managed()).length === 0 ? true : undefined), 180_000).catch(async (e: unknown) => {
      throw new Error(`${(e as Error).message}: left ${(await managed()).join(', ')}`);
    });
    assert.equal((await kubectl(env, ['get', KINDS.slice(0, 4).join(','), '-o', 'name'])).trim(), '', 'the operand CRs went with the ZTWIM CR');
    assert.ok(await get('configmap/not-ours'), 'an object the operator did not create stays');
    assert.ok(await get('deployment/ztwim-operator'), 'the operator stays');
    await operatorPod(env, ns);
  });
});
