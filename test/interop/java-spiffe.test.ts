// java-spiffe 0.8.17 (the official Java SDK: java-spiffe-core, java-spiffe-provider, grpc-netty-linux;
// grpc-java 1.80) against ztwim's Workload API, as a Java user runs it: X509Source (SVID, chain
// verified against the bundle), JwtSource (fetch for an audience, verified locally), the Workload API
// client's validate (good token, wrong audience, tampered token), mTLS pairs from the provider's
// SSLContext on TLS 1.2 and 1.3 with an authorizer that accepts and one that refuses, and an X.509
// update seen by a running source after `entry create`. Targets: `ztwim up`, a ztwim agent attached
// to a real spire-server, and (the reference) a real spire-agent on the same spire-server.
//
// grpc-java sends the socket path as `:authority` over a Unix socket, which node:http2 refuses on
// its own (see packages/proto/src/rpc/authority-layer.ts). The probe is test/interop/java, built by
// scripts/setup-interop.sh.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FLAG, FRAME, RawH2Client, frame } from '../../packages/proto/src/testing/raw-h2-client.ts';
import type { EncodeField } from '../../packages/proto/src/rpc/hpack.ts';
import { javaProbe } from './lib/peers.ts';
import { freePort } from './lib/spire-admin.ts';
import { startSpireAgent, type SpireAgent } from './lib/spire-agent.ts';
import { startAgentEnv, type AgentEnv } from './lib/ztwim-agent-env.ts';
import { makeTmpDir, type TmpDir } from './lib/tmp.ts';
import { startUp, stopUp, ztwim, type Up } from './lib/ztwim-up.ts';

type Line = Record<string, unknown> & { check?: string; event?: string; ok?: boolean; error?: string };

interface ProbeRun {
  checks: Map<string, Line>;
  output: string;
}

const UID = process.getuid?.() ?? 0;
const AUDIENCE = 'java-interop';

/**
 * Runs the probe against `socket`; with `update`, the probe waits for `update.id` in a running
 * X509Source and `update.create()` is called once it watches.
 */
function runProbe(socket: string, expectId: string, update?: { id: string; create: () => void | Promise<void> }): Promise<ProbeRun> {
  const p = javaProbe();
  const args = ['-cp', p.classPath, p.mainClass, '--socket', `unix:${socket}`, '--audience', AUDIENCE, '--expect-id', expectId];
  if (update !== undefined) args.push('--wait-for-id', update.id, '--wait-seconds', '30');
  const child: ChildProcess = spawn(p.java, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const checks = new Map<string, Line>();
  let output = '';
  let pending = '';
  let creating: Promise<void> = Promise.resolve();
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  child.stdout?.on('data', (d: Buffer) => {
    output += d.toString();
    pending += d.toString();
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const text = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      if (!text.startsWith('{')) continue;
      const line = JSON.parse(text) as Line;
      if (line.check !== undefined) checks.set(line.check, line);
      if (line.event === 'watching' && update !== undefined) creating = Promise.resolve(update.create());
    }
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      creating.then(() => {
        if (code !== 0) reject(new Error(`java-spiffe probe exited ${code}:\n${output}`));
        else resolve({ checks, output });
      }, reject);
    });
  });
}

function check(run: ProbeRun, name: string): Line {
  const c = run.checks.get(name);
  assert.ok(c !== undefined, `no ${name} result:\n${run.output}`);
  return c;
}

/** The assertions every target must pass, from one probe run. */
function assertProbe(run: ProbeRun, expectId: string, updateWithinMs: number): void {
  const x509 = check(run, 'x509-source');
  assert.equal(x509.ok, true, JSON.stringify(x509));
  assert.equal(x509['spiffe_id'], expectId);
  assert.equal(x509['chain_verified'], true);
  assert.ok((x509['bundle_authorities'] as number) >= 1);

  const jwt = check(run, 'jwt-source');
  assert.equal(jwt.ok, true, JSON.stringify(jwt));
  assert.equal(jwt['spiffe_id'], expectId);
  assert.deepEqual(jwt['audience'], [AUDIENCE]);
  assert.equal(jwt['locally_valid'], true);

  const good = check(run, 'validate-good');
  assert.equal(good.ok, true, JSON.stringify(good));
  assert.equal(good['spiffe_id'], expectId);
  for (const name of ['validate-wrong-audience', 'validate-tampered']) {
    const bad = check(run, name);
    assert.equal(bad.ok, false, `${name} was accepted`);
    assert.match(bad.error ?? '', /StatusRuntimeException: INVALID_ARGUMENT/, `${name}: ${bad.error}`);
  }

  for (const proto of ['TLSv1.2', 'TLSv1.3']) {
    const accept = check(run, `mtls-${proto}-accept`);
    assert.equal(accept.ok, true, JSON.stringify(accept));
    assert.equal(accept['protocol'], proto);
    const refuse = check(run, `mtls-${proto}-refuse`);
    assert.equal(refuse.ok, false, `${proto}: the refusing authorizer let the peer in`);
    assert.match(refuse.error ?? '', new RegExp(`SPIFFE ID ${expectId.replace(/[/.]/g, '\\$&')} in X.509 certificate is not accepted`));
  }

  const upd = check(run, 'x509-update');
  assert.equal(upd.ok, true, `the running X509Source never saw the new entry:\n${run.output}`);
  assert.ok((upd['elapsed_ms'] as number) < updateWithinMs, `update took ${String(upd['elapsed_ms'])} ms`);
  // Every RPC went through: no stream was reset (the defect: RST_STREAM PROTOCOL_ERROR).
  assert.doesNotMatch(run.output, /RST_STREAM|PROTOCOL_ERROR/);
}

