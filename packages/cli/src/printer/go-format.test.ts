import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { goQuote, goRfc3339Utc, goTimeLocal, goTimeUtc, grpcCodeName, grpcErrorText } from './go-format.ts';

describe('grpcCodeName / grpcErrorText', () => {
  // Every name grpc-go's codes.Code.String() prints, in code order, and its fallback for values outside the table.
  const cases: [number, string][] = [
    [0, 'OK'],
    [1, 'Canceled'],
    [2, 'Unknown'],
    [3, 'InvalidArgument'],
    [4, 'DeadlineExceeded'],
    [5, 'NotFound'],
    [6, 'AlreadyExists'],
    [7, 'PermissionDenied'],
    [8, 'ResourceExhausted'],
    [9, 'FailedPrecondition'],
    [10, 'Aborted'],
    [11, 'OutOfRange'],
    [12, 'Unimplemented'],
    [13, 'Internal'],
    [14, 'Unavailable'],
    [15, 'DataLoss'],
    [16, 'Unauthenticated'],
    [17, 'Code(17)'],
    [42, 'Code(42)'],
  ];
  for (const [code, name] of cases) it(`${code} ⇒ ${name}`, () => assert.equal(grpcCodeName(code), name));
  it('formats like grpc-go status errors', () => {
    assert.equal(grpcErrorText(5, 'entry not found'), 'rpc error: code = NotFound desc = entry not found');
  });
});

describe('goQuote (strconv.Quote)', () => {
  const cases: [string, string, string][] = [
    ['plain', 'similar entry already exists', '"similar entry already exists"'],
    ['quotes and backslashes', 'a "b" \\c', '"a \\"b\\" \\\\c"'],
    ['control chars', '\x07\b\f\n\r\t\v\x00\x7f', '"\\a\\b\\f\\n\\r\\t\\v\\x00\\x7f"'],
    ['printable unicode kept', 'é 😀 <>&', '"é 😀 <>&"'],
    ['non-printable unicode escaped', '\u200b\u{e0001}', '"\\u200b\\U000e0001"'],
  ];
  for (const [name, input, want] of cases) it(name, () => assert.equal(goQuote(input), want));
});

describe('Go time formatting', () => {
  it('goTimeUtc: time.Unix(s,0).UTC().String()', () => {
    assert.equal(goTimeUtc(1999999999n), '2033-05-18 03:33:19 +0000 UTC');
    assert.equal(goTimeUtc(0), '1970-01-01 00:00:00 +0000 UTC');
  });
  it('goRfc3339Utc', () => {
    assert.equal(goRfc3339Utc(1999999999), '2033-05-18T03:33:19Z');
  });
  it('goTimeLocal: local zone, Go layout', () => {
    assert.match(goTimeLocal(1999999999n), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4} \S+$/);
    if (new Date(1999999999000).getTimezoneOffset() === 0) {
      assert.equal(goTimeLocal(1999999999n, undefined), '2033-05-18 03:33:19 +0000 UTC');
    }
  });
});
