// deploy/k8s/registrar/ (rbac.yaml, deployment.yaml, webhook.yaml) applied on the shared test
// cluster: the registrar pod, from this tree's image (test/k8s/lib/image.ts, tag
// $ZTWIM_IMAGE_TAG or the version), Runs and becomes Ready, talks to a ztwim server on the
// host through the hostPath socket directory the manifest mounts (as the manifest intends: the
// server on the node), creates the entry of a pod a ClusterSPIFFEID selects, and the API server
// refuses a broken ClusterSPIFFEID through the webhook Service and ValidatingWebhookConfiguration
// of webhook.yaml, served by that pod.
//
// Test-time rewrites of the shipped files (the node has no pod network and the cluster is shared),
// and nothing else:
//   - every object into a namespace of this test (`inNamespace`; the shipped `ztwim`), cluster-scoped
//     RBAC and the ValidatingWebhookConfiguration renamed after it, the config's `ztwim` entries
//     (Lease namespace, ignored namespace) to it; the workload pod in a second namespace;
//   - the config's className to one of this test (other tests' ClusterSPIFFEIDs are left alone),
//     its probe/metrics/webhook ports to free ones; the pod on the host network (one replica:
//     two on the one node would share ports), the apiserver at 127.0.0.1, the hostPath to the
//     test server's socket directory, the image to this tree's;
//   - the webhook Service as an ExternalName service to 127.0.0.1 on the webhook port (ClusterIPs
//     are not routed on this node; see registrar-crd-webhook.test.ts) and an objectSelector on the
//     webhooks, so other tests' objects never reach this webhook.
import assert from 'node:assert/strict';
import { chmodSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse as parseYaml, stringify } from 'yaml';
import { dialEntryClient, type EntryClient } from '@ztwim/registrar';
import { freePort } from '../interop/lib/net.ts';
import { startZtwimAdminServer, type ZtwimAdminServer } from '../interop/lib/ztwim-server.ts';
import { applyManifest, createNamespace, ensureCluster, kubectl, waitFor, type ClusterEnv } from './lib/cluster.ts';
import { DEPLOY_DIR, DEPLOY_NAMESPACE, inNamespace, manifest, type K8sObject } from './lib/deploy.ts';
import { importTestImage, ZTWIM_IMAGE } from './lib/image.ts';

const TD = 'example.org';
const BUSYBOX = 'docker.io/library/busybox:local';
const LABEL = { 'ztwim.test/registrar-deploy': String(process.pid) };

let env: ClusterEnv;
let ns: string;
let workloads: string;
let className: string;
let vwcName: string;
let server: ZtwimAdminServer;
let entries: EntryClient & { close(): void };
const clusterScoped: string[] = [];

interface Container {
  image: string;
  imagePullPolicy?: string;
  ports?: Array<{ name: string; containerPort: number }>;
  env?: Array<Record<string, unknown>>;
  readinessProbe: { httpGet: { port: number } };
  livenessProbe: { httpGet: { port: number } };
}
interface PodSpec {
  hostNetwork?: boolean;
  dnsPolicy?: string;
  containers: Container[];
  volumes: Array<{ name: string; hostPath?: { path: string } }>;
}

