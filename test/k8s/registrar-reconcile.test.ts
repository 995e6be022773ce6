// The workload registrar on the real test cluster (kube-apiserver, controller manager, scheduler,
// the node `localhost`), against ztwim server and against a real spire-server v1.13.0: one test
// body, two servers. The registrar runs in-process (startRegistrar, as `ztwim registrar` runs it)
// with its informers on the apiserver and its Entry API client on the server's admin socket.
//
// Steps (namespace registrar-core-<random>; the ClusterSPIFFEIDs carry a className of their own
// and select only that namespace, so other users' pods and CRs on the shared cluster are
// never touched):
//   1. Deployment `web` (2 busybox pods) + Service `websvc`; ClusterSPIFFEID `web` (podSelector
//      app=web, autoPopulateDNSNames) and a fallback one; a bare pod `lonely` (app=other):
//      web pods get the templated ID and websvc's DNS names, lonely only the fallback.
//   2. label changes move `lonely` into `web` (fallback entry gone) and out again;
//   3. a younger duplicate ClusterSPIFFEID is masked: status.stats.entriesMasked says so;
//   4. the registrar killed mid-apply (its Entry API dies after the first batch) and started
//      again converges: no duplicate and no lost entry;
//   5. scaling `web` to 0 deletes its pods' entries; deleting the CRs deletes the rest.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cryptoRandom, silentLogger, systemClock } from '@ztwim/core';
import { createResourceClient, kubeClientSource, type ResourceClient } from '@ztwim/k8s';
import { dialEntryClient, parseManagerConfig, startRegistrar, type EntryClient, type RegEntry, type Registrar } from '@ztwim/registrar';
import { REPO_ROOT } from '../interop/lib/peers.ts';
import { startSpireAdminServer, type AdminServer } from '../interop/lib/spire-admin.ts';
import { startZtwimAdminServer } from '../interop/lib/ztwim-server.ts';
import { applyManifest, createNamespace, ensureCluster, kubectl, waitFor, type ClusterEnv } from './lib/cluster.ts';
import { stepSequence } from './lib/steps.ts';

const TD = 'example.org';
const CRD_DIR = join(REPO_ROOT, 'deploy', 'k8s', 'registrar', 'crds');
const IMAGE = 'docker.io/library/busybox:local';

function podSpec(): Record<string, unknown> {
  return {
    hostNetwork: true,
    terminationGracePeriodSeconds: 0,
    containers: [{ name: 'c', image: IMAGE, imagePullPolicy: 'Never', command: ['sleep', '3600'] }],
  };
}

/** Wraps an EntryClient so that create batches after the first `ok` throw (the process "dies"). */
function dyingEntryClient(inner: EntryClient, ok: number, onDie: () => void): EntryClient {
  let calls = 0;
  return {
    listEntries: (s) => inner.listEntries(s),
    listEntriesOfPod: (uid, s) => inner.listEntriesOfPod(uid, s),
    createEntries: async (es, s) => {
      const out = [];
      for (let i = 0; i < es.length; i += 2) {
        if (calls++ >= ok) {
          onDie();
          throw new Error('registrar killed mid-apply');
        }
        out.push(...(await inner.createEntries(es.slice(i, i + 2), s)));
      }
      return out;
    },
    updateEntries: (es, s) => inner.updateEntries(es, s),
    deleteEntries: (ids, s) => inner.deleteEntries(ids, s),
  };
}

