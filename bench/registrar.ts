/**
 * Workload registrar at scale: pods to entries, and a pod deletion to its entry gone.
 *
 *   node --conditions=ztwim-source --import tsx bench/registrar.ts [--pods 1000,10000] [--nodes 20]
 *        [--deletions 5] [--concurrency 16]
 *
 * In a control-plane-only cluster of its own (test/k8s/lib/own-control-plane.ts: WITH_NODE=0, its
 * own dir and ports; the shared cluster and its node are never touched), with ztwim server
 * in-process here and `ztwim registrar` as a child process (the built command; gcInterval 10s),
 * one ClusterSPIFFEID selecting the bench namespace. Per size N:
 *   - N pod objects bound with spec.nodeName to `--nodes` fake Nodes (no kubelet, no containers)
 *     are created while the registrar runs; measured: time from the first create to all N
 *     entries present on the server (counted about every second), and from the last create;
 *   - the registrar's CPU (utime+stime from /proc over that window) and RSS (VmRSS sampled, and
 *     VmHWM, the process's peak);
 *   - `--deletions` single pod deletions, each timed to its entry gone (polled every 200 ms with a
 *     ListEntries filter on its SPIFFE ID; median, max).
 * Writes bench/results/registrar.md.
 */
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { dialEntryClient } from '@ztwim/registrar';
import { applyManifest, kubectl, waitFor } from '../test/k8s/lib/cluster.ts';
import { startOwnControlPlane } from '../test/k8s/lib/own-control-plane.ts';
import { REPO_ROOT, ZTWIM_BIN } from '../test/interop/lib/peers.ts';
import { makeTmpDir } from '../test/interop/lib/tmp.ts';
import { startZtwimAdminServer } from '../test/interop/lib/ztwim-server.ts';
import { connectKube } from '@ztwim/registrar';
import { RESOURCES } from '@ztwim/k8s';
import { createClient } from '@connectrpc/connect';
import { createUnixGrpcTransport, EntryService } from '@ztwim/proto';
import { writeResults } from './lib/results-dir.ts';

const args = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const SIZES = (flag('pods') ?? '1000,10000').split(',').map(Number);
const NODES = Number(flag('nodes') ?? 20);
const DELETIONS = Number(flag('deletions') ?? 5);
const CONCURRENCY = Number(flag('concurrency') ?? 16);
const TD = 'bench.example';
const TICKS = 100; // USER_HZ

function procStat(pid: number): { cpuMs: number; rssMiB: number; hwmMiB: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpuMs = ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS;
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
  return { cpuMs, rssMiB: kb('VmRSS') / 1024, hwmMiB: kb('VmHWM') / 1024 };
}

async function pool<T>(items: readonly T[], n: number, fn: (t: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (i < items.length) await fn(items[i++] as T);
    }),
  );
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

interface Row {
  pods: number;
  createS: number;
  allFromFirstS: number;
  allFromLastS: number;
  cpuS: number;
  rssMiB: number;
  hwmMiB: number;
  delMedianMs: number;
  delMaxMs: number;
}

