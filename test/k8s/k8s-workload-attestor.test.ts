// The k8s workload attestor on the real test node (scripts/k8s/cluster.sh): a busybox pod of a
// Deployment (so it has a ReplicaSet owner), with labels, an init container and hostNetwork; the
// host PID of its container process; our attestor against the kubelet's secure port with a
// service account token, the kubelet's certificate verified against the cluster CA and the node
// name; the same container attested by a real spire-agent v1.13.0 with its k8s attestor, whose
// selectors must equal ours; and `ztwim agent` with `WorkloadAttestor "k8s"` serving the pod the
// entry its k8s selectors match.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { K8sWorkloadAttestor } from '@ztwim/agent/k8s-workload-attestor';
import { createLogger } from '@ztwim/core';
import { opensslCert } from '@ztwim/testkit';

import { freePort, startSpireAgent, type SpireAgent } from '../interop/lib/spire-agent.ts';
import { startSpireServer, type SpireServer } from '../interop/lib/spire-server.ts';
import { makeTmpDir, type TmpDir } from '../interop/lib/tmp.ts';
import { startStack, type Stack } from '../interop/lib/ztwim-stack.ts';
import { applyManifest, createNamespace, ensureCluster, kubectl, waitFor, waitPodRunning, type ClusterEnv } from './lib/cluster.ts';
import { BUSYBOX_IMAGE, hostPidsOf, kubeletReaderToken, runtimeContainerId, workloadPodSpec } from './lib/workload-pod.ts';

/** The fields of the pod (from the apiserver) that the expected selectors are made from. */
interface PodJson {
  metadata: {
    name: string;
    namespace: string;
    uid: string;
    labels: Record<string, string>;
    ownerReferences: Array<{ kind: string; name: string; uid: string }>;
  };
  spec: { nodeName: string; serviceAccountName: string };
  status: {
    containerStatuses: Array<{ name: string; image: string; imageID: string; containerID: string }>;
    initContainerStatuses: Array<{ name: string; image: string; imageID: string; containerID: string }>;
  };
}

/** The selectors SPIRE's k8s attestor documents for a container of a pod, built from the pod object. */
function expectedSelectors(pod: PodJson, container: string): string[] {
  const cs = pod.status.containerStatuses;
  const init = pod.status.initContainerStatuses;
  const images = (list: ReadonlyArray<{ image: string; imageID: string }>): string[] => [...new Set(list.flatMap((c) => [c.imageID, c.image]))];
  const mine = cs.find((c) => c.name === container);
  assert.ok(mine !== undefined);
  return [
    `k8s:sa:${pod.spec.serviceAccountName}`,
    `k8s:ns:${pod.metadata.namespace}`,
    `k8s:node-name:${pod.spec.nodeName}`,
    `k8s:pod-uid:${pod.metadata.uid}`,
    `k8s:pod-name:${pod.metadata.name}`,
    `k8s:pod-image-count:${cs.length}`,
    `k8s:pod-init-image-count:${init.length}`,
    ...images(cs).map((i) => `k8s:pod-image:${i}`),
    ...images(init).map((i) => `k8s:pod-init-image:${i}`),
    ...Object.entries(pod.metadata.labels).map(([k, v]) => `k8s:pod-label:${k}:${v}`),
    ...pod.metadata.ownerReferences.flatMap((o) => [`k8s:pod-owner:${o.kind}:${o.name}`, `k8s:pod-owner-uid:${o.kind}:${o.uid}`]),
    `k8s:container-name:${mine.name}`,
    ...images([mine]).map((i) => `k8s:container-image:${i}`),
  ].sort();
}

const show = (sels: ReadonlyArray<{ type: string; value: string }>): string[] => sels.map((s) => `${s.type}:${s.value}`).sort();

/** A self-signed certificate (not the cluster CA), made with openssl. */
function selfSignedPem(tmp: TmpDir): string {
  return opensslCert({ dir: tmp.path, file: 'other', subject: '/CN=other' }).certPem;
}

