// The Helm chart deploy/helm/ztwim with Helm v4.3.2 (scripts/setup-interop.sh builds it): `helm
// lint --strict` passes and `helm template` gives the same RBAC and operator container as the plain
// manifests (deploy/manifests/install.yaml), with the release's namespace and the values' image
// and create-only mode, and the same CRDs.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { REPO_ROOT } from '../interop/lib/peers.ts';
import { CACHE, docs, need, read, type Obj } from './lib/operator-assets.ts';

const HELM = join(CACHE, 'helm-v4.3.2', 'bin', 'helm');

describe('operator Helm chart', () => {
  it("helm lint passes; helm template has the plain manifests' RBAC and container, release namespace and image", () => {
    const helm = need(HELM, 'scripts/setup-interop.sh (helm step)');
    const chart = join(REPO_ROOT, 'deploy', 'helm', 'ztwim');
    execFileSync(helm, ['lint', '--strict', chart], { encoding: 'utf8' });
    const out = docs(
      execFileSync(
        helm,
        [
          'template',
          'ztwim',
          chart,
          '--namespace',
          'ns-x',
          '--include-crds',
          '--set',
          'image.repository=reg.example.org/ztwim',
          '--set',
          'createOnlyMode=true',
        ],
        { encoding: 'utf8' },
      ),
    );
    const plain = docs(read('deploy/manifests/install.yaml'));
    const find = (objs: Obj[], kind: string) => objs.find((o) => o.kind === kind);
    for (const kind of ['ClusterRole', 'Role']) assert.deepEqual(find(out, kind)?.['rules'], find(plain, kind)?.['rules'], kind);
    assert.deepEqual((find(out, 'ClusterRoleBinding')?.['subjects'] as unknown[])[0], { kind: 'ServiceAccount', name: 'ztwim-operator', namespace: 'ns-x' });
    assert.equal(find(out, 'Deployment')?.metadata.namespace, 'ns-x');
    type Container = {
      image: string;
      args: string[];
      env: Array<{ name: string; value?: string }>;
      securityContext: unknown;
      ports: unknown;
      livenessProbe: unknown;
      readinessProbe: unknown;
    };
    const container = (o: Obj | undefined): Container =>
      (o?.['spec'] as { template: { spec: { containers: Container[] } } }).template.spec.containers[0] as Container;
    const hc = container(find(out, 'Deployment'));
    const pc = container(find(plain, 'Deployment'));
    assert.equal(hc.image, 'reg.example.org/ztwim:0.1.0');
    assert.deepEqual(hc.args, pc.args);
    assert.deepEqual([hc.securityContext, hc.ports, hc.livenessProbe, hc.readinessProbe], [pc.securityContext, pc.ports, pc.livenessProbe, pc.readinessProbe]);
    assert.deepEqual(
      hc.env.map((e) => e.name),
      [...pc.env.map((e) => e.name), 'CREATE_ONLY_MODE'],
    );
    assert.ok(hc.env.filter((e) => e.name.startsWith('RELATED_IMAGE_')).every((e) => e.value === 'reg.example.org/ztwim:0.1.0'));
    const crds = out
      .filter((o) => o.kind === 'CustomResourceDefinition')
      .map((o) => o.metadata.name)
      .sort();
    assert.deepEqual(
      crds,
      plain
        .filter((o) => o.kind === 'CustomResourceDefinition')
        .map((o) => o.metadata.name)
        .sort(),
    );
  });
});
