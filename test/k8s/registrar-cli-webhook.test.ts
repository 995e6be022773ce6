// `ztwim registrar -config` as a user runs it (the built CLI, a child process) on the real test
// cluster, with its admission webhook: the config names the ValidatingWebhookConfiguration
// (`validatingWebhookConfigurationName`) and where the webhook listens (controller-runtime's
// `webhook.host`/`webhook.port`), as spire-controller-manager's config does. The one process
// reconciles entries for pods onto an in-process ztwim server, mints the webhook's X509-SVID for
// the configuration's Service name, patches the configuration's caBundle, and answers the API
// server, which refuses a ClusterSPIFFEID with a broken template through it.
//
// The configuration and Service are deploy/k8s/registrar/webhook.yaml's, moved to a namespace and
// name of this test; the Service is an ExternalName service to 127.0.0.1 (see
// registrar-crd-webhook.test.ts for why); an objectSelector keeps other tests' objects away from
// the webhook, and a className of this test keeps the registrar away from other tests' CRs.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { dialEntryClient, serverApiOverSocket, type EntryClient } from '@ztwim/registrar';
import { freePort } from '../interop/lib/net.ts';
import { makeTmpDir } from '../interop/lib/tmp.ts';
import { startZtwim, stopProc, type Proc } from '../interop/lib/ztwim-cli.ts';
import { startZtwimAdminServer, type ZtwimAdminServer } from '../interop/lib/ztwim-server.ts';
import { createNamespace, ensureCluster, kubectl, waitFor, type ClusterEnv } from './lib/cluster.ts';
import { DEPLOY_DIR, manifestObject } from './lib/deploy.ts';

const TD = 'example.org';
const TAG = `reg-cli-webhook-${process.pid}`;
const VWC = `${TAG}-webhook`;
const LABEL = { 'ztwim.test/registrar-cli-webhook': String(process.pid) };
const IMAGE = 'docker.io/library/busybox:local';

let env: ClusterEnv;
let ns: string;
let server: ZtwimAdminServer;
let entries: EntryClient & { close(): void };
let proc: Proc | undefined;
const tmp = makeTmpDir('ztwim-registrar-cli-webhook-');
const created: string[] = [];

before(async () => {
  env = await ensureCluster();
  await kubectl(env, ['apply', '--server-side', '--field-manager=ztwim-registrar-crd-test', '--force-conflicts', '-f', `${DEPLOY_DIR}/registrar/crds`]);
  await kubectl(env, ['wait', '--for=condition=Established', '--timeout=60s', 'crd/clusterspiffeids.spire.spiffe.io']);
  ns = await createNamespace(env, 'reg-cli-webhook');
  server = await startZtwimAdminServer({ trustDomain: TD });
  entries = dialEntryClient(server.socketPath);
  const port = await freePort();

  // The shipped Service and configuration, in this test's namespace, name and port.
  const svc = manifestObject('registrar/webhook.yaml', 'Service', 'ztwim-registrar-webhook');
  await kubectl(env, ['apply', '-f', '-'], {
    input: JSON.stringify({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: svc.metadata.name, namespace: ns },
      spec: { type: 'ExternalName', externalName: '127.0.0.1', ports: [{ name: 'https', port, protocol: 'TCP' }] },
    }),
  });
  const vwc = structuredClone(manifestObject('registrar/webhook.yaml', 'ValidatingWebhookConfiguration', 'ztwim-registrar-webhook'));
  vwc.metadata.name = VWC;
  for (const w of vwc['webhooks'] as Array<{ clientConfig: { service: { namespace: string; port: number } }; objectSelector?: unknown }>) {
    w.clientConfig.service.namespace = ns;
    w.clientConfig.service.port = port;
    w.objectSelector = { matchLabels: LABEL };
  }
  await kubectl(env, ['apply', '-f', '-'], { input: JSON.stringify(vwc) });

  const config = tmp.write(
    'registrar.yaml',
    `apiVersion: spire.spiffe.io/v1alpha1
kind: ControllerManagerConfig
clusterName: test
trustDomain: ${TD}
clusterDomain: cluster.local
spireServerSocketPath: ${server.socketPath}
className: ${TAG}
gcInterval: 2s
entryIDPrefix: cliwh
validatingWebhookConfigurationName: ${VWC}
webhook:
  host: 127.0.0.1
  port: ${port}
logEncoding: json
`,
  );
  proc = startZtwim(tmp, ['registrar', '-config', config, '-kubeconfig', env.kubeconfig]);
});

