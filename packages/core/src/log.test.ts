import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger, jsonLogLineToText, parseLogFormat } from './log.ts';

function capture(): { lines: string[]; destination: { write(s: string): void } } {
  const lines: string[] = [];
  return {
    lines,
    destination: {
      write: (s: string) => {
        lines.push(s);
      },
    },
  };
}

/** Every key of a JSON object line, in order, repeats included (JSON.parse would hide a repeat). */
function rawKeys(line: string): string[] {
  return [...line.matchAll(/"([a-z_]+)":/g)].map((m) => m[1] as string);
}

test('children of children log each field once, the innermost value winning', () => {
  const c = capture();
  const log = createLogger({ name: 'ztwim-up', destination: c.destination });
  log.child({ subsystem: 'server' }).child({ subsystem: 'ca_manager', slot: 'A' }).child({ subsystem: 'ca_manager' }).info('X509 CA prepared');
  assert.equal(c.lines.length, 1);
  const line = c.lines[0] as string;
  const keys = rawKeys(line);
  assert.deepEqual(
    keys.filter((k) => k === 'subsystem'),
    ['subsystem'],
    line,
  );
  assert.deepEqual(new Set(keys).size, keys.length, line);
  const rec = JSON.parse(line) as Record<string, unknown>;
  assert.equal(rec['subsystem'], 'ca_manager');
  assert.equal(rec['component'], 'ztwim-up');
  assert.equal(rec['slot'], 'A');
});

test('a child keeps its parent level, and a child level applies to it', () => {
  const c = capture();
  const log = createLogger({ level: 'warn', destination: c.destination });
  const a = log.child({ subsystem: 'a' });
  a.info('hidden');
  a.child({ subsystem: 'b' }).info('hidden too');
  a.child({ subsystem: 'c' }, { level: 'debug' }).debug('shown');
  assert.equal(c.lines.length, 1);
  assert.match(c.lines[0] as string, /"msg":"shown"/);
});

test('text format: logfmt lines in logrus order (time, level, msg, then fields by name)', () => {
  const c = capture();
  const log = createLogger({ name: 'server', format: 'text', destination: c.destination });
  log.child({ subsystem: 'ca_manager' }).child({ subsystem: 'x509_ca' }).warn({ slot: 'A', path: '/tmp/a b', n: 3 }, 'CA prepared');
  assert.equal(c.lines.length, 1);
  assert.match(c.lines[0] as string, /^time=\S+ level=warn msg="CA prepared" component=server n=3 path="\/tmp\/a b" slot=A subsystem=x509_ca\n$/);
  assert.equal(jsonLogLineToText('not json\n'), 'not json\n');
});

test("parseLogFormat takes SPIRE's values in any case", () => {
  assert.equal(parseLogFormat('JSON'), 'json');
  assert.equal(parseLogFormat('text'), 'text');
  assert.equal(parseLogFormat('pretty'), undefined);
});
