// What the renderers need besides the CRs: namespace, images, the API groups the cluster serves,
// ports and the test-only hostNetwork override. Defaults match ZTWIM 1.0 (digest §2–§3).
import { configError } from '@ztwim/core';
import type { ImageVariant } from '../validate/validate.ts';

/** The images of the operands (RELATED_IMAGE_* in the operator's environment). */
export interface Images {
  readonly server: string;
  readonly agent: string;
  readonly csi: string;
  readonly oidc: string;
  readonly registrar: string;
  /** node-driver-registrar: only in the spire variant (ztwim csi registers itself). */
  readonly nodeDriverRegistrar: string;
}

export const ZTWIM_IMAGE = 'ztwim:0.1.0';
/** The group the ztwim image runs as (scripts/k8s/image-contents.mjs: user 65532:65532). */
export const ZTWIM_IMAGE_GID = 65532;

export const DEFAULT_IMAGES: Readonly<Record<ImageVariant, Images>> = {
  ztwim: { server: ZTWIM_IMAGE, agent: ZTWIM_IMAGE, csi: ZTWIM_IMAGE, oidc: ZTWIM_IMAGE, registrar: ZTWIM_IMAGE, nodeDriverRegistrar: ZTWIM_IMAGE },
  spire: {
    server: 'ghcr.io/spiffe/spire-server:1.13.0',
    agent: 'ghcr.io/spiffe/spire-agent:1.13.0',
    csi: 'ghcr.io/spiffe/spiffe-csi-driver:0.2.8',
    oidc: 'ghcr.io/spiffe/oidc-discovery-provider:1.13.0',
    registrar: 'ghcr.io/spiffe/spire-controller-manager:0.6.4',
    nodeDriverRegistrar: 'registry.k8s.io/sig-storage/csi-node-driver-registrar:v2.13.0',
  },
};

/** The environment variables that override each image, as the OLM bundle sets them. */
export const RELATED_IMAGE_ENV: Readonly<Record<keyof Images, string>> = {
  server: 'RELATED_IMAGE_SPIRE_SERVER',
  agent: 'RELATED_IMAGE_SPIRE_AGENT',
  csi: 'RELATED_IMAGE_SPIFFE_CSI_DRIVER',
  oidc: 'RELATED_IMAGE_SPIFFE_OIDC_DISCOVERY_PROVIDER',
  registrar: 'RELATED_IMAGE_SPIRE_CONTROLLER_MANAGER',
  nodeDriverRegistrar: 'RELATED_IMAGE_NODE_DRIVER_REGISTRAR',
};

/** Images from RELATED_IMAGE_* (unset or empty: the variant's default). */
export function imagesFromEnv(env: Readonly<Record<string, string | undefined>>, variant: ImageVariant = 'ztwim'): Images {
  const base = DEFAULT_IMAGES[variant];
  const out: Record<string, string> = {};
  for (const k of Object.keys(base) as Array<keyof Images>) {
    const v = env[RELATED_IMAGE_ENV[k]];
    out[k] = v === undefined || v === '' ? base[k] : v;
  }
  return out as unknown as Images;
}

/** The kubelet's authenticated port SPIRE's k8s WorkloadAttestor dials by default. */
export const DEFAULT_KUBELET_SECURE_PORT = 10250;

/**
 * KUBELET_SECURE_PORT: the nodes' kubelet `--port` when it is not 10250 (rendered as the k8s
 * WorkloadAttestor's `kubelet_secure_port`). Unset or empty: the default. Anything but a port
 * number is a config error naming the variable, so the operator refuses to start rather than
 * render an agent.conf that cannot attest a pod.
 */
export function kubeletSecurePortFromEnv(env: Readonly<Record<string, string | undefined>>): number | undefined {
  const v = env['KUBELET_SECURE_PORT'];
  if (v === undefined || v.trim() === '') return undefined;
  const n = Number(v.trim());
  if (!/^\d+$/.test(v.trim()) || !Number.isInteger(n) || n < 1 || n > 65535) {
    throw configError(`KUBELET_SECURE_PORT must be a port number between 1 and 65535 (got ${JSON.stringify(v)})`);
  }
  return n;
}

