/**
 * Workload API endpoint addresses (`SPIFFE_ENDPOINT_SOCKET`), parsed with go-spiffe's
 * `workloadapi.TargetFromAddress` rules and messages (which sit on Go's `net/url.Parse`).
 */
import { isIPv4, isIPv6 } from 'node:net';
import { SpiffeError } from '../errors.ts';

/** The environment variable holding the default Workload API address. */
export const SPIFFE_ENDPOINT_SOCKET = 'SPIFFE_ENDPOINT_SOCKET';

/** A parsed Workload API endpoint. */
export type WorkloadEndpoint =
  | {
      readonly kind: 'unix';
      /** Socket path (percent-decoded). Empty for the authority-only form `unix://name`. */
      readonly path: string;
      /** The authority of `unix://name[/...]` (go-spiffe accepts it; dialing such a target fails). */
      readonly authority: string;
      /** The gRPC target go-spiffe would dial (the URI re-serialized). */
      readonly target: string;
    }
  | {
      readonly kind: 'tcp';
      readonly host: string;
      readonly port: number;
      /** `host:port` (IPv6 in brackets). */
      readonly target: string;
    };

function invalid(message: string): SpiffeError {
  return new SpiffeError('ERR_WORKLOAD_ADDRESS_INVALID', message);
}

/** Go's strconv.Quote (enough of it for error messages). */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0) as number;
    switch (ch) {
      case '"':
        out += '\\"';
        continue;
      case '\\':
        out += '\\\\';
        continue;
      case '\x07':
        out += '\\a';
        continue;
      case '\b':
        out += '\\b';
        continue;
      case '\f':
        out += '\\f';
        continue;
      case '\n':
        out += '\\n';
        continue;
      case '\r':
        out += '\\r';
        continue;
      case '\t':
        out += '\\t';
        continue;
      case '\v':
        out += '\\v';
        continue;
      default:
    }
    if (c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, '0')}`;
    else if (c >= 0x80 && c < 0xa0) out += `\\u${c.toString(16).padStart(4, '0')}`;
    else out += ch;
  }
  return `${out}"`;
}

class UrlError extends Error {}

interface GoUrl {
  scheme: string;
  opaque: string;
  hasUser: boolean;
  host: string;
  path: string;
  rawPath: string;
  rawQuery: string;
  forceQuery: boolean;
  omitHost: boolean;
  fragment: string;
  rawFragment: string;
}

const isHex = (c: string): boolean => /^[0-9a-fA-F]$/.test(c);

function shouldEscapeHost(c: string): boolean {
  if (/^[a-zA-Z0-9\-_.~]$/.test(c)) return false;
  return !'!$&\'()*+,;=:[]<>"'.includes(c);
}

type Mode = 'path' | 'host' | 'fragment' | 'user';

/** Go's url.unescape for the modes used here; works on UTF-8 bytes. */
function unescape(s: string, mode: Mode): string {
  const bytes = Buffer.from(s, 'utf8');
  const out: number[] = [];
  for (let i = 0; i < bytes.length;) {
    const b = bytes[i] as number;
    if (b === 0x25) {
      const h1 = bytes[i + 1];
      const h2 = bytes[i + 2];
      if (h1 === undefined || h2 === undefined || !isHex(String.fromCharCode(h1)) || !isHex(String.fromCharCode(h2))) {
        const rest = bytes.subarray(i, i + 3).toString('utf8');
        throw new UrlError(`invalid URL escape ${goQuote(rest)}`);
      }
      const v = parseInt(String.fromCharCode(h1, h2), 16);
      if (mode === 'host' && parseInt(String.fromCharCode(h1), 16) < 8 && !(h1 === 0x32 && h2 === 0x35)) {
        throw new UrlError(`invalid URL escape ${goQuote(bytes.subarray(i, i + 3).toString('utf8'))}`);
      }
      out.push(v);
      i += 3;
      continue;
    }
    if (mode === 'host' && b < 0x80 && shouldEscapeHost(String.fromCharCode(b))) {
      throw new UrlError(`invalid character ${goQuote(String.fromCharCode(b))} in host name`);
    }
    out.push(b);
    i++;
  }
  return Buffer.from(out).toString('utf8');
}