after(async () => {
  const stopped = proc === undefined ? undefined : await stopProc(proc);
  if (stopped !== undefined && stopped.code !== 0) console.error(`registrar exited ${stopped.code}:\n${proc?.out() ?? ''}`);
  entries?.close();
  await server?.stop();
  if (env !== undefined) await kubectl(env, ['delete', '--ignore-not-found', '--wait=false', `validatingwebhookconfiguration/${VWC}`, ...created]);
  tmp.cleanup();
});

const csid = (name: string, spiffeIDTemplate: string) => ({
  apiVersion: 'spire.spiffe.io/v1alpha1',
  kind: 'ClusterSPIFFEID',
  metadata: { name: `${TAG}-${name}`, labels: LABEL },
  spec: {
    className: TAG,
    spiffeIDTemplate,
    namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } },
    podSelector: { matchLabels: { app: 'cliwh' } },
  },
});

async function create(obj: { kind: string; metadata: { name: string } }): Promise<string | undefined> {
  try {
    await kubectl(env, ['create', '-f', '-'], { input: JSON.stringify(obj) });
    created.push(`${obj.kind.toLowerCase()}/${obj.metadata.name}`);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

describe('ztwim registrar (CLI) with its admission webhook on the real apiserver', () => {
  it("patches the configuration's caBundle with the server's roots", async () => {
    const api = serverApiOverSocket(server.socketPath);
    const roots = await api.x509RootsPem().finally(() => api.close());
    assert.match(roots, /BEGIN CERTIFICATE/);
    await waitFor(
      `caBundles patched (registrar output: ${proc?.out() ?? ''})`,
      async () => {
        const got = JSON.parse(await kubectl(env, ['get', 'validatingwebhookconfiguration', VWC, '-o', 'json'])) as {
          webhooks: Array<{ clientConfig: { caBundle?: string } }>;
        };
        const bundles = got.webhooks.map((w) => Buffer.from(w.clientConfig.caBundle ?? '', 'base64').toString('utf8'));
        return bundles.length === 2 && bundles.every((b) => b === roots) ? true : undefined;
      },
      60_000,
    );
  });

  it('the apiserver refuses a ClusterSPIFFEID with a broken template through it, and admits a good one', async () => {
    // The caBundle is in place; the webhook may still be minting its first certificate: the
    // failurePolicy is Ignore, so retry while the broken one is admitted (and delete it).
    const msg = await waitFor(
      'the broken ClusterSPIFFEID refused',
      async () => {
        const m = await create(csid('broken', 'spiffe://{{ .TrustDomain }}/ns/{{ .PodMeta.Namespace | lower }}'));
        if (m === undefined) {
          await kubectl(env, ['delete', 'clusterspiffeid', `${TAG}-broken`, '--wait=true']);
          created.pop();
          return undefined;
        }
        return m;
      },
      60_000,
    );
    assert.match(msg, /admission webhook "vclusterspiffeid\.kb\.io" denied the request: spec\.spiffeIDTemplate: template: function "lower" not defined/);
    assert.equal(await create(csid('good', 'spiffe://{{ .TrustDomain }}/ns/{{ .PodMeta.Namespace }}/pod/{{ .PodMeta.Name }}')), undefined);
    const logs = proc?.out() ?? '';
    assert.match(logs, /"allowed":false,"reason":"spec\.spiffeIDTemplate[^\n]*"msg":"Admission review"/, 'the refusal came from this process');
  });

  it('the same process reconciles: a pod the good ClusterSPIFFEID selects gets its entry', async () => {
    await kubectl(env, ['apply', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'p1', namespace: ns, labels: { app: 'cliwh' } },
        spec: {
          hostNetwork: true,
          terminationGracePeriodSeconds: 0,
          containers: [{ name: 'c', image: IMAGE, imagePullPolicy: 'Never', command: ['sleep', '3600'] }],
        },
      }),
    });
    const want = `spiffe://${TD}/ns/${ns}/pod/p1`;
    const entry = await waitFor(
      `entry ${want} (registrar output: ${proc?.out().slice(-3000) ?? ''})`,
      async () => (await entries.listEntries()).find((e) => e.spiffeId === want),
      90_000,
    );
    assert.ok(entry.id.startsWith('cliwh.'), entry.id);
    await kubectl(env, ['delete', 'pod', '-n', ns, 'p1', '--wait=false']);
    await waitFor('entry gone with the pod', async () => ((await entries.listEntries()).some((e) => e.spiffeId === want) ? undefined : true), 90_000);
  });
});
