// Pieces the k8s workload attestor test and bench share: a service account allowed to read the
// kubelet's API (its token is the attestor's credential), a busybox workload pod template that
// mounts SPIRE's binaries and agent socket directories (so `spire-agent api fetch` can run inside
// the container), and finding a container's process on the host.
import { readdirSync, readFileSync, realpathSync } from 'node:fs';
import { dirname } from 'node:path';

import { spireAgentBin } from '../../interop/lib/peers.ts';
import { applyManifest, kubectl, type ClusterEnv } from './cluster.ts';

export const BUSYBOX_IMAGE = 'docker.io/library/busybox:local';

/**
 * ServiceAccount `attestor` in `ns`, bound to ClusterRole system:kubelet-api-admin by the
 * ClusterRoleBinding `<ns>-kubelet-api` (cluster-scoped: delete it when done); returns a token
 * of it valid for `hours`.
 */
export async function kubeletReaderToken(env: ClusterEnv, ns: string, hours = 1): Promise<{ token: string; binding: string }> {
  const binding = `${ns}-kubelet-api`;
  await applyManifest(
    env,
    `
apiVersion: v1
kind: ServiceAccount
metadata: { name: attestor, namespace: ${ns} }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: { name: ${binding} }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:kubelet-api-admin }
subjects: [ { kind: ServiceAccount, name: attestor, namespace: ${ns} } ]
`,
  );
  const token = (await kubectl(env, ['create', 'token', 'attestor', '-n', ns, '--duration', `${hours}h`])).trim();
  return { token, binding };
}

/**
 * The `spec` of a hostNetwork busybox pod whose container `app` runs `/bin/sleep 3600`, with
 * SPIRE's bin dir at /spire and each `sockets` host dir mounted at its key (e.g.
 * `{ '/run/spire-agent': '/tmp/x/spire-agent' }`), indented for a pod or a pod template. The
 * host's libc is mounted read-only too: SPIRE's binaries are dynamically linked.
 */
export function workloadPodSpec(o: { indent: number; sockets: Readonly<Record<string, string>>; serviceAccount?: string; initContainer?: boolean }): string {
  const dirs = Object.entries(o.sockets);
  const lines = [
    'hostNetwork: true',
    'terminationGracePeriodSeconds: 0',
    ...(o.serviceAccount === undefined ? [] : [`serviceAccountName: ${o.serviceAccount}`]),
    ...(o.initContainer === true ? ['initContainers:', `  - { name: init, image: ${BUSYBOX_IMAGE}, imagePullPolicy: Never, command: ['/bin/true'] }`] : []),
    'containers:',
    '  - name: app',
    `    image: ${BUSYBOX_IMAGE}`,
    '    imagePullPolicy: Never',
    "    command: ['/bin/sleep', '3600']",
    '    volumeMounts:',
    '      - { name: spire-bin, mountPath: /spire, readOnly: true }',
    // SPIRE's binaries link libc dynamically; the busybox image has none: the host's, read-only.
    '      - { name: host-libc, mountPath: /lib/x86_64-linux-gnu, readOnly: true }',
    '      - { name: host-lib64, mountPath: /lib64, readOnly: true }',
    ...dirs.map(([path], i) => `      - { name: socket-${i}, mountPath: ${path} }`),
    'volumes:',
    `  - { name: spire-bin, hostPath: { path: ${dirname(spireAgentBin())}, type: Directory } }`,
    `  - { name: host-libc, hostPath: { path: ${realpathSync('/lib/x86_64-linux-gnu')}, type: Directory } }`,
    `  - { name: host-lib64, hostPath: { path: ${realpathSync('/lib64')}, type: Directory } }`,
    ...dirs.map(([, dir], i) => `  - { name: socket-${i}, hostPath: { path: ${dir}, type: Directory } }`),
  ];
  return lines.map((l) => ' '.repeat(o.indent) + l).join('\n');
}

/** Host PIDs whose /proc/<pid>/cgroup names this container and whose argv[0] is `argv0`. */
export function hostPidsOf(containerId: string, argv0: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (!readFileSync(`/proc/${name}/cgroup`, 'utf8').includes(`/${containerId}\n`)) continue;
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0')[0] === argv0) out.push(Number(name));
    } catch {
      // The process ended while we looked.
    }
  }
  return out;
}

/** `containerd://<id>` → `<id>`. */
export function runtimeContainerId(statusContainerId: string | undefined): string {
  return (statusContainerId ?? '').replace(/^[a-z-]+:\/\//, '');
}
