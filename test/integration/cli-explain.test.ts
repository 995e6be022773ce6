// `ztwim explain` against a running `ztwim up`: what it says a process gets is what the agent
// serves that process (checked with `ztwim api fetch x509`), it names the selector a near entry
// lacks, and it names an entry whose parent is out of the agent's reach (the usual "no identity
// issued": a wrong -parentID).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { makeTmpDir, type TmpDir } from '../interop/lib/tmp.ts';
import { until } from '../interop/lib/wait.ts';
import { createEntry, startUp, stopUp, ztwim, type Up } from '../interop/lib/ztwim-up.ts';

const TD = 'example.org';
const uid = process.getuid?.() ?? 0;

describe('ztwim explain on ztwim up', () => {
  let dir: TmpDir;
  let up: Up;
  const server = (): string => join(dir.path, 'server.sock');
  const run = (...args: string[]): { status: number | null; stdout: string; stderr: string } => ztwim(dir, ...args);
  const explainPid = (...more: string[]) => run('explain', '-socketPath', server(), '-pid', String(process.pid), ...more);
  const fetchedIds = (): string[] => {
    const r = run('api', 'fetch', 'x509', '-socketPath', join(dir.path, 'agent.sock'));
    return [...r.stdout.matchAll(/^SPIFFE ID:\s+(\S+)$/gm)].map((m) => m[1] as string).sort();
  };
  const addEntry = (parentId: string, spiffeId: string, ...selectors: string[]): void => createEntry(dir, parentId, spiffeId, selectors);

  before(async () => {
    dir = makeTmpDir('ztwim-explain-');
    up = await startUp(dir, { server: 0, oidc: 0 });
  });
  after(async () => {
    if (up !== undefined) await stopUp(up);
    dir?.cleanup();
  });

  it('says "no identity issued" and names the lacking selector and the out-of-reach parent', () => {
    addEntry(`spiffe://${TD}/host`, `spiffe://${TD}/db`, 'unix:uid:4242', 'unix:group:no-such-group-here');
    addEntry(`spiffe://${TD}/elsewhere`, `spiffe://${TD}/wrong-parent`, 'unix:uid:4242');
    const r = run('explain', '-socketPath', server(), '-selector', 'unix:uid:4242', '-selector', 'unix:gid:4242');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /No identity issued/);
    assert.match(r.stdout, new RegExp(`Node aliases: +spiffe://${TD}/host\n`));
    assert.match(r.stdout, new RegExp(`spiffe://${TD}/db  entry \\S+: lacks unix:group:no-such-group-here`));
    assert.match(r.stdout, new RegExp(`spiffe://${TD}/wrong-parent  entry \\S+: parent spiffe://${TD}/elsewhere is neither this agent`));
    assert.match(r.stdout, /Workload selectors: unix:uid:4242, unix:gid:4242\n/);
  });

  it('what it says a process gets is what the agent serves it', async () => {
    addEntry(`spiffe://${TD}/host`, `spiffe://${TD}/myservice`, `unix:uid:${uid}`);
    const r = explainPid('-output', 'json');
    assert.equal(r.status, 0, r.stderr);
    const x = JSON.parse(r.stdout) as { matched: { spiffeId: string }[]; workloadSelectors: { type: string; value: string }[] };
    const said = x.matched.map((e) => e.spiffeId).sort();
    assert.ok(said.includes(`spiffe://${TD}/myservice`), said.join(', '));
    assert.ok(x.workloadSelectors.some((s) => s.type === 'unix' && s.value === `uid:${uid}`));
    const served = await until('the agent to serve myservice', () => {
      const ids = fetchedIds();
      return ids.includes(`spiffe://${TD}/myservice`) ? ids : undefined;
    });
    assert.deepEqual(served, said);
  });

  it('takes selectors instead of a PID, and refuses a call without either, naming the flags', () => {
    const r = run('explain', '-socketPath', server(), '-selector', 'unix:gid:4242', '-nearest', '1');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /No identity issued/);
    assert.match(r.stdout, /Nearest entries that do not match \(1 of \d+\)/);
    const none = run('explain', '-socketPath', server());
    assert.equal(none.status, 1);
    assert.match(none.stderr, /give the workload with -selector type:value or -pid N/);
    const badAgent = run('explain', '-socketPath', server(), '-selector', 'unix:uid:1', '-agentID', `spiffe://${TD}/spire/agent/nobody`);
    assert.equal(badAgent.status, 1);
    assert.match(badAgent.stderr, /agent spiffe:\/\/example\.org\/spire\/agent\/nobody: .*NotFound/);
  });
});
