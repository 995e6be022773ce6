// The SpireAgent's objects (digest §2.2, §2.4): service account, metrics Service, RBAC, SCC
// (OpenShift), ConfigMap and the DaemonSet.
import type { AgentSpec1_0 } from '../api/normalize.ts';
import { PATHS, kubeletCaPath, renderAgentConf, type PlaneIdentity } from './configs.ts';
import type { ResolvedContext } from './context.ts';
import {
  HASH_ANNOTATIONS,
  operandContainer,
  configHash,
  meta,
  nodeNameEnv,
  objectLabels,
  podSpecExtras,
  resourcesOf,
  roleWithBinding,
  selectorLabels,
  serviceAccount,
  serviceMonitor,
  workload,
  collector,
  type KubeObject,
  type OperandRender,
} from './objects-common.ts';

export const AGENT_NAME = 'spire-agent';

export function renderAgentObjects(id: PlaneIdentity, a: AgentSpec1_0, ctx: ResolvedContext): OperandRender {
  const ns = ctx.namespace;
  const L = objectLabels(AGENT_NAME, 'node-agent', ctx, a.labels);
  const selector = selectorLabels(AGENT_NAME, 'node-agent');
  const agentConf = renderAgentConf(id, a, ctx);
  const hashes = { [HASH_ANNOTATIONS.agent]: configHash(agentConf) };
  const { objects, add } = collector('SpireAgent');
  add(serviceAccount(AGENT_NAME, L, ctx));
  add({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(AGENT_NAME, L, ns),
    spec: { type: 'ClusterIP', clusterIP: 'None', selector, ports: [{ name: 'metrics', port: 9402, targetPort: 'metrics', protocol: 'TCP' }] },
  });
  for (const o of roleWithBinding(true, AGENT_NAME, [{ apiGroups: [''], resources: ['pods', 'nodes', 'nodes/proxy'], verbs: ['get'] }], AGENT_NAME, L, ctx))
    add(o, true);
  if (ctx.hasOpenShiftGroups) {
    add(
      {
        apiVersion: 'security.openshift.io/v1',
        kind: 'SecurityContextConstraints',
        metadata: meta(AGENT_NAME, L),
        allowHostDirVolumePlugin: true,
        allowHostIPC: false,
        allowHostNetwork: ctx.hostNetwork,
        allowHostPID: true,
        allowHostPorts: ctx.hostNetwork,
        allowPrivilegeEscalation: true,
        allowPrivilegedContainer: false,
        allowedCapabilities: null,
        defaultAddCapabilities: null,
        // required by OpenShift's SCC schema (nullable): the Go type marshals an unset priority as null
        priority: null,
        requiredDropCapabilities: ['ALL'],
        fsGroup: { type: 'RunAsAny' },
        runAsUser: { type: 'RunAsAny' },
        seLinuxContext: { type: 'RunAsAny' },
        supplementalGroups: { type: 'RunAsAny' },
        readOnlyRootFilesystem: false,
        users: [`system:serviceaccount:${ns}:${AGENT_NAME}`],
        volumes: ['configMap', 'hostPath', 'projected', 'secret', 'emptyDir'],
      },
      true,
    );
  }
  add({ apiVersion: 'v1', kind: 'ConfigMap', metadata: meta(AGENT_NAME, L, ns), data: { 'agent.conf': agentConf } });
  add(daemonSet(id, a, ctx, L, selector, hashes));
  if (a.serviceMonitor?.enabled === 'true' && ctx.hasPrometheusOperator)
    add(serviceMonitor(AGENT_NAME, L, selector, 'metrics', a.serviceMonitor.interval, ctx));
  return { objects, configHashes: hashes, configs: { agentConf } };
}

function daemonSet(
  id: PlaneIdentity,
  a: AgentSpec1_0,
  ctx: ResolvedContext,
  labels: Record<string, string>,
  selector: Record<string, string>,
  hashes: Record<string, string>,
): KubeObject {
  const volumes: Array<Record<string, unknown>> = [
    { name: 'spire-config', configMap: { name: AGENT_NAME } },
    { name: 'spire-bundle', configMap: { name: id.bundleConfigMap } },
    { name: 'spire-agent-socket-dir', hostPath: { path: a.socketPath, type: 'DirectoryOrCreate' } },
    { name: 'spire-token', projected: { sources: [{ serviceAccountToken: { path: 'spire-agent', audience: 'spire-server', expirationSeconds: 7200 } }] } },
    { name: 'spire-agent-persistence', emptyDir: {} },
  ];
  const mounts: Array<Record<string, unknown>> = [
    { name: 'spire-config', mountPath: PATHS.configDir, readOnly: true },
    { name: 'spire-bundle', mountPath: PATHS.bundleDir, readOnly: true },
    { name: 'spire-agent-socket-dir', mountPath: PATHS.agentSocketDir },
    { name: 'spire-token', mountPath: PATHS.tokenDir, readOnly: true },
    { name: 'spire-agent-persistence', mountPath: PATHS.agentDataDir },
  ];
  const ca = a.workloadAttestors?.k8sEnabled === 'true' ? kubeletCaPath(a) : undefined;
  if (ca !== undefined) {
    const dir = ca.replace(/\/[^/]*$/, '') || '/';
    volumes.push({ name: 'kubelet-ca', hostPath: { path: dir, type: 'Directory' } });
    mounts.push({ name: 'kubelet-ca', mountPath: dir, readOnly: true });
  }
  const p = ctx.ports;
  const probes =
    ctx.variant === 'ztwim'
      ? // ztwim agent serves no health listener: its healthcheck command asks the Workload API
        {
          livenessProbe: {
            exec: { command: ['ztwim', 'agent', 'healthcheck', '-socketPath', PATHS.agentSocket] },
            initialDelaySeconds: 15,
            periodSeconds: 60,
            timeoutSeconds: 5,
            failureThreshold: 2,
          },
          readinessProbe: {
            exec: { command: ['ztwim', 'agent', 'healthcheck', '-socketPath', PATHS.agentSocket, '-shallow'] },
            initialDelaySeconds: 5,
            periodSeconds: 10,
            timeoutSeconds: 5,
          },
        }
      : {
          livenessProbe: { httpGet: { path: '/live', port: 'healthz' }, initialDelaySeconds: 15, periodSeconds: 60, timeoutSeconds: 3, failureThreshold: 2 },
          readinessProbe: { httpGet: { path: '/ready', port: 'healthz' }, initialDelaySeconds: 5, periodSeconds: 5 },
        };
  return workload('DaemonSet', AGENT_NAME, labels, selector, ctx, {
    annotations: hashes,
    podSpec: {
      serviceAccountName: AGENT_NAME,
      hostPID: true,
      ...podSpecExtras(a, ctx),
      containers: [
        {
          ...operandContainer(ctx, 'spire-agent', ctx.images.agent, ['agent', 'run'], ['-config', PATHS.agentConf]),
          env: [...(ctx.variant === 'ztwim' ? [{ name: 'NODE_OPTIONS', value: '--max-semi-space-size=4' }] : []), nodeNameEnv],
          ports: [
            { name: 'healthz', containerPort: p.agentHealth, protocol: 'TCP' },
            { name: 'metrics', containerPort: p.agentMetrics, protocol: 'TCP' },
          ],
          // root: it reads /proc of other users' processes and creates the socket in the host directory
          securityContext: { runAsUser: 0, runAsGroup: 0, privileged: false },
          ...probes,
          volumeMounts: mounts,
          ...resourcesOf(a),
        },
      ],
      volumes,
    },
  });
}
