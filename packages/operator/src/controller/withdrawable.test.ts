// WITHDRAWABLE (resources.ts) names the optional objects by hand: each must be what the renderers
// produce when everything optional is on, owned by the same operand, or a disabled Route or
// ServiceMonitor would never be deleted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { minimalSet } from '../testdata/fixtures.ts';
import { renderOperands } from '../render/operands.ts';
import { WITHDRAWABLE } from './resources.ts';
import type { OperandKind } from './aggregate.ts';

test('every withdrawable object is rendered by its operand when everything optional is on', () => {
  const set = minimalSet({
    server: {
      federation: { bundleEndpoint: { profile: 'https_web', httpsWeb: { servingCert: { externalSecretRef: 'federation-tls' } } }, managedRoute: 'true' },
      serviceMonitor: { enabled: 'true' },
    },
    agent: { serviceMonitor: { enabled: 'true' } },
    oidc: { managedRoute: 'true', externalSecretRef: 'oidc-tls' },
  });
  const r = renderOperands(set, { namespace: 'ns', hasOpenShiftGroups: true, hasPrometheusOperator: true });
  for (const [owner, list] of Object.entries(WITHDRAWABLE) as Array<[OperandKind, (typeof WITHDRAWABLE)[OperandKind]]>) {
    for (const w of list) {
      const o = r.objects.find((x) => x.object.kind === w.kind && x.object.metadata.name === w.name);
      assert.ok(o, `${owner}: ${w.kind}/${w.name} is rendered`);
      assert.equal(o.owner, owner, `${w.kind}/${w.name} belongs to ${owner}`);
      assert.equal(o.object.apiVersion, w.apiVersion);
      assert.equal(o.object.metadata.namespace !== undefined, w.namespaced, `${w.kind}/${w.name} scope`);
    }
  }
  const off = renderOperands(minimalSet({ oidc: { managedRoute: 'false' } }), { namespace: 'ns', hasOpenShiftGroups: true, hasPrometheusOperator: true });
  for (const list of Object.values(WITHDRAWABLE)) {
    for (const w of list) {
      if (w.kind === 'SecurityContextConstraints') continue; // always there on OpenShift
      assert.ok(!off.objects.some((x) => x.object.kind === w.kind && x.object.metadata.name === w.name), `${w.kind}/${w.name} not rendered when off`);
    }
  }
  assert.deepEqual(
    off.conditions.oidc?.find((c) => c.type === 'RouteAvailable'),
    {
      type: 'RouteAvailable',
      status: 'False',
      reason: 'ManagedRouteDisabled',
      message: 'managedRoute is "false": the operator manages no Route for the provider',
    },
  );
});
