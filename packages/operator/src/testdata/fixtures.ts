// The CR sets of both shapes (crs-1.0.yaml, crs-0.2.yaml) for tests, and a CR builder.
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { API_VERSION, type KindName } from '../api/kinds.ts';
import { crSetFromObjects, type CrSet } from '../api/normalize.ts';

export const TESTDATA_DIR = new URL('.', import.meta.url).pathname;

/** The objects of a multi-document YAML file in testdata/. */
export function loadObjects(name: string): unknown[] {
  return parseAllDocuments(readFileSync(`${TESTDATA_DIR}${name}`, 'utf8')).map((d) => d.toJS() as unknown).filter((o) => o !== null);
}

export const crs1_0 = (): CrSet => crSetFromObjects(loadObjects('crs-1.0.yaml'));
export const crs0_2 = (): CrSet => crSetFromObjects(loadObjects('crs-0.2.yaml'));

/** A CR of a kind with a spec, named cluster unless told. */
export function cr<K extends KindName>(kind: K, spec: Record<string, unknown>, name = 'cluster'): { apiVersion: typeof API_VERSION; kind: K; metadata: { name: string }; spec: never } {
  return { apiVersion: API_VERSION, kind, metadata: { name }, spec: spec as never };
}

/** A minimal valid 1.0 set: ZTWIM + the four operands. */
export function minimalSet(over: { ztwim?: Record<string, unknown>; server?: Record<string, unknown>; agent?: Record<string, unknown>; csi?: Record<string, unknown>; oidc?: Record<string, unknown> } = {}): CrSet {
  return {
    ztwim: cr('ZeroTrustWorkloadIdentityManager', { trustDomain: 'example.org', clusterName: 'test', ...over.ztwim }),
    server: cr('SpireServer', { jwtIssuer: 'https://oidc.example.org', caSubject: { country: 'US', organization: 'Example', commonName: 'example.org' }, ...over.server }),
    agent: cr('SpireAgent', { nodeAttestor: { k8sPSATEnabled: 'true' }, workloadAttestors: { k8sEnabled: 'true', workloadAttestorsVerification: { type: 'skip' } }, ...over.agent }),
    csi: cr('SpiffeCSIDriver', { ...over.csi }),
    oidc: cr('SpireOIDCDiscoveryProvider', { jwtIssuer: 'https://oidc.example.org', ...over.oidc }),
  };
}
