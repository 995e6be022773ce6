// A control-plane-only cluster of the caller's own (its own dir and ports, `WITH_NODE=0`), for tests
// and benches that stop and restart the apiserver or load it with many objects: the shared
// cluster is never touched. `down()` stops it and removes its dir.
import { readFileSync, rmSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePortsBelowEphemeral } from '../../interop/lib/net.js';
import { clusterSh, controlPlaneEnvFrom, parseEnvLines, run, type ControlPlaneEnv } from './cluster.ts';
import { eventually } from '@ztwim/testkit';

export interface OwnControlPlane {
  readonly env: ControlPlaneEnv;
  readonly etcdUrl: string;
  /** Stops only the kube-apiserver process (TERM) and waits until it is gone. */
  stopApiserver(): Promise<void>;
  /** `cluster.sh up` again: starts what is not running (the apiserver after stopApiserver). */
  upAgain(): Promise<void>;
  /** etcdctl with the cluster's endpoint. */
  etcdctl(args: readonly string[]): Promise<string>;
  /** Stops every component and removes the dir. */
  down(): Promise<void>;
}

/**
 * `cluster.sh`'s env for a control plane alone (no node) in `dir`, on five free ports in a row below
 * the ephemeral range: etcd client (`base`), etcd peer (+1), apiserver, controller manager, scheduler.
 */
export async function controlPlaneVars(dir: string): Promise<{ vars: NodeJS.ProcessEnv; base: number }> {
  const base = await freePortsBelowEphemeral(5);
  return {
    base,
    vars: {
      ZTWIM_K8S_DIR: dir,
      WITH_NODE: '0',
      ZTWIM_K8S_ETCD_PORT: String(base),
      ZTWIM_K8S_APISERVER_PORT: String(base + 2),
      ZTWIM_K8S_KCM_PORT: String(base + 3),
      ZTWIM_K8S_SCHEDULER_PORT: String(base + 4),
    },
  };
}

export async function startOwnControlPlane(prefix: string): Promise<OwnControlPlane> {
  const dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
  const { vars, base } = await controlPlaneVars(dir);
  let env: ControlPlaneEnv;
  try {
    env = controlPlaneEnvFrom(parseEnvLines((await clusterSh('up', vars)).stdout));
  } catch (e) {
    await clusterSh('down', vars, ['--purge']).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const etcdUrl = `http://127.0.0.1:${base}`;
  return {
    env,
    etcdUrl,
    async stopApiserver() {
      const pid = Number(readFileSync(join(dir, 'run', 'kube-apiserver.pid'), 'utf8').trim());
      process.kill(pid, 'SIGTERM');
      const gone = (): boolean => {
        try {
          process.kill(pid, 0);
          return false;
        } catch {
          return true;
        }
      };
      await eventually('kube-apiserver exits after SIGTERM', gone, { timeoutMs: 30_000, intervalMs: 100 }).catch(() => process.kill(pid, 'SIGKILL'));
    },
    async upAgain() {
      await clusterSh('up', vars);
    },
    async etcdctl(args) {
      return (await run(join(env.bin, 'etcdctl'), ['--endpoints', etcdUrl, ...args])).stdout;
    },
    async down() {
      await clusterSh('down', vars, ['--purge']).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