async function main(): Promise<void> {
  const cp = await startOwnControlPlane('ztwim-bench-registrar');
  const tmp = makeTmpDir('ztwim-bench-registrar-');
  const srv = await startZtwimAdminServer({ trustDomain: TD });
  const entries = dialEntryClient(srv.socketPath);
  // The bench's own polls must not load the server it shares this process with: counts every
  // second, deletions by a ListEntries filter on the one SPIFFE ID (not a listing of all entries).
  const transport = createUnixGrpcTransport(srv.socketPath);
  const api = createClient(EntryService, transport);
  const present = async (id: string): Promise<boolean> => {
    const u = new URL(id);
    const r = await api.listEntries({ filter: { bySpiffeId: { trustDomain: u.host, path: u.pathname } }, pageSize: 10 });
    return r.entries.length > 0;
  };
  let child: ChildProcess | undefined;
  const rows: Row[] = [];
  try {
    const env = cp.env;
    const kube = await connectKube(env.kubeconfig);
    for (const f of ['clusterspiffeids.yaml', 'clusterstaticentries.yaml', 'clusterfederatedtrustdomains.yaml']) {
      await applyManifest(env, readFileSync(join(REPO_ROOT, 'deploy', 'k8s', 'registrar', 'crds', f), 'utf8'));
    }
    await kubectl(env, ['wait', '--for=condition=Established', 'crd/clusterspiffeids.spire.spiffe.io', '--timeout=60s']);
    for (let i = 0; i < NODES; i++) {
      await kube.create(RESOURCES.nodes, { apiVersion: 'v1', kind: 'Node', metadata: { name: `bench-node-${i}` } });
    }
    await applyManifest(
      env,
      JSON.stringify({
        apiVersion: 'spire.spiffe.io/v1alpha1',
        kind: 'ClusterSPIFFEID',
        metadata: { name: 'bench' },
        spec: {
          spiffeIDTemplate: 'spiffe://{{ .TrustDomain }}/ns/{{ .PodMeta.Namespace }}/pod/{{ .PodMeta.Name }}',
          namespaceSelector: { matchLabels: { bench: 'registrar' } },
        },
      }),
    );
    const config = tmp.write('config.yaml', `clusterName: bench\ntrustDomain: ${TD}\nspireServerSocketPath: ${srv.socketPath}\nlogEncoding: json\n`);
    child = spawn(process.execPath, [ZTWIM_BIN, 'registrar', '-config', config, '-kubeconfig', env.kubeconfig], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    const pid = child.pid as number;
    await waitFor('registrar started', () => (stderr.includes('Caches synced') ? true : undefined), 60_000);

    const count = async (ns: string): Promise<number> => (await entries.listEntries()).filter((e) => e.spiffeId.includes(`/ns/${ns}/`)).length;
    for (const n of SIZES) {
      const ns = `bench-${n}`;
      await kube.create(RESOURCES.namespaces, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, labels: { bench: 'registrar' } } });
      await waitFor(
        `ServiceAccount ${ns}/default`,
        async () =>
          kube.get(RESOURCES.serviceAccounts, 'default', ns).then(
            () => true,
            () => undefined,
          ),
        60_000,
      );
      const names = Array.from({ length: n }, (_, i) => `p-${i}`);
      const before = procStat(pid);
      let peakRss = before.rssMiB;
      const t0 = Date.now();
      await pool(names, CONCURRENCY, async (name) => {
        const i = Number(name.slice(2));
        await kube.create(
          RESOURCES.pods,
          {
            apiVersion: 'v1',
            kind: 'Pod',
            metadata: { name, namespace: ns, labels: { app: 'bench' } },
            spec: { nodeName: `bench-node-${i % NODES}`, containers: [{ name: 'c', image: 'busybox:local' }] },
          },
          {},
        );
      });
      const tLast = Date.now();
      await waitFor(
        `${n} entries`,
        async () => {
          peakRss = Math.max(peakRss, procStat(pid).rssMiB);
          if ((await count(ns)) >= n) return true;
          await new Promise((r) => setTimeout(r, 800));
          return undefined;
        },
        1_800_000,
      );
      const tAll = Date.now();
      const after = procStat(pid);
      const del: number[] = [];
      for (let d = 0; d < DELETIONS; d++) {
        const name = names[d * Math.floor(n / Math.max(1, DELETIONS))] as string;
        const id = `spiffe://${TD}/ns/${ns}/pod/${name}`;
        const td = Date.now();
        await kube.delete(RESOURCES.pods, name, { namespace: ns, gracePeriodSeconds: 0 });
        await waitFor(`entry of ${name} gone`, async () => ((await present(id)) ? undefined : true), 300_000);
        del.push(Date.now() - td);
      }
      rows.push({
        pods: n,
        createS: (tLast - t0) / 1000,
        allFromFirstS: (tAll - t0) / 1000,
        allFromLastS: (tAll - tLast) / 1000,
        cpuS: (after.cpuMs - before.cpuMs) / 1000,
        rssMiB: peakRss,
        hwmMiB: after.hwmMiB,
        delMedianMs: median(del),
        delMaxMs: Math.max(...del),
      });
      console.log(JSON.stringify(rows[rows.length - 1]));
    }
  } finally {
    child?.kill('SIGTERM');
    entries.close();
    transport.close();
    await srv.stop();
    await cp.down();
    tmp.cleanup();
  }
  const lines = [
    '# Workload registrar: pods to entries',
    '',
    `\`bench/registrar.ts --pods ${SIZES.join(',')} --nodes ${NODES} --deletions ${DELETIONS} --concurrency ${CONCURRENCY}\`, ${new Date().toISOString().slice(0, 10)}, ${cpus().length} cores (shared), Node ${process.version}.`,
    'Own control-plane-only cluster (WITH_NODE=0), pods bound to fake Nodes, ztwim server in-process, `ztwim registrar` as a child process (gcInterval 10s).',
    "Creation: the bench creates the pods while the registrar runs. CPU and RSS are the registrar process's over the create-to-all-entries window.",
    '',
    '| pods | create all (s) | all entries, from first create (s) | from last create (s) | registrar CPU (s) | registrar RSS peak (MiB) | VmHWM (MiB) | pod deleted → entry gone, median / max (ms) |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.pods} | ${r.createS.toFixed(1)} | ${r.allFromFirstS.toFixed(1)} | ${r.allFromLastS.toFixed(1)} | ${r.cpuS.toFixed(1)} | ${r.rssMiB.toFixed(0)} | ${r.hwmMiB.toFixed(0)} | ${r.delMedianMs.toFixed(0)} / ${r.delMaxMs.toFixed(0)} |`,
    ),
    '',
  ];
  writeResults('registrar.md', lines.join('\n'));
  console.log(lines.join('\n'));
}

await main();
