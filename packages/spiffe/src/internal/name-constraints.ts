import type { NameConstraints, NameConstraintSubtree } from './x509.ts';

const KIND_DNS = 2;
const KIND_URI = 6;

function matchDomain(host: string, constraint: string): boolean {
  const h = host.toLowerCase();
  const c = constraint.toLowerCase();
  if (c === '') return true;
  if (c.startsWith('.')) return h.length > c.length && h.endsWith(c);
  return h === c || h.endsWith('.' + c);
}

/** The host of a URI SAN, or undefined when it has none usable for constraint matching. */
function uriHost(uri: string): string | undefined {
  const m = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#]*)/.exec(uri);
  if (m === null) return undefined;
  let host = m[1] as string;
  if (host.includes('@')) return undefined;
  host = host.replace(/:\d*$/, '');
  if (host === '' || host.startsWith('[') || /^\d+\.\d+\.\d+\.\d+$/.test(host)) return undefined;
  return host;
}

function ascii(b: Uint8Array): string {
  return Buffer.from(b).toString('latin1');
}

/**
 * Checks the leaf's URI and DNS SANs against a CA's name constraints (RFC 5280 §4.2.1.10
 * with Go's domain matching). Constraint types other than URI and DNS are not supported
 * and fail closed. Returns a message on violation, undefined when satisfied.
 */
export function checkNameConstraints(nc: NameConstraints, uris: readonly string[], dnsNames: readonly string[]): string | undefined {
  const all: NameConstraintSubtree[] = [...nc.permitted, ...nc.excluded];
  if (all.some((s) => s.kind !== KIND_DNS && s.kind !== KIND_URI)) return 'unsupported name constraint type';
  const names: Array<[number, string | undefined, string]> = [
    ...uris.map((u): [number, string | undefined, string] => [KIND_URI, uriHost(u), u]),
    ...dnsNames.map((d): [number, string | undefined, string] => [KIND_DNS, d, d]),
  ];
  for (const [kind, host, name] of names) {
    const permitted = nc.permitted.filter((s) => s.kind === kind);
    const excluded = nc.excluded.filter((s) => s.kind === kind);
    if (permitted.length === 0 && excluded.length === 0) continue;
    if (host === undefined) return `cannot check name constraints for "${name}"`;
    if (excluded.some((s) => matchDomain(host, ascii(s.value)))) return `name "${name}" is excluded by constraints`;
    if (permitted.length > 0 && !permitted.some((s) => matchDomain(host, ascii(s.value)))) {
      return `name "${name}" is not permitted by any constraint`;
    }
  }
  return undefined;
}
