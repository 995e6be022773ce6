// `ztwim agent healthcheck` beside the real `spire-agent healthcheck` (v1.13.0): the same stdout,
// stderr and exit code when nothing listens (missing socket, wrong path, a file, a directory, a
// relative path; with and without -shallow/-verbose), against our running agent, and against a
// health service that answers NOT_SERVING. A probe built on either can fail.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import * as http2 from 'node:http2';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { create, toBinary } from '@bufbuild/protobuf';
import { HealthCheckResponseSchema, HealthCheckResponse_ServingStatus, grpcFrame } from '@ztwim/proto';
import { spireAgentBin, ZTWIM_BIN } from './lib/peers.ts';
import { runBinary, type CliResult } from './lib/spire-admin.ts';
import { startAgentEnv, type AgentEnv } from './lib/ztwim-agent-env.ts';
import { makeTmpDir, type TmpDir } from './lib/tmp.ts';

/** Both commands with the same flags, from the same directory. */
async function both(cwd: string, args: string[]): Promise<{ spire: CliResult; ztwim: CliResult }> {
  // Async (runBinary): our agent runs in this process, a sync spawn would block it.
  const [spire, ztwim] = await Promise.all([
    runBinary(spireAgentBin(), ['healthcheck', ...args], { cwd }),
    runBinary(ZTWIM_BIN, ['agent', 'healthcheck', ...args], { cwd }),
  ]);
  return { spire, ztwim };
}

/** A gRPC health service on a Unix socket that answers every Check with `status`. */
async function healthServer(path: string, status: HealthCheckResponse_ServingStatus): Promise<() => Promise<void>> {
  const body = grpcFrame(toBinary(HealthCheckResponseSchema, create(HealthCheckResponseSchema, { status })));
  const server = http2.createServer();
  server.on('stream', (stream) => {
    stream.on('error', () => {});
    stream.resume();
    stream.on('end', () => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(body);
    });
  });
  await new Promise<void>((r) => server.listen(path, r));
  return () => new Promise<void>((r) => server.close(() => r()));
}

describe('ztwim agent healthcheck vs spire-agent healthcheck', () => {
  let tmp: TmpDir;
  let env: AgentEnv;
  before(async () => {
    tmp = makeTmpDir('ztwim-hc-');
    mkdirSync(join(tmp.path, 'a-directory'));
    writeFileSync(join(tmp.path, 'a-file'), '');
    env = await startAgentEnv();
  });
  after(async () => {
    await env?.close();
    tmp?.cleanup();
  });

  const nothing: Array<[string, () => string]> = [
    ['missing socket', () => join(tmp.path, 'missing', 'api.sock')],
    ['a regular file', () => join(tmp.path, 'a-file')],
    ['a directory', () => join(tmp.path, 'a-directory')],
    ['a relative path', () => 'relative.sock'],
  ];
  for (const [what, path] of nothing) {
    for (const flags of [[], ['-shallow'], ['-verbose'], ['-shallow', '-verbose']]) {
      it(`nothing listening (${what}) ${flags.join(' ')}: unhealthy, exit 1, the same text`, async () => {
        const { spire, ztwim } = await both(tmp.path, ['-socketPath', path(), ...flags]);
        assert.equal(spire.status, 1, spire.stderr);
        assert.match(spire.stderr, /Agent is unhealthy: unable to determine health\n$/);
        assert.deepEqual(ztwim, spire);
      });
    }
  }

  for (const flags of [[], ['-verbose'], ['-shallow']]) {
    it(`our running agent ${flags.join(' ')}: healthy, exit 0, the same text`, async () => {
      const { spire, ztwim } = await both(tmp.path, ['-socketPath', env.config.socketPath, ...flags]);
      assert.equal(spire.status, 0, spire.stderr);
      assert.match(spire.stdout, /Agent is healthy\.\n$/);
      assert.deepEqual(ztwim, spire);
    });
  }

  it('a health service answering NOT_SERVING: unhealthy with the status, exit 1, the same text', async () => {
    const sock = join(tmp.path, 'not-serving.sock');
    const close = await healthServer(sock, HealthCheckResponse_ServingStatus.NOT_SERVING);
    try {
      const { spire, ztwim } = await both(tmp.path, ['-socketPath', sock]);
      assert.equal(spire.status, 1);
      assert.equal(spire.stderr, 'Agent is unhealthy: agent returned status "NOT_SERVING"\n');
      assert.deepEqual(ztwim, spire);
    } finally {
      await close();
    }
  });

  it('flag errors: the same usage text and exit code', async () => {
    const { spire, ztwim } = await both(tmp.path, ['-bad']);
    assert.equal(spire.status, 1);
    assert.deepEqual(ztwim, spire);
  });
});
