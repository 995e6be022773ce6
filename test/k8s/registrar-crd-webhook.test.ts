// The registrar's validating admission webhook called by the real kube-apiserver. The webhook runs
// in this process on the host (as a hostNetwork pod would), with its X509-SVID minted by an
// in-process ztwim server; the ValidatingWebhookConfiguration is deploy/k8s/registrar/webhook.yaml's,
// moved to a test namespace and name, its caBundle written by the registrar's patcher. Its Service
// is an ExternalName service pointing at 127.0.0.1: the apiserver routes service webhooks to a
// ClusterIP (nothing routes those on this node) or, for ExternalName, to the external name, while
// still checking the certificate for <svc>.<ns>.svc (Endpoints/EndpointSlices may not point at
// loopback addresses). An objectSelector keeps other tests' objects away from this webhook.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '@ztwim/core';
import {
  kubeWebhookConfigurationStore,
  connectKube,
  serverApiOverSocket,
  startRegistrarWebhook,
  syncCaBundles,
  type RunningRegistrarWebhook,
  type WebhookConfigurationStore,
  type WebhookServerApi,
} from '@ztwim/registrar';
import { FakeClock } from '@ztwim/testkit';
import { join } from 'node:path';
import { freePort } from '../interop/lib/net.ts';
import { REPO_ROOT } from '../interop/lib/peers.ts';
import { startZtwimAdminServer, type ZtwimAdminServer } from '../interop/lib/ztwim-server.ts';
import { createNamespace, ensureCluster, kubectl, waitFor, type ClusterEnv } from './lib/cluster.ts';
import { manifestObject } from './lib/deploy.ts';

const CRD_DIR = join(REPO_ROOT, 'deploy', 'k8s', 'registrar', 'crds');
const NAME = `registrar-crd-${process.pid}`;
const VWC = `${NAME}-webhook`;
const LABEL = { 'ztwim.test/registrar-crd': String(process.pid) };

let env: ClusterEnv;
let ns: string;
let server: ZtwimAdminServer;
let api: WebhookServerApi;
let webhook: RunningRegistrarWebhook | undefined;
const clock = new FakeClock(Date.now());
let store: WebhookConfigurationStore;
const created: string[] = [];

before(async () => {
  env = await ensureCluster();
  await kubectl(env, ['apply', '--server-side', '--field-manager=ztwim-registrar-crd-test', '--force-conflicts', '-f', CRD_DIR]);
  await kubectl(env, [
    'wait',
    '--for=condition=Established',
    '--timeout=60s',
    'crd/clusterspiffeids.spire.spiffe.io',
    'crd/clusterfederatedtrustdomains.spire.spiffe.io',
  ]);
  ns = await createNamespace(env, 'registrar-crd');
  server = await startZtwimAdminServer({ trustDomain: 'example.org' });
  api = serverApiOverSocket(server.socketPath);
  const svc = manifestObject('registrar/webhook.yaml', 'Service', 'ztwim-registrar-webhook');
  store = kubeWebhookConfigurationStore(await connectKube(env.kubeconfig));
  // It serves once the configuration exists, with the DNS name of its Service (<svc>.<ns>.svc).
  const port = await freePort();
  webhook = startRegistrarWebhook({
    host: '127.0.0.1',
    port,
    trustDomain: 'example.org',
    serverApi: api,
    store,
    webhookConfigurationName: VWC,
    clock,
    log: silentLogger(),
  });
  // The shipped Service, as an ExternalName service to the host (see the file comment).
  const testSvc = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: svc.metadata.name, namespace: ns },
    spec: { type: 'ExternalName', externalName: '127.0.0.1', ports: [{ name: 'https', port, protocol: 'TCP' }] },
  };
  await kubectl(env, ['apply', '-f', '-'], { input: JSON.stringify(testSvc) });
  // The shipped configuration: its webhooks, rules and paths, in the test namespace and port.
  const vwc = structuredClone(manifestObject('registrar/webhook.yaml', 'ValidatingWebhookConfiguration', 'ztwim-registrar-webhook'));
  vwc.metadata.name = VWC;
  const webhooks = vwc['webhooks'] as Array<{ clientConfig: { service: { namespace: string; port: number; name: string } }; objectSelector?: unknown }>;
  for (const w of webhooks) {
    assert.equal(w.clientConfig.service.name, svc.metadata.name);
    w.clientConfig.service.namespace = ns;
    w.clientConfig.service.port = port;
    w.objectSelector = { matchLabels: LABEL };
  }
  await kubectl(env, ['apply', '-f', '-'], { input: JSON.stringify(vwc) });
});

