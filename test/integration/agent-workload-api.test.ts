// Real SPIRE v1.13.0 server + our agent (join token) + Workload API clients over our Unix socket.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { Code, ConnectError } from '@connectrpc/connect';
import { cancelOnBreak } from '@ztwim/proto';
import { eventually } from '@ztwim/testkit';
import { startAgentEnv, type AgentEnv } from '../interop/lib/ztwim-agent-env.ts';

function codeOf(e: unknown): Code | undefined {
  return e instanceof ConnectError ? e.code : undefined;
}

describe('agent workload api against spire-server', () => {
  let env: AgentEnv;
  const uid = process.getuid?.() ?? 0;
  before(async () => {
    env = await startAgentEnv();
  });
  after(async () => {
    await env?.close();
  });

  test('agent id comes from the join token', () => {
    assert.match(env.agent.agentId, /^spiffe:\/\/example\.org\/spire\/agent\/join_token\//);
  });

  test('missing security header is InvalidArgument', async () => {
    const { client } = env.workload(false);
    await assert.rejects(client.fetchJWTSVID({ audience: ['a'] }), (e) => {
      assert.equal(codeOf(e), Code.InvalidArgument);
      assert.match((e as ConnectError).rawMessage, /security header missing from request/);
      return true;
    });
  });

  test('no entry is PermissionDenied "no identity issued"', async () => {
    const { client } = env.workload();
    await assert.rejects(client.fetchJWTSVID({ audience: ['a'] }), (e) => {
      assert.equal(codeOf(e), Code.PermissionDenied);
      assert.equal((e as ConnectError).rawMessage, 'no identity issued');
      return true;
    });
  });

  test('audience missing is InvalidArgument', async () => {
    const { client } = env.workload();
    await assert.rejects(client.fetchJWTSVID({ audience: [] }), (e) => codeOf(e) === Code.InvalidArgument);
  });

  test('matching uid entry: X509 and JWT SVIDs, validate, rotation pushed', async () => {
    env.server.cli([
      'entry',
      'create',
      '-parentID',
      env.agent.agentId,
      '-spiffeID',
      'spiffe://example.org/wl',
      '-selector',
      `unix:uid:${uid}`,
      '-x509SVIDTTL',
      '6',
      '-jwtSVIDTTL',
      '60',
    ]);
    const { client } = env.workload();
    const first = await eventually(
      'the first X509-SVID response',
      async () => {
        for await (const m of cancelOnBreak((signal) => client.fetchX509SVID({}, { signal }))) return m;
        throw new Error('stream ended');
      },
      { timeoutMs: 15_000, intervalMs: 200, retryErrors: true },
    );
    const svid = first.svids[0];
    assert.ok(svid);
    assert.equal(svid.spiffeId, 'spiffe://example.org/wl');
    const leaf = new crypto.X509Certificate(Buffer.from(svid.x509Svid));
    assert.match(leaf.subjectAltName ?? '', /URI:spiffe:\/\/example\.org\/wl/);
    const key = crypto.createPrivateKey({ key: Buffer.from(svid.x509SvidKey), format: 'der', type: 'pkcs8' });
    assert.ok(leaf.checkPrivateKey(key));
    assert.ok(svid.bundle.length > 0);

    const jwt = await client.fetchJWTSVID({ audience: ['test'] });
    assert.equal(jwt.svids[0]?.spiffeId, 'spiffe://example.org/wl');
    const again = await client.fetchJWTSVID({ audience: ['test'] });
    assert.equal(again.svids[0]?.svid, jwt.svids[0]?.svid, 'jwt cached');
    const v = await client.validateJWTSVID({ audience: 'test', svid: jwt.svids[0]?.svid ?? '' });
    assert.equal(v.spiffeId, 'spiffe://example.org/wl');

    const bundles = await (async () => {
      for await (const m of cancelOnBreak((s) => client.fetchJWTBundles({}, { signal: s }))) return m;
      return undefined;
    })();
    assert.ok(bundles?.bundles['spiffe://example.org']);

    // Rotation: a 6 s TTL SVID is replaced at ~half-life and pushed to the watching stream.
    const serials = new Set<string>();
    const end = Date.now() + 15_000;
    for await (const m of cancelOnBreak((signal) => client.fetchX509SVID({}, { signal }))) {
      const c = m.svids[0];
      if (c !== undefined) serials.add(new crypto.X509Certificate(Buffer.from(c.x509Svid)).serialNumber);
      if (serials.size >= 2 || Date.now() > end) break;
    }
    assert.ok(serials.size >= 2, 'rotated svid pushed');
  });

  test('hundreds of abandoned streams do not leak', async () => {
    const { transport, client } = env.workload();
    const acs: AbortController[] = [];
    let open = 0;
    for (let i = 0; i < 200; i++) {
      const ac = new AbortController();
      acs.push(ac);
      void (async () => {
        let first = true;
        try {
          for await (const _ of client.fetchJWTBundles({}, { signal: ac.signal })) {
            if (first) open++;
            first = false;
          }
        } catch {
          /* aborted */
        }
      })();
    }
    // Every stream has its first response: all 200 are open on the agent when they are abandoned.
    await eventually('200 open JWT bundle streams', () => open === 200, { timeoutMs: 30_000, intervalMs: 50 });
    transport.close();
    for (const ac of acs) ac.abort();
    const fresh = env.workload().client;
    const r = await fresh.fetchJWTSVID({ audience: ['x'] });
    assert.ok(r.svids.length > 0);
  });
});
