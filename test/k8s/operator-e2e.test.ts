// The operator end to end on the shared test cluster (docs/operator.md, issue #17's Tests):
// deploy/manifests' operator, running in its pod under exactly its own ServiceAccount and RBAC,
// with the branch's image (ztwim:$ZTWIM_IMAGE_TAG); the five CRs applied → server StatefulSet
// (with the registrar), agent DaemonSet, CSI DaemonSet and OIDC Deployment Running on the node; a
// workload pod with the CSI volume gets its X509-SVID through the default ClusterSPIFFEID (no
// entry made by hand); the OIDC discovery document and JWKS answer over TLS and `ztwim oidc check
// -for vault` passes against them; invalid CRs are refused; a deleted owned object comes back;
// nothing is written at rest; create-only leaves a hand-edited ConfigMap alone; the operator killed
// mid-reconcile converges; the documented uninstall steps, run as docs/operator.md writes them,
// remove what the operator created and nothing else.
// The node's kubelet listens on 26250, not 10250: the operator gets KUBELET_SECURE_PORT from the
// cluster env (test/k8s/lib/operator-install.ts) and renders it into agent.conf.
// The OIDC provider serves TLS with a certificate of the test's own CA for `localhost`, from a
// Secret named by the CR's externalSecretRef; the issuer is https://localhost:<its host port>.
// The CRs are cluster-scoped singletons (`cluster`): one operator test file at a time holds them
// (holdOperatorSingletons, for the whole file), and this file deletes them at the end.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { applyManifest, createNamespace, ensureCluster, holdKubeletPlugin, kubectl, run, waitFor, type ClusterEnv } from './lib/cluster.ts';
import {
  applyOperatorCrds,
  deleteOperatorCrs,
  operatorCrs,
  holdOperatorSingletons,
  OPERATOR_KINDS,
  installOperator,
  operatorPod,
  serverDataVolume,
  type InstalledOperator,
} from './lib/operator-install.ts';
import { importTestImage, ZTWIM_IMAGE } from './lib/image.ts';
import { holdsFor, issueServerCert, makeCa } from '@ztwim/testkit';
import { REPO_ROOT } from '../interop/lib/peers.ts';
import { runZtwim } from '../interop/lib/ztwim-cli.ts';

const TD = 'op-e2e.test';
const KINDS = OPERATOR_KINDS;
const Q = (k: string): string => `${k}s.operator.openshift.io`;
const TLS_SECRET = 'oidc-e2e-tls';

interface Cond {
  type: string;
  status: string;
  reason: string;
  message: string;
}
interface CrStatus {
  conditions?: Cond[];
  operands?: Array<{ kind: string; ready: string; message: string }>;
}

/** GET over TLS trusting only `ca`; status and body. */
function httpsGet(url: string, ca: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    request(url, { ca, timeout: 10_000 }, (res) => {
      let b = '';
      res
        .on('data', (c: Buffer) => (b += c.toString()))
        .on('end', () => resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'] ?? '', body: b }));
    })
      .on('timeout', function (this: { destroy(e: Error): void }) {
        this.destroy(new Error(`no answer from ${url}`));
      })
      .on('error', reject)
      .end();
  });
}

