// A burst of real go-spiffe v2.9.0 Workload API clients against our agent (issue #25, item 2): N
// X.509 watchers and M JWT clients (test/interop/go/burst) open their connections at the same
// instant, as a node full of workloads does when they all start together, and stay for the hold
// time. Every watcher must get its SVID and no client may see an error (spire-agent's answer to
// the same burst); afterwards the agent must have let go of what each connection held (the
// descriptors of the sockets and of the process pins). How fast is the bench's business
// (bench/agent-burst.ts, beside spire-agent): the only time bound here is the hold.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { eventually, openFds } from '@ztwim/testkit';
import { goBuild, INTEROP_DIR } from './lib/peers.ts';
import { burstReportOf, type BurstReport } from './lib/burst.ts';
import { startStack, type Stack } from './lib/ztwim-stack.ts';

// As many as stay reliable on a shared 2-core CI machine at load 20-30: the hold is long enough
// for every watcher to be served there (the bench's 1,000 took under 10 s at that load).
const WATCHERS = 400;
const JWT_CLIENTS = 50;
const HOLD_S = 20;

const uid = process.getuid?.() ?? 0;
let stack: Stack;
let socket: string;
let bin: string;

/** Runs the client against the agent; the agent runs in this process, so the wait is async. */
async function burst(args: readonly string[], holdS: number): Promise<BurstReport> {
  const { stdout } = await promisify(execFile)(bin, ['-addr', `unix://${socket}`, ...args, '-hold', `${holdS}s`], {
    encoding: 'utf8',
    timeout: (holdS + 60) * 1000,
    maxBuffer: 1 << 22,
  });
  const r = burstReportOf(stdout);
  if (r === undefined) throw new Error(`no report from the burst client: ${stdout}`);
  return r;
}

before(async () => {
  bin = goBuild(join(INTEROP_DIR, 'go'), './burst');
  stack = await startStack();
  const { agent } = await stack.startAgent();
  await stack.createEntries([{ parentId: agent.agentId, path: '/burst', selectors: [`unix:uid:${uid}`] }]);
  socket = agent.socketPath;
  // The entry has synced once one watcher is served.
  await eventually(
    'the agent to serve the entry to one go-spiffe watcher',
    async () => (await burst(['-watchers', '1', '-jwt', '0'], 2)).watchersServed === 1,
    {
      timeoutMs: 60_000,
      intervalMs: 300,
    },
  );
});

after(async () => {
  await stack?.close();
});

describe('a burst of go-spiffe clients against the ztwim agent', () => {
  test(`${WATCHERS} X.509 watchers + ${JWT_CLIENTS} JWT clients at once: every watcher served, no error, every connection's descriptors released`, async () => {
    const fdsBefore = openFds();
    const r = await burst(['-watchers', String(WATCHERS), '-jwt', String(JWT_CLIENTS)], HOLD_S);
    const summary = JSON.stringify(r);
    assert.deepEqual(r.sampleErrors, [], summary);
    assert.equal(r.watchErrors, 0, summary);
    assert.equal(r.jwtErrors, 0, summary);
    assert.equal(r.watchers, WATCHERS, summary);
    assert.equal(r.watchersServed, WATCHERS, summary);
    // Each JWT client loops for the whole hold: every one of them got at least one JWT-SVID.
    assert.ok(r.jwtOk >= JWT_CLIENTS, summary);
    // The client has exited, so every connection is closed: the agent lets go of each one's socket
    // and of the process pin they shared (a few other descriptors of this process may come and go).
    await eventually(`the agent to release the burst's descriptors (${fdsBefore} before)`, () => openFds() <= fdsBefore + 5, { timeoutMs: 30_000 });
  });
});
