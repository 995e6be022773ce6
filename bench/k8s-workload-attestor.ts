/**
 * k8s workload attestation latency with 1 and 110 pods on the node, ztwim beside spire-agent.
 *
 *   node --conditions=ztwim-source --import tsx bench/k8s-workload-attestor.ts [--pods 1,110]
 *        [--calls 200] [--spire-calls 100] [--no-spire] [--keep-namespace]
 *
 * On the project's test cluster (scripts/k8s/cluster.sh up; the shared one): a namespace of its
 * own with a `demo` pod (busybox, hostNetwork) and a `filler` Deployment scaled so the node runs
 * N pods in all (other users' pods count: what the kubelet's /pods returns is what costs). For
 * each N:
 *   - ztwim: K8sWorkloadAttestor.attest(pid of the demo container) in this process, against the
 *     kubelet's secure port (token, cluster CA, node name verified), `--calls` times sequentially,
 *     twice: "cold", the pod-list cache expired before every call (one /pods round trip + JSON
 *     parse per attestation: the cost a burst pays once per 250 ms), and "cached" (cache hit: the
 *     cgroup read and the selector building only);
 *   - SPIRE v1.13.0: two real spire-agents with the k8s attestor (same kubelet settings): one with
 *     poll_retry_interval = "2ms", so its pod-list cache (half that) has always expired when a call
 *     comes (fetched per call), one with "1h" (cached); each driven by `--spire-calls` sequential
 *     `spire-agent api fetch x509` runs inside the demo container (one kubectl exec of a shell
 *     loop); latency from its own metric `spire_agent_workload_api_workload_attestor` for attestor
 *     k8s (Prometheus summary: p50/p99 over its recent window, mean from _sum/_count).
 * Writes bench/results/k8s-workload-attestor.md; deletes its namespace (and ClusterRoleBinding).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

import { K8sWorkloadAttestor } from '@ztwim/agent/k8s-workload-attestor';
import { systemClock, type Clock } from '@ztwim/core';

import { applyManifest, ensureCluster, httpCall, kubectl, waitFor, waitPodRunning, type ClusterEnv } from '../test/k8s/lib/cluster.ts';
import { SPIRE_VERSION } from '../test/interop/lib/peers.ts';
import { freePort, startSpireAgent, type SpireAgent } from '../test/interop/lib/spire-agent.ts';
import { startSpireServer, type SpireServer } from '../test/interop/lib/spire-server.ts';
import { makeTmpDir } from '../test/interop/lib/tmp.ts';
import { BUSYBOX_IMAGE, hostPidsOf, kubeletReaderToken, runtimeContainerId, workloadPodSpec } from '../test/k8s/lib/workload-pod.ts';
import { resultsDir } from './lib/results-dir.ts';

const args = process.argv.slice(2);
const flagValue = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const COUNTS = (flagValue('pods') ?? '1,110').split(',').map(Number);
const CALLS = Number(flagValue('calls') ?? 200);
const SPIRE_CALLS = Number(flagValue('spire-calls') ?? 100);
const WITH_SPIRE = !args.includes('--no-spire');
const KEEP = args.includes('--keep-namespace');

interface Row {
  impl: string;
  podsOnNode: number;
  listKiB: number;
  calls: number;
  p50: number;
  p99: number;
  mean: number;
}

function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? NaN;
}

/** The system clock moved forward by `offset` ms: jumping it expires the pod-list cache. */
class SteppingClock implements Clock {
  offset = 0;
  now(): Date {
    return new Date(this.nowMs());
  }
  nowMs(): number {
    return Date.now() + this.offset;
  }
  setTimer(ms: number, fn: () => void): () => void {
    return systemClock.setTimer(ms, fn);
  }
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return systemClock.sleep(ms, signal);
  }
}

async function podsOnNode(env: ClusterEnv, token: string): Promise<{ count: number; bytes: number }> {
  const r = await httpCall(env, `${env.kubeletUrl}/pods`, { token });
  if (r.status !== 200) throw new Error(`kubelet /pods: ${r.status} ${r.body.slice(0, 200)}`);
  return { count: (JSON.parse(r.body) as { items: unknown[] }).items.length, bytes: Buffer.byteLength(r.body) };
}

