// The agent's own SVID (join token: not reattestable, so RenewAgent) is renewed before it expires,
// the server records the new serial, workloads keep being served after the first SVID's expiry,
// and the agent carries on across a server restart.
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
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
  const end = Date.now() + 15_000;
  let id: string | undefined;
  while (id === undefined && Date.now() < end) {
    id = await jwt('a').catch(() => undefined);
    if (id === undefined) await delay(200);
  }
  assert.equal(id, 'spiffe://example.org/renew/wl');

  const first = storedLeaf(config.dataDir);
  const firstExpiry = Date.parse(first.validTo);
  assert.ok(firstExpiry - Date.now() < 7000, `agent_ttl 6s honoured (expires ${first.validTo})`);
  const serials = new Set([first.serialNumber]);
  let firstRenewalAt = 0;
  while (Date.now() < firstExpiry + 4000) {
    const now = storedLeaf(config.dataDir);
    if (!serials.has(now.serialNumber)) {
      serials.add(now.serialNumber);
      if (firstRenewalAt === 0) firstRenewalAt = Date.now();
    }
    await delay(200);
  }
  assert.ok(firstRenewalAt > 0, 'the agent SVID was renewed');
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
  for (const end3 = Date.now() + 8000; !renewed.has(serverSerial) && Date.now() < end3; await delay(100)) {
    for (const hex of serials) if (hex !== first.serialNumber) renewed.add(decimal(hex));
    renewed.add(decimal(storedLeaf(config.dataDir).serialNumber));
    renewed.delete(decimal(first.serialNumber));
    serverSerial = (await stack.agentApi.getAgent({ id: spiffeIdParts(agent.agentId) })).x509svidSerialNumber;
  }
  assert.ok(renewed.has(serverSerial), `the server tracks a renewed serial (server ${serverSerial}, renewed ${[...renewed].join(', ')})`);
  // A new audience is not cached by the agent: this needs an mTLS call with the renewed SVID.
  assert.equal(await jwt(`fresh-${Date.now()}`), 'spiffe://example.org/renew/wl');

  // Server restart: the agent reconnects with its current SVID and sees a new entry.
  await stack.restartServer();
  await stack.createEntries([{ parentId: agent.agentId, path: '/renew/wl2', selectors: [`unix:uid:${uid}`] }]);
  const end2 = Date.now() + 20_000;
  let ids: string[] = [];
  while (ids.length < 2 && Date.now() < end2) {
    ids = await client.fetchJWTSVID({ audience: [`x-${Date.now()}`] }).then(
      (r) => r.svids.map((s) => s.spiffeId).sort(),
      () => [],
    );
    if (ids.length < 2) await delay(300);
  }
  assert.deepEqual(ids, ['spiffe://example.org/renew/wl', 'spiffe://example.org/renew/wl2']);
});
