// The command table names each lazily loaded command (name and summary, for --help) apart from
// the module that defines it: every row must load the command it names, with the same summary.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isLazyCommand, resolveCommand, type Command, type Subcommand } from './command.ts';
import { runCaptured } from './capture.ts';
import { rootCommand } from './root.ts';
import { agentRunRoot } from './agent-run-main.ts';
import { serverRunRoot } from './server-run-main.ts';

async function walk(row: Subcommand, path: string, seen: string[]): Promise<void> {
  const cmd = await resolveCommand(row);
  assert.equal(cmd.name, row.name, path);
  assert.equal(cmd.summary, row.summary, `${path}: the table's summary differs from the command's`);
  seen.push(path);
  for (const sub of cmd.subcommands ?? []) await walk(sub, `${path} ${sub.name}`, seen);
}

describe('command table', () => {
  it('every lazy row loads the command it names, with the same summary', async () => {
    const seen: string[] = [];
    await walk(rootCommand(), 'ztwim', seen);
    // The tree really is lazy at the top and under `server` and `agent`.
    const root = rootCommand();
    assert.ok(
      root.subcommands
        ?.filter(isLazyCommand)
        .map((c) => c.name)
        .includes('server'),
    );
    for (const path of [
      'ztwim server entry show',
      'ztwim server run',
      'ztwim agent run',
      'ztwim agent api fetch',
      'ztwim api fetch',
      'ztwim up',
      'ztwim oidc run',
    ]) {
      assert.ok(seen.includes(path), `${path} missing from the tree`);
    }
  });

  it('a row that loads another command, or fails to load, is an error naming it (exit 1), not a crash', async () => {
    const wrong: Command = { name: 'ztwim', summary: 'root', subcommands: [{ name: 'a', summary: 'a', load: async () => ({ name: 'b', summary: 'a' }) }] };
    const r = await runCaptured(wrong, ['a']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /command table: "a" loaded command "b"/);
    const broken: Command = {
      name: 'ztwim',
      summary: 'root',
      subcommands: [{ name: 'a', summary: 'a', load: () => Promise.reject(new Error('Cannot find module x')) }],
    };
    const b = await runCaptured(broken, ['a']);
    assert.equal(b.status, 1);
    assert.match(b.stderr, /^Error: Cannot find module x/);
  });

  it('--help of a group lists its lazy rows without loading them', async () => {
    let loads = 0;
    const root: Command = {
      name: 'ztwim',
      summary: 'root',
      subcommands: [{ name: 'heavy', summary: 'a heavy group', load: async () => (loads++, { name: 'heavy', summary: 'a heavy group' }) }],
    };
    const r = await runCaptured(root, ['--help']);
    assert.equal(r.status, 0);
    assert.match(r.stdout, /heavy\s+a heavy group/);
    assert.equal(loads, 0);
  });

  for (const [file, group, ownRoot] of [
    ['server-run-main.ts', 'server', serverRunRoot],
    ['agent-run-main.ts', 'agent', agentRunRoot],
  ] as const) {
    it(`${file}'s tree is the full tree's \`ztwim ${group} run\`: same names, summaries, Go-CLI behaviour and output`, async () => {
      const full = rootCommand();
      const own = ownRoot();
      assert.equal(own.name, full.name);
      assert.equal(own.summary, full.summary);
      const fullGroup = await resolveCommand(full.subcommands?.find((c) => c.name === group) ?? assert.fail(`no ${group} group`));
      const ownGroup = await resolveCommand(own.subcommands?.[0] ?? assert.fail(`no ${group} group`));
      assert.equal(own.subcommands?.length, 1);
      assert.deepEqual([ownGroup.name, ownGroup.summary, ownGroup.goCli], [fullGroup.name, fullGroup.summary, fullGroup.goCli]);
      const fullRun = await resolveCommand(fullGroup.subcommands?.find((c) => c.name === 'run') ?? assert.fail(`no ${group} run`));
      assert.equal(ownGroup.subcommands?.length, 1);
      assert.equal(await resolveCommand(ownGroup.subcommands?.[0] ?? assert.fail(`no ${group} run`)), fullRun);
      for (const argv of [
        [group, 'run', '-h'],
        [group, 'run', '-noSuchFlag'],
        [group, 'run', '-config', `/nonexistent/${group}.conf`],
      ]) {
        const [a, b] = [await runCaptured(full, argv), await runCaptured(own, argv)];
        assert.deepEqual(b, a, argv.join(' '));
      }
    });
  }
});
