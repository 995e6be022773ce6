// The agent's own SVID (join token: not reattestable, so RenewAgent) is renewed before it expires,
// the server records the new serial, workloads keep being served after the first SVID's expiry,
// and the agent carries on across a server restart.
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { eventually } from '@ztwim/testkit';
import { spiffeIdParts, startStack, type Stack } from '../interop/lib/ztwim-stack.ts';

let stack: Stack;
before(async () => {
  stack = await startStack({ serverExtra: '  agent_ttl = "6s"' });
});
after(async () => {
  await stack?.close();
});

function storedLeaf(dataDir: string): crypto.X509Certificate {
  const d = JSON.parse(readFileSync(join(dataDir, 'agent-data.json'), 'utf8')) as { svid: string[] };
  return new crypto.X509Certificate(Buffer.from(d.svid[0] ?? '', 'base64'));
}

test('join-token agent renews its SVID at half-life and keeps serving past the first expiry and a server restart', async () => {
  const uid = process.getuid?.() ?? 0;
  const { agent, config } = await stack.startAgent({ syncInterval: '300ms' });
  await stack.createEntries([{ parentId: agent.agentId, path: '/renew/wl', selectors: [`unix:uid:${uid}`] }]);
  const client = stack.workload(agent.socketPath);
  const jwt = async (aud: string): Promise<string | undefined> => (await client.fetchJWTSVID({ audience: [aud] })).svids[0]?.spiffeId;
  const id = await eventually('a JWT-SVID for the workload', () => jwt('a'), { timeoutMs: 15_000, intervalMs: 200, retryErrors: true });
  assert.equal(id, 'spiffe://example.org/renew/wl');

  const first = storedLeaf(config.dataDir);
  const firstExpiry = Date.parse(first.validTo);
  assert.ok(firstExpiry - Date.now() < 7000, `agent_ttl 6s honoured (expires ${first.validTo})`);
  const serials = new Set([first.serialNumber]);
  let firstRenewalAt = 0;
  const sample = (): void => {
    const now = storedLeaf(config.dataDir);
    if (!serials.has(now.serialNumber)) {
      serials.add(now.serialNumber);
      if (firstRenewalAt === 0) firstRenewalAt = Date.now();
    }
  };
  await eventually(
    'a renewal of the agent SVID',
    () => {
      sample();
      return firstRenewalAt > 0;
    },
    { timeoutMs: firstExpiry + 4000 - Date.now(), intervalMs: 100 },
  );
  // What follows is about serving after the first SVID expired, a moment of real time (TLS checks
  // certificates against the real clock): the renewals go on being recorded until 4 s past it.
  await eventually(
    '4 s past the first SVID expiry',
    () => {
      sample();
      return Date.now() > firstExpiry + 4000;
    },
    { timeoutMs: firstExpiry + 9000 - Date.now(), intervalMs: 200 },
  );
  assert.ok(firstRenewalAt < firstExpiry, `renewed at ${firstRenewalAt}, before the first SVID expired at ${firstExpiry}`);
  const current = storedLeaf(config.dataDir);
  assert.ok(Date.parse(current.validTo) > Date.now(), 'the stored SVID is valid now');
  assert.match(current.subjectAltName ?? '', new RegExp(`URI:${agent.agentId}`), 'same agent ID after renewal (RenewAgent, not re-attestation)');
  // The server activates a renewed serial when the agent first authenticates with it. With a 6 s
  // TTL the agent renews every ~3 s, so on a loaded machine the stored SVID may move on again
  // before the server has seen it: the server must track one of the renewed serials (never the first).
  const decimal = (hex: string): string => BigInt(`0x${hex}`).toString();
  const renewed = new Set<string>();
  let serverSerial = '';
  await eventually(
    'the server to track a renewed serial',
    async () => {
      for (const hex of serials) if (hex !== first.serialNumber) renewed.add(decimal(hex));
      renewed.add(decimal(storedLeaf(config.dataDir).serialNumber));
      renewed.delete(decimal(first.serialNumber));
      serverSerial = (await stack.agentApi.getAgent({ id: spiffeIdParts(agent.agentId) })).x509svidSerialNumber;
      return renewed.has(serverSerial);
    },
    { timeoutMs: 8000, intervalMs: 100 },
  ).catch((e: unknown) => assert.fail(`${String(e)} (server ${serverSerial}, renewed ${[...renewed].join(', ')})`));
  // A new audience is not cached by the agent: this needs an mTLS call with the renewed SVID.
  assert.equal(await jwt(`fresh-${Date.now()}`), 'spiffe://example.org/renew/wl');

  // Server restart: the agent reconnects with its current SVID and sees a new entry.
  await stack.restartServer();
  await stack.createEntries([{ parentId: agent.agentId, path: '/renew/wl2', selectors: [`unix:uid:${uid}`] }]);
  const ids = await eventually(
    'JWT-SVIDs for both entries after the server restart',
    async () => {
      const got = (await client.fetchJWTSVID({ audience: [`x-${Date.now()}`] })).svids.map((s) => s.spiffeId).sort();
      return got.length >= 2 && got;
    },
    { timeoutMs: 20_000, intervalMs: 300, retryErrors: true },
  );
  assert.deepEqual(ids, ['spiffe://example.org/renew/wl', 'spiffe://example.org/renew/wl2']);
});
