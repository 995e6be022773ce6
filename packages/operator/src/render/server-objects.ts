// The SpireServer's objects (digest §2.2, §2.4): service account, Services, RBAC, webhook
// configuration, ConfigMaps, the StatefulSet with the server and the registrar, the federation
// Route (OpenShift) and a ServiceMonitor (lift).
import type { ServerSpec1_0 } from '../api/normalize.ts';
import { DATASTORE_ENV, PATHS, WEBHOOK_CONFIGURATION_NAME, renderRegistrarConfig, renderServerConf, type PlaneIdentity } from './configs.ts';
import { ZTWIM_IMAGE_GID, type ResolvedContext } from './context.ts';
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
  serviceMonitor,
  workload,
  collector,
  type KubeObject,
  type OperandRender,
} from './objects-common.ts';

export const SERVER_NAME = 'spire-server';
export const REGISTRAR_NAME = 'spire-controller-manager';
export const WEBHOOK_SERVICE = 'spire-controller-manager-webhook';
/** The headless Service of the server pods (replicas > 1): its DNS name resolves to every ready pod. */
export const SERVER_HEADLESS_SERVICE = 'spire-server-headless';

/**
 * Where agents reach the servers. One replica: the context's address (the spire-server Service,
 * or 127.0.0.1 on the host network). Several: the headless Service's name, which resolves to the
 * address of every ready server pod, on the pods' gRPC port (a headless Service maps no ports); the
 * agents fail over between those addresses and spread over them again when a server returns
 * (docs/ha.md). A ClusterIP would hide the servers behind one address: an agent could not leave a
 * hung pod nor rebalance. An address the caller set (RenderContext.serverAddress) and the host
 * network (one node: one server port) keep the context's address.
 */
export function serverAddressForAgents(ctx: ResolvedContext, serverReplicas: number, addressSet: boolean): { readonly host: string; readonly port: number } {
  if (serverReplicas <= 1 || addressSet || ctx.hostNetwork) return ctx.serverAddress;
  return { host: `${SERVER_HEADLESS_SERVICE}.${ctx.namespace}.svc.${ctx.clusterDomain}`, port: ctx.ports.serverGrpc };
}

