// Edges of the procfs parsers that proc-linux-rules.test.ts does not reach: a status text that
// opens with an empty line, a stat line whose task name is opened but never closed, and a stat
// line whose only ')' is its first character.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { parseProcStatus, parseStartTime } from './proc-linux.ts';

/** Fields 3.. of a stat line, 36 of them (38 in all), field 22 = `start`. */
const fieldsFrom3 = (start: string): string => Array.from({ length: 36 }, (_, i) => (i === 19 ? start : String(i + 3))).join(' ');

describe('parseProcStatus: line boundaries', () => {
  it('an empty first line is a line like any other: the ids after it are read', () => {
    assert.deepEqual(parseProcStatus('\nUid:\t1\t2\t3\t4\nGid:\t5\t6\t7\t8\nGroups:\t9\n'), { uids: [1, 2, 3, 4], gids: [5, 6, 7, 8], groups: ['9'] });
    assert.deepEqual(parseProcStatus('\n\nGid:\t5\nUid:\t1\n'), { uids: [1], gids: [5], groups: [] });
  });
});

describe('parseStartTime: the parenthesized task name', () => {
  it("a '(' that is never closed is not a task name, even when the fields after it look right", () => {
    assert.throws(() => parseStartTime(`42 (x  ${fieldsFrom3('777')}\n`), { message: 'task name is not parenthesized' });
    assert.throws(() => parseStartTime(`42 (x${fieldsFrom3('777')}`), { message: 'task name is not parenthesized' });
  });

  it("a ')' as the first character still ends the task name when a '(' comes later", () => {
    assert.equal(parseStartTime(`) ${fieldsFrom3('777')} (`), '777');
  });
});
