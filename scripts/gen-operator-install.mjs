#!/usr/bin/env node
// The operator's three install forms, generated from one description (this file) and the CRDs:
//
//   deploy/manifests/install.yaml      namespace, the 8 CRDs, RBAC, Deployment
//                                      (`kubectl apply -f deploy/manifests/install.yaml`,
//                                       `kubectl apply -k deploy/manifests`)
//   deploy/helm/ztwim/crds/*.yaml      the CRDs (Helm installs crds/ first and never deletes them)
//   deploy/helm/ztwim/templates/rbac.yaml   the same RBAC, namespace from the release
//   deploy/olm/bundle/manifests/       CSV (permissions, deployment, owned CRDs) and the CRDs
//   deploy/olm/bundle/metadata/annotations.yaml
//
// CRDs come from deploy/operator/crds/ (operator.openshift.io, scripts/gen-operator-crds) and
// deploy/k8s/registrar/crds/ (spire.spiffe.io). `--check` exits 1 naming each generated file that
// differs from what is committed (the operator tests run it).
import { mkdirSync, readdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';

const ROOT = new URL('..', import.meta.url).pathname;
const VERSION = '0.1.0';
const NAME = 'ztwim-operator';
const DEFAULT_NAMESPACE = 'zero-trust-workload-identity-manager';
const IMAGE = `ztwim:${VERSION}`;
const CRD_DIRS = ['deploy/operator/crds', 'deploy/k8s/registrar/crds'];
const LABELS = { 'app.kubernetes.io/name': NAME, 'app.kubernetes.io/part-of': 'zero-trust-workload-identity-manager', 'app.kubernetes.io/version': VERSION };

const CRUD = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'];
const READ = ['get', 'list', 'watch'];
const OPERATOR_KINDS = ['zerotrustworkloadidentitymanagers', 'spireservers', 'spireagents', 'spiffecsidrivers', 'spireoidcdiscoveryproviders'];

/**
 * Cluster-wide permissions: the operator's CRs, the cluster-scoped objects it generates, and what
 * the operands' ClusterRoles grant (Kubernetes lets a subject create a role only with permissions
 * it holds itself, and this operator holds no `escalate` or `bind`).
 */
export const CLUSTER_RULES = [
  { apiGroups: ['operator.openshift.io'], resources: OPERATOR_KINDS, verbs: ['get', 'list', 'watch', 'update', 'patch'] },
  { apiGroups: ['operator.openshift.io'], resources: OPERATOR_KINDS.map((k) => `${k}/status`), verbs: ['get', 'update', 'patch'] },
  { apiGroups: ['operator.openshift.io'], resources: OPERATOR_KINDS.map((k) => `${k}/finalizers`), verbs: ['update'] },
  { apiGroups: ['rbac.authorization.k8s.io'], resources: ['clusterroles', 'clusterrolebindings'], verbs: CRUD },
  { apiGroups: ['storage.k8s.io'], resources: ['csidrivers'], verbs: CRUD },
  { apiGroups: ['admissionregistration.k8s.io'], resources: ['validatingwebhookconfigurations'], verbs: CRUD },
  { apiGroups: ['spire.spiffe.io'], resources: ['clusterspiffeids', 'clusterstaticentries', 'clusterfederatedtrustdomains'], verbs: CRUD },
  {
    apiGroups: ['spire.spiffe.io'],
    resources: ['clusterspiffeids/status', 'clusterstaticentries/status', 'clusterfederatedtrustdomains/status'],
    verbs: ['get', 'update', 'patch'],
  },
  {
    apiGroups: ['spire.spiffe.io'],
    resources: ['clusterspiffeids/finalizers', 'clusterstaticentries/finalizers', 'clusterfederatedtrustdomains/finalizers'],
    verbs: ['update'],
  },
  // Granted onwards to spire-server (k8s_psat), spire-agent (k8s workload attestor) and the registrar.
  { apiGroups: [''], resources: ['pods', 'nodes', 'namespaces', 'endpoints'], verbs: READ },
  { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: READ },
  { apiGroups: [''], resources: ['nodes/proxy'], verbs: ['get'] },
  { apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] },
  // Rendered only when the apiserver serves these groups (OpenShift, Prometheus operator).
  { apiGroups: ['route.openshift.io'], resources: ['routes', 'routes/custom-host'], verbs: CRUD },
  { apiGroups: ['security.openshift.io'], resources: ['securitycontextconstraints'], verbs: [...CRUD, 'use'] },
  { apiGroups: ['monitoring.coreos.com'], resources: ['servicemonitors'], verbs: CRUD },
];

