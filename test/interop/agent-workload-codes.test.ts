// The status codes of the Workload API's argument checks, ztwim's agent beside spire-agent v1.13.0,
// as go-spiffe v2.9.0 (test/interop/go/wlcodes) and our SDK client see them: an empty audience
// (FetchJWTSVID, ValidateJWTSVID), an empty token, a bad spiffe_id.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { WorkloadApiClient } from '@ztwim/spiffe';
import { eventually } from '@ztwim/testkit';
import { goBuild, INTEROP_DIR } from './lib/peers.ts';
import { makeTmpDir } from './lib/tmp.ts';
import { startSpireServer, type SpireServer } from './lib/spire-server.ts';
import { startSpireAgent, freePort, type SpireAgent } from './lib/spire-agent.ts';
import { startStack, type Stack } from './lib/ztwim-stack.ts';

type Answers = Record<string, { code: string; message: string }>;

const uid = process.getuid?.() ?? 0;
const tmp = makeTmpDir('ztwim-wl-codes-');
let spireServer: SpireServer;
let spireAgent: SpireAgent;
let stack: Stack;
let ztwimSocket: string;
let bin: string;

/** wlcodes against a socket, once the agent serves a JWT-SVID (its entry has synced). */
async function answers(socket: string): Promise<Answers> {
  let last = '';
  const served = async (): Promise<Answers | undefined> => {
    // Async: our agent runs in this process.
    const { stdout } = await promisify(execFile)(bin, [`unix://${socket}`], { encoding: 'utf8', timeout: 40_000 });
    last = stdout;
    const a = JSON.parse(stdout) as Answers;
    return a['fetch_jwt_ok']?.code === 'OK' ? a : undefined;
  };
  return eventually(`agent at ${socket} to serve a JWT-SVID`, served, { timeoutMs: 30_000, intervalMs: 300 }).catch((e: unknown) => {
    throw new Error(`${(e as Error).message}; last answers: ${last}`, { cause: e });
  });
}

before(async () => {
  bin = goBuild(join(INTEROP_DIR, 'go'), './wlcodes');
  const port = await freePort();
  spireServer = await startSpireServer(tmp, { bindPort: port });
  spireAgent = await startSpireAgent(tmp, spireServer, {
    serverPort: port,
    beforeStart: (agentId) => {
      spireServer.cli(['entry', 'create', '-parentID', agentId, '-spiffeID', 'spiffe://example.org/codes', '-selector', `unix:uid:${uid}`]);
    },
  });
  stack = await startStack();
  const { agent } = await stack.startAgent();
  await stack.createEntries([{ parentId: agent.agentId, path: '/codes', selectors: [`unix:uid:${uid}`] }]);
  ztwimSocket = agent.socketPath;
});

after(async () => {
  await spireAgent?.stop();
  await spireServer?.stop();
  await stack?.close();
  tmp.cleanup();
});

describe('Workload API argument checks: ztwim agent vs spire-agent v1.13.0', () => {
  test('go-spiffe sees the same codes and messages from both agents (except [""], see below)', async () => {
    const spire = await answers(spireAgent.socketPath);
    const ours = await answers(ztwimSocket);
    const same = ['fetch_jwt_no_audience', 'validate_audience_empty', 'validate_token_empty', 'validate_both_empty', 'fetch_jwt_ok'];
    for (const k of same) assert.deepEqual(ours[k], spire[k], `${k}: ours ${JSON.stringify(ours[k])}, spire-agent ${JSON.stringify(spire[k])}`);
    assert.deepEqual(spire['fetch_jwt_no_audience'], { code: 'InvalidArgument', message: 'audience must be specified' });
    assert.deepEqual(spire['validate_audience_empty'], { code: 'InvalidArgument', message: 'audience must be specified' });
    assert.deepEqual(spire['validate_token_empty'], { code: 'InvalidArgument', message: 'svid must be specified' });
    assert.deepEqual(spire['validate_both_empty'], { code: 'InvalidArgument', message: 'audience must be specified' });
    // A malformed token and a malformed spiffe_id: InvalidArgument from both (go-spiffe's and our
    // parsers word the cause differently).
    for (const k of ['validate_token_malformed', 'fetch_jwt_bad_spiffe_id']) {
      assert.equal(spire[k]?.code, 'InvalidArgument', `spire-agent ${k}: ${JSON.stringify(spire[k])}`);
      assert.equal(ours[k]?.code, 'InvalidArgument', `ours ${k}: ${JSON.stringify(ours[k])}`);
    }
    assert.match(ours['fetch_jwt_bad_spiffe_id']?.message ?? '', /^invalid requested SPIFFE ID: /);
    // jwtsvid.Params{Audience: ""} sends [""]. spire-agent passes it to its server, whose signer
    // drops empty values and refuses the empty list; the agent answers that failure Unavailable,
    // which clients retry forever. Ours answers what the Workload API spec prescribes for a missing
    // mandatory field: InvalidArgument, with spire-agent's message for a missing audience.
    assert.equal(spire['fetch_jwt_audience_empty_string']?.code, 'Unavailable', JSON.stringify(spire['fetch_jwt_audience_empty_string']));
    assert.match(spire['fetch_jwt_audience_empty_string']?.message ?? '', /invalid JWT-SVID audience: cannot be empty/);
    assert.deepEqual(ours['fetch_jwt_audience_empty_string'], { code: 'InvalidArgument', message: 'audience must be specified' });
  });

  test('our SDK client sees the same codes from both agents', async () => {
    const codeOf = async (p: Promise<unknown>): Promise<[number | undefined, string | undefined]> => {
      try {
        await p;
        return [0, ''];
      } catch (e) {
        const err = e as { grpcCode?: number; grpcMessage?: string };
        return [err.grpcCode, err.grpcMessage];
      }
    };
    const run = async (socket: string) => {
      const c = new WorkloadApiClient({ address: `unix://${socket}` });
      try {
        return {
          validateNoAudience: await codeOf(c.validateJwtSvid('x.y.z', '')),
          validateNoToken: await codeOf(c.validateJwtSvid('', 'a')),
          fetchEmptyAudience: await codeOf(c.fetchJwtSvid({ audience: '' })),
        };
      } finally {
        c.close();
      }
    };
    const spire = await run(spireAgent.socketPath);
    const ours = await run(ztwimSocket);
    assert.deepEqual(ours.validateNoAudience, spire.validateNoAudience);
    assert.deepEqual(ours.validateNoAudience, [3, 'audience must be specified']);
    assert.deepEqual(ours.validateNoToken, spire.validateNoToken);
    assert.deepEqual(ours.validateNoToken, [3, 'svid must be specified']);
    assert.equal(spire.fetchEmptyAudience[0], 14, 'spire-agent: Unavailable for [""] (see above)');
    assert.deepEqual(ours.fetchEmptyAudience, [3, 'audience must be specified']);
  });
});
