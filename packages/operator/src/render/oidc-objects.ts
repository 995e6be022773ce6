// The SpireOIDCDiscoveryProvider's objects (digest §2.2, §2.4, §4.4): service account, Service,
// the two default ClusterSPIFFEIDs, ConfigMap, Deployment, external-cert RBAC and Route
// (OpenShift). The provider serves no metrics, so no ServiceMonitor.
import type { OidcSpec1_0 } from '../api/normalize.ts';
import { OIDC_SERVICE, PATHS, REGISTRAR_CLASS_NAME, issuerHostPath, oidcTlsSecret, renderOidcConfig, type PlaneIdentity } from './configs.ts';
import type { ResolvedContext } from './context.ts';
import {
  HASH_ANNOTATIONS,
  operandContainer,
  configHash,
  meta,
  objectLabels,
  podSpecExtras,
  resourcesOf,
  roleWithBinding,
  selectorLabels,
  serviceAccount,
  workload,
  collector,
  type KubeObject,
  type OperandRender,
} from './objects-common.ts';

export const OIDC_NAME = OIDC_SERVICE;
/** The default ClusterSPIFFEIDs' names (ZTWIM 1.0). */
export const OIDC_CLUSTER_SPIFFE_ID = 'zero-trust-workload-identity-manager-spire-oidc-discovery-provider';
export const DEFAULT_CLUSTER_SPIFFE_ID = 'zero-trust-workload-identity-manager-spire-default';
const ID_TEMPLATE = 'spiffe://{{ .TrustDomain }}/ns/{{ .PodMeta.Namespace }}/sa/{{ .PodSpec.ServiceAccountName }}';

export function renderOidcObjects(id: PlaneIdentity, o: OidcSpec1_0, ctx: ResolvedContext): OperandRender {
  const ns = ctx.namespace;
  const L = objectLabels('spiffe-oidc-discovery-provider', 'discovery', ctx, o.labels);
  const selector = selectorLabels('spiffe-oidc-discovery-provider', 'discovery');
  const conf = renderOidcConfig(id, o, ctx);
  const hashes = { [HASH_ANNOTATIONS.oidc]: configHash(conf) };
  const tls = oidcTlsSecret(o, ctx);
  const { objects, add } = collector('SpireOIDCDiscoveryProvider');
  add(serviceAccount(OIDC_NAME, L, ctx));
  add({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(
      OIDC_NAME,
      L,
      ns,
      ctx.hasOpenShiftGroups && o.externalSecretRef === undefined ? { 'service.beta.openshift.io/serving-cert-secret-name': 'oidc-serving-cert' } : undefined,
    ),
    spec: { type: 'ClusterIP', selector, ports: [{ name: 'https', port: 443, targetPort: 'https', protocol: 'TCP' }] },
  });
  add(
    {
      apiVersion: 'spire.spiffe.io/v1alpha1',
      kind: 'ClusterSPIFFEID',
      metadata: meta(OIDC_CLUSTER_SPIFFE_ID, L),
      spec: {
        className: REGISTRAR_CLASS_NAME,
        spiffeIDTemplate: ID_TEMPLATE,
        hint: 'oidc-discovery-provider',
        dnsNameTemplates: ['oidc-discovery.{{ .TrustDomain }}'],
        autoPopulateDNSNames: true,
        podSelector: { matchLabels: selector },
        namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: [ns] }] },
      },
    },
    true,
  );
  add(
    {
      apiVersion: 'spire.spiffe.io/v1alpha1',
      kind: 'ClusterSPIFFEID',
      metadata: meta(DEFAULT_CLUSTER_SPIFFE_ID, L),
      spec: {
        className: REGISTRAR_CLASS_NAME,
        spiffeIDTemplate: ID_TEMPLATE,
        hint: 'default',
        fallback: true,
        namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: [ns] }] },
      },
    },
    true,
  );
  add({ apiVersion: 'v1', kind: 'ConfigMap', metadata: meta(OIDC_NAME, L, ns), data: { 'oidc-discovery-provider.conf': conf } });
  add(deployment(o, ctx, L, selector, hashes, tls));
  if (ctx.hasOpenShiftGroups && o.externalSecretRef !== undefined) {
    const [role, binding] = roleWithBinding(
      false,
      'spire-oidc-external-cert-reader',
      [{ apiGroups: [''], resources: ['secrets'], resourceNames: [o.externalSecretRef], verbs: ['get', 'list', 'watch'] }],
      OIDC_NAME,
      L,
      ctx,
    );
    add(role);
    add({ ...binding, subjects: [{ kind: 'ServiceAccount', name: 'router', namespace: 'openshift-ingress' }] });
  }
  if (ctx.hasOpenShiftGroups && o.managedRoute === 'true') {
    const hostPath = issuerHostPath(o.jwtIssuer);
    const [host = hostPath, ...rest] = hostPath.split('/');
    add({
      apiVersion: 'route.openshift.io/v1',
      kind: 'Route',
      metadata: meta('spire-oidc-discovery-provider', L, ns),
      spec: {
        host,
        ...(rest.length === 0 ? {} : { path: `/${rest.join('/')}` }),
        to: { kind: 'Service', name: OIDC_NAME, weight: 100 },
        port: { targetPort: 'https' },
        tls: {
          termination: 'reencrypt',
          insecureEdgeTerminationPolicy: 'Redirect',
          ...(o.externalSecretRef === undefined ? {} : { externalCertificate: { name: o.externalSecretRef } }),
        },
        wildcardPolicy: 'None',
      },
    });
  }
  return { objects, configHashes: hashes, configs: { oidcConf: conf } };
}