before(async () => {
  env = await ensureCluster();
  await importTestImage(env);
  await kubectl(env, ['apply', '--server-side', '--field-manager=ztwim-registrar-crd-test', '--force-conflicts', '-f', join(DEPLOY_DIR, 'registrar', 'crds')]);
  await kubectl(env, ['wait', '--for=condition=Established', '--timeout=60s', 'crd/clusterspiffeids.spire.spiffe.io']);
  ns = await createNamespace(env, 'reg-deploy');
  workloads = await createNamespace(env, 'reg-deploy-work');
  className = `${ns}-class`;
  vwcName = `ztwim-registrar-webhook-${ns}`;

  server = await startZtwimAdminServer({ trustDomain: TD });
  entries = dialEntryClient(server.socketPath);
  // The registrar runs as uid 65532; the test server's directory is the test's (root, 0700).
  chmodSync(dirname(server.socketPath), 0o755);
  chmodSync(server.socketPath, 0o777);

  const ports = { health: await freePort(), metrics: await freePort(), webhook: await freePort() };
  const apiPort = new URL(env.apiserver).port;
  const objs = inNamespace(
    ['registrar/rbac.yaml', 'registrar/deployment.yaml', 'registrar/webhook.yaml'].flatMap((f) => manifest(f)),
    ns,
  );
  for (const o of objs) {
    if (o.kind === 'ClusterRole' || o.kind === 'ClusterRoleBinding') clusterScoped.push(`${o.kind.toLowerCase()}/${o.metadata.name}`);
    if (o.kind === 'ConfigMap') {
      const data = o['data'] as Record<string, string>;
      const cfg = parseYaml(data['config.yaml'] as string) as Record<string, unknown>;
      (cfg['leaderElection'] as Record<string, unknown>)['resourceNamespace'] = ns;
      cfg['ignoreNamespaces'] = (cfg['ignoreNamespaces'] as string[]).map((n) => (n === DEPLOY_NAMESPACE ? ns : n));
      assert.ok((cfg['ignoreNamespaces'] as string[]).includes(ns), 'the shipped config ignores its own namespace');
      cfg['className'] = className;
      cfg['health'] = { healthProbeBindAddress: `0.0.0.0:${ports.health}` };
      cfg['metrics'] = { bindAddress: `127.0.0.1:${ports.metrics}` };
      assert.equal(cfg['validatingWebhookConfigurationName'], 'ztwim-registrar-webhook', "the shipped config names webhook.yaml's configuration");
      cfg['validatingWebhookConfigurationName'] = vwcName;
      cfg['webhook'] = { port: ports.webhook };
      cfg['clusterDomain'] = 'cluster.local';
      data['config.yaml'] = stringify(cfg);
    }
    if (o.kind === 'Deployment') {
      const spec = o['spec'] as { replicas: number; template: { spec: PodSpec } };
      spec.replicas = 1;
      const pod = spec.template.spec;
      pod.hostNetwork = true;
      pod.dnsPolicy = 'ClusterFirstWithHostNet';
      const c = pod.containers[0] as Container;
      c.image = ZTWIM_IMAGE;
      c.imagePullPolicy = 'Never';
      c.readinessProbe.httpGet.port = ports.health;
      c.livenessProbe.httpGet.port = ports.health;
      assert.deepEqual(
        c.ports?.map((p) => p.containerPort),
        [9443],
        'the shipped Deployment exposes the webhook port',
      );
      c.ports = [{ name: 'webhook', containerPort: ports.webhook }];
      c.env = [...(c.env ?? []), { name: 'KUBERNETES_SERVICE_HOST', value: '127.0.0.1' }, { name: 'KUBERNETES_SERVICE_PORT', value: apiPort }];
      const sock = pod.volumes.find((v) => v.name === 'server-socket');
      assert.ok(sock?.hostPath !== undefined, 'the shipped Deployment mounts the server socket directory from the node');
      sock.hostPath.path = dirname(server.socketPath);
    }
    if (o.kind === 'Service') {
      o['spec'] = { type: 'ExternalName', externalName: '127.0.0.1', ports: [{ name: 'https', port: ports.webhook, protocol: 'TCP' }] };
    }
    if (o.kind === 'ValidatingWebhookConfiguration') {
      o.metadata.name = vwcName;
      clusterScoped.push(`validatingwebhookconfiguration/${vwcName}`);
      for (const w of o['webhooks'] as Array<{ clientConfig: { service: { namespace: string; port: number } }; objectSelector?: unknown }>) {
        w.clientConfig.service.namespace = ns;
        w.clientConfig.service.port = ports.webhook;
        w.objectSelector = { matchLabels: LABEL };
      }
    }
    if (o.kind === 'ClusterRole' && Array.isArray((o['rules'] as Array<{ resourceNames?: string[] }>)[0]?.resourceNames)) {
      for (const r of o['rules'] as Array<{ resourceNames?: string[] }>) if (r.resourceNames !== undefined) r.resourceNames = [vwcName];
    }
  }
  await applyManifest(env, objs.map((o: K8sObject) => `---\n${stringify(o)}`).join(''));
});

after(async () => {
  if (env !== undefined && ns !== undefined) {
    const logs = await kubectl(env, ['logs', '-n', ns, 'deployment/ztwim-registrar', '--tail=40']).catch((e: unknown) => String(e));
    if (process.exitCode !== undefined && process.exitCode !== 0) console.error(`registrar pod logs:\n${logs}`);
    await kubectl(env, ['delete', 'deployment', '-n', ns, 'ztwim-registrar', '--ignore-not-found', '--wait=false']).catch(() => '');
    await kubectl(env, ['delete', '--ignore-not-found', '--wait=false', ...clusterScoped, `clusterspiffeid/${ns}-good`, `clusterspiffeid/${ns}-broken`]).catch(
      () => '',
    );
  }
  entries?.close();
  await server?.stop();
});

