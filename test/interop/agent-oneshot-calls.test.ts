// One-shot Workload API calls in a fast loop on ONE go-spiffe v2.9.0 client
// (test/interop/go/oneshot): FetchX509SVID, FetchX509Bundles and FetchJWTBundles each open a server
// stream, take the first response and cancel the stream (RST_STREAM CANCEL). Node's nghttp2 kills
// a connection whose peer resets more than 1,000 streams faster than 33/s (its CVE-2023-44487
// defence: GOAWAY INTERNAL_ERROR, and the call in flight fails Unavailable); spire-agent (grpc-go)
// has no such limit. Our agent must close such a connection gracefully before that (GOAWAY
// NO_ERROR: grpc-go finishes the call and dials again for the next), so every call succeeds, as it
// does against spire-agent v1.13.0, which the same client runs against first.
//
// The client also keeps a WatchX509Context stream open on the same connection (a workload with a
// watcher that also polls): its watcher must see no error either.
//
// grpc-go copes with nghttp2's kill even without the fix: it treats any GOAWAY as a drain (open
// streams, the watch included, go on; nghttp2 keeps serving them) and the call that crossed the
// GOAWAY is above its last stream id, so grpc-go retries it transparently. Our SDK's clients did
// not: on a GOAWAY with an error code both (its own HTTP/2 client and node:http2, as grpc-js)
// fail every stream of the connection, and neither retried the crossing call, so
// `bench/sdk.ts` failed "Session closed with error code 2". The same loop with the SDK (in this
// process, both transports) is the second half: it failed before the fix.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { WorkloadApiClient, type GrpcTransportKind } from '@ztwim/spiffe';
import { eventually } from '@ztwim/testkit';
import { goBuild, INTEROP_DIR } from './lib/peers.ts';
import { makeTmpDir } from './lib/tmp.ts';
import { startSpireServer, type SpireServer } from './lib/spire-server.ts';
import { startSpireAgent, freePort, type SpireAgent } from './lib/spire-agent.ts';
import { startStack, type Stack } from './lib/ztwim-stack.ts';

// Each loop runs until it has outrun nghttp2's bucket by DRAIN resets (calls - 33/s x elapsed,
// which needs ~1,400 calls at 500/s and ~3,600 at 50/s, the agent's rate here at load 15), so the
// test exercises the limit at any speed; a loop that cannot get there within MAX_CALLS fails.
const DRAIN = 1300;
const MAX_CALLS = 20_000;
const KINDS = ['x509svid', 'x509bundles', 'jwtbundles'] as const;

interface OneShotReport {
  kind: string;
  calls: number;
  ok: number;
  errors: number;
  firstErrorAt: number;
  sampleErrors: string[];
  watchErrors: number;
  drained: number;
  /** Connections the go client dialled (0 from the SDK loop, which does not count them). */
  dials: number;
  perSecond: number;
}

const uid = process.getuid?.() ?? 0;
const tmp = makeTmpDir('ztwim-oneshot-');
let spireServer: SpireServer;
let spireAgent: SpireAgent;
let stack: Stack;
let ztwimSocket: string;
let bin: string;

async function oneShots(socket: string, kind: string, calls: number, watch = false): Promise<OneShotReport> {
  const args = ['-addr', `unix://${socket}`, '-kind', kind, '-calls', String(calls), ...(watch ? ['-watch', '-drain', String(DRAIN)] : [])];
  // Async: our agent runs in this process.
  const { stdout } = await promisify(execFile)(bin, args, {
    encoding: 'utf8',
    timeout: 300_000,
  });
  return JSON.parse(stdout) as OneShotReport;
}

/** Waits until the agent at `socket` serves an X.509-SVID (its entry has synced). */
async function synced(socket: string): Promise<void> {
  let last: OneShotReport | undefined;
  const served = async (): Promise<boolean> => (last = await oneShots(socket, 'x509svid', 1)).ok === 1;
  await eventually(`the agent at ${socket} to serve an X.509-SVID`, served, { timeoutMs: 60_000, intervalMs: 300 }).catch((e: unknown) => {
    throw new Error(`${(e as Error).message}; last answer: ${JSON.stringify(last)}`, { cause: e });
  });
}

before(async () => {
  bin = goBuild(join(INTEROP_DIR, 'go'), './oneshot');
  const port = await freePort();
  spireServer = await startSpireServer(tmp, { bindPort: port });
  spireAgent = await startSpireAgent(tmp, spireServer, {
    serverPort: port,
    beforeStart: (agentId) => {
      spireServer.cli(['entry', 'create', '-parentID', agentId, '-spiffeID', 'spiffe://example.org/oneshot', '-selector', `unix:uid:${uid}`]);
    },
  });
  stack = await startStack();
  const { agent } = await stack.startAgent();
  await stack.createEntries([{ parentId: agent.agentId, path: '/oneshot', selectors: [`unix:uid:${uid}`] }]);
  ztwimSocket = agent.socketPath;
  await synced(spireAgent.socketPath);
  await synced(ztwimSocket);
});

