/**
 * The operator on the shared test cluster: time from `kubectl apply` of the five CRs to the first
 * workload X509-SVID, and what the operator does at rest (reconcile passes and API calls per
 * minute, reads and writes apart).
 *
 *   node --conditions=ztwim-source --import tsx bench/operator.ts [--runs 3] [--rest-min 3]
 *
 * Needs the project's test cluster (brought up through scripts/k8s/cluster.sh) and `npm run
 * build` (the image is built from this tree: scripts/k8s/image.sh with ZTWIM_IMAGE_TAG, default
 * the version, imported into the node). The operator runs in its pod from
 * deploy/manifests/install.yaml as test/k8s/lib/operator-install.ts adapts it to the test node
 * (own namespace, host network, the kubelet's root and port), under its own RBAC; it takes the
 * operator-test lock for the whole run (the CRs are cluster-scoped singletons).
 *
 * Each run: the five CRs applied at t0; ZTWIM Ready=True is timed; as soon as the node's kubelet
 * lists the CSI driver (CSINode) a workload pod with the CSI volume is created, running `ztwim api
 * watch` (which retries until the agent has its identity); the first SVID is when its SPIFFE ID
 * appears in the pod's log (polled with `kubectl logs` 200 ms apart: figures are about 0.5 s coarse). The pod is made
 * only once the driver is registered because the kubelet retries a mount of an unknown CSI driver
 * with exponential backoff (to 2 min), which would measure the kubelet, not the operator. Between
 * runs the pod and the CRs are deleted in docs/operator.md's uninstall order (the operator's
 * objects go with them), the server's PVC and PV too, so
 * every run starts from nothing (a new CA). After the last run the identity plane stays up for
 * --rest-min minutes and the operator's once-a-minute `Reconcile stats` log lines over that window
 * give the figures at rest. Prints a Markdown table and writes bench/results/operator.md.
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyManifest, createNamespace, csiNodeDrivers, ensureCluster, holdKubeletPlugin, kubectl, waitFor } from '../test/k8s/lib/cluster.ts';
import {
  applyOperatorCrds,
  deleteOperatorCrs,
  operatorCrs,
  holdOperatorSingletons,
  installOperator,
  operatorPod,
  serverDataVolume,
  OPERATOR_KINDS,
} from '../test/k8s/lib/operator-install.ts';
import { importTestImage, ZTWIM_IMAGE } from '../test/k8s/lib/image.ts';
import { runMain, writeResults } from './lib/results-dir.ts';

const argv = process.argv.slice(2);
const opt = (name: string, dflt: string): string => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? (argv[i + 1] ?? dflt) : dflt;
};
const RUNS = Number(opt('runs', '3'));
const REST_MIN = Number(opt('rest-min', '3'));
const TD = 'operator-bench.test';
const LABEL = 'app.kubernetes.io/managed-by=zero-trust-workload-identity-manager';

interface Run {
  readyMs: number;
  csiMs: number;
  svidMs: number;
  podToSvidMs: number;
}
interface Stats {
  time: number;
  passes: number;
  reads: number;
  writes: number;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const secs = (ms: number): string => (ms / 1000).toFixed(1);

async function main(): Promise<void> {
  const env = await ensureCluster();
  await importTestImage(env);
  await applyOperatorCrds(env);
  const releaseCrs = await holdOperatorSingletons(env);
  const releaseCsi = await holdKubeletPlugin(env, 'csi.spiffe.io');
  const ns = `operator-bench-${randomBytes(4).toString('hex')}`;
  let wl = '';
  const dirs: string[] = [];
  const op = await installOperator(env, ns, {}, { namespace: true });
  const cleanup = async (): Promise<void> => {
    if (wl !== '') await kubectl(env, ['delete', 'pods', '--all', '-n', wl, '--timeout=120s'], { timeoutMs: 180_000 }).catch(() => '');
    await deleteOperatorCrs(env, ns);
    await op.uninstall();
    await kubectl(env, ['delete', 'pv', '-l', `ztwim-bench=${ns}`, '--ignore-not-found', '--wait=false']).catch(() => '');
    if (wl !== '') await kubectl(env, ['delete', 'namespace', wl, '--ignore-not-found', '--wait=false']).catch(() => '');
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    releaseCsi();
    releaseCrs();
  };
  try {
    await operatorPod(env, ns);
    wl = await createNamespace(env, 'operator-bench-wl');
    await applyManifest(env, `apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: app, namespace: ${wl}}\n`);
    const issuer = `https://oidc.${TD}`;
    const runs: Run[] = [];
    for (let i = 0; i < RUNS; i++) {
      // A fresh hostPath volume for the server's claim: every run starts without a datastore.
      const dir = join(tmpdir(), `ztwim-${ns}-data-${i}`);
      dirs.push(dir);
      await serverDataVolume(env, ns, `${ns}-data-${i}`, dir, `ztwim-bench: ${ns}`);
      const t0 = Date.now();
      await applyManifest(env, operatorCrs({ trustDomain: TD, issuer }));
      let readyMs = 0;
      let csiMs = 0;
      const ready = waitFor(
        'ZTWIM Ready=True',
        async () => {
          const s = JSON.parse(await kubectl(env, ['get', OPERATOR_KINDS[4] as string, 'cluster', '-o', 'json'])) as {
            status?: { conditions?: Array<{ type: string; status: string }> };
          };
          return s.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true ? (readyMs = Date.now() - t0) : undefined;
        },
        900_000,
      );
      ready.catch(() => undefined); // awaited below
      await waitFor(
        'the CSI driver registered with the kubelet',
        async () => ((await csiNodeDrivers(env)).includes('csi.spiffe.io') ? true : undefined),
        900_000,
      );
      csiMs = Date.now() - t0;
      const pod = `fetch-${i}`;
      const tPod = Date.now();
      await applyManifest(
        env,
        `
apiVersion: v1
kind: Pod
metadata: {name: ${pod}, namespace: ${wl}}
spec:
  hostNetwork: true
  serviceAccountName: app
  terminationGracePeriodSeconds: 0
  containers:
  - name: watch
    image: ${ZTWIM_IMAGE}
    imagePullPolicy: Never
    args: [api, watch, -socketPath, /spiffe-workload-api/spire-agent.sock]
    volumeMounts: [{name: spiffe, mountPath: /spiffe-workload-api, readOnly: true}]
  volumes:
  - name: spiffe
    csi: {driver: csi.spiffe.io, readOnly: true}
`,
      );
      const want = `spiffe://${TD}/ns/${wl}/sa/app`;
      await waitFor(`the SVID ${want}`, async () => ((await kubectl(env, ['logs', '-n', wl, pod]).catch(() => '')).includes(want) ? true : undefined), 900_000);
      const svidMs = Date.now() - t0;
      await ready;
      runs.push({ readyMs, csiMs, svidMs, podToSvidMs: t0 + svidMs - tPod });
      console.error(`bench: run ${i + 1}/${RUNS}: ZTWIM Ready ${secs(readyMs)} s, CSI registered ${secs(csiMs)} s, first SVID ${secs(svidMs)} s`);
      if (i < RUNS - 1) {
        // Uninstall in docs/operator.md's order: the CSI-volume pods first, the OIDC provider and
        // its pod, then the rest (a pod deleted after the CSI driver cannot be unmounted).
        await kubectl(env, ['delete', 'pod', '-n', wl, pod, '--timeout=120s'], { timeoutMs: 180_000 });
        await deleteOperatorCrs(env, ns);
        await waitFor(
          "the operator's objects and pods gone",
          async () => {
            const left = await kubectl(env, ['get', 'pods,statefulsets,daemonsets,deployments,configmaps', '-n', ns, '-l', LABEL, '-o', 'name']);
            return left.trim() === '' && !(await csiNodeDrivers(env)).includes('csi.spiffe.io') ? true : undefined;
          },
          600_000,
        );
        await kubectl(env, ['delete', 'pvc', '-n', ns, 'spire-data-spire-server-0', '--ignore-not-found'], { timeoutMs: 120_000 });
      }
    }

    // At rest: the plane is up and nothing changes for REST_MIN minutes (0: not measured).
    const restFrom = Date.now();
    console.error(`bench: at rest for ${REST_MIN} min`);
    const opPod = await operatorPod(env, ns);
    const stats =
      REST_MIN === 0
        ? []
        : await waitFor(
            'the Reconcile stats lines of the rest window',
            async () => {
              const lines = (await kubectl(env, ['logs', '-n', ns, opPod]).catch(() => '')).split('\n');
              const s: Stats[] = [];
              for (const l of lines) {
                if (!l.includes('Reconcile stats')) continue;
                const j = JSON.parse(l) as { time: number | string; reconcile_passes_per_min?: number; api_reads_per_min: number; api_writes_per_min: number };
                const time = typeof j.time === 'number' ? j.time : Date.parse(j.time);
                // a line counts the minute before it: only minutes wholly inside the window
                if (time - 60_000 >= restFrom)
                  s.push({ time, passes: j.reconcile_passes_per_min ?? Number.NaN, reads: j.api_reads_per_min, writes: j.api_writes_per_min });
              }
              return s.length >= REST_MIN ? s.slice(0, REST_MIN) : undefined;
            },
            (REST_MIN + 3) * 60_000,
          );
    const sum = (k: keyof Stats): number => stats.reduce((a, s) => a + s[k], 0);

    const settings =
      `operator in its pod (deploy/manifests/install.yaml on the test node: host network, ${ZTWIM_IMAGE}, its own RBAC, leader election on, -log-level debug); ` +
      `one node (kubelet v1.37.2, containerd), the five CRs of docs/operator.md with k8s_psat, the k8s workload attestor (skip kubelet verification), ` +
      `server PVC on a hostPath PV, a fresh datastore and CA every run; the workload pod (\`ztwim api watch\` in the CSI volume) created once CSINode lists csi.spiffe.io; ` +
      `log polled with kubectl logs, 200 ms apart`;
    const table = [
      `Operator: apply to first workload SVID, and at rest (${new Date().toISOString().slice(0, 10)}, ${cpus().length} cores, load ${loadavg()[0]?.toFixed(2)} at the end)`,
      '',
      `Settings: ${settings}.`,
      '',
      '| run | apply → ZTWIM Ready | apply → CSI driver registered | apply → first workload SVID | workload pod created → SVID |',
      '|---|---:|---:|---:|---:|',
      ...runs.map((r, i) => `| ${i + 1} | ${secs(r.readyMs)} s | ${secs(r.csiMs)} s | ${secs(r.svidMs)} s | ${secs(r.podToSvidMs)} s |`),
      `| **median of ${runs.length}** | ${secs(median(runs.map((r) => r.readyMs)))} s | ${secs(median(runs.map((r) => r.csiMs)))} s | ${secs(median(runs.map((r) => r.svidMs)))} s | ${secs(median(runs.map((r) => r.podToSvidMs)))} s |`,
      '',
      ...(stats.length === 0
        ? []
        : [
            `At rest, ${stats.length} whole minute(s) after the last run (the operator's \`Reconcile stats\` lines; informer resync 10 min):`,
            '',
            '| minute | reconcile passes | API reads | API writes |',
            '|---|---:|---:|---:|',
            ...stats.map((s, i) => `| ${i + 1} | ${s.passes} | ${s.reads} | ${s.writes} |`),
            `| **per minute (mean)** | ${(sum('passes') / stats.length).toFixed(1)} | ${(sum('reads') / stats.length).toFixed(1)} | ${(sum('writes') / stats.length).toFixed(1)} |`,
            '',
          ]),
    ].join('\n');
    console.log(table);
    writeResults('operator.md', table);
  } finally {
    await cleanup();
  }
}

runMain(main);