function deployment(
  o: OidcSpec1_0,
  ctx: ResolvedContext,
  labels: Record<string, string>,
  selector: Record<string, string>,
  hashes: Record<string, string>,
  tls: string | undefined,
): KubeObject {
  const volumes: Array<Record<string, unknown>> = [
    { name: 'spiffe-workload-api', csi: { driver: o.csiDriverName, readOnly: true } },
    { name: 'spire-oidc-config', configMap: { name: OIDC_NAME } },
    ...(tls === undefined ? [] : [{ name: 'tls-certs', secret: { secretName: tls } }]),
  ];
  const mounts: Array<Record<string, unknown>> = [
    { name: 'spiffe-workload-api', mountPath: PATHS.oidcWorkloadApiDir, readOnly: true },
    { name: 'spire-oidc-config', mountPath: PATHS.oidcConfigDir, readOnly: true },
    ...(tls === undefined ? [] : [{ name: 'tls-certs', mountPath: PATHS.oidcTlsDir, readOnly: true }]),
  ];
  const p = ctx.ports;
  return workload('Deployment', OIDC_NAME, labels, selector, ctx, {
    annotations: hashes,
    spec: {
      replicas: o.replicaCount,
    },
    podSpec: {
      serviceAccountName: OIDC_NAME,
      ...podSpecExtras(o, ctx),
      containers: [
        {
          ...operandContainer(ctx, 'spiffe-oidc-discovery-provider', ctx.images.oidc, ['oidc', 'run'], ['-config', PATHS.oidcConf]),
          ports: [
            { name: 'healthz', containerPort: p.oidcHealth, protocol: 'TCP' },
            { name: 'https', containerPort: p.oidcHttps, protocol: 'TCP' },
          ],
          livenessProbe: { httpGet: { path: '/live', port: 'healthz' }, initialDelaySeconds: 5, periodSeconds: 5 },
          readinessProbe: { httpGet: { path: '/ready', port: 'healthz' }, initialDelaySeconds: 5, periodSeconds: 5 },
          volumeMounts: mounts,
          ...resourcesOf(o),
        },
      ],
      volumes,
    },
  });
}
