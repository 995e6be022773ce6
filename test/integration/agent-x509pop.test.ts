// x509pop node attestation of our agent to our server (and to the real SPIRE v1.13.0 server): the agent ID is SPIRE's
// spiffe://<td>/spire/agent/x509pop/<sha1 of the leaf DER>, workloads are served, a short agent
// SVID TTL is renewed by re-attestation (x509pop is reattestable), and a certificate from another
// CA is refused with a clear error.
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { isZtwimError, parseConfigText, silentLogger } from '@ztwim/core';
import { eventually, opensslCert } from '@ztwim/testkit';
import { buildAgentConfig, startAgent, type AgentConfig, type RunningAgent } from '@ztwim/agent';
import { createClient } from '@connectrpc/connect';
import { SpiffeWorkloadAPI, createUnixGrpcTransport, headersInterceptor } from '@ztwim/proto';
import { freePort } from '../interop/lib/spire-admin.ts';
import { startSpireServer, type SpireServer } from '../interop/lib/spire-server.ts';
import { makeTmpDir, type TmpDir } from '../interop/lib/tmp.ts';
import { startStack, type Stack } from '../interop/lib/ztwim-stack.ts';

/** A CA and a node certificate it signed (openssl, EC P-256). */
function makePki(dir: TmpDir, name: string): { ca: string; cert: string; key: string } {
  const ca = opensslCert({
    dir: dir.path,
    file: `${name}-ca`,
    subject: `/CN=${name} node CA`,
    extensions: ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign'],
  });
  const node = opensslCert({
    dir: dir.path,
    file: `${name}-node`,
    subject: `/CN=${name}-node-1`,
    extensions: ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=clientAuth'],
    issuer: ca,
  });
  return { ca: ca.certPath, cert: node.certPath, key: node.keyPath };
}

function attestor(p: { cert: string; key: string }): string {
  return `NodeAttestor "x509pop" {
    plugin_data {
      private_key_path = "${p.key}"
      certificate_path = "${p.cert}"
    }
  }`;
}

const AGENT_TTL_S = 20;

describe('x509pop node attestation (our agent, our server)', () => {
  let pki: TmpDir;
  let good: { ca: string; cert: string; key: string };
  let other: { ca: string; cert: string; key: string };
  let stack: Stack;
  const uid = process.getuid?.() ?? 0;

  before(async () => {
    pki = makeTmpDir('ztwim-x509pop-');
    good = makePki(pki, 'good');
    other = makePki(pki, 'other');
    stack = await startStack({
      // Long enough that re-attestation at half-life (10 s ± 10%) has 8 s or more of slack before
      // expiry on a loaded machine (it was 6 s: 3 s of slack, flaky under load).
      serverExtra: `  agent_ttl = "${AGENT_TTL_S}s"`,
      pluginsExtra: `NodeAttestor "x509pop" { plugin_data { ca_bundle_path = "${good.ca}" } }`,
    });
  });
  after(async () => {
    await stack?.close();
    pki?.cleanup();
  });

  it('attests as spire/agent/x509pop/<fingerprint>, serves workloads, and re-attests before the SVID expires', async () => {
    const fp = new crypto.X509Certificate(readFileSync(good.cert)).fingerprint.replaceAll(':', '').toLowerCase();
    const { agent, config } = await stack.startAgent({ nodeAttestor: attestor(good) });
    assert.equal(agent.agentId, `spiffe://example.org/spire/agent/x509pop/${fp}`);
    const listed = await stack.agentApi.getAgent({ id: { trustDomain: 'example.org', path: `/spire/agent/x509pop/${fp}` } });
    assert.equal(listed.attestationType, 'x509pop');
    assert.ok(
      listed.selectors.some((s) => s.type === 'x509pop' && s.value === 'subject:cn:good-node-1'),
      JSON.stringify(listed.selectors),
    );

    await stack.createEntries([{ parentId: agent.agentId, path: '/pop/wl', selectors: [`unix:uid:${uid}`] }]);
    const client = stack.workload(agent.socketPath);
    const jwtOnce = async (aud: string): Promise<string | undefined> => (await client.fetchJWTSVID({ audience: [aud] })).svids[0]?.spiffeId;
    const id = await eventually('a JWT-SVID for the workload', () => jwtOnce('a'), { timeoutMs: 15_000, intervalMs: 200, retryErrors: true });
    assert.equal(id, 'spiffe://example.org/pop/wl');

    // Short agent_ttl: the agent must have a new SVID (re-attested) before the first one expires,
    // and keep talking to the server after the first one's expiry.
    const serialOf = (): string => {
      const d = JSON.parse(readFileSync(`${config.dataDir}/agent-data.json`, 'utf8')) as { svid: string[] };
      return new crypto.X509Certificate(Buffer.from(d.svid[0] ?? '', 'base64')).serialNumber;
    };
    const first = serialOf();
    const firstExpiry = Date.parse(
      new crypto.X509Certificate(
        Buffer.from((JSON.parse(readFileSync(`${config.dataDir}/agent-data.json`, 'utf8')) as { svid: string[] }).svid[0] ?? '', 'base64'),
      ).validTo,
    );
    const renewedAt = await eventually('a new agent SVID', () => serialOf() !== first && Date.now(), {
      timeoutMs: firstExpiry + 3000 - Date.now(),
      intervalMs: 100,
    });
    assert.ok(renewedAt < firstExpiry, `renewed at ${renewedAt}, first SVID expired at ${firstExpiry}`);
    // The rest is about talking to the server after the first SVID expired, a moment of real time
    // (TLS checks certificates against the real clock): wait until 3 s past it.
    await eventually('3 s past the first SVID expiry', () => Date.now() > firstExpiry + 3000, { timeoutMs: firstExpiry + 8000 - Date.now(), intervalMs: 200 });
    await eventually(
      'the server to know the current agent SVID',
      async () => {
        const now = await stack.agentApi.getAgent({ id: { trustDomain: 'example.org', path: `/spire/agent/x509pop/${fp}` } });
        return BigInt(`0x${serialOf()}`).toString() === now.x509svidSerialNumber;
      },
      { timeoutMs: 3000, intervalMs: 100 },
    );
    // A fresh audience is not cached: this needs an mTLS call with the renewed SVID.
    assert.equal(await jwtOnce(`after-expiry-${Date.now()}`), 'spiffe://example.org/pop/wl');
  });

  it('a node certificate from another CA is refused with a clear error', async () => {
    await assert.rejects(stack.startAgent({ nodeAttestor: attestor(other) }), (e: unknown) => {
      assert.ok(isZtwimError(e), String(e));
      assert.match(e.message, /^node attestation failed: /);
      assert.equal(e.message, 'node attestation failed: PermissionDenied: x509pop: certificate verification failed: certificate signed by unknown authority');
      return true;
    });
  });
});

