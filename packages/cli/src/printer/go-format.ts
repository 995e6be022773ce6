/** Small re-implementations of Go formatting that spire-server's CLI output depends on. */

import { Code } from '@connectrpc/connect';

/** grpc-go `codes.Code.String()`: `NotFound`, or `Code(42)` for unknown values. */
export function grpcCodeName(code: number): string {
  if (code === 0) return 'OK';
  // Connect's numeric enum carries grpc-go's names (Canceled = 1 ... Unauthenticated = 16); it has no member for OK.
  const name: string | undefined = Code[code];
  return name ?? `Code(${code})`;
}

/** grpc-go `status.Error(...).Error()`: `rpc error: code = NotFound desc = entry not found`. */
export function grpcErrorText(code: number, message: string): string {
  return `rpc error: code = ${grpcCodeName(code)} desc = ${message}`;
}

const PRINTABLE = /[\p{L}\p{M}\p{N}\p{P}\p{S}]/u;

/** The control characters both strconv.Quote and encoding/json write as C escapes (strconv adds \a and \v). */
export const GO_SHORT_ESCAPES: ReadonlyMap<number, string> = new Map([
  [0x08, '\\b'],
  [0x09, '\\t'],
  [0x0a, '\\n'],
  [0x0c, '\\f'],
  [0x0d, '\\r'],
]);

/** Go `strconv.Quote` (`%q` of a string). */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0) as number;
    if (ch === '"' || ch === '\\') {
      out += '\\' + ch;
    } else if (cp === 0x20 || (cp > 0x20 && cp !== 0x7f && PRINTABLE.test(ch))) {
      out += ch;
    } else if (cp >= 0xd800 && cp <= 0xdfff) {
      out += '\\ufffd';
    } else {
      const short = cp === 0x07 ? '\\a' : cp === 0x0b ? '\\v' : GO_SHORT_ESCAPES.get(cp);
      if (short !== undefined) out += short;
      else if (cp < 0x80) out += '\\x' + cp.toString(16).padStart(2, '0');
      else if (cp < 0x10000) out += '\\u' + cp.toString(16).padStart(4, '0');
      else out += '\\U' + cp.toString(16).padStart(8, '0');
    }
  }
  return out + '"';
}

const p2 = (n: number): string => String(n).padStart(2, '0');

function ymdhms(d: Date, utc: boolean): string {
  const y = utc ? d.getUTCFullYear() : d.getFullYear();
  const mo = (utc ? d.getUTCMonth() : d.getMonth()) + 1;
  const da = utc ? d.getUTCDate() : d.getDate();
  const h = utc ? d.getUTCHours() : d.getHours();
  const mi = utc ? d.getUTCMinutes() : d.getMinutes();
  const s = utc ? d.getUTCSeconds() : d.getSeconds();
  const year = y < 0 ? '-' + String(-y).padStart(4, '0') : String(y).padStart(4, '0');
  return `${year}-${p2(mo)}-${p2(da)} ${p2(h)}:${p2(mi)}:${p2(s)}`;
}

/** Go `time.Unix(sec, 0).UTC().String()`: `2025-01-02 03:04:05 +0000 UTC`. */
export function goTimeUtc(unixSeconds: number | bigint): string {
  return `${ymdhms(new Date(Number(unixSeconds) * 1000), true)} +0000 UTC`;
}

function zoneAbbreviation(d: Date, offsetMinutes: number, tz: string | undefined): string {
  if (offsetMinutes === 0 && (tz === undefined || tz === '' || tz === 'UTC' || tz === 'Etc/UTC' || tz === 'UTC0')) return 'UTC';
  const part = new Intl.DateTimeFormat('en-US', { timeZoneName: 'short' }).formatToParts(d).find((p) => p.type === 'timeZoneName');
  const name = part?.value ?? '';
  // Go prints numeric abbreviations (`+03`) where the zone database has no letters.
  if (name === '' || /^(GMT|UTC)[+-]/.test(name)) {
    const sign = offsetMinutes < 0 ? '-' : '+';
    const a = Math.abs(offsetMinutes);
    return a % 60 === 0 ? `${sign}${p2(Math.floor(a / 60))}` : `${sign}${p2(Math.floor(a / 60))}${p2(a % 60)}`;
  }
  return name === 'GMT' && offsetMinutes === 0 ? 'UTC' : name;
}

/** Go `time.Unix(sec, 0).String()` in the local zone: `2025-01-02 03:04:05 +0100 CET`. */
export function goTimeLocal(unixSeconds: number | bigint, tz: string | undefined = process.env['TZ']): string {
  const d = new Date(Number(unixSeconds) * 1000);
  const off = -d.getTimezoneOffset();
  const sign = off < 0 ? '-' : '+';
  const a = Math.abs(off);
  return `${ymdhms(d, false)} ${sign}${p2(Math.floor(a / 60))}${p2(a % 60)} ${zoneAbbreviation(d, off, tz)}`;
}

/** Go `time.Time.UTC().Format(time.RFC3339)`: `2025-01-02T03:04:05Z`. */
export function goRfc3339Utc(unixSeconds: number | bigint): string {
  return ymdhms(new Date(Number(unixSeconds) * 1000), true).replace(' ', 'T') + 'Z';
}