after(async () => {
  await webhook?.stop();
  api?.close();
  await server?.stop();
  if (env !== undefined) {
    await kubectl(env, ['delete', '--ignore-not-found', '--wait=false', `validatingwebhookconfiguration/${VWC}`, ...created]);
  }
});

async function create(obj: { kind: string; metadata: { name: string } }): Promise<void> {
  await kubectl(env, ['create', '-f', '-'], { input: JSON.stringify(obj) });
  created.push(`${obj.kind.toLowerCase()}/${obj.metadata.name}`);
}

async function createError(obj: { kind: string; metadata: { name: string } }): Promise<string | undefined> {
  try {
    await create(obj);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

const csid = (name: string, spiffeIDTemplate: string) => ({
  apiVersion: 'spire.spiffe.io/v1alpha1',
  kind: 'ClusterSPIFFEID',
  metadata: { name: `${NAME}-${name}`, labels: LABEL },
  spec: { spiffeIDTemplate, podSelector: { matchLabels: { app: 'x' } } },
});
const ftd = (name: string, spec: Record<string, unknown>) => ({
  apiVersion: 'spire.spiffe.io/v1alpha1',
  kind: 'ClusterFederatedTrustDomain',
  metadata: { name: `${NAME}-${name}`, labels: LABEL },
  spec: { trustDomain: 'other.org', bundleEndpointURL: 'https://other.org/bundle', bundleEndpointProfile: { type: 'https_web' }, ...spec },
});

describe('the registrar webhook on the real apiserver', () => {
  it('the patcher, on its next pass, writes the bundle roots into every webhook caBundle', async () => {
    const roots = await api.x509RootsPem();
    const bundles = async (): Promise<string[]> => {
      const got = JSON.parse(await kubectl(env, ['get', 'validatingwebhookconfiguration', VWC, '-o', 'json'])) as {
        webhooks: Array<{ clientConfig: { caBundle?: string } }>;
      };
      return got.webhooks.map((w) => Buffer.from(w.clientConfig.caBundle ?? '', 'base64').toString('utf8'));
    };
    // Its first round ran as it started, before the configuration existed; the next one is due
    // 5 s (of its clock) later.
    clock.advance(5000);
    await waitFor('caBundles patched', async () => ((await bundles()).every((b) => b === roots) ? true : undefined), 20_000);
    assert.equal(await syncCaBundles({ configurationNames: [VWC], store, rootsPem: () => api.x509RootsPem(), log: silentLogger() }), 0, 'no write when equal');
  });

  it('a ClusterSPIFFEID with a broken template is refused with the webhook message; a good one is admitted', async () => {
    const msg = await createError(csid('broken', 'spiffe://{{ .TrustDomain }}/ns/{{ .PodMeta.Namespace | lower }}'));
    assert.ok(msg !== undefined, 'the broken ClusterSPIFFEID was admitted');
    assert.match(
      msg,
      /admission webhook "vclusterspiffeid\.kb\.io" denied the request: spec\.spiffeIDTemplate: template: function "lower" not defined at line 1 col 56 near "mespace \| lower }}"/,
    );
    assert.equal(await createError(csid('good', 'spiffe://{{ .TrustDomain }}/ns/{{ .PodMeta.Namespace }}/sa/{{ .PodSpec.ServiceAccountName }}')), undefined);
  });

  it('an update that breaks the template is refused too', async () => {
    const patch = JSON.stringify({ spec: { dnsNameTemplates: ['{{ .PodMeta.Name }'] } });
    await assert.rejects(
      kubectl(env, ['patch', 'clusterspiffeid', `${NAME}-good`, '--type=merge', '-p', patch]),
      /denied the request: spec\.dnsNameTemplates\[0\]: template: unrecognized character in action: "\}"/,
    );
  });

  it("ClusterFederatedTrustDomain rules past the schema are the webhook's", async () => {
    const msg = await createError(ftd('bad-bundle', { trustDomainBundle: 'not json' }));
    assert.match(
      msg ?? 'admitted',
      /admission webhook "vclusterfederatedtrustdomain\.kb\.io" denied the request: spec\.trustDomainBundle: invalid trust domain bundle/,
    );
    const id = await createError(ftd('bad-id', { bundleEndpointProfile: { type: 'https_spiffe', endpointSPIFFEID: 'spiffe://other.org/a//b' } }));
    assert.match(id ?? 'admitted', /denied the request: spec\.bundleEndpointProfile\.endpointSPIFFEID: invalid SPIFFE ID/);
    assert.equal(await createError(ftd('good', {})), undefined);
  });

  it('with the webhook down, failurePolicy Ignore admits what it would refuse', async () => {
    await webhook?.stop();
    webhook = undefined;
    assert.equal(await createError(csid('unchecked', 'spiffe://{{ .TrustDomain }}/{{ nope }}')), undefined);
  });
});
