import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { ALL_CRDS, crdFileName, crdYaml, toOpenApi } from './crd.ts';
import { KINDS } from './kinds.ts';
import { obj, str, int, toggle, arr } from './schema.ts';

type J = Record<string, any>;
const schemaOf = (kind: keyof typeof KINDS): J => {
  const c = ALL_CRDS.find((x) => (x.spec['names'] as J)['kind'] === kind);
  assert.ok(c, kind);
  return ((c.spec['versions'] as J[])[0] as J)['schema']['openAPIV3Schema'] as J;
};

test('five cluster-scoped CRDs of operator.openshift.io/v1alpha1 with status subresource and the singleton rule', () => {
  assert.equal(ALL_CRDS.length, 5);
  const plurals = ALL_CRDS.map((c) => (c.spec['names'] as J)['plural']).sort();
  assert.deepEqual(plurals, ['spiffecsidrivers', 'spireagents', 'spireoidcdiscoveryproviders', 'spireservers', 'zerotrustworkloadidentitymanagers']);
  for (const c of ALL_CRDS) {
    assert.equal(c.spec['scope'], 'Cluster');
    assert.equal(c.spec['group'], 'operator.openshift.io');
    const v = (c.spec['versions'] as J[])[0] as J;
    assert.equal(v['name'], 'v1alpha1');
    assert.deepEqual(v['subresources'], { status: {} });
    assert.deepEqual(
      v['schema']['openAPIV3Schema']['x-kubernetes-validations'].map((r: J) => r['rule']),
      ["self.metadata.name == 'cluster'"],
    );
  }
});

test('ZTWIM: trustDomain pattern/maxLength/immutable, clusterName immutable, bundleConfigMap default', () => {
  const spec = schemaOf('ZeroTrustWorkloadIdentityManager')['properties']['spec'];
  const td = spec['properties']['trustDomain'];
  assert.equal(td['maxLength'], 255);
  assert.equal(td['pattern'], '^[a-z0-9]([a-z0-9\\-\\.]*[a-z0-9])?$');
  assert.deepEqual(td['x-kubernetes-validations'], [{ rule: 'self == oldSelf', message: 'is immutable' }]);
  assert.deepEqual(spec['properties']['clusterName']['x-kubernetes-validations'][0]['rule'], 'self == oldSelf');
  assert.equal(spec['properties']['bundleConfigMap']['default'], 'spire-bundle');
});

test('SpireServer: required jwtIssuer with its URL pattern, toggles as "true"/"false" strings, defaults, federation rules', () => {
  const root = schemaOf('SpireServer');
  assert.deepEqual(root['required'], ['spec']);
  const spec = root['properties']['spec'];
  assert.ok(spec['required'].includes('jwtIssuer'));
  assert.ok(spec['required'].includes('caSubject'));
  assert.equal(spec['properties']['jwtIssuer']['pattern'], '^(?i)https?://[^\\s?#]+$');
  assert.deepEqual(spec['properties']['keyManager']['properties']['diskEnabled'], {
    description: spec['properties']['keyManager']['properties']['diskEnabled']['description'],
    type: 'string',
    enum: ['true', 'false'],
    default: 'true',
  });
  assert.equal(spec['properties']['caValidity']['default'], '24h');
  assert.equal(spec['properties']['persistence']['properties']['size']['x-kubernetes-validations'][0]['rule'], 'self == oldSelf');
  assert.deepEqual(spec['properties']['persistence']['default'], {});
  const fw = spec['properties']['federation']['properties']['federatesWith'];
  assert.equal(fw['maxItems'], 50);
  assert.deepEqual(fw['x-kubernetes-list-map-keys'], ['trustDomain']);
  assert.deepEqual(
    spec['x-kubernetes-validations'].map((r: J) => r['rule']),
    ['!has(oldSelf.federation) || has(self.federation)'],
  );
  assert.equal(spec['properties']['replicas']['maximum'], 5);
  assert.ok(spec['properties']['datastore']['properties']['connectionStringSecretRef']);
});

test('deprecated 0.2 fields are in the schema and say where they went', () => {
  const spec = schemaOf('SpireAgent')['properties']['spec'];
  assert.match(spec['properties']['trustDomain']['description'], /Deprecated \(0\.2 shape\): use spec\.trustDomain of the ZeroTrustWorkloadIdentityManager/);
  const server = schemaOf('SpireServer')['properties']['spec'];
  assert.deepEqual(server['properties']['persistence']['properties']['type']['enum'], ['pvc', 'hostPath', 'emptyDir']);
});

test('toOpenApi: each schema form', () => {
  assert.deepEqual(toOpenApi(int({ description: 'n', minimum: 1, maximum: 5, default: 1 })), {
    description: 'n',
    type: 'integer',
    format: 'int32',
    minimum: 1,
    maximum: 5,
    default: 1,
  });
  assert.deepEqual(toOpenApi(toggle('false', { description: 't' })), { description: 't', type: 'string', enum: ['true', 'false'], default: 'false' });
  assert.deepEqual(toOpenApi(obj({ a: str({ description: 'a', required: true }) }, { description: 'o', cel: [{ rule: 'x', message: 'y' }] })), {
    description: 'o',
    type: 'object',
    properties: { a: { description: 'a', type: 'string' } },
    required: ['a'],
    'x-kubernetes-validations': [{ rule: 'x', message: 'y' }],
  });
  assert.deepEqual(toOpenApi(arr(str({ description: 's' }), { description: 'l', maxItems: 3 })), {
    description: 'l',
    type: 'array',
    items: { description: 's', type: 'string' },
    maxItems: 3,
  });
});

test('the committed deploy/operator/crds/ files are what the schemas generate', () => {
  const dir = new URL('../../../../deploy/operator/crds/', import.meta.url).pathname;
  for (const c of ALL_CRDS) {
    const text = readFileSync(dir + crdFileName(c), 'utf8');
    assert.equal(text, crdYaml(c), `${crdFileName(c)}: run node scripts/gen-operator-crds.mjs`);
    assert.deepEqual(parse(text), JSON.parse(JSON.stringify(c)));
  }
});