async function scaleFiller(env: ClusterEnv, ns: string, token: string, target: number): Promise<number> {
  const now = await podsOnNode(env, token);
  const current = Number((await kubectl(env, ['get', 'deployment', 'filler', '-n', ns, '-o', 'jsonpath={.spec.replicas}'])).trim() || 0);
  const replicas = Math.max(0, current + target - now.count);
  if (replicas !== current) {
    await kubectl(env, ['scale', 'deployment', 'filler', '-n', ns, `--replicas=${replicas}`]);
  }
  // All ready, or no progress for a minute (the node holds at most 110 pods, other users' count:
  // then the rows say how many there were).
  let best = -1;
  let since = Date.now();
  await waitFor(
    `${replicas} filler pods ready`,
    async () => {
      const ready = Number((await kubectl(env, ['get', 'deployment', 'filler', '-n', ns, '-o', 'jsonpath={.status.readyReplicas}'])).trim() || 0);
      const pods = (await kubectl(env, ['get', 'pods', '-n', ns, '-l', 'app=filler', '-o', 'name'])).trim();
      const count = pods === '' ? 0 : pods.split('\n').length;
      if (ready === replicas && count === replicas) return true;
      if (ready > best) {
        best = ready;
        since = Date.now();
      }
      return count >= ready && Date.now() - since > 60_000 ? true : undefined;
    },
    20 * 60_000,
  );
  return (await podsOnNode(env, token)).count;
}

async function measureOurs(env: ClusterEnv, kubeletPort: number, tokenPath: string, pid: number, cold: boolean): Promise<number[]> {
  const clock = new SteppingClock();
  // Credentials are not re-read during the run (a reload would add a TLS handshake to one call).
  const attestor = new K8sWorkloadAttestor(
    { securePort: kubeletPort, kubeletCaPath: env.ca, nodeName: env.nodeName, tokenPath, reloadIntervalMs: 3_600_000 },
    { clock },
  );
  try {
    for (let i = 0; i < 5; i++) await attestor.attest(pid); // warm-up: TLS session, JIT
    const ms: number[] = [];
    for (let i = 0; i < CALLS; i++) {
      if (cold) clock.offset += 300; // past the 250 ms the list is kept
      const t0 = performance.now();
      const sels = await attestor.attest(pid);
      ms.push(performance.now() - t0);
      if (sels.length === 0) throw new Error('no selectors');
    }
    return ms.sort((a, b) => a - b);
  } finally {
    attestor.close();
  }
}

