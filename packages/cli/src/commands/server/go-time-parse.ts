// Go `time.Parse("2006-01-02 15:04:05 -0700 -07", s)` validation with Go's error texts, for
// `agent list/count -expiresBefore` (the string itself is sent to the server unchanged).
import { goQuote } from '../../printer/go-format.ts';

export const EXPIRES_BEFORE_LAYOUT = '2006-01-02 15:04:05 -0700 -07';

type Chunk = { lit: string } | { std: '2006' | '01' | '02' | '15' | '04' | '05' | '-0700' | '-07' };

const CHUNKS: Chunk[] = [
  { std: '2006' },
  { lit: '-' },
  { std: '01' },
  { lit: '-' },
  { std: '02' },
  { lit: ' ' },
  { std: '15' },
  { lit: ':' },
  { std: '04' },
  { lit: ':' },
  { std: '05' },
  { lit: ' ' },
  { std: '-0700' },
  { lit: ' ' },
  { std: '-07' },
];

const isDigit = (c: string | undefined): boolean => c !== undefined && c >= '0' && c <= '9';

/** Go's getnum: one or two digits (exactly two when fixed). */
function getnum(s: string, fixed: boolean): [number, string] | undefined {
  if (!isDigit(s[0])) return undefined;
  if (!isDigit(s[1])) {
    if (fixed) return undefined;
    return [Number(s[0]), s.slice(1)];
  }
  return [Number(s.slice(0, 2)), s.slice(2)];
}

function daysIn(month: number, year: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** Returns undefined when `value` parses, else the Go error message. */
export function goParseTimeError(value: string, layout = EXPIRES_BEFORE_LAYOUT): string | undefined {
  const head = `parsing time ${goQuote(value)}`;
  const bad = (valueElem: string, layoutElem: string): string => `${head} as ${goQuote(layout)}: cannot parse ${goQuote(valueElem)} as ${goQuote(layoutElem)}`;
  let v = value;
  let year = 0;
  let month = 0;
  let day = 0;
  for (const c of CHUNKS) {
    if ('lit' in c) {
      if (c.lit === ' ') {
        // Go's skip: a layout space matches any run of spaces (or the end of the value).
        if (v.length > 0 && v[0] !== ' ') return bad(v, c.lit);
        v = v.replace(/^ +/, '');
        continue;
      }
      if (!v.startsWith(c.lit)) return bad(v, c.lit);
      v = v.slice(c.lit.length);
      continue;
    }
    const at = v;
    switch (c.std) {
      case '2006': {
        if (v.length < 4 || !/^[0-9]{4}/.test(v)) return bad(at, c.std);
        year = Number(v.slice(0, 4));
        v = v.slice(4);
        break;
      }
      case '01':
      case '02':
      case '15':
      case '04':
      case '05': {
        const r = getnum(v, c.std !== '15');
        if (r === undefined) return bad(at, c.std);
        [, v] = r;
        const n = r[0];
        if (c.std === '01') {
          if (n < 1 || n > 12) return `${head}: month out of range`;
          month = n;
        } else if (c.std === '02') day = n;
        else if (c.std === '15' && n >= 24) return `${head}: hour out of range`;
        else if (c.std === '04' && n >= 60) return `${head}: minute out of range`;
        else if (c.std === '05' && n >= 60) return `${head}: second out of range`;
        break;
      }
      case '-0700':
      case '-07': {
        const len = c.std === '-0700' ? 5 : 3;
        if (v.length < len) return bad(at, c.std);
        const sign = v[0];
        const hh = v.slice(1, 3);
        const mm = c.std === '-0700' ? v.slice(3, 5) : '00';
        if (!/^[0-9]{2}$/.test(hh) || !/^[0-9]{2}$/.test(mm) || (sign !== '+' && sign !== '-')) return bad(at, c.std);
        if (Number(hh) > 24) return `${head}: time zone offset hour out of range`;
        if (Number(mm) > 60) return `${head}: time zone offset minute out of range`;
        v = v.slice(len);
        break;
      }
    }
  }
  if (v.length > 0) return `${head}: extra text: ${goQuote(v)}`;
  if (day < 1 || day > daysIn(month, year)) return `${head}: day out of range`;
  return undefined;
}