describe('java-spiffe 0.8.17 against ztwim up', () => {
  let dir: TmpDir;
  let up: Up;
  const me = `spiffe://example.org/user/${userInfo().username}`;

  before(async () => {
    javaProbe(); // fails now, naming the setup script, if the probe is not built
    dir = makeTmpDir('ztwim-java-up-');
    up = await startUp(dir, { server: await freePort(), oidc: await freePort() });
  });
  after(async () => {
    if (up !== undefined) await stopUp(up);
    dir?.cleanup();
  });

  it('X509Source, JwtSource, validate, mTLS (TLS 1.2/1.3) and an X.509 update', async () => {
    const sock = join(dir.path, 'server.sock');
    const shown = ztwim(dir, 'server', 'entry', 'show', '-socketPath', sock, '-spiffeID', me);
    const parent = /Parent ID\s*:\s*(\S+)/.exec(shown.stdout)?.[1];
    assert.ok(parent !== undefined, shown.stdout + shown.stderr);
    const newId = 'spiffe://example.org/java/update';
    const run = await runProbe(join(dir.path, 'agent.sock'), me, {
      id: newId,
      create: () => {
        const r = ztwim(dir, 'server', 'entry', 'create', '-socketPath', sock, '-parentID', parent, '-spiffeID', newId, '-selector', `unix:uid:${UID}`);
        assert.equal(r.status, 0, r.stdout + r.stderr);
      },
    });
    assertProbe(run, me, 10_000);
  });

  it('every :authority shape seen in the wild reaches the Workload API and the admin socket (Health/Check)', async () => {
    const shapes: Array<string | undefined> = ['', 'localhost', join(dir.path, 'agent.sock'), 'tmp%2Fspire-agent%2Fpublic%2Fapi.sock', undefined];
    for (const socket of [join(dir.path, 'agent.sock'), join(dir.path, 'server.sock')]) {
      for (const authority of shapes) {
        for (const form of ['literal', 'huffman+incremental'] as const) {
          const h = await healthCheck(socket, authority, form);
          assert.equal(h.get(':status'), '200', `${socket} ${String(authority)} ${form}`);
          assert.equal(h.get('grpc-status'), '0', `${socket} ${String(authority)} ${form}: ${h.get('grpc-message')}`);
        }
      }
    }
  });
});

/** grpc.health.v1.Health/Check over raw frames, with `authority` as `:authority` (undefined: none). */
async function healthCheck(socket: string, authority: string | undefined, form: 'literal' | 'huffman+incremental'): Promise<Map<string, string>> {
  const c = await RawH2Client.connect(socket);
  try {
    const fields: EncodeField[] = [
      ...(authority === undefined
        ? []
        : [
            {
              name: ':authority',
              value: authority,
              kind: form === 'literal' ? ('without-indexing' as const) : ('incremental' as const),
              huffman: form !== 'literal',
            },
          ]),
      { name: ':method', value: 'POST', kind: 'indexed' },
      { name: ':scheme', value: 'http', kind: 'indexed' },
      { name: ':path', value: '/grpc.health.v1.Health/Check', huffman: true },
      { name: 'content-type', value: 'application/grpc', kind: 'incremental' },
      { name: 'te', value: 'trailers' },
    ];
    const { id, result } = c.openStream();
    c.write(Buffer.concat([c.headersFrames(id, fields, {}, 0), frame(FRAME.DATA, FLAG.END_STREAM, id, Buffer.from([0, 0, 0, 0, 0]))]));
    const r = await result;
    assert.equal(r.reset, undefined, `stream reset (${String(r.reset)})`);
    return r.headers;
  } finally {
    c.close();
  }
}

describe('java-spiffe 0.8.17 against a ztwim agent and a real spire-agent, both on spire-server v1.13.0', () => {
  let env: AgentEnv;
  let spireTmp: TmpDir;
  let spire: SpireAgent;
  const id = 'spiffe://example.org/java/workload';

  before(async () => {
    javaProbe();
    env = await startAgentEnv();
    env.server.cli(['entry', 'create', '-parentID', env.agent.agentId, '-spiffeID', id, '-selector', `unix:uid:${UID}`]);
    spireTmp = makeTmpDir('ztwim-java-spire-');
    spire = await startSpireAgent(spireTmp, env.server, {
      serverPort: env.port,
      beforeStart: (agentId) => {
        env.server.cli(['entry', 'create', '-parentID', agentId, '-spiffeID', id, '-selector', `unix:uid:${UID}`]);
      },
    });
  });
  after(async () => {
    await spire?.stop();
    spireTmp?.cleanup();
    await env?.close();
  });

  it('ztwim agent: X509Source, JwtSource, validate, mTLS (TLS 1.2/1.3) and an X.509 update', async () => {
    const newId = 'spiffe://example.org/java/update-ztwim';
    const run = await runProbe(env.config.socketPath, id, {
      id: newId,
      create: () => {
        env.server.cli(['entry', 'create', '-parentID', env.agent.agentId, '-spiffeID', newId, '-selector', `unix:uid:${UID}`]);
      },
    });
    assertProbe(run, id, 10_000);
  });

  it('spire-agent (the reference): the same checks pass', async () => {
    const newId = 'spiffe://example.org/java/update-spire';
    const run = await runProbe(spire.socketPath, id, {
      id: newId,
      create: () => {
        env.server.cli(['entry', 'create', '-parentID', spire.agentId, '-spiffeID', newId, '-selector', `unix:uid:${UID}`]);
      },
    });
    assertProbe(run, id, 20_000);
  });
});