describe('x509pop node attestation of our agent to the real SPIRE v1.13.0 server', () => {
  let tmp: TmpDir;
  let good: { ca: string; cert: string; key: string };
  let other: { ca: string; cert: string; key: string };
  let server: SpireServer;
  let port: number;
  const agents: RunningAgent[] = [];
  const uid = process.getuid?.() ?? 0;

  const configFor = (p: { cert: string; key: string }, name: string): AgentConfig => ({
    ...buildAgentConfig(
      parseConfigText(
        `
agent {
  server_address = "127.0.0.1"
  server_port = ${port}
  trust_domain = "example.org"
  data_dir = "${tmp.file(`${name}-data`)}"
  socket_path = "${tmp.file(`${name}.sock`)}"
  log_level = "warn"
  experimental { sync_interval = "500ms" }
}
plugins {
  ${attestor(p)}
  KeyManager "memory" { plugin_data {} }
  WorkloadAttestor "unix" { plugin_data {} }
}
`,
        'hcl',
      ),
      `${name}.conf`,
    ),
    trustBundle: server.cli(['bundle', 'show']),
  });

  before(async () => {
    tmp = makeTmpDir('ztwim-x509pop-spire-');
    good = makePki(tmp, 'good');
    other = makePki(tmp, 'other');
    port = await freePort();
    server = await startSpireServer(tmp, {
      bindPort: port,
      extraPlugins: `NodeAttestor "x509pop" {
    plugin_data { ca_bundle_path = "${good.ca}" }
  }`,
    });
  });
  after(async () => {
    for (const a of agents) await a.close();
    await server?.stop();
    tmp?.cleanup();
  });

  it('attests with the same agent ID form and gets workload SVIDs', async () => {
    const fp = new crypto.X509Certificate(readFileSync(good.cert)).fingerprint.replaceAll(':', '').toLowerCase();
    const config = configFor(good, 'a');
    const agent = await startAgent(config, { logger: silentLogger() });
    agents.push(agent);
    assert.equal(agent.agentId, `spiffe://example.org/spire/agent/x509pop/${fp}`);
    const shown = server.cli(['agent', 'show', '-spiffeID', agent.agentId]);
    assert.match(shown, /Attestation type\s*:\s*x509pop/);
    assert.match(shown, /x509pop:subject:cn:good-node-1/);
    server.cli(['entry', 'create', '-parentID', agent.agentId, '-spiffeID', 'spiffe://example.org/pop/spire-wl', '-selector', `unix:uid:${uid}`]);
    const t = createUnixGrpcTransport(config.socketPath, { interceptors: [headersInterceptor({ 'workload.spiffe.io': 'true' })] });
    try {
      const client = createClient(SpiffeWorkloadAPI, t);
      const id = await eventually('a JWT-SVID from the SPIRE-attested agent', async () => (await client.fetchJWTSVID({ audience: ['a'] })).svids[0]?.spiffeId, {
        timeoutMs: 15_000,
        intervalMs: 200,
        retryErrors: true,
      });
      assert.equal(id, 'spiffe://example.org/pop/spire-wl');
    } finally {
      t.close();
    }
  });

  it('a node certificate from another CA is refused with a clear error', async () => {
    await assert.rejects(startAgent(configFor(other, 'b'), { logger: silentLogger() }), (e: unknown) => {
      assert.ok(isZtwimError(e), String(e));
      assert.match(e.message, /^node attestation failed: PermissionDenied: .*certificate/, e.message);
      return true;
    });
  });
});