/** Permissions in the operator's (= the operands') namespace. */
export const NAMESPACE_RULES = [
  { apiGroups: [''], resources: ['serviceaccounts', 'services', 'configmaps'], verbs: CRUD },
  { apiGroups: ['apps'], resources: ['statefulsets', 'daemonsets', 'deployments'], verbs: CRUD },
  { apiGroups: ['rbac.authorization.k8s.io'], resources: ['roles', 'rolebindings'], verbs: CRUD },
  // Leader election of the operator and of the registrar (granted onwards).
  { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: CRUD },
  { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
  // Granted onwards (by resourceNames) to the router for an external TLS Secret (OpenShift only).
  { apiGroups: [''], resources: ['secrets'], verbs: READ },
];

/** RELATED_IMAGE_* (OLM's image references): one ztwim image runs every operand. */
const RELATED_IMAGES = ['SPIRE_SERVER', 'SPIRE_AGENT', 'SPIFFE_CSI_DRIVER', 'SPIFFE_OIDC_DISCOVERY_PROVIDER', 'SPIRE_CONTROLLER_MANAGER'];

function deploymentSpec(image) {
  return {
    replicas: 1,
    selector: { matchLabels: { 'app.kubernetes.io/name': NAME } },
    template: {
      metadata: { labels: { ...LABELS } },
      spec: {
        serviceAccountName: NAME,
        securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
        containers: [
          {
            name: 'operator',
            image,
            imagePullPolicy: 'IfNotPresent',
            args: ['operator'],
            env: [
              { name: 'OPERATOR_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
              { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
              ...RELATED_IMAGES.map((n) => ({ name: `RELATED_IMAGE_${n}`, value: image })),
            ],
            ports: [{ name: 'health', containerPort: 8081 }],
            livenessProbe: { httpGet: { path: '/healthz', port: 'health' }, initialDelaySeconds: 5, periodSeconds: 20 },
            readinessProbe: { httpGet: { path: '/readyz', port: 'health' }, periodSeconds: 10 },
            securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
            resources: { requests: { cpu: '10m', memory: '64Mi' }, limits: { memory: '256Mi' } },
          },
        ],
      },
    },
  };
}

function rbac(ns) {
  const meta = (name, namespaced) => ({ name, ...(namespaced ? { namespace: ns } : {}), labels: { ...LABELS } });
  return [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta(NAME, true) },
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: meta(NAME, false), rules: CLUSTER_RULES },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: meta(NAME, false),
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: NAME },
      subjects: [{ kind: 'ServiceAccount', name: NAME, namespace: ns }],
    },
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: meta(NAME, true), rules: NAMESPACE_RULES },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: meta(NAME, true),
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: NAME },
      subjects: [{ kind: 'ServiceAccount', name: NAME, namespace: ns }],
    },
  ];
}

function readCrds() {
  const crds = [];
  for (const dir of CRD_DIRS) {
    const abs = join(ROOT, dir);
    if (!existsSync(abs)) continue;
    for (const f of readdirSync(abs)
      .filter((n) => /\.ya?ml$/.test(n))
      .sort()) {
      for (const doc of parseAllDocuments(readFileSync(join(abs, f), 'utf8'))) {
        const o = doc.toJS();
        if (o?.kind === 'CustomResourceDefinition') crds.push({ file: f, object: o });
      }
    }
  }
  return crds;
}

const HEADER = '# Generated by scripts/gen-operator-install.mjs: edit that script (or the CRD sources), not this file.\n';
const yamlDocs = (objs) => HEADER + objs.map((o) => `---\n${stringify(o, { lineWidth: 0 })}`).join('');

function almExamples() {
  const cr = (kind, spec) => ({ apiVersion: 'operator.openshift.io/v1alpha1', kind, metadata: { name: 'cluster' }, spec });
  return [
    cr('ZeroTrustWorkloadIdentityManager', { trustDomain: 'example.org', clusterName: 'cluster1' }),
    cr('SpireServer', { jwtIssuer: 'https://oidc-discovery.example.org', caSubject: { country: 'US', organization: 'Example', commonName: 'example.org' } }),
    cr('SpireAgent', {}),
    cr('SpiffeCSIDriver', {}),
    cr('SpireOIDCDiscoveryProvider', { jwtIssuer: 'https://oidc-discovery.example.org' }),
  ];
}

