// The restart window: `ztwim server run` (SQLite) and `ztwim agent run` as processes, a few thousand
// entries on the agent's node. A workload polling the Workload API through an agent restart sees
// only Unavailable (or its SVIDs), never PermissionDenied "no identity issued" (which it got from
// the restarted agent until its first sync had landed); a workload without any entry still gets
// PermissionDenied once that first sync is done.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { EntryService, SpiffeWorkloadAPI, cancelOnBreak, createUnixGrpcTransport, headersInterceptor, type GrpcClientTransport } from '@ztwim/proto';
import { freePort } from '../interop/lib/spire-admin.ts';
import { agentConf, serverConf } from '../interop/lib/server-conf.ts';
import { makeTmpDir, type TmpDir } from '../interop/lib/tmp.ts';
import { runZtwim, startZtwim, stopProc, type CliRun, type Proc } from '../interop/lib/ztwim-cli.ts';
import { holdsFor } from '@ztwim/testkit';
import { until } from '../interop/lib/wait.ts';

function ztwimCmd(dir: TmpDir, ...args: string[]): Promise<CliRun> {
  return runZtwim(dir.path, args, { timeoutMs: 20_000 });
}

const ENTRIES = 3000;
const UID = process.getuid?.() ?? 0;
const WATCHED = 'spiffe://example.org/restart/watched';