after(async () => {
  await spireAgent?.stop();
  await spireServer?.stop();
  await stack?.close();
  tmp.cleanup();
});

describe(`sequential one-shot calls on one go-spiffe client, ${DRAIN} resets beyond nghttp2's refill: spire-agent v1.13.0, then the ztwim agent`, () => {
  for (const kind of KINDS) {
    test(`${kind}, beside a watcher on the same client: every call succeeds and the watcher sees no error, on both agents`, async (t) => {
      const spire = await oneShots(spireAgent.socketPath, kind, MAX_CALLS, true);
      t.diagnostic(`spire-agent: ${JSON.stringify(spire)}`);
      assert.equal(spire.errors, 0, `spire-agent: ${JSON.stringify(spire)}`);
      assert.equal(spire.watchErrors, 0, `spire-agent: ${JSON.stringify(spire)}`);
      assert.ok(spire.drained >= DRAIN, `spire-agent: ${JSON.stringify(spire)}`);
      assert.equal(spire.ok, spire.calls, `spire-agent: ${JSON.stringify(spire)}`);
      // grpc-go keeps its one connection to spire-agent for the whole loop.
      assert.equal(spire.dials, 1, `spire-agent: ${JSON.stringify(spire)}`);

      const ours = await oneShots(ztwimSocket, kind, MAX_CALLS, true);
      const summary = JSON.stringify(ours);
      t.diagnostic(`ztwim agent: ${summary}`);
      // The loop must outrun nghttp2's bucket, or this test could not fail.
      assert.ok(ours.drained >= DRAIN, `too slow to exercise the reset limit: ${summary}`);
      assert.deepEqual(ours.sampleErrors, [], summary);
      assert.equal(ours.watchErrors, 0, summary);
      assert.equal(ours.ok, ours.calls, summary);
      // Our agent closed the connection gracefully before nghttp2's limit and grpc-go dialled again:
      // at least once per ~900 resets, and not for every call.
      assert.ok(ours.dials >= 2 && ours.dials <= 10, summary);
    });
  }
});

/** The go loop's report, from our SDK: one client, a watcher on it, one-shot calls until DRAIN. */
async function sdkOneShots(socket: string, kind: (typeof KINDS)[number], transport: GrpcTransportKind): Promise<OneShotReport> {
  const client = new WorkloadApiClient({ address: `unix://${socket}`, transport });
  const watching = new AbortController();
  const r: OneShotReport = { kind, calls: 0, ok: 0, errors: 0, firstErrorAt: -1, sampleErrors: [], watchErrors: 0, drained: 0, dials: 0, perSecond: 0 };
  const sample = (e: unknown): void => {
    if (r.sampleErrors.length < 5) r.sampleErrors.push(e instanceof Error ? e.message : String(e));
  };
  let ready!: () => void;
  const first = new Promise<void>((resolve) => (ready = resolve));
  const watch = client.watchX509Context(
    {
      onUpdate: () => ready(),
      onError: (e) => {
        if (watching.signal.aborted) return;
        r.watchErrors++;
        sample(`watch: ${e.message}`);
      },
    },
    watching.signal,
  );
  const call = {
    x509svid: () => client.fetchX509Svid(),
    x509bundles: () => client.fetchX509Bundles(),
    jwtbundles: () => client.fetchJwtBundles(),
  }[kind];
  try {
    await first;
    const start = performance.now();
    while (r.drained < DRAIN && r.calls < MAX_CALLS) {
      try {
        await call();
        r.ok++;
      } catch (e) {
        r.errors++;
        if (r.firstErrorAt < 0) r.firstErrorAt = r.calls;
        sample(e);
      }
      r.calls++;
      r.drained = Math.max(r.drained, r.calls - (33 * (performance.now() - start)) / 1000);
    }
    r.perSecond = r.calls / ((performance.now() - start) / 1000);
  } finally {
    watching.abort();
    await watch.catch(() => undefined);
    client.close();
  }
  return r;
}

describe(`the same loop with our SDK (a watcher on the same client): spire-agent v1.13.0, then the ztwim agent`, () => {
  for (const transport of ['socket', 'node:http2'] as const) {
    for (const kind of KINDS) {
      test(`${transport}, ${kind}: every call succeeds and the watcher sees no error, on both agents`, async (t) => {
        for (const [name, socket] of [
          ['spire-agent', spireAgent.socketPath],
          ['ztwim agent', ztwimSocket],
        ] as const) {
          const r = await sdkOneShots(socket, kind, transport);
          const summary = `${name}: ${JSON.stringify(r)}`;
          t.diagnostic(summary);
          assert.ok(r.drained >= DRAIN, `too slow to exercise the reset limit: ${summary}`);
          assert.deepEqual(r.sampleErrors, [], summary);
          assert.equal(r.ok, r.calls, summary);
          assert.equal(r.watchErrors, 0, summary);
        }
      });
    }
  }
});
