import { readFileSync } from 'node:fs';
import { ZtwimError, marshalK8sPsatPayload } from '@ztwim/core';
import type { NodeAttestationData } from '../../client/server-client.ts';

/** SPIRE's default token_path: the projected service-account token volume of the agent pod. */
export const K8S_PSAT_DEFAULT_TOKEN_PATH = '/var/run/secrets/tokens/spire-agent';

export interface K8sPsatAgentConfig {
  readonly cluster: string;
  readonly tokenPath: string;
}

/**
 * Reads the projected token (the kubelet rotates it, so it is read at each attestation, as
 * spire-agent does). A missing, unreadable or empty file is an ERR_CONFIG error naming the path.
 */
export function readPsatToken(path: string): string {
  let data: string;
  try {
    data = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file (is the projected token volume mounted?)' : code === 'EACCES' ? 'permission denied' : (e as Error).message;
    throw new ZtwimError('ERR_CONFIG', `k8s_psat: unable to load token from ${path}: ${why}`, { cause: e, fields: { token_path: path } });
  }
  if (data.length === 0) throw new ZtwimError('ERR_CONFIG', `k8s_psat: unable to load token from ${path}: the file is empty`, { fields: { token_path: path } });
  return data;
}

/** The AttestAgent data for k8s_psat: `{"cluster","token"}`, no challenge. */
export function k8sPsatAttestationData(c: K8sPsatAgentConfig): NodeAttestationData {
  return {
    type: 'custom',
    pluginType: 'k8s_psat',
    payload: marshalK8sPsatPayload({ cluster: c.cluster, token: readPsatToken(c.tokenPath) }),
    answer: () => {
      throw new ZtwimError('ERR_INTERNAL', 'k8s_psat: the server sent a challenge, but k8s_psat attestation has none');
    },
  };
}
