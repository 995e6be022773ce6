/**
 * @ztwim/k8s Informer: initial sync time and memory for N pod objects, and events/s on pod churn.
 *
 *   node --conditions=ztwim-source --import tsx bench/k8s-informer.ts [--pods 1000,10000]
 *        [--nodes 20] [--page 500] [--churn 2000] [--width 16]
 *
 * In a control-plane-only cluster of its own (test/k8s/lib/own-control-plane.ts: own dir and
 * ports, never the shared one): `--nodes` fake Nodes, then pods bound to them by spec.nodeName
 * (one busybox container each, never run: there is no kubelet), created `--width` at a time up to
 * each size in `--pods`. For each size a fresh child process (so its memory is the informer's)
 * runs an Informer on all pods with a by-node index, pages of `--page`; it reports the time from
 * run() to hasSynced and its RSS and V8 heap growth (after a GC). Then `--churn` label
 * patches are sent (`--width` at a time) while that informer watches: writes/s the apiserver
 * took, and events/s the informer delivered with the lag from the last write to the last event.
 * Writes bench/results/k8s-informer.md; stops and removes its cluster.
 */
import { spawn } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { createResourceClient, Informer, RESOURCES, type KubeObject, type ResourceClient } from '@ztwim/k8s';
import { flagValue, num } from './lib/args.ts';
import { writeResults } from './lib/results-dir.ts';
import { inParallel } from '../test/k8s/lib/in-parallel.ts';

const NS = 'bench-informer';

interface Pod extends KubeObject {
  spec?: { nodeName?: string };
}

/** Child mode: `--child <kubeconfig> <page>`; speaks JSON lines on stdin/stdout. */
async function child(kubeconfig: string, page: number): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  const client = await createResourceClient({ kind: 'kubeconfig', path: kubeconfig });
  // The client library and the TLS connection loaded first: the growth measured is the informer's.
  await client.list(RESOURCES.pods, { namespace: NS, limit: 1 });
  gc?.();
  const before = process.memoryUsage();
  const informer = new Informer<Pod>({ client, resource: RESOURCES.pods, namespace: NS, pageSize: page, indexers: { node: (p) => [p.spec?.nodeName ?? ''] } });
  let events = 0;
  let firstEventAt = 0;
  let lastEventAt = 0;
  let target = Infinity;
  let reportDone: (() => void) | undefined;
  informer.addHandlers({
    onUpdate: (a, b) => {
      if (a === b) return;
      events++;
      lastEventAt = performance.now();
      if (events === 1) firstEventAt = lastEventAt;
      if (events >= target) reportDone?.();
    },
  });
  const stop = new AbortController();
  const t0 = performance.now();
  const running = informer.run(stop.signal);
  await informer.waitForSync();
  const syncMs = performance.now() - t0;
  gc?.();
  const after = process.memoryUsage();
  const out = (o: unknown): void => {
    process.stdout.write(`${JSON.stringify(o)}\n`);
  };
  out({
    synced: true,
    syncMs,
    objects: informer.store.size,
    rssBefore: before.rss,
    rssAfter: after.rss,
    heapBefore: before.heapUsed,
    heapAfter: after.heapUsed,
    nodesIndexed: informer.store.byIndex('node', 'fake-node-0').length,
  });
  for await (const line of createInterface({ input: process.stdin })) {
    const msg = JSON.parse(line) as { expect: number; writesDoneAt: number };
    target = msg.expect;
    if (events < target)
      await new Promise<void>((r) => {
        reportDone = r;
      });
    out({ events, firstToLastMs: lastEventAt - firstEventAt, lastEventAt: performance.timeOrigin + lastEventAt });
    break;
  }
  stop.abort();
  await running;
  client.transport.close();
}

interface Row {
  pods: number;
  syncMs: number;
  rssMiB: number;
  rssTotalMiB: number;
  heapMiB: number;
  churn: number;
  writesPerS: number;
  eventsPerS: number;
  lagMs: number;
}

