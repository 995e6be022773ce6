// clusterDomain auto-detection. SPIRE's controller manager resolves the CNAME of
// `kubernetes.default.svc` through the system resolver's search list and strips that name off
// the answer. Node's resolver ignores the search list, so we read the same fact where the
// kubelet writes it: the pod's /etc/resolv.conf search list has `svc.<clusterDomain>`.
import { readFileSync } from 'node:fs';

/** The cluster domain from resolv.conf text (`search ns.svc.cluster.local svc.cluster.local ...`), or ''. */
export function clusterDomainFromResolvConf(text: string): string {
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields[0] !== 'search') continue;
    for (const d of fields.slice(1)) {
      const name = d.replace(/\.$/, '');
      if (name.startsWith('svc.') && name.length > 4) return name.slice(4);
    }
  }
  return '';
}

/** Reads /etc/resolv.conf (or `path`); '' when it cannot tell, as SPIRE leaves it empty then. */
export function detectClusterDomain(path = '/etc/resolv.conf'): string {
  try {
    return clusterDomainFromResolvConf(readFileSync(path, 'utf8'));
  } catch {
    return '';
  }
}