/** Container ports. With hostNetwork several operands share the node's ports: set distinct ones. */
export interface Ports {
  readonly serverGrpc: number;
  readonly serverHealth: number;
  readonly serverMetrics: number;
  readonly serverFederation: number;
  readonly registrarWebhook: number;
  readonly registrarMetrics: number;
  readonly registrarHealth: number;
  readonly agentHealth: number;
  readonly agentMetrics: number;
  readonly csiHealth: number;
  readonly oidcHttps: number;
  readonly oidcHealth: number;
}

export const DEFAULT_PORTS: Ports = {
  serverGrpc: 8081,
  serverHealth: 8080,
  serverMetrics: 9402,
  serverFederation: 8443,
  registrarWebhook: 9443,
  registrarMetrics: 8082,
  registrarHealth: 8083,
  agentHealth: 9982,
  agentMetrics: 9402,
  csiHealth: 9809,
  oidcHttps: 8443,
  oidcHealth: 8008,
};

export interface RenderContext {
  /** The operand namespace (OPERATOR_NAMESPACE). */
  readonly namespace: string;
  /** ztwim (default) or SPIRE's images and commands. */
  readonly variant?: ImageVariant;
  readonly images?: Partial<Images>;
  /** The cluster serves route.openshift.io and security.openshift.io: render Routes and SCCs. */
  readonly hasOpenShiftGroups?: boolean;
  /** The cluster serves monitoring.coreos.com (ServiceMonitor). */
  readonly hasPrometheusOperator?: boolean;
  /** Default cluster.local. */
  readonly clusterDomain?: string;
  /** The kubelet's root directory on the nodes (default /var/lib/kubelet). */
  readonly kubeletRoot?: string;
  /** The kubelet's authenticated port on the nodes (default 10250; KUBELET_SECURE_PORT). */
  readonly kubeletSecurePort?: number;
  /**
   * TEST ONLY: run every operand pod on the host network. The project's test node has no pod
   * network; a real cluster must leave this unset. The agent then reaches the server at
   * `serverAddress` (default 127.0.0.1 and the server's gRPC port: a single-node cluster).
   */
  readonly hostNetwork?: boolean;
  /** Where agents reach the server (default the spire-server Service, port 443). */
  readonly serverAddress?: { readonly host: string; readonly port: number };
  readonly ports?: Partial<Ports>;
  /** app.kubernetes.io/version (default the image tag). */
  readonly version?: string;
}

/** A context with every default filled in. */
export interface ResolvedContext {
  readonly namespace: string;
  readonly variant: ImageVariant;
  readonly images: Images;
  readonly hasOpenShiftGroups: boolean;
  readonly hasPrometheusOperator: boolean;
  readonly clusterDomain: string;
  readonly kubeletRoot: string;
  readonly kubeletSecurePort: number;
  readonly hostNetwork: boolean;
  readonly serverAddress: { readonly host: string; readonly port: number };
  readonly ports: Ports;
  readonly version: string;
}

/**
 * On the host network the operands of one node share its ports: the agent's metrics and the
 * server's federation endpoint move off the server's metrics and the OIDC provider's ports.
 */
export const HOST_NETWORK_PORTS: Partial<Ports> = { agentMetrics: 9404, serverFederation: 8444 };

export function resolveContext(ctx: RenderContext): ResolvedContext {
  const variant = ctx.variant ?? 'ztwim';
  const hostNetwork = ctx.hostNetwork ?? false;
  const ports = { ...DEFAULT_PORTS, ...(hostNetwork ? HOST_NETWORK_PORTS : {}), ...ctx.ports };
  const images = { ...DEFAULT_IMAGES[variant], ...ctx.images };
  return {
    namespace: ctx.namespace,
    variant,
    images,
    hasOpenShiftGroups: ctx.hasOpenShiftGroups ?? false,
    hasPrometheusOperator: ctx.hasPrometheusOperator ?? false,
    clusterDomain: ctx.clusterDomain ?? 'cluster.local',
    kubeletRoot: (ctx.kubeletRoot ?? '/var/lib/kubelet').replace(/\/+$/, ''),
    kubeletSecurePort: ctx.kubeletSecurePort ?? DEFAULT_KUBELET_SECURE_PORT,
    hostNetwork,
    serverAddress: ctx.serverAddress ?? (hostNetwork ? { host: '127.0.0.1', port: ports.serverGrpc } : { host: `spire-server.${ctx.namespace}`, port: 443 }),
    ports,
    version: ctx.version ?? (variant === 'ztwim' ? (images.server.split(':')[1] ?? '0.1.0') : '1.13.0'),
  };
}
