import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ServedApis, type DiscoveryPort } from './served-apis.ts';

/** Discovery that caches like ResourceClient: an answer sticks until refreshDiscovery drops it. */
function fakeDiscovery(served: Set<string>): DiscoveryPort & { asked: string[] } {
  const cache = new Map<string, boolean>();
  const asked: string[] = [];
  return {
    asked,
    async hasGroupVersion(gv) {
      if (!cache.has(gv)) {
        asked.push(gv);
        cache.set(gv, served.has(gv));
      }
      return cache.get(gv) ?? false;
    },
    refreshDiscovery(gv) {
      if (gv === undefined) cache.clear();
      else cache.delete(gv);
    },
  };
}

test('served optional groups: asked again on each refresh, a change reported once', async () => {
  const served = new Set<string>();
  const d = fakeDiscovery(served);
  const apis = new ServedApis(d);
  assert.equal(await apis.refresh(), true, 'the first answer counts as a change');
  assert.deepEqual(apis.flags(), { hasOpenShiftGroups: false, hasPrometheusOperator: false });
  assert.equal(await apis.refresh(), false);
  served.add('route.openshift.io/v1');
  assert.equal(await apis.refresh(), true, 'a CRD installed after the start is seen (the cached "not served" is dropped)');
  assert.deepEqual(apis.flags(), { hasOpenShiftGroups: false, hasPrometheusOperator: false }, 'Routes without SCCs: not OpenShift');
  served.add('security.openshift.io/v1');
  served.add('monitoring.coreos.com/v1');
  assert.equal(await apis.refresh(), true);
  assert.deepEqual(apis.flags(), { hasOpenShiftGroups: true, hasPrometheusOperator: true });
  assert.deepEqual(apis.list(), ['monitoring.coreos.com/v1', 'route.openshift.io/v1', 'security.openshift.io/v1']);
  served.delete('monitoring.coreos.com/v1');
  assert.equal(await apis.refresh(), true, 'a removed CRD too');
  assert.equal(apis.flags().hasPrometheusOperator, false);
  assert.equal(d.asked.length, 15, 'three GETs per refresh, nothing more');
  assert.equal(apis.gets, 15, 'counted for the stats line');
});