/** The commands of docs/operator.md's "## Uninstall" block, in order, comments dropped. */
function documentedUninstall(): string[][] {
  const doc = readFileSync(join(REPO_ROOT, 'docs', 'operator.md'), 'utf8');
  const block = /## Uninstall\n+```sh\n([\s\S]*?)```/.exec(doc)?.[1];
  assert.ok(block !== undefined, 'docs/operator.md has an "## Uninstall" sh block');
  return block
    .split('\n')
    .map((l) => l.replace(/#.*$/, '').trim())
    .filter((l) => l !== '')
    .map((l) => l.split(/\s+/));
}

describe('ztwim operator end to end', { timeout: 1_800_000 }, () => {
  let env: ClusterEnv;
  let ns: string;
  let wl = '';
  let op: InstalledOperator;
  let releaseCsi: (() => void) | undefined;
  let releaseCrs: (() => void) | undefined;
  let dataDir: string | undefined;
  let work: string | undefined;
  let ca = '';
  let issuer = '';
  const figures: Record<string, number> = {};

  const status = async (kind: string): Promise<CrStatus> =>
    (JSON.parse(await kubectl(env, ['get', kind, 'cluster', '-o', 'json'])) as { status?: CrStatus }).status ?? {};
  const cond = async (kind: string, type: string): Promise<Cond | undefined> => (await status(kind)).conditions?.find((c) => c.type === type);
  const get = async (what: string, namespace = ns): Promise<Record<string, unknown> | undefined> => {
    try {
      return JSON.parse(await kubectl(env, ['get', '-n', namespace, what, '-o', 'json'])) as Record<string, unknown>;
    } catch {
      return undefined;
    }
  };
  const LABEL = 'app.kubernetes.io/managed-by=zero-trust-workload-identity-manager';
  const managed = async (): Promise<string[]> => {
    const out = await kubectl(env, [
      'get',
      'serviceaccounts,services,configmaps,statefulsets,daemonsets,deployments,roles,rolebindings,pods',
      '-n',
      ns,
      '-l',
      LABEL,
      '-o',
      'name',
    ]).catch(() => '');
    const cluster = await kubectl(env, [
      'get',
      'clusterroles,clusterrolebindings,csidrivers,validatingwebhookconfigurations,clusterspiffeids',
      '-l',
      LABEL,
      '-o',
      'name',
    ]);
    return [...out.split('\n'), ...cluster.split('\n')].filter((l) => l !== '').sort();
  };
  const ztwimReady = (ms: number) =>
    waitFor(
      'ZTWIM Ready=True',
      async () => {
        const s = await status(Q('zerotrustworkloadidentitymanager')).catch(() => ({}) as CrStatus);
        return s.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true ? s : undefined;
      },
      ms,
    ).catch(async (e: unknown) => {
      const dump = await Promise.all(KINDS.map(async (k) => `${k}: ${JSON.stringify(await status(k).catch(() => ({})))}`));
      const pods = await kubectl(env, ['get', 'pods', '-n', ns, '-o', 'wide']).catch(() => '');
      const logs = await kubectl(env, ['logs', '-n', ns, 'deployment/ztwim-operator', '--tail=60']).catch(() => '');
      throw new Error(`${(e as Error).message}\n${dump.join('\n')}\n${pods}\n${logs}`);
    });

  before(async () => {
    env = await ensureCluster();
    await importTestImage(env);
    await applyOperatorCrds(env);
    // The singleton CRs: one holder at a time on this node, for the whole file.
    releaseCrs = await holdOperatorSingletons(env);
    releaseCsi = await holdKubeletPlugin(env, 'csi.spiffe.io');
    ns = `op-e2e-${randomBytes(4).toString('hex')}`;
    // The OIDC provider's serving certificate: a CA of this test, a leaf for localhost.
    work = join(tmpdir(), `ztwim-${ns}-tls`);
    mkdirSync(work, { recursive: true });
    const testCa = makeCa(work, 'op-e2e test CA');
    const tls = issueServerCert(testCa, 'tls', ['localhost'], ['127.0.0.1'], work);
    ca = testCa.certPem;
    // install.yaml with its Namespace (renamed), so the documented `kubectl delete -f` takes it too.
    op = await installOperator(env, ns, {}, { namespace: true });
    issuer = `https://localhost:${op.ports['oidcHttps'] as number}`;
    await kubectl(env, ['create', 'secret', 'tls', TLS_SECRET, '-n', ns, '--cert', tls.certPath, '--key', tls.keyPath]);
    dataDir = join(tmpdir(), `ztwim-${ns}-data`);
    await serverDataVolume(env, ns, `${ns}-spire-data`, dataDir);
    await operatorPod(env, ns);
  });

  after(async () => {
    if (wl !== '') await kubectl(env, ['delete', 'pod', '-n', wl, 'fetch', '--ignore-not-found', '--timeout=120s'], { timeoutMs: 180_000 }).catch(() => '');
    await deleteOperatorCrs(env, ns);
    await op?.uninstall();
    await kubectl(env, ['delete', 'pv', `${ns}-spire-data`, '--ignore-not-found', '--wait=false']).catch(() => '');
    if (dataDir !== undefined) rmSync(dataDir, { recursive: true, force: true });
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
    releaseCsi?.();
    releaseCrs?.();
    if (Object.keys(figures).length > 0) console.log(`operator-e2e figures: ${JSON.stringify(figures)}`);
  });

  it('the five CRs give a Running server, agent, CSI driver and OIDC provider; ZTWIM aggregates them', async () => {
    const t0 = Date.now();
    await applyManifest(env, operatorCrs({ trustDomain: TD, issuer, oidcTlsSecret: TLS_SECRET }));
    const s = await ztwimReady(600_000);
    figures['apply_to_ready_ms'] = Date.now() - t0;
    assert.deepEqual(
      s.operands?.map((o) => `${o.kind}:${o.ready}`),
      ['SpireServer:true', 'SpireAgent:true', 'SpiffeCSIDriver:true', 'SpireOIDCDiscoveryProvider:true'],
    );
    for (const [w, n] of [
      ['statefulset', 'spire-server'],
      ['daemonset', 'spire-agent'],
      ['daemonset', 'spire-spiffe-csi-driver'],
      ['deployment', 'spire-spiffe-oidc-discovery-provider'],
    ] as const) {
      const o = await get(`${w}/${n}`);
      assert.ok(o, `${w}/${n} exists`);
      const owners = (o['metadata'] as { ownerReferences?: Array<{ kind: string; controller?: boolean }> }).ownerReferences ?? [];
      assert.equal(owners.filter((r) => r.controller === true).length, 1, `${w}/${n} has one controller owner`);
      const st = o['status'] as { readyReplicas?: number; numberReady?: number };
      assert.ok((st.readyReplicas ?? st.numberReady ?? 0) >= 1, `${w}/${n} has a ready pod`);
    }
    const server = await get('statefulset/spire-server');
    const containers = (server?.['spec'] as { template: { spec: { containers: Array<{ name: string; image: string }> } } }).template.spec.containers;
    assert.ok(containers.length >= 2, 'the registrar runs beside the server');
    assert.ok(containers.every((c) => c.image === ZTWIM_IMAGE));
    const bundle = await get('configmap/spire-bundle');
    assert.match(
      ((bundle?.['data'] ?? {}) as Record<string, string>)['bundle.crt'] ?? '',
      /-----BEGIN CERTIFICATE-----/,
      "the server's k8sbundle notifier wrote the bundle",
    );
    const agentConf = (((await get('configmap/spire-agent'))?.['data'] ?? {}) as Record<string, string>)['agent.conf'] ?? '';
    assert.match(agentConf, new RegExp(`kubelet_secure_port = ${new URL(env.kubeletUrl).port}\\b`), "the k8s workload attestor dials the node's kubelet port");
  });

  it('a workload pod with the CSI volume gets its X509-SVID through the default ClusterSPIFFEID', async () => {
    wl = await createNamespace(env, 'op-e2e-wl');
    const t0 = Date.now();
    await applyManifest(
      env,
      `
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
    image: ${ZTWIM_IMAGE}
    imagePullPolicy: Never
    args: [api, fetch, x509, -socketPath, /spiffe-workload-api/spire-agent.sock, -timeout, 60s]
    volumeMounts: [{name: spiffe, mountPath: /spiffe-workload-api, readOnly: true}]
  volumes:
  - name: spiffe
    csi: {driver: csi.spiffe.io, readOnly: true}
`,
    );
    const want = `spiffe://${TD}/ns/${wl}/sa/app`;
    const logs = await waitFor(
      `the pod's SVID ${want}`,
      async () => {
        const l = await kubectl(env, ['logs', '-n', wl, 'fetch']).catch(() => '');
        return l.includes(want) ? l : undefined;
      },
      240_000,
    ).catch(async (e: unknown) => {
      throw new Error(
        `${(e as Error).message}\n${await kubectl(env, ['describe', 'pod', '-n', wl, 'fetch']).catch(() => '')}\n${await kubectl(env, ['logs', '-n', wl, 'fetch']).catch(() => '')}`,
      );
    });
    figures['workload_svid_ms'] = Date.now() - t0;
    assert.match(logs, new RegExp(`SPIFFE ID:\\s+${want.replaceAll('.', '\\.')}`));
    // No entry was made by hand: the registrar made it from the operator's ClusterSPIFFEID.
    const ids = await kubectl(env, ['get', 'clusterspiffeids', '-l', LABEL, '-o', 'name']);
    assert.match(ids, /clusterspiffeid/, 'the operator created the default ClusterSPIFFEID');
  });

  it('the OIDC provider serves the discovery document and the JWKS over TLS; `ztwim oidc check -for vault` passes', async () => {
    const doc = await waitFor(
      'the discovery document',
      async () => {
        const r = await httpsGet(`${issuer}/.well-known/openid-configuration`, ca).catch(() => undefined);
        return r?.status === 200 ? r : undefined;
      },
      120_000,
    );
    assert.match(doc.type, /^application\/json/);
    const d = JSON.parse(doc.body) as { issuer: string; jwks_uri: string };
    assert.equal(d.issuer, issuer);
    assert.equal(d.jwks_uri, `${issuer}/keys`);
    const keys = await waitFor(
      'a key in the JWKS',
      async () => {
        const r = await httpsGet(d.jwks_uri, ca);
        const k = (JSON.parse(r.body) as { keys?: Array<Record<string, string>> }).keys ?? [];
        return r.status === 200 && k.length > 0 ? k : undefined;
      },
      120_000,
    );
    for (const k of keys) {
      assert.ok(typeof k['kid'] === 'string' && k['kid'] !== '', 'each key has a kid');
      assert.ok(k['kty'] === 'EC' || k['kty'] === 'RSA', `kty ${k['kty']}`);
      assert.equal(k['d'], undefined, 'no private member');
    }
    const caFile = join(work as string, 'ca.pem');
    // Flags before the URL: the flag parser stops at the first argument that is not a flag.
    const check = await runZtwim(work as string, ['oidc', 'check', '-for', 'vault', '-caFile', caFile, issuer], { timeoutMs: 60_000 });
    assert.equal(check.status, 0, `ztwim oidc check:\n${check.stdout}${check.stderr}`);
    assert.match(check.stdout, new RegExp(`^PASS ${issuer.replaceAll('.', '\\.')} for Vault`, 'm'));
    assert.doesNotMatch(check.stdout, /^ERROR/m);
    // The same check fails without the test's CA: it really fetched over TLS.
    const untrusted = await runZtwim(work as string, ['oidc', 'check', '-for', 'vault', issuer], { timeoutMs: 60_000 });
    assert.equal(untrusted.status, 1, untrusted.stdout);
    assert.match(untrusted.stdout, /^ERROR\s+discovery\.fetch\b.*(verify|certificate)/m);
  });

  it('invalid CRs: a name other than cluster, a changed trust domain, a non-URL jwtIssuer are refused by the apiserver', async () => {
    await assert.rejects(applyManifest(env, 'apiVersion: operator.openshift.io/v1alpha1\nkind: SpireAgent\nmetadata: {name: other}\nspec: {}\n'), /cluster/);
    await assert.rejects(
      kubectl(env, ['patch', Q('zerotrustworkloadidentitymanager'), 'cluster', '--type=merge', '-p', '{"spec":{"trustDomain":"changed.test"}}']),
      /immutable/i,
    );
    await assert.rejects(
      kubectl(env, ['patch', Q('spireserver'), 'cluster', '--type=merge', '-p', '{"spec":{"jwtIssuer":"not a url"}}']),
      /jwtIssuer|should match/i,
    );
  });

  it('a deleted owned object is created again; a hand edit is put back', async () => {
    await kubectl(env, ['delete', 'configmap', '-n', ns, 'spire-agent']);
    await waitFor('ConfigMap spire-agent back', async () => ((await get('configmap/spire-agent')) === undefined ? undefined : true), 60_000);
    const before = ((await get('configmap/spire-agent'))?.['data'] ?? {}) as Record<string, string>;
    await kubectl(env, ['patch', 'configmap', '-n', ns, 'spire-agent', '--type=merge', '-p', '{"data":{"agent.conf":"edited"}}']);
    await waitFor(
      'the edit put back',
      async () => {
        const d = ((await get('configmap/spire-agent'))?.['data'] ?? {}) as Record<string, string>;
        return d['agent.conf'] === before['agent.conf'] ? true : undefined;
      },
      60_000,
    );
  });

  it('at rest the operator writes nothing', async () => {
    const rvs = async (): Promise<string> =>
      (await kubectl(env, ['get', ...KINDS.map((k) => `${k}/cluster`), '-o', 'jsonpath={range .items[*]}{.metadata.resourceVersion} {end}'])) +
      (await kubectl(env, [
        'get',
        'configmaps,statefulsets,daemonsets,deployments',
        '-n',
        ns,
        '-l',
        LABEL,
        '-o',
        'jsonpath={range .items[*]}{.metadata.name}={.metadata.generation} {end}',
      ]));
    await ztwimReady(120_000);
    const a = await rvs();
    // A real interval: the operator's own timers and resyncs run on real time; 20 s spans them.
    let last = a;
    await holdsFor('no CR status or object changes', async () => (last = await rvs()) === a, { forMs: 20_000, intervalMs: 2_000 }).catch(() =>
      assert.equal(last, a, 'no CR status or object changed in 20 s'),
    );
  });

  it('create-only (annotation) leaves a hand-edited ConfigMap alone; removing it puts the config back', async () => {
    await kubectl(env, ['annotate', Q('spireagent'), 'cluster', 'ztwim.openshift.io/create-only=true', '--overwrite']);
    await waitFor('CreateOnlyMode=True', async () => ((await cond(Q('spireagent'), 'CreateOnlyMode'))?.status === 'True' ? true : undefined), 60_000);
    const orig = (((await get('configmap/spire-agent'))?.['data'] ?? {}) as Record<string, string>)['agent.conf'];
    await kubectl(env, ['patch', 'configmap', '-n', ns, 'spire-agent', '--type=merge', '-p', '{"data":{"agent.conf":"hand edited"}}']);
    // The operator reconciles a changed ConfigMap within a pass (well under 8 s): a rewrite would show here.
    const agentConf = async (): Promise<string | undefined> => (((await get('configmap/spire-agent'))?.['data'] ?? {}) as Record<string, string>)['agent.conf'];
    await holdsFor('the hand edit is kept', async () => (await agentConf()) === 'hand edited', { forMs: 8_000, intervalMs: 1_000 });
    await kubectl(env, ['annotate', Q('spireagent'), 'cluster', 'ztwim.openshift.io/create-only-']);
    await waitFor(
      'the config back',
      async () => ((((await get('configmap/spire-agent'))?.['data'] ?? {}) as Record<string, string>)['agent.conf'] === orig ? true : undefined),
      60_000,
    );
    assert.equal((await cond(Q('spireagent'), 'CreateOnlyMode'))?.reason, 'CreateOnlyModeDisabled');
  });

  it('the operator killed mid-reconcile converges', async () => {
    const pod = await operatorPod(env, ns);
    // A change that needs a pass, and the operator killed at once.
    await kubectl(env, ['patch', Q('spireserver'), 'cluster', '--type=merge', '-p', '{"spec":{"logLevel":"debug"}}']);
    await kubectl(env, ['delete', 'pod', '-n', ns, pod, '--grace-period=0', '--force', '--wait=false']);
    await waitFor('a new operator pod', async () => ((await operatorPod(env, ns)) !== pod ? true : undefined), 120_000);
    await waitFor(
      'server.conf with log_level debug',
      async () => {
        const d = ((await get('configmap/spire-server'))?.['data'] ?? {}) as Record<string, string>;
        return /"?log_level"?\s*[=:]\s*"(debug|DEBUG)"/.test(d['server.conf'] ?? '') ? true : undefined;
      },
      120_000,
    );
    await ztwimReady(300_000);
  });

  it('uninstall: the documented steps remove what the operator created and nothing else', async () => {
    const steps = documentedUninstall();
    assert.ok(
      steps.every((a) => a[0] === 'kubectl'),
      steps.map((a) => a.join(' ')).join('\n'),
    );
    const last = steps[steps.length - 1] as string[];
    assert.deepEqual(last, ['kubectl', 'delete', '-f', 'deploy/manifests/install.yaml']);
    // Objects that are not the operator's, with the operator's names and labels nearby: they stay.
    await applyManifest(
      env,
      `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: spire-bundle, namespace: ${wl}, labels: {app.kubernetes.io/part-of: zero-trust-workload-identity-manager}}\ndata: {keep: "yes"}\n`,
    );
    const crdsBefore = (await kubectl(env, ['get', 'crds', '-o', 'name']))
      .split('\n')
      .filter((l) => l !== '')
      .sort();
    assert.ok((await managed()).length > 10, "the operator's objects are there before");
    // As the docs say first: the workloads that mount the CSI volume go before the driver.
    await kubectl(env, ['delete', 'pod', '-n', wl, 'fetch', '--timeout=120s'], { timeoutMs: 180_000 });
    // Every command but the last as written, in the test's namespace: the CRs, in order.
    for (const args of steps.slice(0, -1)) {
      await kubectl(
        env,
        args.slice(1).map((a) => a.replace(/^zero-trust-workload-identity-manager$/, ns)),
        { timeoutMs: 360_000 },
      );
    }
    await waitFor('every object the operator generated gone', async () => ((await managed()).length === 0 ? true : undefined), 180_000).catch(
      async (e: unknown) => {
        throw new Error(`${(e as Error).message}: left ${(await managed()).join(', ')}`);
      },
    );
    assert.equal((await kubectl(env, ['get', KINDS.join(','), '-o', 'name'])).trim(), '', 'no CR left');
    assert.ok(await get('persistentvolumeclaim/spire-data-spire-server-0'), "the server's PVC is kept, as documented");
    assert.ok(await get('deployment/ztwim-operator'), 'the operator runs until the last step');
    // The last step, `kubectl delete -f deploy/manifests/install.yaml`, with the manifest this test
    // applied (install.yaml for this node: the test's namespace and RBAC names, the CRDs left out
    // because every engineer's tests share them on this cluster).
    const manifest = join(work as string, 'install.yaml');
    writeFileSync(manifest, op.manifest);
    await kubectl(env, [...last.slice(1, 3), manifest], { timeoutMs: 360_000 });
    await waitFor(
      `namespace ${ns} gone`,
      async () => ((await kubectl(env, ['get', 'namespace', ns, '-o', 'name']).catch(() => '')) === '' ? true : undefined),
      240_000,
    );
    assert.equal(
      (await kubectl(env, ['get', 'clusterroles,clusterrolebindings', '-o', 'name'])).split('\n').filter((l) => l.endsWith(`/${op.clusterRbac}`)).length,
      0,
      "the operator's ClusterRole and binding gone",
    );
    assert.deepEqual(await managed(), []);
    // Nothing else removed.
    assert.ok(await get('configmap/spire-bundle', wl), "a ConfigMap of another namespace with an operand's name stays");
    assert.ok(await get('serviceaccount/app', wl), "the workload's ServiceAccount stays");
    assert.deepEqual(
      (await kubectl(env, ['get', 'crds', '-o', 'name']))
        .split('\n')
        .filter((l) => l !== '')
        .sort()
        .filter((c) => crdsBefore.includes(c)),
      crdsBefore,
      'every CRD stays',
    );
    assert.ok(await get(`persistentvolume/${ns}-spire-data`, 'default'), 'the Retain PV stays');
  });
});
