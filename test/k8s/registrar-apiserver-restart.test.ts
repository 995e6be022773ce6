// `ztwim registrar` (the built CLI) rides out its API server being stopped and restarted. A
// control-plane-only cluster of this test's own (only its kube-apiserver is stopped; the shared
// cluster is never touched), pods bound with nodeName to a fake Node (no kubelet needed), and two
// registrars, each with its own in-process ztwim server:
//   - `solo` without leader election: its passes keep running during the outage on its informer
//     caches, and delete nothing although every list and watch fails;
//   - `elected` with leader election (leaseDuration 4s, renewDeadline 3s, retryPeriod 1s): its
//     renewals fail for renewDeadline, so it steps down (no passes, entries left as they are), as
//     controller-runtime's manager does; where that one exits for the kubelet to restart it, ztwim
//     campaigns again in the same process and leads again once the API server is back.
// After the restart, a pod deleted and one created converge on both servers. (Nothing can be
// created or deleted while the API server is down; "during" the outage is right after it.)
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { RESOURCES, type ResourceClient } from '@ztwim/k8s';
import { connectKube, dialEntryClient, type EntryClient } from '@ztwim/registrar';
import { makeTmpDir } from '../interop/lib/tmp.ts';
import { startZtwim, stopProc, type Proc } from '../interop/lib/ztwim-cli.ts';
import { startZtwimAdminServer, type ZtwimAdminServer } from '../interop/lib/ztwim-server.ts';
import { applyManifest, kubectl, waitFor } from './lib/cluster.ts';
import { DEPLOY_DIR } from './lib/deploy.ts';
import { startOwnControlPlane, type OwnControlPlane } from './lib/own-control-plane.ts';

const TD = 'example.org';
const NS = 'restart';

interface Replica {
  readonly name: 'solo' | 'elected';
  server: ZtwimAdminServer;
  entries: EntryClient & { close(): void };
  proc: Proc;
}

let cp: OwnControlPlane;
let kube: ResourceClient;
const tmp = makeTmpDir('ztwim-registrar-restart-');
const replicas: Replica[] = [];

const pod = (name: string) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: NS, labels: { app: 'restart' } },
  spec: { nodeName: 'fake-node', containers: [{ name: 'c', image: 'busybox:local' }] },
});

async function ids(r: Replica): Promise<string[]> {
  return (await r.entries.listEntries()).map((e) => e.spiffeId).sort();
}
const want = (...pods: string[]): string[] => pods.map((p) => `spiffe://${TD}/ns/${NS}/pod/${p}`).sort();
const lines = (r: Replica, msg: string): number =>
  r.proc
    .out()
    .split('\n')
    .filter((l) => l.includes(`"msg":"${msg}"`)).length;