/** spire-agent's k8s attestor metric: quantiles, sum and count, from its Prometheus endpoint. */
async function spireMetric(port: number): Promise<{ q50: number; q99: number; sum: number; count: number }> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  const text = await res.text();
  const lines = text.split('\n').filter((l) => l.startsWith('spire_agent_workload_api_workload_attestor') && l.includes('attestor="k8s"'));
  const value = (pred: (l: string) => boolean): number => {
    const l = lines.find(pred);
    if (l === undefined)
      throw new Error(
        `spire-agent metric not found; workload attestor lines:\n${
          lines.join('\n') ||
          text
            .split('\n')
            .filter((x) => x.includes('attestor'))
            .join('\n')
        }`,
      );
    return Number(l.trim().split(/\s+/).pop());
  };
  return {
    q50: value((l) => l.includes('quantile="0.5"')),
    q99: value((l) => l.includes('quantile="0.99"')),
    sum: value((l) => /_sum\{/.test(l)),
    count: value((l) => /_count\{/.test(l)),
  };
}

async function main(): Promise<void> {
  const env = await ensureCluster();
  const tmp = makeTmpDir('ztwim-bench-k8sw-');
  const ns = `ztwim-bench-k8sw-${randomBytes(3).toString('hex')}`;
  const binding = `${ns}-kubelet-api`;
  let server: SpireServer | undefined;
  const agents: Array<{ mode: string; agent: SpireAgent; metricsPort: number; tmp: ReturnType<typeof makeTmpDir>; socket: string }> = [];
  const spireModes = [
    { mode: 'pod list fetched per call', pollRetryInterval: '2ms' },
    { mode: 'pod list cached', pollRetryInterval: '1h' },
  ];
  const agentTmps = spireModes.map(() => makeTmpDir('ztwim-bench-k8sw-agent-'));
  const rows: Row[] = [];
  try {
    await kubectl(env, ['create', 'namespace', ns]);
    await waitFor(`ServiceAccount ${ns}/default`, async () =>
      (await kubectl(env, ['get', 'sa', '-n', ns, '-o', 'name'])).includes('default') ? true : undefined,
    );
    const sockets: Record<string, string> = {};
    agentTmps.forEach((t, i) => {
      mkdirSync(join(t.path, 'spire-agent'), { recursive: true });
      sockets[`/run/spire-agent-${i}`] = join(t.path, 'spire-agent');
    });
    const { token } = await kubeletReaderToken(env, ns, 2);
    await applyManifest(
      env,
      `
apiVersion: v1
kind: Pod
metadata: { name: demo, namespace: ${ns}, labels: { app: demo } }
spec:
${workloadPodSpec({ indent: 2, sockets })}
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: filler, namespace: ${ns} }
spec:
  replicas: 0
  selector: { matchLabels: { app: filler } }
  template:
    metadata: { labels: { app: filler } }
    spec:
      hostNetwork: true
      terminationGracePeriodSeconds: 0
      containers: [ { name: sleep, image: ${BUSYBOX_IMAGE}, imagePullPolicy: Never, command: ['/bin/sleep', '3600'] } ]
`,
    );
    const tokenPath = tmp.write('token', token);
    const kubeletPort = Number(new URL(env.kubeletUrl).port);
    const pod = (await waitPodRunning(env, ns, 'demo', 180_000)) as { status: { containerStatuses?: Array<{ containerID?: string }> } };
    const pid = hostPidsOf(runtimeContainerId(pod.status.containerStatuses?.[0]?.containerID), '/bin/sleep')[0];
    if (pid === undefined) throw new Error('no /bin/sleep process in the demo container');

    if (WITH_SPIRE) {
      const port = await freePort();
      server = await startSpireServer(tmp, { bindPort: port });
      const srv = server;
      for (const [i, m] of spireModes.entries()) {
        const metricsPort = await freePort();
        const t = agentTmps[i] as ReturnType<typeof makeTmpDir>;
        const agent = await startSpireAgent(t, srv, {
          serverPort: port,
          extraPlugins: `WorkloadAttestor "k8s" { plugin_data {
    kubelet_secure_port = ${kubeletPort}
    kubelet_ca_path = "${env.ca}"
    node_name = "${env.nodeName}"
    token_path = "${tokenPath}"
    poll_retry_interval = "${m.pollRetryInterval}"
  } }`,
          extraConfig: `telemetry { Prometheus { host = "127.0.0.1"
  port = ${metricsPort} } }`,
          beforeStart: (agentId) =>
            srv.cli(['entry', 'create', '-parentID', agentId, '-spiffeID', `spiffe://example.org/bench-${i}`, '-selector', `k8s:ns:${ns}`]),
        });
        agents.push({ mode: m.mode, agent, metricsPort, tmp: t, socket: `/run/spire-agent-${i}/${agent.socketPath.split('/').pop() ?? ''}` });
      }
    }

    for (const n of COUNTS) {
      const podsNow = await scaleFiller(env, ns, token, n);
      const list = await podsOnNode(env, token);
      console.error(`k8s-workload-attestor: ${podsNow} pods on the node (asked ${n}), /pods ${(list.bytes / 1024).toFixed(0)} KiB`);
      for (const cold of [true, false]) {
        const ms = await measureOurs(env, kubeletPort, tokenPath, pid, cold);
        rows.push({
          impl: `ztwim (${cold ? 'pod list fetched per call' : 'pod list cached'})`,
          podsOnNode: podsNow,
          listKiB: list.bytes / 1024,
          calls: ms.length,
          p50: quantile(ms, 0.5),
          p99: quantile(ms, 0.99),
          mean: ms.reduce((a, b) => a + b, 0) / ms.length,
        });
      }
      for (const a of agents) {
        // Until spire-agent has the entry (its first sync), a fetch is denied.
        await waitFor(
          'spire-agent serving the demo pod',
          async () => {
            try {
              await kubectl(env, ['exec', '-n', ns, 'demo', '-c', 'app', '--', '/spire/spire-agent', 'api', 'fetch', 'x509', '-socketPath', a.socket]);
              return true;
            } catch {
              return undefined;
            }
          },
          120_000,
        );
        const before = await spireMetric(a.metricsPort);
        await kubectl(
          env,
          [
            'exec',
            '-n',
            ns,
            'demo',
            '-c',
            'app',
            '--',
            '/bin/sh',
            '-c',
            `i=0; while [ $i -lt ${SPIRE_CALLS} ]; do /spire/spire-agent api fetch x509 -socketPath ${a.socket} >/dev/null || exit 1; i=$((i+1)); done`,
          ],
          { timeoutMs: 20 * 60_000 },
        );
        const m = await spireMetric(a.metricsPort);
        rows.push({
          impl: `SPIRE ${SPIRE_VERSION} spire-agent (${a.mode})`,
          podsOnNode: podsNow,
          listKiB: list.bytes / 1024,
          calls: m.count - before.count,
          p50: m.q50,
          p99: m.q99,
          mean: (m.sum - before.sum) / (m.count - before.count),
        });
      }
    }
  } finally {
    for (const a of agents) await a.agent.stop();
    await server?.stop();
    for (const t of agentTmps) t.cleanup();
    if (!KEEP) {
      await kubectl(env, ['delete', 'clusterrolebinding', binding, '--ignore-not-found']).catch(() => undefined);
      await kubectl(env, ['delete', 'namespace', ns, '--wait=false', '--ignore-not-found']).catch(() => undefined);
    }
    tmp.cleanup();
  }

  const fmt = (x: number): string => (x >= 10 ? x.toFixed(1) : x.toFixed(2));
  const cpu = cpus()[0]?.model.replace(/\s+/g, ' ').trim() ?? '?';
  const md = `# k8s workload attestation latency vs pods on the node

${new Date().toISOString()} · Node ${process.version} · ${cpus().length} CPUs (${cpu}) · Kubernetes v1.37.2 test node (scripts/k8s/cluster.sh, shared) · SPIRE ${SPIRE_VERSION} · ztwim from the sources (tsx).

Each row: attestations of one process of a busybox pod on the node, sequential. ztwim: K8sWorkloadAttestor.attest(pid) in the bench process against the kubelet's secure port (bearer token, cluster CA, node name checked), ${CALLS} calls after 5 warm-up ones; "fetched per call" expires the pod-list cache before each call (a /pods round trip and a JSON parse each time, what a burst of calls pays once per 250 ms), "cached" hits it. SPIRE: \`spire-agent api fetch x509\` run ${SPIRE_CALLS} times in the pod (one kubectl exec of a shell loop) against each of two spire-agents, one with \`poll_retry_interval = "2ms"\` (its pod list, kept half that, is fetched for every call) and one with \`"1h"\` (cached); latency from spire-agent's own Prometheus summary of its k8s workload attestor (p50/p99 over the summary's recent window, mean from _sum/_count). Pods on the node: the kubelet's /pods list (every namespace) when measured.

| attestor | pods on node | /pods size | calls | p50 | p99 | mean |
|---|--:|--:|--:|--:|--:|--:|
${rows.map((r) => `| ${r.impl} | ${r.podsOnNode} | ${r.listKiB.toFixed(0)} KiB | ${r.calls} | ${fmt(r.p50)} ms | ${fmt(r.p99)} ms | ${fmt(r.mean)} ms |`).join('\n')}
`;
  const out = join(resultsDir(), 'k8s-workload-attestor.md');
  writeFileSync(out, md);
  console.log(md);
  console.error(`k8s-workload-attestor: wrote ${out}`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