const csid = (name: string, spiffeIDTemplate: string) => ({
  apiVersion: 'spire.spiffe.io/v1alpha1',
  kind: 'ClusterSPIFFEID',
  metadata: { name: `${ns}-${name}`, labels: LABEL },
  spec: {
    className,
    spiffeIDTemplate,
    namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': workloads } },
    podSelector: { matchLabels: { app: 'deployed' } },
  },
});

async function podLogs(): Promise<string> {
  return await kubectl(env, ['logs', '-n', ns, 'deployment/ztwim-registrar']).catch((e: unknown) => String(e));
}

describe('deploy/k8s/registrar on the test cluster', () => {
  it('the registrar pod Runs and becomes Ready (informers synced over the in-cluster config)', async () => {
    await waitFor(
      `the registrar pod Ready in ${ns}`,
      async () => {
        const out = await kubectl(env, [
          'get',
          'pods',
          '-n',
          ns,
          '-l',
          'app.kubernetes.io/name=ztwim-registrar',
          '-o',
          'jsonpath={range .items[*]}{.status.phase} {.status.conditions[?(@.type=="Ready")].status}{"\\n"}{end}',
        ]);
        return out.trim() === 'Running True' ? true : undefined;
      },
      180_000,
    );
    assert.match(await podLogs(), /"msg":"Became leader"/);
  });

  it('it makes the entry of a pod a ClusterSPIFFEID selects, on the server behind the hostPath socket', async () => {
    await applyManifest(
      env,
      JSON.stringify(csid('good', 'spiffe://{{ .TrustDomain }}/ns/{{ .PodMeta.Namespace }}/sa/{{ .PodSpec.ServiceAccountName }}/{{ .PodMeta.Name }}')),
    );
    await applyManifest(
      env,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'w1', namespace: workloads, labels: { app: 'deployed' } },
        spec: {
          hostNetwork: true,
          terminationGracePeriodSeconds: 0,
          containers: [{ name: 'c', image: BUSYBOX, imagePullPolicy: 'Never', command: ['sleep', '3600'] }],
        },
      }),
    );
    const want = `spiffe://${TD}/ns/${workloads}/sa/default/w1`;
    const e = await waitFor(`entry ${want}`, async () => (await entries.listEntries()).find((x) => x.spiffeId === want), 120_000).catch(
      async (err: unknown) => {
        throw new Error(`${String(err)}\nregistrar pod logs:\n${(await podLogs()).slice(-4000)}`);
      },
    );
    assert.ok(e.id.startsWith('ztwim.'), `the shipped entryIDPrefix: ${e.id}`);
    assert.ok(
      e.selectors.some((s) => s.type === 'k8s' && s.value.startsWith('pod-uid:')),
      JSON.stringify(e.selectors),
    );
  });

  it("the API server refuses a broken ClusterSPIFFEID through webhook.yaml's Service, served by the pod", async () => {
    const msg = await waitFor(
      'the broken ClusterSPIFFEID refused',
      async () => {
        try {
          await kubectl(env, ['create', '-f', '-'], { input: JSON.stringify(csid('broken', 'spiffe://{{ .TrustDomain }}/{{ .PodMeta.Name | upper }}')) });
        } catch (e) {
          return (e as Error).message;
        }
        // Admitted (failurePolicy Ignore) before the webhook served: take it back and retry.
        await kubectl(env, ['delete', 'clusterspiffeid', `${ns}-broken`, '--wait=true']);
        return undefined;
      },
      90_000,
    );
    assert.match(msg, /admission webhook "vclusterspiffeid\.kb\.io" denied the request: spec\.spiffeIDTemplate: template: function "upper" not defined/);
    const caBundle = await kubectl(env, ['get', 'validatingwebhookconfiguration', vwcName, '-o', 'jsonpath={.webhooks[0].clientConfig.caBundle}']);
    assert.notEqual(caBundle, '', 'the caBundle was patched by the pod');
    assert.match(await podLogs(), /"allowed":false[^\n]*"msg":"Admission review"/);
  });
});
