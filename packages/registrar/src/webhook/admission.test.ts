import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  BadAdmissionRequest,
  CLUSTER_FEDERATED_TRUST_DOMAIN_WEBHOOK_PATH as FTD_PATH,
  CLUSTER_SPIFFE_ID_WEBHOOK_PATH as CSID_PATH,
  reviewAdmission,
} from './admission.ts';

function review(operation: string, object: unknown): unknown {
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'req-1', operation, object } };
}
const csid = (spec: unknown) => ({ apiVersion: 'spire.spiffe.io/v1alpha1', kind: 'ClusterSPIFFEID', metadata: { name: 'x' }, spec });
const ftd = (spec: unknown) => ({ apiVersion: 'spire.spiffe.io/v1alpha1', kind: 'ClusterFederatedTrustDomain', metadata: { name: 'x' }, spec });
const GOOD = 'spiffe://{{ .TrustDomain }}/ns/{{ .PodMeta.Namespace }}/sa/{{ .PodSpec.ServiceAccountName }}';

describe('reviewAdmission', () => {
  it('allows a valid ClusterSPIFFEID on create and update, echoing the uid', () => {
    for (const op of ['CREATE', 'UPDATE']) {
      assert.deepEqual(reviewAdmission(CSID_PATH, review(op, csid({ spiffeIDTemplate: GOOD }))), {
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        response: { uid: 'req-1', allowed: true },
      });
    }
  });
  it('denies a template that does not parse, naming field, position and text', () => {
    const r = reviewAdmission(CSID_PATH, review('CREATE', csid({ spiffeIDTemplate: 'spiffe://{{ .TrustDomain }}/{{ .PodMeta.Name' }))).response;
    assert.equal(r.allowed, false);
    assert.equal(r.status?.code, 403);
    assert.match(r.status?.message ?? '', /^spec\.spiffeIDTemplate: template: unclosed action at line 1 col 29 near ".*\{\{ \.PodMeta\.Name"$/);
  });
  it('denies unknown functions, bad DNS/selector templates and bad selectors', () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ spiffeIDTemplate: '{{ upper .TrustDomain }}' }, /function "upper" not defined/],
      [{ spiffeIDTemplate: GOOD, dnsNameTemplates: ['{{ end }}'] }, /^spec\.dnsNameTemplates\[0\]: .*unexpected \{\{end\}\}/],
      [{ spiffeIDTemplate: GOOD, workloadSelectorTemplates: ['k8s:{{'] }, /^spec\.workloadSelectorTemplates\[0\]: /],
      [
        { spiffeIDTemplate: GOOD, podSelector: { matchExpressions: [{ key: 'a', operator: 'Gt', values: ['1'] }] } },
        /^spec\.podSelector\.matchExpressions\[0\]\.operator: /,
      ],
      [{ spiffeIDTemplate: GOOD, federatesWith: ['UPPER'] }, /^spec\.federatesWith\[0\]: invalid trust domain/],
      [undefined, /^spec: is required/],
    ];
    for (const [spec, message] of cases) {
      const r = reviewAdmission(CSID_PATH, review('CREATE', csid(spec))).response;
      assert.equal(r.allowed, false, JSON.stringify(spec));
      assert.match(r.status?.message ?? '', message);
    }
  });
  it('allows deletes without looking at the object', () => {
    assert.equal(reviewAdmission(CSID_PATH, review('DELETE', null)).response.allowed, true);
  });
  it('checks ClusterFederatedTrustDomain rules at its own path', () => {
    const good = { trustDomain: 'o.org', bundleEndpointURL: 'https://o.org/b', bundleEndpointProfile: { type: 'https_web' } };
    assert.equal(reviewAdmission(FTD_PATH, review('CREATE', ftd(good))).response.allowed, true);
    const bad = reviewAdmission(FTD_PATH, review('UPDATE', ftd({ ...good, bundleEndpointURL: 'https://u@o.org/b' }))).response;
    assert.equal(bad.allowed, false);
    assert.match(bad.status?.message ?? '', /^spec\.bundleEndpointURL: .*cannot contain userinfo/);
  });
  it('refuses an object of the other kind', () => {
    const r = reviewAdmission(FTD_PATH, review('CREATE', csid({ spiffeIDTemplate: GOOD }))).response;
    assert.equal(r.allowed, false);
    assert.equal(r.status?.code, 400);
  });
  it('throws BadAdmissionRequest for what is not an AdmissionReview v1 or an unknown path', () => {
    assert.throws(() => reviewAdmission('/other', review('CREATE', csid({}))), BadAdmissionRequest);
    assert.throws(
      () => reviewAdmission(CSID_PATH, { apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: { uid: 'x' } }),
      BadAdmissionRequest,
    );
    assert.throws(() => reviewAdmission(CSID_PATH, { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }), BadAdmissionRequest);
    assert.throws(() => reviewAdmission(CSID_PATH, 'text'), BadAdmissionRequest);
  });
});