export function renderServerObjects(id: PlaneIdentity, s: ServerSpec1_0, ctx: ResolvedContext): OperandRender {
  const ns = ctx.namespace;
  const L = objectLabels(SERVER_NAME, 'control-plane', ctx, s.labels);
  const LR = objectLabels(REGISTRAR_NAME, 'control-plane', ctx, s.labels);
  const selector = selectorLabels(SERVER_NAME, 'control-plane');
  const serverConf = renderServerConf(id, s, ctx);
  const registrarConfig = renderRegistrarConfig(id, ctx);
  const hashes = { [HASH_ANNOTATIONS.server]: configHash(serverConf), [HASH_ANNOTATIONS.registrar]: configHash(registrarConfig) };
  const fed = s.federation;
  const servingCertSecret = fed?.bundleEndpoint.httpsWeb?.servingCert?.externalSecretRef ?? 'spire-server-serving-cert';
  const usesServingCert = fed?.bundleEndpoint.httpsWeb?.servingCert !== undefined;
  const { objects, add } = collector('SpireServer');

  add(serviceAccount(SERVER_NAME, L, ctx));
  add({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(
      SERVER_NAME,
      L,
      ns,
      fed !== undefined && usesServingCert && ctx.hasOpenShiftGroups && fed.bundleEndpoint.httpsWeb?.servingCert?.externalSecretRef === undefined
        ? { 'service.beta.openshift.io/serving-cert-secret-name': servingCertSecret }
        : undefined,
    ),
    spec: {
      type: 'ClusterIP',
      selector,
      ports: [
        { name: 'grpc', port: 443, targetPort: 'grpc', protocol: 'TCP' },
        { name: 'metrics', port: 9402, targetPort: 'metrics', protocol: 'TCP' },
        ...(fed === undefined ? [] : [{ name: 'federation', port: 8443, targetPort: 'federation', protocol: 'TCP' }]),
      ],
    },
  });
  if (s.replicas > 1) {
    // Several servers: agents resolve this name to every ready server pod (serverAddressForAgents).
    add({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: meta(SERVER_HEADLESS_SERVICE, L, ns),
      spec: {
        type: 'ClusterIP',
        clusterIP: 'None',
        selector,
        ports: [{ name: 'grpc', port: ctx.ports.serverGrpc, targetPort: 'grpc', protocol: 'TCP' }],
      },
    });
  }
  // lift: the webhook Service selects the pods that run the registrar (ZTWIM 1.0's matches none)
  add({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(WEBHOOK_SERVICE, LR, ns),
    spec: { type: 'ClusterIP', selector, ports: [{ name: 'https', port: 443, targetPort: 'webhook', protocol: 'TCP' }] },
  });
  for (const o of roleWithBinding(
    true,
    SERVER_NAME,
    [
      { apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] },
      { apiGroups: [''], resources: ['pods', 'nodes'], verbs: ['get'] },
    ],
    SERVER_NAME,
    L,
    ctx,
  ))
    add(o, true);
  for (const o of roleWithBinding(
    false,
    'spire-bundle',
    [{ apiGroups: [''], resources: ['configmaps'], resourceNames: [id.bundleConfigMap], verbs: ['get', 'patch'] }],
    SERVER_NAME,
    L,
    ctx,
  ))
    add(o);
  for (const o of roleWithBinding(
    true,
    REGISTRAR_NAME,
    [
      { apiGroups: [''], resources: ['namespaces', 'nodes', 'pods', 'endpoints'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: ['admissionregistration.k8s.io'], resources: ['validatingwebhookconfigurations'], verbs: ['get', 'list', 'watch', 'patch'] },
      {
        apiGroups: ['spire.spiffe.io'],
        resources: ['clusterfederatedtrustdomains', 'clusterspiffeids', 'clusterstaticentries'],
        verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'],
      },
      {
        apiGroups: ['spire.spiffe.io'],
        resources: ['clusterfederatedtrustdomains/status', 'clusterspiffeids/status', 'clusterstaticentries/status'],
        verbs: ['get', 'update', 'patch'],
      },
      {
        apiGroups: ['spire.spiffe.io'],
        resources: ['clusterfederatedtrustdomains/finalizers', 'clusterspiffeids/finalizers', 'clusterstaticentries/finalizers'],
        verbs: ['update'],
      },
    ],
    SERVER_NAME,
    LR,
    ctx,
  ))
    add(o, true);
  for (const o of roleWithBinding(
    false,
    `${REGISTRAR_NAME}-leader-election`,
    [
      { apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'] },
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'] },
      { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
    ],
    SERVER_NAME,
    LR,
    ctx,
  ))
    add(o);
  if (ctx.hasOpenShiftGroups && usesServingCert && fed?.bundleEndpoint.httpsWeb?.servingCert?.externalSecretRef !== undefined) {
    const [role, binding] = roleWithBinding(
      false,
      'spire-server-external-cert-reader',
      [{ apiGroups: [''], resources: ['secrets'], resourceNames: [servingCertSecret], verbs: ['get', 'list', 'watch'] }],
      SERVER_NAME,
      L,
      ctx,
    );
    add(role);
    add({ ...binding, subjects: [{ kind: 'ServiceAccount', name: 'router', namespace: 'openshift-ingress' }] });
  }
  const webhook = (name: string, resource: string): Record<string, unknown> => ({
    name,
    admissionReviewVersions: ['v1'],
    clientConfig: { service: { name: WEBHOOK_SERVICE, namespace: ns, path: `/validate-spire-spiffe-io-v1alpha1-${resource.replace(/s$/, '')}` } },
    failurePolicy: 'Ignore',
    sideEffects: 'None',
    rules: [{ apiGroups: ['spire.spiffe.io'], apiVersions: ['v1alpha1'], operations: ['CREATE', 'UPDATE'], resources: [resource] }],
  });
  add(
    {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingWebhookConfiguration',
      metadata: meta(WEBHOOK_CONFIGURATION_NAME, LR),
      webhooks: [webhook('vclusterspiffeid.kb.io', 'clusterspiffeids'), webhook('vclusterfederatedtrustdomain.kb.io', 'clusterfederatedtrustdomains')],
    },
    true,
  );
  add({ apiVersion: 'v1', kind: 'ConfigMap', metadata: meta(SERVER_NAME, L, ns), data: { 'server.conf': serverConf } });
  add({ apiVersion: 'v1', kind: 'ConfigMap', metadata: meta(REGISTRAR_NAME, LR, ns), data: { 'controller-manager-config.yaml': registrarConfig } });
  // created empty; the server's k8sbundle notifier writes bundle.crt into it
  add({ apiVersion: 'v1', kind: 'ConfigMap', metadata: meta(id.bundleConfigMap, L, ns) }, false, true);
  add(statefulSet(id, s, ctx, L, selector, hashes, servingCertSecret));
  if (fed !== undefined && ctx.hasOpenShiftGroups && fed.managedRoute === 'true') {
    add({
      apiVersion: 'route.openshift.io/v1',
      kind: 'Route',
      metadata: meta('spire-server-federation', L, ns),
      spec: {
        host: fed.routeHost ?? `federation.${id.trustDomain}`,
        to: { kind: 'Service', name: SERVER_NAME, weight: 100 },
        port: { targetPort: 'federation' },
        tls: usesServingCert
          ? { termination: 'reencrypt', insecureEdgeTerminationPolicy: 'Redirect' }
          : { termination: 'passthrough', insecureEdgeTerminationPolicy: 'Redirect' },
        wildcardPolicy: 'None',
      },
    });
  }
  if (s.serviceMonitor?.enabled === 'true' && ctx.hasPrometheusOperator)
    add(serviceMonitor(SERVER_NAME, L, selector, 'metrics', s.serviceMonitor.interval, ctx));
  return { objects, configHashes: hashes, configs: { serverConf, registrarConfig } };
}

/**
 * The registrar beside the server logs at the SpireServer's logLevel. spire-controller-manager
 * takes controller-runtime's --zap-log-level, which knows debug, info and error (no warn: info).
 */
function registrarArgs(level: ServerSpec1_0['logLevel'], ctx: ResolvedContext): string[] {
  if (ctx.variant === 'ztwim') return ['-config', PATHS.registrarConfig, '-log-level', level];
  return [`--config=${PATHS.registrarConfig}`, `--zap-log-level=${level === 'warn' ? 'info' : level}`];
}

function statefulSet(
  id: PlaneIdentity,
  s: ServerSpec1_0,
  ctx: ResolvedContext,
  labels: Record<string, string>,
  selector: Record<string, string>,
  hashes: Record<string, string>,
  servingCertSecret: string,
): KubeObject {
  const ds = s.datastore;
  const p = ctx.ports;
  const fed = s.federation;
  const pvc = s.persistence.type === undefined || s.persistence.type === 'pvc';
  const volumes: Array<Record<string, unknown>> = [
    { name: 'spire-config', configMap: { name: SERVER_NAME } },
    { name: 'controller-manager-config', configMap: { name: REGISTRAR_NAME } },
    { name: 'spire-server-socket', emptyDir: {} },
  ];
  if (!pvc) {
    volumes.push(
      s.persistence.type === 'hostPath'
        ? { name: 'spire-data', hostPath: { path: s.persistence.hostPath ?? '/var/lib/spire-server', type: 'DirectoryOrCreate' } }
        : { name: 'spire-data', emptyDir: {} },
    );
  }
  const serverMounts: Array<Record<string, unknown>> = [
    { name: 'spire-config', mountPath: PATHS.configDir, readOnly: true },
    { name: 'spire-data', mountPath: PATHS.serverDataDir },
    { name: 'spire-server-socket', mountPath: PATHS.serverSocketDir },
  ];
  if (ds.tlsSecretName !== undefined) {
    volumes.push({ name: 'db-certs', secret: { secretName: ds.tlsSecretName } });
    serverMounts.push({ name: 'db-certs', mountPath: PATHS.dbCertsDir, readOnly: true });
  }
  if (fed?.bundleEndpoint.httpsWeb?.servingCert !== undefined) {
    volumes.push({ name: 'server-tls', secret: { secretName: servingCertSecret } });
    serverMounts.push({ name: 'server-tls', mountPath: PATHS.serverTlsDir, readOnly: true });
  }
  const env: Array<Record<string, unknown>> = [];
  if (ds.connectionStringSecretRef !== undefined) {
    env.push({ name: DATASTORE_ENV, valueFrom: { secretKeyRef: { name: ds.connectionStringSecretRef.name, key: ds.connectionStringSecretRef.key } } });
  }
  const server = {
    ...operandContainer(ctx, 'spire-server', ctx.images.server, ['server', 'run'], ['-expandEnv', '-config', PATHS.serverConf]),
    ...(env.length === 0 ? {} : { env }),
    ports: [
      { name: 'grpc', containerPort: p.serverGrpc, protocol: 'TCP' },
      { name: 'healthz', containerPort: p.serverHealth, protocol: 'TCP' },
      { name: 'metrics', containerPort: p.serverMetrics, protocol: 'TCP' },
      ...(fed === undefined ? [] : [{ name: 'federation', containerPort: p.serverFederation, protocol: 'TCP' }]),
    ],
    livenessProbe: { httpGet: { path: '/live', port: 'healthz' }, initialDelaySeconds: 15, periodSeconds: 60, timeoutSeconds: 3, failureThreshold: 2 },
    readinessProbe: { httpGet: { path: '/ready', port: 'healthz' }, initialDelaySeconds: 5, periodSeconds: 5 },
    volumeMounts: serverMounts,
    ...resourcesOf(s),
  };
  const registrar = {
    ...operandContainer(ctx, 'spire-controller-manager', ctx.images.registrar, ['registrar'], registrarArgs(s.logLevel, ctx)),
    env: [{ name: 'ENABLE_WEBHOOKS', value: 'true' }],
    ports: [
      { name: 'webhook', containerPort: p.registrarWebhook, protocol: 'TCP' },
      { name: 'cm-healthz', containerPort: p.registrarHealth, protocol: 'TCP' },
      { name: 'cm-metrics', containerPort: p.registrarMetrics, protocol: 'TCP' },
    ],
    livenessProbe: { httpGet: { path: '/healthz', port: 'cm-healthz' }, initialDelaySeconds: 15, periodSeconds: 20 },
    readinessProbe: { httpGet: { path: '/readyz', port: 'cm-healthz' }, initialDelaySeconds: 5, periodSeconds: 10 },
    volumeMounts: [
      { name: 'spire-server-socket', mountPath: PATHS.serverSocketDir, readOnly: true },
      { name: 'controller-manager-config', mountPath: PATHS.configDir, readOnly: true },
    ],
  };
  return workload('StatefulSet', SERVER_NAME, labels, selector, ctx, {
    annotations: hashes,
    spec: {
      replicas: s.replicas,
      serviceName: SERVER_NAME,
      ...(pvc
        ? {
            volumeClaimTemplates: [
              {
                apiVersion: 'v1',
                kind: 'PersistentVolumeClaim',
                metadata: { name: 'spire-data', labels },
                spec: {
                  accessModes: [s.persistence.accessMode],
                  resources: { requests: { storage: s.persistence.size } },
                  ...(s.persistence.storageClass === '' ? {} : { storageClassName: s.persistence.storageClass }),
                },
              },
            ],
          }
        : {}),
    },
    podSpec: {
      serviceAccountName: SERVER_NAME,
      // the ztwim image runs as uid/gid 65532: the kubelet gives the data volume (PVC, emptyDir)
      // that group so the server can write its datastore and keys
      ...(ctx.variant === 'ztwim' ? { securityContext: { fsGroup: ZTWIM_IMAGE_GID } } : {}),
      ...podSpecExtras(s, ctx),
      containers: [server, registrar],
      volumes,
    },
  });
}