function csv(crds) {
  // Every CRD in the bundle is owned by this CSV (spire.spiffe.io's too: the operator installs them).
  const owned = crds.map((c) => ({
    name: c.object.metadata.name,
    version: c.object.spec.versions?.[0]?.name ?? 'v1alpha1',
    kind: c.object.spec.names.kind,
    displayName: c.object.spec.names.kind,
    description:
      c.object.spec.group === 'operator.openshift.io'
        ? `${c.object.spec.names.kind} (a singleton named cluster)`
        : `${c.object.spec.names.kind} (spire.spiffe.io, reconciled by the registrar)`,
  }));
  return {
    apiVersion: 'operators.coreos.com/v1alpha1',
    kind: 'ClusterServiceVersion',
    metadata: {
      name: `${NAME}.v${VERSION}`,
      annotations: {
        'alm-examples': JSON.stringify(almExamples(), null, 2),
        capabilities: 'Basic Install',
        categories: 'Security',
        containerImage: IMAGE,
        description:
          'Zero Trust Workload Identity Manager: SPIFFE identities for workloads through SPIRE-compatible server, agent, CSI driver and OIDC discovery provider.',
        'operators.openshift.io/valid-subscription': '[]',
        'features.operators.openshift.io/disconnected': 'true',
      },
      labels: { 'operatorframework.io/arch.amd64': 'supported', 'operatorframework.io/os.linux': 'supported' },
    },
    spec: {
      displayName: 'Zero Trust Workload Identity Manager (ztwim)',
      description:
        'Installs and runs a SPIFFE identity plane from five cluster-scoped custom resources named `cluster`: ZeroTrustWorkloadIdentityManager, SpireServer, SpireAgent, SpiffeCSIDriver and SpireOIDCDiscoveryProvider. See docs/operator.md.',
      version: VERSION,
      maturity: 'alpha',
      minKubeVersion: '1.30.0',
      provider: { name: 'ztwim' },
      maintainers: [{ name: 'ztwim', email: 'ztwim@example.org' }],
      keywords: ['spiffe', 'spire', 'workload identity', 'zero trust'],
      links: [{ name: 'Documentation', url: 'https://github.com/ztwim/ztwim/blob/main/docs/operator.md' }],
      icon: [],
      installModes: [
        { type: 'OwnNamespace', supported: true },
        { type: 'SingleNamespace', supported: false },
        { type: 'MultiNamespace', supported: false },
        { type: 'AllNamespaces', supported: true },
      ],
      customresourcedefinitions: { owned },
      relatedImages: RELATED_IMAGES.map((n) => ({ name: n.toLowerCase().replaceAll('_', '-'), image: IMAGE })).concat([{ name: 'operator', image: IMAGE }]),
      install: {
        strategy: 'deployment',
        spec: {
          clusterPermissions: [{ serviceAccountName: NAME, rules: CLUSTER_RULES }],
          permissions: [{ serviceAccountName: NAME, rules: NAMESPACE_RULES }],
          deployments: [{ name: NAME, label: { ...LABELS }, spec: deploymentSpec(IMAGE) }],
        },
      },
    },
  };
}

/** Every generated file: path → content. */
export function generate() {
  const crds = readCrds();
  const files = new Map();
  const ns = DEFAULT_NAMESPACE;
  files.set(
    'deploy/manifests/install.yaml',
    yamlDocs([
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, labels: { ...LABELS, 'pod-security.kubernetes.io/enforce': 'privileged' } } },
      ...crds.map((c) => c.object),
      ...rbac(ns),
      { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: NAME, namespace: ns, labels: { ...LABELS } }, spec: deploymentSpec(IMAGE) },
    ]),
  );
  for (const c of crds) {
    files.set(`deploy/helm/ztwim/crds/${c.file}`, HEADER + stringify(c.object, { lineWidth: 0 }));
    files.set(`deploy/olm/bundle/manifests/${c.object.metadata.name}.crd.yaml`, HEADER + stringify(c.object, { lineWidth: 0 }));
  }
  // Helm: the namespace is the release's; the rules are the ones above.
  const NS = '{{ .Release.Namespace }}';
  const helmRbac = rbac('NAMESPACE').map((o) => JSON.parse(JSON.stringify(o).replaceAll('"namespace":"NAMESPACE"', `"namespace":"${NS}"`)));
  files.set('deploy/helm/ztwim/templates/rbac.yaml', yamlDocs(helmRbac));
  files.set(`deploy/olm/bundle/manifests/${NAME}.clusterserviceversion.yaml`, HEADER + stringify(csv(crds), { lineWidth: 0 }));
  files.set(
    'deploy/olm/bundle/metadata/annotations.yaml',
    HEADER +
      stringify({
        annotations: {
          'operators.operatorframework.io.bundle.mediatype.v1': 'registry+v1',
          'operators.operatorframework.io.bundle.manifests.v1': 'manifests/',
          'operators.operatorframework.io.bundle.metadata.v1': 'metadata/',
          'operators.operatorframework.io.bundle.package.v1': NAME,
          'operators.operatorframework.io.bundle.channels.v1': 'alpha',
          'operators.operatorframework.io.bundle.channel.default.v1': 'alpha',
        },
      }),
  );
  return files;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const check = process.argv.includes('--check');
  const stale = [];
  for (const [path, content] of generate()) {
    const abs = join(ROOT, path);
    const cur = existsSync(abs) ? readFileSync(abs, 'utf8') : undefined;
    if (cur === content) continue;
    if (check) stale.push(path);
    else {
      mkdirSync(dirname(abs), { recursive: true });
      writeFileSync(abs, content);
      console.log(`wrote ${path}`);
    }
  }
  if (stale.length > 0) {
    console.error(`gen-operator-install: out of date (run node scripts/gen-operator-install.mjs): ${stale.join(', ')}`);
    process.exit(1);
  }
}
