// A damaged agent data dir. As spire-agent (whose storage refuses an unreadable agent-data.json),
// the agent never uses a data dir it cannot fully verify: without a join token it refuses to start
// with an error naming the file; with a fresh join token it re-attests under the new agent ID.
// A tampered file never makes it serve another agent's workloads.
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isZtwimError } from '@ztwim/core';
import { eventually } from '@ztwim/testkit';
import type { RunningAgent } from '@ztwim/agent';
import { startStack, type Stack } from '../interop/lib/ztwim-stack.ts';

describe('corrupted agent data dir', () => {
  let stack: Stack;
  let firstId: string;
  let dataDir: string;
  let pristine: { data: Buffer; key: Buffer };
  const uid = process.getuid?.() ?? 0;
  const NAME = 'node';

  /** The SPIFFE IDs the agent serves once `ok` holds for them (15 s at most; a refused call is retried). */
  const servedIds = async (a: RunningAgent, ok: (ids: string[]) => boolean): Promise<string[]> => {
    const client = stack.workload(a.socketPath);
    let ids: string[] = [];
    return await eventually(
      'the expected SVIDs served',
      async () => {
        ids = (await client.fetchJWTSVID({ audience: [`aud-${Date.now()}`] })).svids.map((s) => s.spiffeId).sort();
        return ok(ids) ? ids : undefined;
      },
      { timeoutMs: 15_000, intervalMs: 200, retryErrors: true },
    ).catch((e: unknown) => {
      throw new Error(`${(e as Error).message}; served last: ${JSON.stringify(ids)}`, { cause: e });
    });
  };
  const restore = (): void => {
    writeFileSync(join(dataDir, 'agent-data.json'), pristine.data);
    writeFileSync(join(dataDir, 'agent-svid.key'), pristine.key);
  };

  before(async () => {
    stack = await startStack();
    const { agent, config } = await stack.startAgent({ name: NAME });
    firstId = agent.agentId;
    dataDir = config.dataDir;
    await stack.createEntries([{ parentId: firstId, path: '/dd/old', selectors: [`unix:uid:${uid}`] }]);
    assert.deepEqual(await servedIds(agent, (v) => v.length === 1), ['spiffe://example.org/dd/old']);
    await agent.close();
    pristine = { data: readFileSync(join(dataDir, 'agent-data.json')), key: readFileSync(join(dataDir, 'agent-svid.key')) };
  });
  after(async () => {
    await stack?.close();
  });

  it('an intact data dir resumes the same agent without a token', async () => {
    restore();
    const { agent } = await stack.startAgent({ name: NAME, token: null });
    assert.equal(agent.agentId, firstId);
    assert.deepEqual(await servedIds(agent, (v) => v.length === 1), ['spiffe://example.org/dd/old']);
    await agent.close();
  });

  const otherKey = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'der' });
  const edit = (f: (d: Record<string, unknown>) => void) => (): void => {
    const d = JSON.parse(pristine.data.toString('utf8')) as Record<string, unknown>;
    f(d);
    writeFileSync(join(dataDir, 'agent-data.json'), JSON.stringify(d));
  };
  const cases: { name: string; file: string; reason: RegExp; corrupt: () => void }[] = [
    {
      name: 'garbage bytes in agent-data.json',
      file: 'agent-data.json',
      reason: /JSON/,
      corrupt: () => writeFileSync(join(dataDir, 'agent-data.json'), crypto.randomBytes(300)),
    },
    {
      name: 'truncated agent-data.json',
      file: 'agent-data.json',
      reason: /JSON/,
      corrupt: () => writeFileSync(join(dataDir, 'agent-data.json'), pristine.data.subarray(0, pristine.data.length >> 1)),
    },
    { name: 'empty agent-data.json', file: 'agent-data.json', reason: /JSON/, corrupt: () => writeFileSync(join(dataDir, 'agent-data.json'), '') },
    {
      name: 'garbage SVID certificate',
      file: 'agent-data.json',
      reason: /svid\[0\] is not an X\.509 certificate/,
      corrupt: edit((d) => {
        d['svid'] = [crypto.randomBytes(200).toString('base64')];
      }),
    },
    {
      name: 'garbage bundle certificate',
      file: 'agent-data.json',
      reason: /bundle\[0\] is not an X\.509 certificate/,
      corrupt: edit((d) => {
        d['bundle'] = [Buffer.from('not a cert').toString('base64')];
      }),
    },
    {
      name: 'missing bundle',
      file: 'agent-data.json',
      reason: /"bundle" is missing/,
      corrupt: edit((d) => {
        delete d['bundle'];
      }),
    },
    {
      name: 'SVID replaced by the CA certificate',
      file: 'agent-data.json',
      reason: /not an agent SVID/,
      corrupt: edit((d) => {
        d['svid'] = d['bundle'];
      }),
    },
    {
      name: 'garbage key file',
      file: 'agent-svid.key',
      reason: /PKCS#8/,
      corrupt: () => writeFileSync(join(dataDir, 'agent-svid.key'), crypto.randomBytes(121)),
    },
    {
      name: 'a valid key that is not the SVID key',
      file: 'agent-svid.key',
      reason: /does not belong/,
      corrupt: () => writeFileSync(join(dataDir, 'agent-svid.key'), otherKey),
    },
  ];
  for (const c of cases) {
    it(`${c.name}: refuses to start without a token, naming ${c.file}`, async () => {
      restore();
      c.corrupt();
      await assert.rejects(stack.startAgent({ name: NAME, token: null }), (e: unknown) => {
        assert.ok(isZtwimError(e, 'ERR_CONFIG'), String(e));
        assert.ok(e.message.startsWith(`agent data file ${join(dataDir, c.file)} is corrupted (`), e.message);
        assert.match(e.message, c.reason);
        return true;
      });
    });
  }

  it('a tampered "id" field is ignored: the agent ID comes from the SVID itself', async () => {
    restore();
    edit((d) => {
      d['id'] = 'spiffe://example.org/spire/agent/join_token/someone-else';
    })();
    const { agent } = await stack.startAgent({ name: NAME, token: null });
    assert.equal(agent.agentId, firstId);
    await agent.close();
  });

  it("with a fresh join token it re-attests as a new agent and never serves the old agent's entries", async () => {
    restore();
    writeFileSync(join(dataDir, 'agent-data.json'), crypto.randomBytes(300));
    const token = await stack.joinToken();
    const { agent } = await stack.startAgent({ name: NAME, token });
    assert.equal(agent.agentId, `spiffe://example.org/spire/agent/join_token/${token}`);
    assert.notEqual(agent.agentId, firstId);
    await stack.createEntries([{ parentId: agent.agentId, path: '/dd/new', selectors: [`unix:uid:${uid}`] }]);
    assert.deepEqual(await servedIds(agent, (v) => v.length > 0), ['spiffe://example.org/dd/new']);
    // The data dir was rewritten with the new, valid identity.
    assert.ok(existsSync(join(dataDir, 'agent-data.json')));
    const d = JSON.parse(readFileSync(join(dataDir, 'agent-data.json'), 'utf8')) as { svid: string[] };
    assert.match(new crypto.X509Certificate(Buffer.from(d.svid[0] ?? '', 'base64')).subjectAltName ?? '', new RegExp(token));
    await agent.close();
  });
});
