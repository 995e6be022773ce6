import { invalidArgument } from '../errors.ts';

/**
 * The k8s_psat node attestation payload shared by server and agent (SPIRE's
 * `k8s.PSATAttestationData`): JSON `{"cluster":"<name>","token":"<projected SA token>"}`.
 * There is no challenge: the token itself is the evidence, checked by the server with a
 * TokenReview.
 */
export interface K8sPsatPayload {
  readonly cluster: string;
  readonly token: string;
}

export function marshalK8sPsatPayload(p: K8sPsatPayload): Uint8Array {
  return Buffer.from(JSON.stringify({ cluster: p.cluster, token: p.token }));
}

/** Parses and checks the payload with SPIRE's refusal texts (all InvalidArgument). */
export function parseK8sPsatPayload(data: Uint8Array): K8sPsatPayload {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(data).toString('utf8'));
  } catch (e) {
    throw invalidArgument(`failed to unmarshal data payload: ${(e as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw invalidArgument('failed to unmarshal data payload: not a JSON object');
  const o = v as Record<string, unknown>;
  for (const k of ['cluster', 'token'] as const) {
    if (o[k] !== undefined && o[k] !== null && typeof o[k] !== 'string') throw invalidArgument(`failed to unmarshal data payload: ${k} must be a string`);
  }
  const cluster = typeof o.cluster === 'string' ? o.cluster : '';
  const token = typeof o.token === 'string' ? o.token : '';
  if (cluster === '') throw invalidArgument('missing cluster in attestation data');
  if (token === '') throw invalidArgument('missing token in attestation data');
  return { cluster, token };
}