describe('k8s workload attestor on the real node', { timeout: 900_000 }, () => {
  let env: ClusterEnv;
  let ns: string;
  let tmp: TmpDir;
  let stack: Stack;
  let tokenPath: string;
  let kubeletPort: number;
  let pod: PodJson;
  let appPid: number;
  let ours: string[] = [];
  let server: SpireServer | undefined;
  let agent: SpireAgent | undefined;
  let binding: string | undefined;

  /**
   * `spire-agent api fetch x509` run inside the pod's app container against a socket there, until
   * its output holds `want`; the last failure is in the timeout's message.
   */
  const fetchInPod = async (socket: string, want: string, logs: () => string): Promise<string> => {
    let last = '';
    try {
      return await waitFor(
        `an X509-SVID with ${want} in the pod from ${socket}`,
        async () => {
          try {
            const out = await kubectl(
              env,
              ['exec', '-n', ns, pod.metadata.name, '-c', 'app', '--', '/spire/spire-agent', 'api', 'fetch', 'x509', '-timeout', '10s', '-socketPath', socket],
              { timeoutMs: 60_000 },
            );
            last = out;
            return out.includes(want) ? out : undefined;
          } catch (e) {
            last = (e as Error).message;
            return undefined;
          }
        },
        90_000,
      );
    } catch (e) {
      throw new Error(`${(e as Error).message}\nlast answer: ${last}\nagent log (tail):\n${logs().slice(-3000)}`);
    }
  };

  before(async () => {
    env = await ensureCluster();
    tmp = makeTmpDir('ztwim-k8s-workload-');
    stack = await startStack();
    ns = await createNamespace(env, 'ztwim-k8s-workload');
    kubeletPort = Number(new URL(env.kubeletUrl).port);
    const reader = await kubeletReaderToken(env, ns);
    binding = reader.binding;
    tokenPath = tmp.write('token', reader.token);
    // The agents' socket dirs exist before the pod mounts them.
    mkdirSync(join(tmp.path, 'spire-agent'), { recursive: true });
    mkdirSync(join(stack.tmp.path, 'k8s-agent'), { recursive: true });
    await applyManifest(
      env,
      `
apiVersion: v1
kind: ServiceAccount
metadata: { name: workload, namespace: ${ns} }
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: demo, namespace: ${ns} }
spec:
  replicas: 1
  selector: { matchLabels: { app: demo } }
  template:
    metadata: { labels: { app: demo, tier: attest-test } }
    spec:
${workloadPodSpec({ indent: 6, serviceAccount: 'workload', initContainer: true, sockets: { '/run/spire-agent': join(tmp.path, 'spire-agent'), '/run/ztwim-agent': join(stack.tmp.path, 'k8s-agent') } })}
`,
    );
    const name = await waitFor(
      'a pod of deployment demo',
      async () => {
        const out = (await kubectl(env, ['get', 'pods', '-n', ns, '-l', 'app=demo', '-o', 'jsonpath={.items[*].metadata.name}'])).trim();
        return out === '' ? undefined : out.split(' ')[0];
      },
      90_000,
    );
    await waitPodRunning(env, ns, name, 180_000);
    pod = JSON.parse(await kubectl(env, ['get', 'pod', '-n', ns, name, '-o', 'json'])) as PodJson;
    const cid = runtimeContainerId(pod.status.containerStatuses.find((c) => c.name === 'app')?.containerID);
    appPid = await waitFor('the host PID of the app container', () => {
      const found = hostPidsOf(cid, '/bin/sleep');
      return found.length === 1 ? found[0] : undefined;
    });
  });

  after(async () => {
    await agent?.stop();
    await server?.stop();
    await stack?.close();
    if (binding !== undefined) await kubectl(env, ['delete', 'clusterrolebinding', binding, '--ignore-not-found']).catch(() => undefined);
    tmp?.cleanup();
  });

  it("the container process is in the node's cgroup v1 cgroupfs layout", () => {
    const cgroup = readFileSync(`/proc/${appPid}/cgroup`, 'utf8');
    const cid = runtimeContainerId(pod.status.containerStatuses[0]?.containerID);
    assert.match(cgroup, new RegExp(`:/kubepods/besteffort/pod${pod.metadata.uid}/${cid}\n`));
  });

  it('our attestor gives every k8s selector of the container (kubelet CA and node name verified)', async () => {
    const attestor = new K8sWorkloadAttestor({ securePort: kubeletPort, kubeletCaPath: env.ca, nodeName: env.nodeName, tokenPath });
    try {
      ours = show(await attestor.attest(appPid));
    } finally {
      attestor.close();
    }
    assert.deepEqual(ours, expectedSelectors(pod, 'app'));
    // The pod is what the test made it: a ReplicaSet's, with its labels, on node localhost.
    assert.ok(ours.includes(`k8s:ns:${ns}`));
    assert.ok(ours.includes('k8s:sa:workload'));
    assert.ok(ours.includes('k8s:pod-label:tier:attest-test'));
    assert.ok(ours.some((s) => /^k8s:pod-owner:ReplicaSet:demo-[a-z0-9]+$/.test(s)));
    assert.ok(ours.includes(`k8s:node-name:${env.nodeName}`));
    assert.ok(ours.includes(`k8s:container-image:${BUSYBOX_IMAGE}`));
    assert.ok(ours.includes('k8s:pod-init-image-count:1'));
  });

  it('the read-only port and skip_kubelet_verification give the same selectors', async () => {
    for (const config of [{ readOnlyPort: Number(new URL(env.kubeletRoUrl).port) }, { securePort: kubeletPort, skipKubeletVerification: true, tokenPath }]) {
      const attestor = new K8sWorkloadAttestor(config);
      try {
        assert.deepEqual(show(await attestor.attest(appPid)), ours);
      } finally {
        attestor.close();
      }
    }
  });

  it('a kubelet certificate checked against another CA is refused', async () => {
    const attestor = new K8sWorkloadAttestor({
      securePort: kubeletPort,
      kubeletCaPath: tmp.write('not-the-ca.pem', selfSignedPem(tmp)),
      nodeName: env.nodeName,
      tokenPath,
    });
    try {
      await assert.rejects(attestor.attest(appPid), /k8s: unable to perform request/);
    } finally {
      attestor.close();
    }
  });

  it('a token the kubelet does not accept is refused with its status', async () => {
    const attestor = new K8sWorkloadAttestor({
      securePort: kubeletPort,
      kubeletCaPath: env.ca,
      nodeName: env.nodeName,
      tokenPath: tmp.write('bad-token', 'not-a-token'),
    });
    try {
      await assert.rejects(attestor.attest(appPid), /unexpected status code on pods response: 401/);
    } finally {
      attestor.close();
    }
  });

  it('a process outside any pod gets no k8s selectors and no error', async () => {
    const attestor = new K8sWorkloadAttestor({ securePort: kubeletPort, kubeletCaPath: env.ca, nodeName: env.nodeName, tokenPath });
    try {
      assert.deepEqual(await attestor.attest(process.pid), []);
    } finally {
      attestor.close();
    }
  });

  it('a real spire-agent v1.13.0 with its k8s attestor gives the container the same selectors', async () => {
    assert.ok(ours.length > 0, 'our selectors come from the test above');
    const port = await freePort();
    server = await startSpireServer(tmp, { bindPort: port });
    const spiffeId = 'spiffe://example.org/k8s/demo-app';
    const srv = server;
    agent = await startSpireAgent(tmp, srv, {
      serverPort: port,
      logLevel: 'DEBUG',
      logFormat: 'json',
      extraPlugins: `WorkloadAttestor "k8s" {
    plugin_data {
      kubelet_secure_port = ${kubeletPort}
      kubelet_ca_path = "${env.ca}"
      node_name = "${env.nodeName}"
      token_path = "${tokenPath}"
    }
  }`,
      // An entry whose selectors are all of ours: SPIRE serves it only if its selectors include them.
      beforeStart: (agentId) => srv.cli(['entry', 'create', '-parentID', agentId, '-spiffeID', spiffeId, ...ours.flatMap((s) => ['-selector', s])]),
    });
    const socket = `/run/spire-agent/${agent.socketPath.split('/').pop() ?? ''}`;
    const a = agent;
    const fetched = await fetchInPod(socket, spiffeId, () => a.logs());
    assert.match(fetched, new RegExp(`SPIFFE ID:\\s+${spiffeId}`));

    // What spire-agent attested the exec'd process (in the same container) to: its debug log.
    const theirs = await waitFor('spire-agent\'s "PID attested to have selectors" for the pod', () => {
      for (const line of a.logs().split('\n')) {
        if (!line.includes('PID attested to have selectors')) continue;
        const entry = JSON.parse(line) as { selectors?: Array<{ type: string; value: string }> };
        const k8s = (entry.selectors ?? []).filter((s) => s.type === 'k8s');
        if (k8s.some((s) => s.value === `pod-uid:${pod.metadata.uid}`)) return show(k8s);
      }
      return undefined;
    });
    assert.deepEqual(theirs, ours);
  });

  it('ztwim agent with WorkloadAttestor "k8s" serves the pod the entry its k8s selectors match', async () => {
    let logs = '';
    const logger = createLogger({ level: 'debug', name: 'agent', destination: { write: (line: string) => (logs += line) } });
    const { agent: ztwimAgent } = await stack.startAgent({
      name: 'k8s-agent',
      deps: { logger },
      pluginsExtra: `  WorkloadAttestor "k8s" {
    plugin_data {
      kubelet_secure_port = ${kubeletPort}
      kubelet_ca_path = "${env.ca}"
      node_name = "${env.nodeName}"
      token_path = "${tokenPath}"
    }
  }
`,
    });
    await stack.createEntries([
      {
        parentId: ztwimAgent.agentId,
        path: '/ns/demo/sa/workload',
        selectors: [`k8s:ns:${ns}`, 'k8s:sa:workload', 'k8s:pod-label:app:demo', 'k8s:container-name:app'],
      },
      { parentId: ztwimAgent.agentId, path: '/ns/demo/sa/other', selectors: [`k8s:ns:${ns}`, 'k8s:sa:other'] },
    ]);
    const fetched = await fetchInPod('/run/ztwim-agent/api.sock', '/ns/demo/sa/workload', () => logs);
    assert.match(fetched, /SPIFFE ID:\s+spiffe:\/\/example\.org\/ns\/demo\/sa\/workload/);
    assert.doesNotMatch(fetched, /\/ns\/demo\/sa\/other/);
  });
});
