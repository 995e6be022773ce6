// A workload with no registration entry, ztwim's agent beside spire-agent v1.13.0, each run twice:
// with agent.conf's allow_unauthenticated_verifiers unset and set. The same uid calls every
// Workload API RPC on all four agents, first with no entry, then with an entry that is deleted
// while its bundle streams are open. The status codes must be the same as spire-agent's.
// (agent-workload-codes.test.ts compares the argument checks, with an entry created before start.)
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Code, ConnectError, type Client } from '@connectrpc/connect';
import type { SpiffeWorkloadAPI } from '@ztwim/proto';
import { startAgent, type RunningAgent } from '@ztwim/agent';
import { silentLogger } from '@ztwim/core';
import { eventually, holdsFor } from '@ztwim/testkit';
import { makeTmpDir, type TmpDir } from './lib/tmp.ts';
import { startSpireServer, type SpireServer } from './lib/spire-server.ts';
import { startSpireAgent, freePort, type SpireAgent } from './lib/spire-agent.ts';
import { startStack, type Stack } from './lib/ztwim-stack.ts';

type Wl = Client<typeof SpiffeWorkloadAPI>;
type Answer = { code: string; message: string };
type Answers = Record<'x509Bundles' | 'jwtBundles' | 'x509Svid' | 'jwtSvid' | 'validate', Answer>;

const uid = process.getuid?.() ?? 0;
const tmps: TmpDir[] = [];
const tmp = (p: string): TmpDir => {
  const t = makeTmpDir(p);
  tmps.push(t);
  return t;
};
let spireServer: SpireServer;
let stack: Stack;
const spire: { strict?: SpireAgent; open?: SpireAgent } = {};
const ours: { strict?: RunningAgent; open?: RunningAgent } = {};
/** The four agents' Workload API clients, by `<impl>/<flag>`. */
const clients = new Map<string, { wl: Wl; impl: 'spire' | 'ztwim'; open: boolean }>();

function answerOf(e: unknown): Answer {
  if (e instanceof ConnectError) return { code: Code[e.code], message: e.rawMessage };
  throw e;
}

/** The first answer of a server stream: OK once a message came, else the error's code. */
async function firstOfStream(open: (signal: AbortSignal) => AsyncIterable<unknown>): Promise<Answer> {
  const ac = new AbortController();
  try {
    await open(ac.signal)[Symbol.asyncIterator]().next();
    return { code: 'OK', message: '' };
  } catch (e) {
    return answerOf(e);
  } finally {
    ac.abort();
  }
}

async function unary(p: Promise<unknown>): Promise<Answer> {
  try {
    await p;
    return { code: 'OK', message: '' };
  } catch (e) {
    return answerOf(e);
  }
}

