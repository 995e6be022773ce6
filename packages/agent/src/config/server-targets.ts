// Where the agent finds its servers: SPIRE's single `server_address` (a DNS name, which may resolve
// to several A/AAAA records, or an IP) with `server_port`, or ztwim's `server_addresses` list of
// `host` / `host:port` / `[v6]:port` items. Each target is resolved when the agent (re)connects.
import { isIP } from 'node:net';

/** One configured server: a DNS name or an IP literal, and its port. */
export interface ServerTarget {
  readonly host: string;
  readonly port: number;
}

/** RFC 1123 host names (labels of letters, digits and hyphens; `_` accepted as resolvers do). */
const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$/;

/** Why `host` is not a DNS name or IP literal, or undefined when it is one. */
export function hostProblem(host: string): string | undefined {
  if (host === '') return 'is empty';
  if (host.includes('://')) return `"${host}" has a URL scheme; give the host name or IP only`;
  if (host.includes(',')) return `"${host}" holds several addresses; list them in server_addresses instead`;
  if (/\s/.test(host)) return `"${host}" contains whitespace`;
  if (isIP(host) !== 0 || HOST_NAME.test(host)) return undefined;
  return `"${host}" is not a DNS name or an IP address`;
}

/**
 * A `server_addresses` item as a target (`host`, `host:port`, `[v6]`, `[v6]:port`, or a bare IPv6
 * literal, which takes `defaultPort`), or the reason it is not one.
 */
export function parseServerTarget(text: string, defaultPort: number): ServerTarget | { readonly problem: string } {
  const t = text.trim();
  if (t !== text) return { problem: `"${text}" has surrounding whitespace` };
  let host = t;
  let portText: string | undefined;
  if (t.startsWith('[')) {
    const close = t.indexOf(']');
    if (close < 0) return { problem: `"${text}" has no closing ]` };
    host = t.slice(1, close);
    const rest = t.slice(close + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) return { problem: `"${text}" has text after ]` };
      portText = rest.slice(1);
    }
    if (isIP(host) !== 6) return { problem: `"${host}" in brackets is not an IPv6 address` };
  } else if (isIP(t) !== 6) {
    const colon = t.lastIndexOf(':');
    if (colon >= 0) {
      host = t.slice(0, colon);
      portText = t.slice(colon + 1);
    }
  }
  const bad = hostProblem(host);
  if (bad !== undefined) return { problem: bad === 'is empty' ? `"${text}" has no host` : bad };
  if (portText === undefined) return { host, port: defaultPort };
  if (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) return { problem: `"${text}" has port "${portText}", not 1-65535` };
  return { host, port: Number(portText) };
}

/** `host:port`, with IPv6 literals in brackets: how a server is named in logs, health and metrics. */
export function formatTarget(t: ServerTarget): string {
  return isIP(t.host) === 6 ? `[${t.host}]:${t.port}` : `${t.host}:${t.port}`;
}
