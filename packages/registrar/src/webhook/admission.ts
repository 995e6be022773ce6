/**
 * The validating admission webhooks of spire-controller-manager, as AdmissionReview v1 handlers:
 * `vclusterspiffeid.kb.io` (templates and selectors parse) and `vclusterfederatedtrustdomain.kb.io`
 * (trust domain, https bundle URL without userinfo, profile and its endpoint ID, bundle). Creates
 * and updates are checked, deletes allowed, as controller-runtime's Validator does; a denial is
 * HTTP-403-style status with the parser's message, which the API server shows as
 * `admission webhook "<name>" denied the request: <message>`.
 */
import { isRegistrarError } from '../errors.ts';
import { parseClusterFederatedTrustDomainSpec, parseClusterSPIFFEIDSpec } from '../crd/parse.ts';

/** The paths controller-runtime serves the two webhooks at (kubebuilder markers in SPIRE). */
export const CLUSTER_SPIFFE_ID_WEBHOOK_PATH = '/validate-spire-spiffe-io-v1alpha1-clusterspiffeid';
export const CLUSTER_FEDERATED_TRUST_DOMAIN_WEBHOOK_PATH = '/validate-spire-spiffe-io-v1alpha1-clusterfederatedtrustdomain';

export interface AdmissionResponse {
  readonly uid: string;
  readonly allowed: boolean;
  readonly status?: { readonly code: number; readonly reason?: string; readonly message: string };
}

export interface AdmissionReviewResponse {
  readonly apiVersion: 'admission.k8s.io/v1';
  readonly kind: 'AdmissionReview';
  readonly response: AdmissionResponse;
}

/** A request the webhook cannot read (not an AdmissionReview v1): answered with HTTP 400. */
export class BadAdmissionRequest extends Error {}

type Validator = (spec: unknown) => void;

const VALIDATORS: ReadonlyMap<string, { kind: string; validate: Validator }> = new Map([
  [CLUSTER_SPIFFE_ID_WEBHOOK_PATH, { kind: 'ClusterSPIFFEID', validate: (spec) => void parseClusterSPIFFEIDSpec(spec) }],
  [CLUSTER_FEDERATED_TRUST_DOMAIN_WEBHOOK_PATH, { kind: 'ClusterFederatedTrustDomain', validate: (spec) => void parseClusterFederatedTrustDomainSpec(spec) }],
]);

export function isWebhookPath(path: string): boolean {
  return VALIDATORS.has(path);
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Answers one AdmissionReview (already JSON-decoded) sent to `path`. */
export function reviewAdmission(path: string, review: unknown): AdmissionReviewResponse {
  const v = VALIDATORS.get(path);
  if (v === undefined) throw new BadAdmissionRequest(`no webhook at ${path}`);
  if (!isRecord(review) || review['kind'] !== 'AdmissionReview' || review['apiVersion'] !== 'admission.k8s.io/v1') {
    throw new BadAdmissionRequest('body is not an admission.k8s.io/v1 AdmissionReview');
  }
  const req = review['request'];
  if (!isRecord(req) || typeof req['uid'] !== 'string') throw new BadAdmissionRequest('AdmissionReview has no request.uid');
  const uid = req['uid'];
  const answer = (response: Omit<AdmissionResponse, 'uid'>): AdmissionReviewResponse => ({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    response: { uid, ...response },
  });
  const operation = req['operation'];
  if (operation !== 'CREATE' && operation !== 'UPDATE') return answer({ allowed: true });
  const obj = req['object'];
  if (!isRecord(obj)) return answer({ allowed: false, status: { code: 400, reason: 'BadRequest', message: 'request has no object' } });
  if (obj['kind'] !== undefined && obj['kind'] !== v.kind) {
    return answer({ allowed: false, status: { code: 400, reason: 'BadRequest', message: `expected a ${v.kind}, got ${String(obj['kind'])}` } });
  }
  try {
    v.validate(obj['spec']);
    return answer({ allowed: true });
  } catch (e) {
    if (!isRegistrarError(e)) throw e;
    return answer({ allowed: false, status: { code: 403, reason: 'Forbidden', message: e.message } });
  }
}
