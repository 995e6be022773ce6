// Usage errors under a `goCli` command (ztwim server ...) are reported as spire-server does:
// Go flag text, `Usage of <sub path>:` with Go's flag defaults, exit 1 (127 for an unknown
// command right under it). Elsewhere ztwim keeps its own style and exit 2.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runCaptured } from './capture.ts';
import type { Command } from './command.ts';
import { goFlagDefaults } from './flags.ts';
import { rootCommand } from './root.ts';

const run = (root: Command, argv: readonly string[]) => runCaptured(root, argv, { vars: {} });

const leaf: Command = {
  name: 'show',
  summary: 'shows',
  flags: {
    spiffeID: { kind: 'string', usage: 'The SPIFFE ID' },
    selector: { kind: 'list', usage: 'A selector. Can be used more than once' },
    node: { kind: 'bool', usage: 'Node entry' },
    ttl: { kind: 'int', usage: 'TTL', default: 600 },
    expiredFor: { kind: 'duration', usage: 'Expired for', default: 30 * 24 * 3600 },
    output: { kind: 'string', usage: 'Desired output format', default: 'pretty', arg: 'value' },
    socketPath: { kind: 'string', usage: 'Socket', default: '/tmp/x.sock', arg: 'path' },
    x: { kind: 'bool', usage: 'short' },
  },
  async run() {
    return 0;
  },
};
const tree = (goCli: boolean): Command => ({
  name: 'ztwim',
  summary: 'root',
  subcommands: [
    { name: 'server', summary: 'server', ...(goCli ? { goCli: true } : {}), subcommands: [{ name: 'entry', summary: 'entry', subcommands: [leaf] }] },
  ],
});

describe('goCli: spire-server compatible usage errors', () => {
  it("renders Go's flag.PrintDefaults", () => {
    assert.equal(
      goFlagDefaults(leaf.flags ?? {}),
      [
        '  -expiredFor duration',
        '    \tExpired for (default 720h0m0s)',
        '  -node',
        '    \tNode entry',
        '  -output value',
        '    \tDesired output format',
        '  -selector value',
        '    \tA selector. Can be used more than once',
        '  -socketPath string',
        '    \tSocket (default "/tmp/x.sock")',
        '  -spiffeID string',
        '    \tThe SPIFFE ID',
        '  -ttl int',
        '    \tTTL (default 600)',
        '  -x\tshort',
      ].join('\n'),
    );
  });

  it('flag errors: Go text + "Usage of entry show:" on stderr, exit 1', async () => {
    for (const [argv, first] of [
      [['-bogus'], 'flag provided but not defined: -bogus'],
      [['-ttl', 'abc'], 'invalid value "abc" for flag -ttl: parse error'],
      [['-node=maybe'], 'invalid boolean value "maybe" for -node: parse error'],
      [['-spiffeID'], 'flag needs an argument: -spiffeID'],
    ] as const) {
      const r = await run(tree(true), ['server', 'entry', 'show', ...argv]);
      assert.equal(r.status, 1, argv.join(' '));
      assert.equal(r.stdout, '');
      assert.equal(r.stderr, `${first}\nUsage of entry show:\n${goFlagDefaults(leaf.flags ?? {})}\n`);
    }
  });

  it('unknown or missing subcommands: 127 right under the goCli command, 1 deeper', async () => {
    assert.equal((await run(tree(true), ['server', 'bogus'])).status, 127);
    assert.equal((await run(tree(true), ['server'])).status, 127);
    assert.equal((await run(tree(true), ['server', 'entry', 'bogus'])).status, 1);
    assert.equal((await run(tree(true), ['server', 'entry'])).status, 1);
    assert.equal((await run(tree(true), ['server', 'entry', 'show', '-h'])).status, 0);
  });

  it('outside a goCli subtree: ztwim style, exit 2', async () => {
    const r = await run(tree(false), ['server', 'entry', 'show', '-bogus']);
    assert.equal(r.status, 2);
    assert.equal(r.stderr, "Error: flag provided but not defined: -bogus\nRun 'ztwim server entry show --help' for usage.\n");
    assert.equal((await run(tree(false), ['server', 'bogus'])).status, 2);
  });

  it('the real `ztwim server` tree is a goCli subtree', async () => {
    const r = await run(rootCommand(), ['server', 'entry', 'show', '-bogus']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^flag provided but not defined: -bogus\nUsage of entry show:\n {2}-downstream\n/);
    const t = await run(rootCommand(), ['server', 'token', 'generate', '-ttl', 'x']);
    assert.equal(t.status, 1);
    assert.match(t.stderr, /^invalid value "x" for flag -ttl: parse error\nUsage of generate:\n/);
    assert.equal((await run(rootCommand(), ['server', 'entry', 'create', '-x509SVIDTTL', 'abc'])).status, 1);
  });
});