for (const kind of ['ztwim', 'spire'] as const)
  describe(`registrar on the test cluster with ${kind === 'spire' ? 'spire-server v1.13.0' : 'ztwim server'}`, () => {
    let env: ClusterEnv;
    let ns: string;
    let className: string;
    let srv: AdminServer;
    let entries: ReturnType<typeof dialEntryClient>;
    let kube: ResourceClient;
    let registrar: Registrar | undefined;
    const crNames: string[] = [];

    const step = stepSequence();

    const config = (): string => `
apiVersion: spire.spiffe.io/v1alpha1
kind: ControllerManagerConfig
clusterName: test
trustDomain: ${TD}
clusterDomain: cluster.local
className: ${className}
gcInterval: 2s
entryIDPrefix: ${className}
spireServerSocketPath: ${srv.socketPath}
`;

    const start = (client: EntryClient = entries): Registrar => {
      registrar = startRegistrar({
        config: parseManagerConfig(config()),
        entries: client,
        kube,
        clock: systemClock,
        random: cryptoRandom,
        log: silentLogger(),
      });
      return registrar;
    };

    const ours = async (): Promise<RegEntry[]> => (await entries.listEntries()).filter((e) => e.id.startsWith(`${className}.`));
    const byPath = async (infix: string): Promise<RegEntry[]> => (await ours()).filter((e) => e.spiffeId.includes(infix));
    const podUid = async (name: string): Promise<string> => (await kubectl(env, ['get', 'pod', '-n', ns, name, '-o', 'jsonpath={.metadata.uid}'])).trim();
    const webPods = async (): Promise<Array<{ name: string; uid: string }>> => {
      const list = JSON.parse(await kubectl(env, ['get', 'pods', '-n', ns, '-l', 'app=web,tier=deploy', '-o', 'json'])) as {
        items: Array<{ metadata: { name: string; uid: string; deletionTimestamp?: string } }>;
      };
      return list.items.filter((p) => p.metadata.deletionTimestamp === undefined).map((p) => ({ name: p.metadata.name, uid: p.metadata.uid }));
    };
    const clusterSpiffeId = (name: string, spec: Record<string, unknown>): string => {
      crNames.push(name);
      return JSON.stringify({
        apiVersion: 'spire.spiffe.io/v1alpha1',
        kind: 'ClusterSPIFFEID',
        metadata: { name },
        spec: { className, namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } }, ...spec },
      });
    };
    const webSpec = (): Record<string, unknown> => ({
      spiffeIDTemplate: 'spiffe://{{ .TrustDomain }}/ns/{{ .PodMeta.Namespace }}/web/{{ index .PodMeta.Labels "app" }}/{{ .PodMeta.Name }}',
      podSelector: { matchLabels: { app: 'web' } },
      dnsNameTemplates: ['{{ .PodMeta.Name }}.pods.example'],
      autoPopulateDNSNames: true,
    });

    before(async () => {
      env = await ensureCluster();
      for (const f of readdirSync(CRD_DIR).filter((n) => n.endsWith('.yaml'))) await applyManifest(env, readFileSync(join(CRD_DIR, f), 'utf8'));
      await kubectl(env, [
        'wait',
        '--for=condition=Established',
        'crd/clusterspiffeids.spire.spiffe.io',
        'crd/clusterstaticentries.spire.spiffe.io',
        '--timeout=60s',
      ]);
      ns = await createNamespace(env, 'registrar-core');
      className = `registrar-core-${randomBytes(3).toString('hex')}`;
      srv = kind === 'spire' ? await startSpireAdminServer({ trustDomain: TD }) : await startZtwimAdminServer({ trustDomain: TD });
      entries = dialEntryClient(srv.socketPath);
      kube = await createResourceClient(kubeClientSource(env.kubeconfig));
    });

    after(async () => {
      await registrar?.close();
      if (env !== undefined && crNames.length > 0)
        await kubectl(env, ['delete', 'clusterspiffeid', ...crNames, '--ignore-not-found', '--wait=false']).catch(() => '');
      entries?.close();
      await srv?.stop();
    });

    step('pods of a Deployment get the templated IDs and their Service DNS names; the fallback only where nothing else matches', async () => {
      await applyManifest(
        env,
        JSON.stringify({
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          metadata: { name: 'web', namespace: ns },
          spec: {
            replicas: 2,
            selector: { matchLabels: { app: 'web', tier: 'deploy' } },
            template: { metadata: { labels: { app: 'web', tier: 'deploy' } }, spec: podSpec() },
          },
        }),
      );
      await applyManifest(
        env,
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'Service',
          metadata: { name: 'websvc', namespace: ns },
          spec: { selector: { app: 'web', tier: 'deploy' }, ports: [{ port: 80 }] },
        }),
      );
      await applyManifest(
        env,
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name: 'lonely', namespace: ns, labels: { app: 'other' } },
          spec: { ...podSpec(), nodeName: env.nodeName },
        }),
      );
      await applyManifest(env, clusterSpiffeId(`${className}-web`, webSpec()));
      await applyManifest(
        env,
        clusterSpiffeId(`${className}-fallback`, {
          spiffeIDTemplate: 'spiffe://{{ .TrustDomain }}/ns/{{ .PodMeta.Namespace }}/fallback/{{ .PodMeta.Name }}',
          fallback: true,
        }),
      );
      const r = start();
      await r.ready;
      const nodeUid = (await kubectl(env, ['get', 'node', env.nodeName, '-o', 'jsonpath={.metadata.uid}'])).trim();
      const pods = await waitFor('2 web pods', async () => {
        const p = await webPods();
        return p.length === 2 ? p : undefined;
      });
      const web = await waitFor(
        'web entries with the Service DNS names',
        async () => {
          const es = await byPath('/web/web/');
          return es.length === 2 && es.every((e) => e.dnsNames.includes(`websvc.${ns}.svc.cluster.local`)) ? es : undefined;
        },
        90_000,
      );
      for (const p of pods) {
        const e = web.find((x) => x.selectors.some((s) => s.value === `pod-uid:${p.uid}`));
        assert.ok(e, `entry for ${p.name}`);
        assert.equal(e.spiffeId, `spiffe://${TD}/ns/${ns}/web/web/${p.name}`);
        assert.equal(e.parentId, `spiffe://${TD}/spire/agent/k8s_psat/test/${nodeUid}`);
        assert.deepEqual(
          [...e.dnsNames].sort(),
          [`${p.name}.pods.example`, 'websvc', `websvc.${ns}`, `websvc.${ns}.svc`, `websvc.${ns}.svc.cluster.local`].sort(),
        );
      }
      const fb = await waitFor('fallback entry of lonely', async () => {
        const es = await byPath('/fallback/');
        return es.length === 1 ? es : undefined;
      });
      assert.equal(fb[0]?.spiffeId, `spiffe://${TD}/ns/${ns}/fallback/lonely`);
      assert.equal((await byPath('/fallback/web-')).length, 0, 'no fallback for pods the web ClusterSPIFFEID matched');
    });

    step('label changes move a pod in and out', async () => {
      const uid = await podUid('lonely');
      await kubectl(env, ['label', 'pod', '-n', ns, 'lonely', 'app=web', '--overwrite']);
      await waitFor('lonely moved to web', async () => {
        const es = await ours();
        const mine = es.filter((e) => e.selectors.some((s) => s.value === `pod-uid:${uid}`));
        return mine.length === 1 && mine[0]?.spiffeId === `spiffe://${TD}/ns/${ns}/web/web/lonely` ? true : undefined;
      });
      await kubectl(env, ['label', 'pod', '-n', ns, 'lonely', 'app=gone', '--overwrite']);
      await waitFor('lonely back on the fallback', async () => {
        const mine = (await ours()).filter((e) => e.selectors.some((s) => s.value === `pod-uid:${uid}`));
        return mine.length === 1 && mine[0]?.spiffeId === `spiffe://${TD}/ns/${ns}/fallback/lonely` ? true : undefined;
      });
    });

    step('two ClusterSPIFFEIDs declaring the same entries: the younger is masked and its status says so', async () => {
      await applyManifest(env, clusterSpiffeId(`${className}-dup`, { ...webSpec(), hint: 'dup' }));
      const stats = await waitFor('status of the duplicate', async () => {
        const o = JSON.parse(await kubectl(env, ['get', 'clusterspiffeid', `${className}-dup`, '-o', 'json'])) as {
          status?: { stats?: Record<string, number> };
        };
        return o.status?.stats?.entriesMasked === 2 ? o.status.stats : undefined;
      });
      assert.equal(stats['entriesToSet'], 0);
      assert.equal(stats['podsSelected'], 2);
      const webStats = (
        JSON.parse(await kubectl(env, ['get', 'clusterspiffeid', `${className}-web`, '-o', 'json'])) as { status?: { stats?: Record<string, number> } }
      ).status?.stats;
      assert.equal(webStats?.['entriesToSet'], 2);
      assert.equal(webStats?.['entriesMasked'], 0);
      assert.ok(
        (await byPath('/web/web/')).every((e) => e.hint === ''),
        'the older ClusterSPIFFEID wins',
      );
      await kubectl(env, ['delete', 'clusterspiffeid', `${className}-dup`]);
    });

    step('a registrar killed mid-apply converges after restart: no duplicate, no lost entry', async () => {
      await registrar?.close();
      registrar = undefined;
      await kubectl(env, ['scale', 'deployment', '-n', ns, 'web', '--replicas=6']);
      await waitFor('6 web pods scheduled', async () => ((await webPods()).length === 6 ? true : undefined));
      let died = false;
      const dying = start(dyingEntryClient(entries, 1, () => (died = true)));
      await dying.ready;
      await waitFor('the registrar to die mid-apply', () => (died ? true : undefined));
      await dying.close();
      registrar = undefined;
      const partial = await byPath('/web/web/');
      assert.ok(partial.length < 6, `died before all were created (${partial.length})`);
      const r = start();
      await r.ready;
      const pods = await webPods();
      const es = await waitFor(
        '6 web entries',
        async () => {
          const x = await byPath('/web/web/');
          return x.length === 6 ? x : undefined;
        },
        90_000,
      );
      assert.equal(new Set(es.map((e) => e.spiffeId)).size, 6, 'no duplicates');
      assert.deepEqual(es.map((e) => e.spiffeId).sort(), pods.map((p) => `spiffe://${TD}/ns/${ns}/web/web/${p.name}`).sort());
      assert.ok(
        partial.every((p) => es.some((e) => e.id === p.id)),
        'entries created before the kill are kept',
      );
    });

    step('deleted pods lose their entries; deleted ClusterSPIFFEIDs take theirs along', async () => {
      await kubectl(env, ['scale', 'deployment', '-n', ns, 'web', '--replicas=0']);
      await waitFor('web entries gone', async () => ((await byPath('/web/web/')).length === 0 ? true : undefined), 90_000);
      assert.equal((await byPath('/fallback/')).length, 1);
      await kubectl(env, ['delete', 'clusterspiffeid', ...crNames, '--ignore-not-found']);
      await waitFor('all entries gone', async () => ((await ours()).length === 0 ? true : undefined));
    });
  });