function validOptionalPort(port: string): boolean {
  if (port === '') return true;
  if (port[0] !== ':') return false;
  return /^[0-9]*$/.test(port.slice(1));
}

function parseHost(host: string): string {
  if (host.startsWith('[')) {
    const i = host.lastIndexOf(']');
    if (i < 0) throw new UrlError("missing ']' in host");
    const colonPort = host.slice(i + 1);
    if (!validOptionalPort(colonPort)) throw new UrlError(`invalid port ${goQuote(colonPort)} after host`);
  } else {
    const i = host.lastIndexOf(':');
    if (i !== -1) {
      const colonPort = host.slice(i);
      if (!validOptionalPort(colonPort)) throw new UrlError(`invalid port ${goQuote(colonPort)} after host`);
    }
  }
  return unescape(host, 'host');
}

const USERINFO_OK = /^[A-Za-z0-9\-._:~!$&'()*+,;=%@]*$/;

function getScheme(raw: string): [string, string] {
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i] as string;
    if (/[a-zA-Z]/.test(c)) continue;
    if (/[0-9+\-.]/.test(c)) {
      if (i === 0) return ['', raw];
      continue;
    }
    if (c === ':') {
      if (i === 0) throw new UrlError('missing protocol scheme');
      return [raw.slice(0, i), raw.slice(i + 1)];
    }
    return ['', raw];
  }
  return ['', raw];
}

/** The subset of Go's net/url.Parse that decides go-spiffe's verdicts. */
function goParseUrl(rawUrl: string): GoUrl {
  const hashAt = rawUrl.indexOf('#');
  const u = hashAt < 0 ? rawUrl : rawUrl.slice(0, hashAt);
  const frag = hashAt < 0 ? '' : rawUrl.slice(hashAt + 1);
  const url: GoUrl = {
    scheme: '',
    opaque: '',
    hasUser: false,
    host: '',
    path: '',
    rawPath: '',
    rawQuery: '',
    forceQuery: false,
    omitHost: false,
    fragment: '',
    rawFragment: '',
  };
  try {
    // eslint-disable-next-line no-control-regex
    if (/[\x00-\x1f\x7f]/.test(u)) throw new UrlError('net/url: invalid control character in URL');
    if (u === '*') {
      url.path = '*';
    } else {
      let rest: string;
      [url.scheme, rest] = getScheme(u);
      url.scheme = url.scheme.toLowerCase();
      if (rest.endsWith('?') && rest.split('?').length === 2) {
        url.forceQuery = true;
        rest = rest.slice(0, -1);
      } else {
        const q = rest.indexOf('?');
        if (q >= 0) {
          url.rawQuery = rest.slice(q + 1);
          rest = rest.slice(0, q);
        }
      }
      let done = false;
      if (!rest.startsWith('/')) {
        if (url.scheme !== '') {
          url.opaque = rest;
          done = true;
        } else {
          const seg = rest.split('/')[0] ?? '';
          if (seg.includes(':')) throw new UrlError('first path segment in URL cannot contain colon');
        }
      }
      if (!done) {
        if ((url.scheme !== '' || !rest.startsWith('///')) && rest.startsWith('//')) {
          let authority = rest.slice(2);
          rest = '';
          const slash = authority.indexOf('/');
          if (slash >= 0) {
            rest = authority.slice(slash);
            authority = authority.slice(0, slash);
          }
          const at = authority.lastIndexOf('@');
          url.host = parseHost(at < 0 ? authority : authority.slice(at + 1));
          if (at >= 0) {
            const userinfo = authority.slice(0, at);
            if (!USERINFO_OK.test(userinfo)) throw new UrlError('net/url: invalid userinfo');
            for (const part of userinfo.split(':').slice(0, 2)) unescape(part, 'user');
            url.hasUser = true;
          }
        } else if (url.scheme !== '' && rest.startsWith('/')) {
          url.omitHost = true;
        }
        url.path = unescape(rest, 'path');
        url.rawPath = rest;
      }
    }
  } catch (e) {
    if (e instanceof UrlError) throw new UrlError(`parse ${goQuote(u)}: ${e.message}`);
    throw e;
  }
  if (frag !== '') {
    try {
      url.fragment = unescape(frag, 'fragment');
      url.rawFragment = frag;
    } catch (e) {
      if (e instanceof UrlError) throw new UrlError(`parse ${goQuote(rawUrl)}: ${e.message}`);
      throw e;
    }
  }
  return url;
}