async function measure(client: ResourceClient, kubeconfig: string, pods: number, page: number, churn: number, width: number): Promise<Row> {
  const proc = spawn(
    process.execPath,
    ['--expose-gc', '--conditions=ztwim-source', '--import', 'tsx', join(import.meta.dirname, 'k8s-informer.ts'), '--child', kubeconfig, String(page)],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const lines = createInterface({ input: proc.stdout })[Symbol.asyncIterator]();
  const next = async (): Promise<Record<string, number>> => {
    for (;;) {
      const r = await lines.next();
      if (r.done === true) throw new Error('the informer child ended early');
      if (r.value.startsWith('{')) return JSON.parse(r.value) as Record<string, number>;
    }
  };
  const synced = await next();
  if (synced['objects'] !== pods) throw new Error(`the informer has ${synced['objects']} pods, expected ${pods}`);
  // Churn: label patches on existing pods, each one MODIFIED event.
  const targets = Array.from({ length: churn }, (_, i) => `pod-${String(i % pods).padStart(5, '0')}`);
  let seq = 0;
  const w0 = performance.now();
  await inParallel(targets, width, (name) =>
    client.patch(RESOURCES.pods, name, { metadata: { labels: { churn: String(seq++) } } }, 'merge', { namespace: NS }),
  );
  const writesMs = performance.now() - w0;
  const writesDoneAt = performance.timeOrigin + performance.now();
  proc.stdin.write(`${JSON.stringify({ expect: churn, writesDoneAt })}\n`);
  const done = await next();
  proc.stdin.end();
  await new Promise((r) => proc.on('exit', r));
  return {
    pods,
    syncMs: synced['syncMs']!,
    rssMiB: (synced['rssAfter']! - synced['rssBefore']!) / 2 ** 20,
    rssTotalMiB: synced['rssAfter']! / 2 ** 20,
    heapMiB: (synced['heapAfter']! - synced['heapBefore']!) / 2 ** 20,
    churn,
    writesPerS: churn / (writesMs / 1000),
    eventsPerS: done['events']! / (Math.max(1, done['firstToLastMs']!) / 1000),
    lagMs: Math.max(0, done['lastEventAt']! - writesDoneAt),
  };
}

async function main(): Promise<void> {
  const sizes = (flagValue('pods') ?? '1000,10000')
    .split(',')
    .map(Number)
    .sort((a, b) => a - b);
  const nodes = num('nodes', 20);
  const page = num('page', 500);
  const churn = num('churn', 2000);
  const width = num('width', 16);
  const t0 = Date.now();
  // Loaded here, not at the top: the test helpers load node:test, which the child must not.
  const { startOwnControlPlane } = await import('../test/k8s/lib/own-control-plane.ts');
  const cp = await startOwnControlPlane('ztwim-bench-informer');
  const rows: Row[] = [];
  try {
    const client = await createResourceClient({ kind: 'kubeconfig', path: cp.env.kubeconfig });
    await client.create(RESOURCES.namespaces, { metadata: { name: NS } });
    // The controller manager creates the namespace's `default` ServiceAccount a moment later, and
    // the ServiceAccount admission refuses pods until it exists.
    for (const deadline = Date.now() + 60_000; ;) {
      const found = await client.get(RESOURCES.serviceAccounts, 'default', NS).then(
        () => true,
        () => false,
      );
      if (found) break;
      if (Date.now() > deadline) throw new Error(`ServiceAccount ${NS}/default did not appear within 60 s`);
      await new Promise((r) => setTimeout(r, 200));
    }
    await inParallel(
      Array.from({ length: nodes }, (_, i) => i),
      width,
      (i) => client.create(RESOURCES.nodes, { metadata: { name: `fake-node-${i}` } }),
    );
    let made = 0;
    for (const size of sizes) {
      const names = Array.from({ length: size - made }, (_, i) => made + i);
      await inParallel(names, width, (i) =>
        client.create(RESOURCES.pods, {
          metadata: { name: `pod-${String(i).padStart(5, '0')}`, namespace: NS, labels: { app: `app-${i % 50}` } },
          spec: { nodeName: `fake-node-${i % nodes}`, containers: [{ name: 'c', image: 'busybox' }] },
        }),
      );
      made = size;
      console.log(`${size} pods created (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
      const row = await measure(client, cp.env.kubeconfig, size, page, Math.min(churn, size * 4), width);
      console.log(JSON.stringify(row));
      rows.push(row);
    }
    client.transport.close();
  } finally {
    await cp.down();
  }
  const f = (x: number, d = 1): string => x.toFixed(d);
  const md = [
    `@ztwim/k8s Informer on pods (${new Date().toISOString().slice(0, 10)}, ${cpus().length} cores, load ${f(loadavg()[0] ?? 0, 2)} at the end)`,
    '',
    `Settings: kube-apiserver v1.37.2 + etcd 3.6 on 127.0.0.1 (own control plane, no node); ${nodes} fake Nodes; pods bound by spec.nodeName, one container each, never run; informer on the namespace's pods with a by-node index, list pages of ${page}, in a fresh child process per size (RSS/heap growth: after sync minus after the client's first call, both after a GC; RSS total: the child's after sync); churn: merge patches of a label, ${width} in flight, while the informer watches.`,
    '',
    '| pods | initial sync ms | RSS growth MiB | RSS total MiB | heap growth MiB | churn patches | writes/s | events/s delivered | lag last write → last event ms |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.pods} | ${f(r.syncMs, 0)} | ${f(r.rssMiB)} | ${f(r.rssTotalMiB)} | ${f(r.heapMiB)} | ${r.churn} | ${f(r.writesPerS, 0)} | ${f(r.eventsPerS, 0)} | ${f(r.lagMs, 0)} |`,
    ),
    '',
    'events/s delivered cannot exceed the writes/s the apiserver takes: it says whether the informer keeps up (the lag column), not how many events it could process.',
    '',
  ].join('\n');
  writeResults('k8s-informer.md', md);
  console.log(md);
}

const argv = process.argv.slice(2);
if (argv[0] === '--child') await child(argv[1]!, Number(argv[2]));
else await main();