describe('registrar leader election on the test cluster: two replicas never both write', () => {
  let env: ClusterEnv;
  let ns: string;
  let srv: AdminServer;
  let entries: ReturnType<typeof dialEntryClient>;
  let kube: ResourceClient;
  const replicas: Array<{ r: Registrar; passes: number }> = [];
  const className = `registrar-core-le-${randomBytes(3).toString('hex')}`;

  before(async () => {
    env = await ensureCluster();
    for (const f of readdirSync(CRD_DIR).filter((n) => n.endsWith('.yaml'))) await applyManifest(env, readFileSync(join(CRD_DIR, f), 'utf8'));
    ns = await createNamespace(env, 'registrar-core-le');
    srv = await startZtwimAdminServer({ trustDomain: TD });
    entries = dialEntryClient(srv.socketPath);
    kube = await createResourceClient(kubeClientSource(env.kubeconfig));
  });
  after(async () => {
    for (const x of replicas) await x.r.close();
    await kubectl(env, ['delete', 'clusterspiffeid', className, '--ignore-not-found', '--wait=false']).catch(() => '');
    entries?.close();
    await srv?.stop();
  });

  it('one leader writes; the other takes over when it stops', async () => {
    const config = parseManagerConfig(`
clusterName: test
trustDomain: ${TD}
className: ${className}
gcInterval: 300ms
entryIDPrefix: ${className}
spireServerSocketPath: ${srv.socketPath}
leaderElection:
  leaderElect: true
  resourceName: ${className}
  resourceNamespace: ${ns}
  leaseDuration: 4s
  renewDeadline: 3s
  retryPeriod: 500ms
`);
    for (let i = 0; i < 2; i++) {
      const x = { r: undefined as unknown as Registrar, passes: 0 };
      x.r = startRegistrar({
        config,
        entries,
        kube,
        clock: systemClock,
        random: cryptoRandom,
        log: silentLogger(),
        identity: `replica-${i}`,
        onPass: () => {
          x.passes++;
        },
      });
      replicas.push(x);
    }
    await applyManifest(
      env,
      JSON.stringify({
        apiVersion: 'spire.spiffe.io/v1alpha1',
        kind: 'ClusterSPIFFEID',
        metadata: { name: className },
        spec: {
          className,
          spiffeIDTemplate: 'spiffe://{{ .TrustDomain }}/le/{{ .PodMeta.Name }}',
          namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } },
        },
      }),
    );
    await applyManifest(
      env,
      JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: ns }, spec: { ...podSpec(), nodeName: env.nodeName } }),
    );
    const leader = await waitFor('a leader', () => replicas.find((x) => x.r.isLeader()));
    const follower = replicas.find((x) => x !== leader) as (typeof replicas)[number];
    await waitFor('the entry', async () => ((await entries.listEntries()).some((e) => e.spiffeId === `spiffe://${TD}/le/p`) ? true : undefined));
    // several idle ticks: only the leader runs passes
    const before = follower.passes;
    await waitFor('leader passes', () => (leader.passes >= 5 ? true : undefined));
    assert.equal(follower.r.isLeader(), false);
    assert.equal(follower.passes, before, 'the follower ran no pass');
    assert.equal(before, 0);
    const lease = JSON.parse(await kubectl(env, ['get', 'lease', '-n', ns, className, '-o', 'json'])) as { spec: { holderIdentity: string } };
    assert.match(lease.spec.holderIdentity, /^replica-[01]$/);
    // the leader stops (releasing the Lease): the follower takes over and keeps entries in step
    await leader.r.close();
    replicas.splice(replicas.indexOf(leader), 1);
    await waitFor('the follower leads', () => (follower.r.isLeader() ? true : undefined), 15_000);
    await kubectl(env, ['delete', 'pod', '-n', ns, 'p', '--grace-period=0', '--force']);
    await waitFor('entry gone under the new leader', async () =>
      (await entries.listEntries()).some((e) => e.spiffeId === `spiffe://${TD}/le/p`) ? undefined : true,
    );
    assert.ok(follower.passes > 0);
  });
});