function splitHostPort(hostPort: string): [string, string] {
  let host = hostPort;
  let port = '';
  const colon = host.lastIndexOf(':');
  if (colon !== -1 && validOptionalPort(host.slice(colon))) {
    port = host.slice(colon + 1);
    host = host.slice(0, colon);
  }
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  return [host, port];
}

const PATH_UNESCAPED = /^[A-Za-z0-9\-_.~$&+,/:;=@]$/;

/** Go's URL.EscapedPath: the raw path when it is a valid encoding, else the escaped path. */
function escapedPath(rawPath: string, path: string): string {
  const valid = [...rawPath].every((c) => c === '%' || "!$&'()*+,;=:@[]".includes(c) || PATH_UNESCAPED.test(c));
  if (valid) return rawPath;
  let out = '';
  for (const b of Buffer.from(path, 'utf8')) {
    const c = String.fromCharCode(b);
    out += b < 0x80 && PATH_UNESCAPED.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Go's net.ParseIP: dotted IPv4 (no leading zeros) or IPv6 without a zone. */
function isGoIp(s: string): boolean {
  if (s.includes('%')) return false;
  return isIPv4(s) || isIPv6(s);
}

/**
 * Parses a Workload API address (`unix:///path`, `unix:/path`, `tcp://<ip>:<port>`) with the
 * rules and messages of go-spiffe's `TargetFromAddress`. Throws SpiffeError
 * ERR_WORKLOAD_ADDRESS_INVALID.
 */
export function parseWorkloadEndpoint(addr: string): WorkloadEndpoint {
  let u: GoUrl;
  try {
    u = goParseUrl(addr);
  } catch (e) {
    if (e instanceof UrlError) throw invalid(`workload endpoint socket is not a valid URI: ${e.message}`);
    throw e;
  }
  if (u.scheme === 'tcp') {
    if (u.opaque !== '') throw invalid('workload endpoint tcp socket URI must not be opaque');
    if (u.hasUser) throw invalid('workload endpoint tcp socket URI must not include user info');
    if (u.host === '') throw invalid('workload endpoint tcp socket URI must include a host');
    if (u.path !== '') throw invalid('workload endpoint tcp socket URI must not include a path');
    if (u.rawQuery !== '') throw invalid('workload endpoint tcp socket URI must not include query values');
    if (u.fragment !== '') throw invalid('workload endpoint tcp socket URI must not include a fragment');
    const [host, port] = splitHostPort(u.host);
    if (!isGoIp(host)) throw invalid('workload endpoint tcp socket URI host component must be an IP:port');
    if (port === '') throw invalid('workload endpoint tcp socket URI host component must include a port');
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(host);
    const ip = mapped?.[1] ?? host;
    const target = ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
    return { kind: 'tcp', host: ip, port: Number(port), target };
  }
  if (u.scheme === 'unix') {
    if (u.opaque !== '') throw invalid('workload endpoint unix socket URI must not be opaque');
    if (u.hasUser) throw invalid('workload endpoint unix socket URI must not include user info');
    if (u.host === '' && u.path === '') throw invalid('workload endpoint unix socket URI must include a path');
    if (u.rawQuery !== '') throw invalid('workload endpoint unix socket URI must not include query values');
    if (u.fragment !== '') throw invalid('workload endpoint unix socket URI must not include a fragment');
    const path = escapedPath(u.rawPath, u.path);
    const query = u.forceQuery ? '?' : '';
    const target = u.host !== '' || !u.omitHost ? `unix://${u.host}${path}${query}` : `unix:${path}${query}`;
    return { kind: 'unix', path: u.path, authority: u.host, target };
  }
  throw invalid('workload endpoint socket URI must have a "tcp" or "unix" scheme');
}

/**
 * The default Workload API address from `SPIFFE_ENDPOINT_SOCKET`; throws
 * ERR_WORKLOAD_ADDRESS_INVALID `workload endpoint socket address is not configured` when unset.
 */
export function defaultWorkloadEndpoint(env: Readonly<Record<string, string | undefined>> = process.env): string {
  const v = env[SPIFFE_ENDPOINT_SOCKET];
  if (v === undefined) throw invalid('workload endpoint socket address is not configured');
  return v;
}
