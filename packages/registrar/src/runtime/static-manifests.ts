// staticManifestPath: the CRs come from YAML/JSON files in a directory instead of the Kubernetes
// API (SPIRE's controller manager without Kubernetes: ClusterStaticEntry and
// ClusterFederatedTrustDomain objects only, as there are no pods to select). Files are read again
// on every pass, so an edited manifest takes effect at the next idle tick.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { configError } from '@ztwim/core';
import type { KubeJson } from '../reconcile/cluster-view.ts';

export interface StaticManifests {
  readonly clusterStaticEntries: KubeJson[];
  readonly clusterSPIFFEIDs: KubeJson[];
  readonly clusterFederatedTrustDomains: KubeJson[];
}

/** Reads every *.yaml, *.yml and *.json file of `dir` (multi-document YAML allowed). */
export function readStaticManifests(dir: string): StaticManifests {
  let names: string[];
  try {
    names = readdirSync(dir)
      .filter((n) => /\.(ya?ml|json)$/i.test(n))
      .sort();
  } catch (e) {
    throw configError(`staticManifestPath: cannot read ${dir}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, { cause: e });
  }
  const out: StaticManifests = { clusterStaticEntries: [], clusterSPIFFEIDs: [], clusterFederatedTrustDomains: [] };
  for (const name of names) {
    const path = join(dir, name);
    const docs = parseAllDocuments(readFileSync(path, 'utf8'), { prettyErrors: false });
    if (!Array.isArray(docs)) continue;
    docs.forEach((doc, i) => {
      const err = doc.errors[0];
      if (err !== undefined) throw configError(`${path}: document ${i + 1}: ${err.message.split('\n')[0] ?? 'syntax error'}`);
      const obj = doc.toJS() as unknown;
      if (obj === null || obj === undefined) return;
      if (typeof obj !== 'object' || Array.isArray(obj)) throw configError(`${path}: document ${i + 1}: must be a mapping`);
      const o = obj as KubeJson;
      // A manifest has no uid or creationTimestamp: the file and position stand in for them.
      const meta = { uid: `${name}#${i}`, resourceVersion: createHash('sha256').update(JSON.stringify(obj)).digest('hex').slice(0, 16), ...(o.metadata ?? {}) };
      const withMeta: KubeJson = { ...o, metadata: meta };
      switch (o['kind']) {
        case 'ClusterStaticEntry':
          out.clusterStaticEntries.push(withMeta);
          break;
        case 'ClusterSPIFFEID':
          out.clusterSPIFFEIDs.push(withMeta);
          break;
        case 'ClusterFederatedTrustDomain':
          out.clusterFederatedTrustDomains.push(withMeta);
          break;
        default:
          throw configError(`${path}: document ${i + 1}: kind ${JSON.stringify(o['kind'])} is not a spire.spiffe.io custom resource`);
      }
    });
  }
  return out;
}