async function answers(wl: Wl): Promise<Answers> {
  return {
    x509Bundles: await firstOfStream((signal) => wl.fetchX509Bundles({}, { signal })),
    jwtBundles: await firstOfStream((signal) => wl.fetchJWTBundles({}, { signal })),
    x509Svid: await firstOfStream((signal) => wl.fetchX509SVID({}, { signal })),
    jwtSvid: await unary(wl.fetchJWTSVID({ audience: ['a'] })),
    // A token signed by no key of the bundle: refused InvalidArgument by both (no identity needed).
    validate: await unary(wl.validateJWTSVID({ audience: 'a', svid: 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJzcGlmZmU6Ly9leGFtcGxlLm9yZy94In0.c2ln' })),
  };
}

const OK: Answer = { code: 'OK', message: '' };
const DENIED: Answer = { code: 'PermissionDenied', message: 'no identity issued' };

before(async () => {
  const port = await freePort();
  spireServer = await startSpireServer(tmp('ztwim-noid-spire-'), { bindPort: port });
  spire.strict = await startSpireAgent(tmp('ztwim-noid-sa1-'), spireServer, { serverPort: port });
  spire.open = await startSpireAgent(tmp('ztwim-noid-sa2-'), spireServer, { serverPort: port, extraAgent: '  allow_unauthenticated_verifiers = true' });
  stack = await startStack();
  ours.strict = (await stack.startAgent()).agent;
  // The flag as agent.conf gives it (agent-config.test.ts checks the parsing).
  ours.open = await startAgent({ ...(await stack.agentConfig()), allowUnauthenticatedVerifiers: true }, { logger: silentLogger() });
  clients.set('spire/strict', { wl: stack.workload(spire.strict.socketPath), impl: 'spire', open: false });
  clients.set('spire/open', { wl: stack.workload(spire.open.socketPath), impl: 'spire', open: true });
  clients.set('ztwim/strict', { wl: stack.workload(ours.strict.socketPath), impl: 'ztwim', open: false });
  clients.set('ztwim/open', { wl: stack.workload(ours.open.socketPath), impl: 'ztwim', open: true });
});

after(async () => {
  await spire.strict?.stop();
  await spire.open?.stop();
  await spireServer?.stop();
  await ours.open?.close();
  await stack?.close();
  for (const t of tmps) t.cleanup();
});

describe('Workload API for a caller with no identity: ztwim agent vs spire-agent v1.13.0', () => {
  test('no entry: bundle streams refused unless allow_unauthenticated_verifiers; SVIDs refused either way; same codes as spire-agent', async () => {
    const got = new Map<string, Answers>();
    for (const [name, c] of clients) got.set(name, await answers(c.wl));
    for (const flag of ['strict', 'open']) {
      const s = got.get(`spire/${flag}`)!;
      const z = got.get(`ztwim/${flag}`)!;
      for (const k of Object.keys(s) as (keyof Answers)[]) {
        assert.equal(z[k].code, s[k].code, `${flag} ${k}: ours ${JSON.stringify(z[k])}, spire-agent ${JSON.stringify(s[k])}`);
        if (s[k].code === 'PermissionDenied') assert.deepEqual(z[k], s[k], `${flag} ${k}: same message`);
      }
    }
    const strict = got.get('spire/strict')!;
    const open = got.get('spire/open')!;
    assert.deepEqual([strict.x509Bundles, strict.jwtBundles, strict.x509Svid, strict.jwtSvid], [DENIED, DENIED, DENIED, DENIED]);
    assert.deepEqual([open.x509Bundles, open.jwtBundles, open.x509Svid, open.jwtSvid], [OK, OK, DENIED, DENIED]);
    assert.equal(strict.validate.code, 'InvalidArgument', 'ValidateJWTSVID needs no identity');
  });

  test('an entry deleted while bundle streams are open: the streams end PermissionDenied, unless allow_unauthenticated_verifiers', async () => {
    const entryIds = new Map<string, string>();
    const spireEntry = (parent: string): string => {
      const out = spireServer.cli(['entry', 'create', '-parentID', parent, '-spiffeID', 'spiffe://example.org/noid', '-selector', `unix:uid:${uid}`]);
      const id = /Entry ID\s*:\s*(\S+)/.exec(out)?.[1];
      if (id === undefined) throw new Error(`spire-server entry create printed no id: ${out}`);
      return id;
    };
    entryIds.set('spire/strict', spireEntry(spire.strict!.agentId));
    entryIds.set('spire/open', spireEntry(spire.open!.agentId));
    const [a, b] = await stack.createEntries([
      { parentId: ours.strict!.agentId, path: '/noid', selectors: [`unix:uid:${uid}`] },
      { parentId: ours.open!.agentId, path: '/noid', selectors: [`unix:uid:${uid}`] },
    ]);
    entryIds.set('ztwim/strict', a!);
    entryIds.set('ztwim/open', b!);

    const streams = new Map<string, { ac: AbortController; x509: AsyncIterator<unknown>; jwt: AsyncIterator<unknown> }>();
    try {
      for (const [name, c] of clients) {
        await eventually(
          `${name} to serve the entry's JWT-SVID`,
          async () => ((await unary(c.wl.fetchJWTSVID({ audience: ['a'] }))).code === 'OK' ? true : undefined),
          {
            timeoutMs: 30_000,
            intervalMs: 300,
          },
        );
        const ac = new AbortController();
        const x509 = c.wl.fetchX509Bundles({}, { signal: ac.signal })[Symbol.asyncIterator]();
        const jwt = c.wl.fetchJWTBundles({}, { signal: ac.signal })[Symbol.asyncIterator]();
        assert.equal((await x509.next()).done, false, `${name}: X.509 bundles while the entry exists`);
        assert.equal((await jwt.next()).done, false, `${name}: JWT bundles while the entry exists`);
        streams.set(name, { ac, x509, jwt });
      }

      spireServer.cli(['entry', 'delete', '-entryID', entryIds.get('spire/strict')!]);
      spireServer.cli(['entry', 'delete', '-entryID', entryIds.get('spire/open')!]);
      await stack.entry.batchDeleteEntry({ ids: [entryIds.get('ztwim/strict')!, entryIds.get('ztwim/open')!] });

      const ended = new Map<string, [Answer, Answer]>();
      for (const [name, c] of clients) {
        // Until the agent has synced the deletion, then a fresh FetchJWTSVID is refused.
        await eventually(
          `${name} to drop the deleted entry`,
          async () => ((await unary(c.wl.fetchJWTSVID({ audience: ['a'] }))).code === 'PermissionDenied' ? true : undefined),
          {
            timeoutMs: 30_000,
            intervalMs: 300,
          },
        );
        const s = streams.get(name)!;
        if (!c.open) {
          // The deletion was synced: the streams have ended, or end on the update being sent now.
          // Bounded, so a stream that never ends fails the test instead of hanging it.
          const end = async (it: AsyncIterator<unknown>): Promise<Answer> => {
            let timer: NodeJS.Timeout | undefined;
            const drain = async (): Promise<Answer> => {
              try {
                for (;;) if ((await it.next()).done === true) return OK;
              } catch (e) {
                return answerOf(e);
              }
            };
            const stillOpen = new Promise<Answer>((r) => (timer = setTimeout(() => r({ code: 'still open', message: '' }), 10_000)));
            try {
              return await Promise.race([drain(), stillOpen]);
            } finally {
              clearTimeout(timer);
            }
          };
          ended.set(name, [await end(s.x509), await end(s.jwt)]);
        } else {
          // Still open: nothing changed in the bundles, so nothing is sent and nothing ends it. The
          // agent has synced the deletion already (a fresh call is refused above), and a stream it
          // ends would end at that sync: 1.5 s is ample for such an end to reach the client.
          const staysOpen = async (it: AsyncIterator<unknown>, what: string): Promise<void> => {
            let settled = '';
            void it.next().then(
              () => (settled = 'a message'),
              (e: unknown) => (settled = `an end: ${String(e)}`),
            );
            await holdsFor(what, () => settled === '', { forMs: 1500 }).catch((e: unknown) => assert.fail(`${String(e)} (${settled})`));
          };
          await staysOpen(s.x509, `${name}: the X.509 bundle stream stays open after the entry is deleted`);
          await staysOpen(s.jwt, `${name}: the JWT bundle stream stays open after the entry is deleted`);
          assert.deepEqual(await firstOfStream((signal) => c.wl.fetchJWTBundles({}, { signal })), OK, `${name}: a new JWT bundle stream is served`);
        }
      }
      assert.deepEqual(ended.get('spire/strict'), [DENIED, DENIED], 'spire-agent ends both bundle streams');
      assert.deepEqual(ended.get('ztwim/strict'), ended.get('spire/strict'), 'ours ends them as spire-agent does');
    } finally {
      for (const s of streams.values()) s.ac.abort();
    }
  });
});
