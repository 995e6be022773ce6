import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { goParseTimeError } from './go-time-parse.ts';

// Expected texts are what spire-server v1.13.0 prints after "date is not valid: ".
const L = '"2006-01-02 15:04:05 -0700 -07"';

describe('goParseTimeError (layout "2006-01-02 15:04:05 -0700 -07")', () => {
  const cases: [string, string | undefined][] = [
    ['2025-01-01 10:00:00 +0000 +00', undefined],
    ['2025-01-01  10:00:00 -0130 -01', undefined],
    ['2025-01-01 10:00:00 +0000 +00  ', 'parsing time "2025-01-01 10:00:00 +0000 +00  ": extra text: "  "'],
    ['tomorrow', `parsing time "tomorrow" as ${L}: cannot parse "tomorrow" as "2006"`],
    ['2025-13-01 00:00:00 +0000 +00', 'parsing time "2025-13-01 00:00:00 +0000 +00": month out of range'],
    ['2025-02-30 00:00:00 +0000 +00', 'parsing time "2025-02-30 00:00:00 +0000 +00": day out of range'],
    ['2025-01-01 24:00:00 +0000 +00', 'parsing time "2025-01-01 24:00:00 +0000 +00": hour out of range'],
    ['2025-01-01 10:0:00 +0000 +00', `parsing time "2025-01-01 10:0:00 +0000 +00" as ${L}: cannot parse "0:00 +0000 +00" as "04"`],
    ['2025-01-01 10:00:00 +0000 +00 x', 'parsing time "2025-01-01 10:00:00 +0000 +00 x": extra text: " x"'],
    ['2025-01-01 10:00:00 +0000', `parsing time "2025-01-01 10:00:00 +0000" as ${L}: cannot parse "" as "-07"`],
    ['2025/01/01', `parsing time "2025/01/01" as ${L}: cannot parse "/01/01" as "-"`],
  ];
  for (const [input, want] of cases) it(JSON.stringify(input), () => assert.equal(goParseTimeError(input), want));
});
