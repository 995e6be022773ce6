// The operator's three install forms (scripts/gen-operator-install.mjs), without a cluster:
//   - the generated files are up to date (drift check);
//   - `kubectl kustomize deploy/manifests` gives exactly deploy/manifests/install.yaml's objects;
//   - the OLM bundle holds together (operator-sdk does not build from the Go module proxy, so this
//     checks what `operator-sdk bundle validate` checks first): annotations, CSV naming and
//     version, install modes, deployment and permissions for one service account, every CRD in
//     the bundle owned by the CSV with matching name/version/kind, alm-examples of owned kinds.
// The Helm chart: operator-helm-chart.test.ts. The cluster side (the operator under exactly this
// RBAC): test/k8s/operator-*.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { REPO_ROOT } from '../interop/lib/peers.ts';
import { CACHE, docs, need, read, type Obj } from './lib/operator-assets.ts';

const KUBECTL = join(CACHE, 'k8s-v1.37.2', 'bin', 'kubectl');

const byKey = (objs: Obj[]): Map<string, Obj> => new Map(objs.map((o) => [`${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`, o]));
describe('operator install assets', () => {
  it('generated files are up to date', () => {
    execFileSync(process.execPath, [join(REPO_ROOT, 'scripts', 'gen-operator-install.mjs'), '--check'], { stdio: 'pipe' });
  });

  it('kubectl apply -k deploy/manifests is install.yaml', () => {
    const built = docs(
      execFileSync(need(KUBECTL, 'scripts/setup-interop.sh (k8s step)'), ['kustomize', join(REPO_ROOT, 'deploy', 'manifests')], { encoding: 'utf8' }),
    );
    const plain = docs(read('deploy/manifests/install.yaml'));
    assert.deepEqual([...byKey(built).keys()].sort(), [...byKey(plain).keys()].sort());
    for (const [k, o] of byKey(plain)) assert.deepEqual(byKey(built).get(k), o, k);
    const kinds = plain.map((o) => o.kind);
    for (const k of ['Namespace', 'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding', 'Deployment'])
      assert.ok(kinds.includes(k), `install.yaml has a ${k}`);
  });

  it('the OLM bundle holds together (what operator-sdk bundle validate checks first)', () => {
    const bundle = join(REPO_ROOT, 'deploy', 'olm', 'bundle');
    const ann = (parse(read('deploy/olm/bundle/metadata/annotations.yaml')) as { annotations: Record<string, string> }).annotations;
    assert.equal(ann['operators.operatorframework.io.bundle.mediatype.v1'], 'registry+v1');
    assert.equal(ann['operators.operatorframework.io.bundle.manifests.v1'], 'manifests/');
    assert.equal(ann['operators.operatorframework.io.bundle.metadata.v1'], 'metadata/');
    const pkg = ann['operators.operatorframework.io.bundle.package.v1'];
    assert.ok(pkg !== undefined && /^[a-z0-9-]+$/.test(pkg));
    const channels = (ann['operators.operatorframework.io.bundle.channels.v1'] ?? '').split(',');
    assert.ok(channels.includes(ann['operators.operatorframework.io.bundle.channel.default.v1'] ?? '?'), 'the default channel is one of the channels');

    const files = readdirSync(join(bundle, 'manifests'));
    const objs = files.flatMap((f) => docs(readFileSync(join(bundle, 'manifests', f), 'utf8')));
    const csvs = objs.filter((o) => o.kind === 'ClusterServiceVersion');
    assert.equal(csvs.length, 1);
    const csv = csvs[0] as Obj;
    assert.equal(csv.apiVersion, 'operators.coreos.com/v1alpha1');
    type CsvSpec = {
      version: string;
      minKubeVersion: string;
      installModes: Array<{ type: string; supported: boolean }>;
      customresourcedefinitions: { owned: Array<{ name: string; version: string; kind: string; displayName: string; description: string }> };
      relatedImages: Array<{ name: string; image: string }>;
      install: {
        strategy: string;
        spec: {
          deployments: Array<{
            name: string;
            spec: {
              selector: { matchLabels: Record<string, string> };
              template: { metadata: { labels: Record<string, string> }; spec: { serviceAccountName: string; containers: Array<{ image: string }> } };
            };
          }>;
          clusterPermissions: Array<{ serviceAccountName: string; rules: unknown[] }>;
          permissions: Array<{ serviceAccountName: string; rules: unknown[] }>;
        };
      };
    };
    const spec = csv['spec'] as CsvSpec;
    assert.match(spec.version, /^\d+\.\d+\.\d+$/);
    assert.equal(csv.metadata.name, `${pkg}.v${spec.version}`);
    assert.match(spec.minKubeVersion, /^\d+\.\d+\.\d+$/);
    assert.deepEqual(spec.installModes.map((m) => m.type).sort(), ['AllNamespaces', 'MultiNamespace', 'OwnNamespace', 'SingleNamespace']);
    assert.equal(spec.install.strategy, 'deployment');
    const [dep] = spec.install.spec.deployments;
    assert.ok(dep);
    for (const [k, v] of Object.entries(dep.spec.selector.matchLabels))
      assert.equal(dep.spec.template.metadata.labels[k], v, 'selector matches the pod labels');
    const sa = dep.spec.template.spec.serviceAccountName;
    assert.deepEqual(
      [...spec.install.spec.clusterPermissions, ...spec.install.spec.permissions].map((p) => p.serviceAccountName),
      [sa, sa],
    );
    const plain = docs(read('deploy/manifests/install.yaml'));
    assert.deepEqual(
      spec.install.spec.clusterPermissions[0]?.rules,
      plain.find((o) => o.kind === 'ClusterRole')?.['rules'],
      'the same rules as the plain manifests',
    );
    assert.deepEqual(spec.install.spec.permissions[0]?.rules, plain.find((o) => o.kind === 'Role')?.['rules']);
    assert.ok(spec.relatedImages.some((r) => r.image === dep.spec.template.spec.containers[0]?.image));

    const crds = objs.filter((o) => o.kind === 'CustomResourceDefinition');
    assert.equal(crds.length, plain.filter((o) => o.kind === 'CustomResourceDefinition').length, 'every CRD of the plain install is in the bundle');
    const owned = spec.customresourcedefinitions.owned;
    for (const c of crds) {
      const cs = c['spec'] as { names: { kind: string }; versions: Array<{ name: string }> };
      const o = owned.find((x) => x.name === c.metadata.name);
      assert.ok(o, `CRD ${c.metadata.name} is owned by the CSV`);
      assert.equal(o.kind, cs.names.kind);
      assert.ok(cs.versions.some((v) => v.name === o.version));
      assert.ok(o.displayName !== '' && o.description !== '');
    }
    assert.equal(owned.length, crds.length);
    const annotations = (csv.metadata as { annotations?: Record<string, string> }).annotations ?? {};
    const examples = JSON.parse(annotations['alm-examples'] ?? '[]') as Obj[];
    assert.ok(examples.length >= 5);
    for (const e of examples)
      assert.ok(
        owned.some((o) => o.kind === e.kind),
        `alm-example ${e.kind} is owned`,
      );
  });
});
