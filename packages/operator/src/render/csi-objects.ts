// The SpiffeCSIDriver's objects (digest §2.2, §2.4): service account, privileged SCC (OpenShift),
// the CSIDriver object and the DaemonSet. ztwim csi registers itself with the kubelet; the SPIRE
// variant runs node-driver-registrar beside spiffe-csi-driver.
import type { CsiSpec1_0 } from '../api/normalize.ts';
import { PATHS, renderCsiArgs } from './configs.ts';
import type { ResolvedContext } from './context.ts';
import {
  operandContainer,
  meta,
  nodeNameEnv,
  objectLabels,
  podSpecExtras,
  resourcesOf,
  selectorLabels,
  serviceAccount,
  workload,
  collector,
  type KubeObject,
  type OperandRender,
} from './objects-common.ts';

export const CSI_NAME = 'spire-spiffe-csi-driver';

export function renderCsiObjects(c: CsiSpec1_0, ctx: ResolvedContext): OperandRender {
  const L = objectLabels('spiffe-csi-driver', 'csi', ctx, c.labels);
  const selector = selectorLabels('spiffe-csi-driver', 'csi');
  const { objects, add } = collector('SpiffeCSIDriver');
  add(serviceAccount(CSI_NAME, L, ctx));
  if (ctx.hasOpenShiftGroups) {
    add(
      {
        apiVersion: 'security.openshift.io/v1',
        kind: 'SecurityContextConstraints',
        metadata: meta(CSI_NAME, L),
        allowHostDirVolumePlugin: true,
        allowHostIPC: false,
        allowHostNetwork: ctx.hostNetwork,
        allowHostPID: false,
        allowHostPorts: ctx.hostNetwork,
        allowPrivilegeEscalation: true,
        allowPrivilegedContainer: true,
        allowedCapabilities: null,
        defaultAddCapabilities: null,
        // required by OpenShift's SCC schema (nullable): the Go type marshals an unset priority as null
        priority: null,
        requiredDropCapabilities: null,
        fsGroup: { type: 'RunAsAny' },
        runAsUser: { type: 'RunAsAny' },
        seLinuxContext: { type: 'RunAsAny' },
        supplementalGroups: { type: 'RunAsAny' },
        readOnlyRootFilesystem: false,
        users: [`system:serviceaccount:${ctx.namespace}:${CSI_NAME}`],
        volumes: ['configMap', 'hostPath', 'projected', 'secret', 'emptyDir'],
      },
      true,
    );
  }
  add(
    {
      apiVersion: 'storage.k8s.io/v1',
      kind: 'CSIDriver',
      metadata: meta(c.pluginName, { ...L, 'security.openshift.io/csi-ephemeral-volume-profile': 'restricted' }),
      spec: { attachRequired: false, podInfoOnMount: true, fsGroupPolicy: 'None', volumeLifecycleModes: ['Ephemeral'] },
    },
    true,
  );
  add(daemonSet(c, ctx, L, selector));
  return { objects, configHashes: {}, configs: {} };
}

function daemonSet(c: CsiSpec1_0, ctx: ResolvedContext, labels: Record<string, string>, selector: Record<string, string>): KubeObject {
  const args = renderCsiArgs(c, ctx);
  const kr = ctx.kubeletRoot;
  const volumes: Array<Record<string, unknown>> = [
    { name: 'spire-agent-socket-dir', hostPath: { path: c.agentSocketPath, type: 'DirectoryOrCreate' } },
    { name: 'spiffe-csi-socket-dir', hostPath: { path: `${kr}/plugins/${c.pluginName}`, type: 'DirectoryOrCreate' } },
    { name: 'kubelet-plugin-registration-dir', hostPath: { path: `${kr}/plugins_registry`, type: 'Directory' } },
    { name: 'mountpoint-dir', hostPath: { path: `${kr}/pods`, type: 'Directory' } },
  ];
  const driverMounts: Array<Record<string, unknown>> = [
    { name: 'spire-agent-socket-dir', mountPath: PATHS.csiAgentSocketDir, readOnly: true },
    { name: 'spiffe-csi-socket-dir', mountPath: PATHS.csiSocketDir },
    // the kubelet sends host paths: the pods directory at its host path, Bidirectional so the
    // driver's bind mounts reach the host and the pods
    { name: 'mountpoint-dir', mountPath: `${kr}/pods`, mountPropagation: 'Bidirectional' },
    ...(args.registrar === undefined ? [{ name: 'kubelet-plugin-registration-dir', mountPath: PATHS.csiRegistrationDir }] : []),
  ];
  const containers: Array<Record<string, unknown>> = [
    {
      ...operandContainer(ctx, 'spiffe-csi-driver', ctx.images.csi, ['csi'], args.driver),
      env: [nodeNameEnv],
      securityContext: { privileged: true, runAsUser: 0, runAsGroup: 0, readOnlyRootFilesystem: true },
      volumeMounts: driverMounts,
      ...resourcesOf(c),
    },
  ];
  if (args.registrar !== undefined) {
    containers.push({
      name: 'node-driver-registrar',
      image: ctx.images.nodeDriverRegistrar,
      imagePullPolicy: 'IfNotPresent',
      args: [...args.registrar],
      ports: [{ name: 'healthz', containerPort: ctx.ports.csiHealth, protocol: 'TCP' }],
      livenessProbe: { httpGet: { path: '/healthz', port: 'healthz' }, initialDelaySeconds: 5, timeoutSeconds: 5 },
      volumeMounts: [
        { name: 'spiffe-csi-socket-dir', mountPath: PATHS.csiSocketDir },
        { name: 'kubelet-plugin-registration-dir', mountPath: PATHS.csiRegistrationDir },
      ],
    });
  }
  const init = ctx.hasOpenShiftGroups
    ? {
        // SELinux: let containers use the agent's socket directory through the bind mounts
        initContainers: [
          {
            name: 'set-context',
            image: ctx.images.csi,
            command: ['chcon', '-Rvt', 'container_file_t', 'spire-agent-socket/'],
            securityContext: { privileged: true, capabilities: { drop: ['all'] } },
            volumeMounts: [{ name: 'spire-agent-socket-dir', mountPath: '/spire-agent-socket' }],
          },
        ],
      }
    : {};
  return workload('DaemonSet', CSI_NAME, labels, selector, ctx, {
    podSpec: {
      serviceAccountName: CSI_NAME,
      // the driver needs no API access
      automountServiceAccountToken: false,
      ...podSpecExtras(c, ctx),
      ...init,
      containers,
      volumes,
    },
  });
}
