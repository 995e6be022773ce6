import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Flags, HelpRequested, parseFlags, parseGoDuration, UsageError, type FlagSpecs } from './flags.ts';

const specs: FlagSpecs = {
  spiffeID: { kind: 'string', usage: 'id' },
  selector: { kind: 'list', usage: 'sel' },
  node: { kind: 'bool', usage: 'node' },
  x509SVIDTTL: { kind: 'int', usage: 'ttl', default: 0 },
  ttl: { kind: 'duration', usage: 'ttl' },
  socketPath: { kind: 'string', usage: 'sock', default: '/tmp/spire-server/private/api.sock' },
};

test('parses spire-style flags', () => {
  const f = new Flags(
    parseFlags(specs, [
      '-spiffeID',
      'spiffe://td/a',
      '-selector',
      'unix:uid:0',
      '--selector=unix:gid:0',
      '-node',
      '-x509SVIDTTL=60',
      '-ttl',
      '1m30s',
      'rest',
      '-x',
    ]),
  );
  assert.equal(f.string('spiffeID'), 'spiffe://td/a');
  assert.deepEqual(f.list('selector'), ['unix:uid:0', 'unix:gid:0']);
  assert.equal(f.bool('node'), true);
  assert.equal(f.int('x509SVIDTTL'), 60);
  assert.equal(f.duration('ttl'), 90);
  assert.equal(f.string('socketPath'), '/tmp/spire-server/private/api.sock');
  assert.equal(f.isSet('socketPath'), false);
  assert.deepEqual(f.args, ['rest', '-x']);
});

test('bool flags take =false; errors are usage errors', () => {
  assert.equal(new Flags(parseFlags(specs, ['-node=false'])).bool('node'), false);
  const bad: Array<[string[], RegExp]> = [
    [['-nope'], /flag provided but not defined: -nope/],
    [['-spiffeID'], /flag needs an argument: -spiffeID/],
    [['-x509SVIDTTL', 'ten'], /invalid value "ten" for flag -x509SVIDTTL/],
    [['-ttl', '5'], /invalid value "5" for flag -ttl/],
    [['-node=maybe'], /invalid boolean value/],
    [['---x'], /bad flag syntax/],
  ];
  for (const [argv, re] of bad)
    assert.throws(
      () => parseFlags(specs, argv),
      (e: unknown) => e instanceof UsageError && re.test(e.message),
      argv.join(' '),
    );
  assert.throws(() => parseFlags(specs, ['-h']), HelpRequested);
  assert.throws(() => parseFlags(specs, ['--help']), HelpRequested);
});

test('Go durations', () => {
  assert.equal(parseGoDuration('1h'), 3600);
  assert.equal(parseGoDuration('500ms'), 0.5);
  assert.equal(parseGoDuration('1.5m'), 90);
  assert.equal(parseGoDuration('x'), undefined);
});