describe('agent restart with 3,000 entries: Unavailable while syncing, never PermissionDenied', () => {
  let dir: TmpDir;
  let server: Proc | undefined;
  let agent: Proc | undefined;
  let serverSock: string;
  let agentSock: string;
  let agentId: string;
  const transports: GrpcClientTransport[] = [];

  const startAgent = async (args: string[]): Promise<Proc> => {
    const a = startZtwim(dir, ['agent', 'run', '-config', 'agent.conf', ...args]);
    await until('agent socket', async () => {
      if (a.child.exitCode !== null) throw new Error(`agent exited ${a.child.exitCode}:\n${a.out()}`);
      return existsSync(agentSock) ? true : undefined;
    });
    return a;
  };
  /** One FetchX509SVID (first message) or FetchJWTSVID: the SPIFFE IDs, or the status code and message. */
  const poll = async (kind: 'x509' | 'jwt'): Promise<{ ids: string[] } | { code: Code; message: string }> => {
    // A new connection per call, as a workload starting up makes.
    const t = createUnixGrpcTransport(agentSock, { interceptors: [headersInterceptor({ 'workload.spiffe.io': 'true' })] });
    const client = createClient(SpiffeWorkloadAPI, t);
    const signal = AbortSignal.timeout(20_000);
    try {
      if (kind === 'jwt') return { ids: (await client.fetchJWTSVID({ audience: ['restart'] }, { signal })).svids.map((s) => s.spiffeId) };
      for await (const m of cancelOnBreak((s) => client.fetchX509SVID({}, { signal: AbortSignal.any([s, signal]) })))
        return { ids: m.svids.map((s) => s.spiffeId) };
      return { code: Code.Unknown, message: 'stream ended without a message' };
    } catch (e) {
      const ce = ConnectError.from(e);
      return { code: ce.code, message: ce.rawMessage };
    } finally {
      t.close();
    }
  };

  before(async () => {
    dir = makeTmpDir('ztwim-restart-window-');
    serverSock = join(dir.path, 'server.sock');
    agentSock = join(dir.path, 'agent', 'api.sock');
    const port = await freePort();
    dir.write(
      'server.conf',
      serverConf({ port, socketPath: serverSock, trustDomain: 'example.org', dataDir: join(dir.path, 'server-data'), settings: { log_level: 'WARN' } }),
    );
    server = startZtwim(dir, ['server', 'run', '-config', 'server.conf']);
    await until('server healthcheck', async () => {
      if (server?.child.exitCode !== null) throw new Error(`server exited:\n${server?.out()}`);
      return (await ztwimCmd(dir, 'server', 'healthcheck', '-socketPath', serverSock)).status === 0 ? true : undefined;
    });
    const tok = await ztwimCmd(dir, 'server', 'token', 'generate', '-socketPath', serverSock);
    const token = /Token: (\S+)/.exec(tok.stdout)?.[1];
    assert.ok(token, tok.stdout + tok.stderr);
    agentId = `spiffe://example.org/spire/agent/join_token/${token}`;
    dir.write('bootstrap.crt', (await ztwimCmd(dir, 'server', 'bundle', 'show', '-socketPath', serverSock)).stdout);
    // Entries for uids nobody has, so that the first sync has thousands of SVIDs to mint.
    const admin = createUnixGrpcTransport(serverSock);
    transports.push(admin);
    const entry = createClient(EntryService, admin);
    for (let i = 0; i < ENTRIES; i += 500) {
      const res = await entry.batchCreateEntry({
        entries: Array.from({ length: Math.min(500, ENTRIES - i) }, (_, j) => ({
          parentId: { trustDomain: 'example.org', path: agentId.slice('spiffe://example.org'.length) },
          spiffeId: { trustDomain: 'example.org', path: `/restart/other-${i + j}` },
          selectors: [{ type: 'unix', value: `uid:${100_000 + i + j}` }],
        })),
      });
      assert.ok(
        res.results.every((r) => (r.status?.code ?? 0) === 0),
        res.results.find((r) => (r.status?.code ?? 0) !== 0)?.status?.message,
      );
    }
    dir.write(
      'agent.conf',
      agentConf({
        serverPort: port,
        trustDomain: 'example.org',
        dataDir: join(dir.path, 'agent-data'),
        socketPath: agentSock,
        trustBundlePath: join(dir.path, 'bootstrap.crt'),
        syncInterval: null,
      }),
    );
    agent = await startAgent(['-joinToken', token]);
  });
  after(async () => {
    for (const t of transports) t.close();
    if (agent !== undefined) await stopProc(agent, 'SIGKILL');
    if (server !== undefined) await stopProc(server, 'SIGKILL');
    dir?.cleanup();
  });

  it('a workload without any entry gets PermissionDenied once the first sync is done (before and after a restart)', async () => {
    for (let round = 0; round < 2; round++) {
      for (const kind of ['x509', 'jwt'] as const) {
        // Unavailable only while the agent syncs; then the answer for a workload without entries.
        const r = await until(
          `${kind}: an answer other than Unavailable`,
          async () => {
            const p = await poll(kind);
            return 'code' in p && p.code === Code.Unavailable ? undefined : p;
          },
          60_000,
        );
        assert.deepEqual(r, { code: Code.PermissionDenied, message: 'no identity issued' }, `round ${round}, ${kind}`);
      }
      if (round === 0) {
        assert.ok(agent);
        assert.equal((await stopProc(agent)).code, 0, agent.out());
        agent = await startAgent([]);
      }
    }
  });

  it('a registered workload polling through an agent restart sees only Unavailable or its SVID', async () => {
    const admin = createUnixGrpcTransport(serverSock);
    transports.push(admin);
    const created = await createClient(EntryService, admin).batchCreateEntry({
      entries: [
        {
          parentId: { trustDomain: 'example.org', path: agentId.slice('spiffe://example.org'.length) },
          spiffeId: { trustDomain: 'example.org', path: '/restart/watched' },
          selectors: [{ type: 'unix', value: `uid:${UID}` }],
        },
      ],
    });
    assert.equal(created.results[0]?.status?.code ?? 0, 0, created.results[0]?.status?.message);
    await until(
      'the watched SVID',
      async () => {
        const p = await poll('x509');
        return 'ids' in p && p.ids.includes(WATCHED) ? true : undefined;
      },
      60_000,
    );

    // Two pollers (X.509 and JWT) run back to back through a SIGTERM + restart of the agent.
    const seen: { kind: string; phase: string; result: string }[] = [];
    let phase = 'before';
    let stop = false;
    const poller = async (kind: 'x509' | 'jwt'): Promise<void> => {
      while (!stop) {
        const p = await poll(kind);
        seen.push({ kind, phase, result: 'ids' in p ? (p.ids.includes(WATCHED) ? 'ok' : `wrong ids ${p.ids.join(',')}`) : `${Code[p.code]}: ${p.message}` });
        // The pollers are the behaviour under test (clients calling back to back through the
        // restart); the pause only yields to the rest of the event loop between calls.
        await new Promise((r) => setTimeout(r, 'ids' in p ? 2 : 10));
      }
    };
    const pollers = [poller('x509'), poller('jwt')];
    let servedAfterMs: number;
    try {
      await until('both pollers served before the restart', () =>
        ['x509', 'jwt'].every((k) => seen.some((x) => x.phase === 'before' && x.kind === k && x.result === 'ok')) ? true : undefined,
      );
      assert.ok(agent);
      phase = 'down';
      assert.equal((await stopProc(agent)).code, 0, agent.out());
      agent = startZtwim(dir, ['agent', 'run', '-config', 'agent.conf']);
      phase = 'restarted';
      const t0 = Date.now();
      await until(
        'both pollers served after the restart',
        async () => {
          if (agent?.child.exitCode !== null) throw new Error(`agent exited:\n${agent?.out()}`);
          const ok = (k: string) => seen.some((s) => s.phase === 'restarted' && s.kind === k && s.result === 'ok');
          return ok('x509') && ok('jwt') ? true : undefined;
        },
        60_000,
      ).catch((e: unknown) => {
        throw new Error(`${String(e)}; saw ${JSON.stringify(summary(seen))}`);
      });
      servedAfterMs = Date.now() - t0;
      // Once served, always served: every later answer is the SVID too. 500 ms is dozens of
      // back-to-back calls for each poller, so a relapse to a refusal would show well inside it.
      const servedFrom = seen.length;
      await holdsFor('every answer after the first success is the SVID', () => seen.slice(servedFrom).every((s) => s.result === 'ok'), { forMs: 500 });
    } finally {
      stop = true;
      await Promise.all(pollers);
    }

    // While the agent process is down or closing, the client cannot reach it at all (our client
    // transport reports that as Internal "connect ENOENT" / a refused stream; grpc-go as
    // Unavailable): no answer from an agent, so not what this test is about.
    const unreachable = /connect (ENOENT|ECONNREFUSED)|REFUSED_STREAM|GOAWAY|ECONNRESET|EPIPE/;
    const bad = seen.filter((s) => s.result !== 'ok' && !s.result.startsWith('Unavailable') && !unreachable.test(s.result));
    assert.deepEqual(bad, [], `only Unavailable or the SVID; saw ${JSON.stringify(summary(seen))}`);
    const answered = seen.filter((s) => s.phase === 'restarted' && !unreachable.test(s.result));
    assert.ok(answered.length > 0);
    const restarted = seen.filter((s) => s.phase === 'restarted');
    assert.ok(
      restarted.some((s) => s.result === 'ok'),
      'served after the restart',
    );
    // Ends in success: once served, never refused again.
    for (const kind of ['x509', 'jwt']) {
      const mine = restarted.filter((s) => s.kind === kind);
      const firstOk = mine.findIndex((s) => s.result === 'ok');
      assert.ok(
        mine.slice(firstOk).every((s) => s.result === 'ok'),
        `${kind}: ${JSON.stringify(summary(mine))}`,
      );
    }
    console.log(`restart window: served ${servedAfterMs} ms after the restart; ${JSON.stringify(summary(seen))}`);
  });
});

function summary(seen: readonly { kind: string; phase: string; result: string }[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of seen) {
    const k = `${s.phase} ${s.kind} ${s.result.replace(/\/tmp\/\S+/g, '<path>').slice(0, 100)}`;
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}