before(async () => {
  cp = await startOwnControlPlane('ztwim-registrar-restart');
  kube = await connectKube(cp.env.kubeconfig);
  for (const f of ['clusterspiffeids.yaml', 'clusterstaticentries.yaml', 'clusterfederatedtrustdomains.yaml']) {
    await applyManifest(cp.env, readFileSync(join(DEPLOY_DIR, 'registrar', 'crds', f), 'utf8'));
  }
  await kubectl(cp.env, ['wait', '--for=condition=Established', 'crd/clusterspiffeids.spire.spiffe.io', '--timeout=60s']);
  await kube.create(RESOURCES.nodes, { apiVersion: 'v1', kind: 'Node', metadata: { name: 'fake-node' } });
  await kube.create(RESOURCES.namespaces, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
  await waitFor(
    `ServiceAccount ${NS}/default`,
    async () =>
      kube.get(RESOURCES.serviceAccounts, 'default', NS).then(
        () => true,
        () => undefined,
      ),
    60_000,
  );
  await applyManifest(
    cp.env,
    JSON.stringify({
      apiVersion: 'spire.spiffe.io/v1alpha1',
      kind: 'ClusterSPIFFEID',
      metadata: { name: 'restart' },
      spec: {
        spiffeIDTemplate: 'spiffe://{{ .TrustDomain }}/ns/{{ .PodMeta.Namespace }}/pod/{{ .PodMeta.Name }}',
        podSelector: { matchLabels: { app: 'restart' } },
      },
    }),
  );
  for (const p of ['a', 'b']) await kube.create(RESOURCES.pods, pod(p), {});

  for (const name of ['solo', 'elected'] as const) {
    const server = await startZtwimAdminServer({ trustDomain: TD });
    const election =
      name === 'elected'
        ? `leaderElection:\n  leaderElect: true\n  resourceName: restart-registrar\n  resourceNamespace: ${NS}\n  leaseDuration: 4s\n  renewDeadline: 3s\n  retryPeriod: 1s\n`
        : '';
    const config = tmp.write(
      `${name}.yaml`,
      `apiVersion: spire.spiffe.io/v1alpha1
kind: ControllerManagerConfig
clusterName: test
trustDomain: ${TD}
clusterDomain: cluster.local
spireServerSocketPath: ${server.socketPath}
gcInterval: 1s
logEncoding: json
${election}`,
    );
    const proc = startZtwim(tmp, ['registrar', '-config', config, '-kubeconfig', cp.env.kubeconfig, '-log-level', 'debug']);
    replicas.push({ name, server, entries: dialEntryClient(server.socketPath), proc });
  }
});

after(async () => {
  for (const r of replicas) {
    const stopped = await stopProc(r.proc);
    if (stopped.code !== 0) console.error(`registrar ${r.name} exited ${stopped.code}:\n${r.proc.out().slice(-5000)}`);
    r.entries.close();
    await r.server.stop();
  }
  await cp?.down();
  tmp.cleanup();
});

describe('ztwim registrar across an API server restart (own control plane)', () => {
  it('both registrars make the entries of pods a and b', async () => {
    for (const r of replicas) {
      await waitFor(
        `${r.name}: entries a, b (${r.proc.out().slice(-2000)})`,
        async () => (JSON.stringify(await ids(r)) === JSON.stringify(want('a', 'b')) ? true : undefined),
        90_000,
      );
    }
    assert.equal(lines(replicas[1] as Replica, 'Became leader'), 1);
  });

  it('API server down: entries stay served and none is deleted; the leader steps down, the other keeps passing', async () => {
    const [solo, elected] = replicas as [Replica, Replica];
    await cp.stopApiserver();
    const passesAtStop = lines(solo, 'Reconciled entries');
    await waitFor(`elected steps down (${elected.proc.out().slice(-2000)})`, () => (lines(elected, 'Stopped leading') >= 1 ? true : undefined), 30_000);
    const electedPasses = lines(elected, 'Reconciled entries');
    // Several idle passes of `solo` on its caches, every list/watch failing meanwhile.
    await waitFor('solo keeps passing', () => (lines(solo, 'Reconciled entries') >= passesAtStop + 5 ? true : undefined), 30_000);
    for (const r of replicas) assert.deepEqual(await ids(r), want('a', 'b'), `${r.name}: entries served unchanged during the outage`);
    assert.equal(lines(elected, 'Reconciled entries'), electedPasses, 'no pass while not leading');
    assert.doesNotMatch(solo.proc.out() + elected.proc.out(), /"msg":"Informer stopped"/);
  });

  it('API server back: the leader leads again, and a pod deleted and one created converge on both servers', async () => {
    const [, elected] = replicas as [Replica, Replica];
    await cp.upAgain();
    await kube.delete(RESOURCES.pods, 'a', { namespace: NS, gracePeriodSeconds: 0 });
    await kube.create(RESOURCES.pods, pod('c'), {});
    for (const r of replicas) {
      await waitFor(
        `${r.name}: entries b, c (${r.proc.out().slice(-2000)})`,
        async () => (JSON.stringify(await ids(r)) === JSON.stringify(want('b', 'c')) ? true : undefined),
        120_000,
      );
    }
    assert.equal(lines(elected, 'Became leader'), 2, 'leading again after the outage');
    // And it keeps following pods.
    await kube.delete(RESOURCES.pods, 'b', { namespace: NS, gracePeriodSeconds: 0 });
    for (const r of replicas) {
      await waitFor(`${r.name}: entry c only`, async () => (JSON.stringify(await ids(r)) === JSON.stringify(want('c')) ? true : undefined), 60_000);
    }
  });
});
