import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  Code,
  ConnectError,
  createClient,
  createContextKey,
  createContextValues,
  type Client,
  type ConnectRouter,
  type HandlerContext,
  type UnaryRequest,
} from '@connectrpc/connect';
import { HealthCheckResponse_ServingStatus, Health } from '../gen/grpc/health/v1/health_pb.ts';
import { JWTSVIDResponseSchema, SpiffeWorkloadAPI } from '../gen/workload/workload_pb.ts';
import { create, toBinary } from '@bufbuild/protobuf';
import { withEncoding } from './encoded.ts';
import { PermissionDeniedDetails_Reason } from '../gen/spire/api/types/status_pb.ts';
import { cancelOnBreak, createUnixGrpcTransport, createTcpGrpcTransport, headersInterceptor } from './client-transport.ts';
import { startGrpcServer, type GrpcServer } from './grpc-server.ts';
import { errorMappingInterceptor, permissionDeniedError, permissionDeniedReasonOf, statusOf, toConnectError } from './errors.ts';
import { eventually } from '@ztwim/testkit';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ztwim-proto-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const sockPath = (): string => path.join(tmp, `s${n++}.sock`);

function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

function untilAborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

class AppError extends Error {
  readonly grpc: number;
  constructor(grpc: number, message: string) {
    super(message);
    this.grpc = grpc;
  }
}

const peerKey = createContextKey<string>('none', { description: 'peer' });

interface Fixture {
  server: GrpcServer;
  streamAborted: Promise<void>[];
  streamsStarted: number;
  /** Unary handlers that started waiting for their signal (audience "slow"). */
  unaryStarted: number;
  /** Abort reasons seen by unary handlers that wait for their signal (audience "slow"). */
  unaryAborts: unknown[];
}

/** A workload-API-shaped fixture exercising every call shape the helpers must support. */
async function startFixture(listen: Parameters<typeof startGrpcServer>[0]['listen']): Promise<Fixture> {
  const fx: Fixture = { server: undefined as unknown as GrpcServer, streamAborted: [], streamsStarted: 0, unaryStarted: 0, unaryAborts: [] };
  const routes = (router: ConnectRouter): void => {
    router.service(SpiffeWorkloadAPI, {
      async fetchJWTSVID(req, ctx) {
        const aud = req.audience[0] ?? '';
        if (aud === 'slow') {
          fx.unaryStarted++;
          await untilAborted(ctx.signal);
          fx.unaryAborts.push(ctx.signal.reason);
          throw new ConnectError('gave up', Code.Aborted);
        }
        if (aud === 'not-found') throw new ConnectError('entry not found', Code.NotFound);
        if (aud === 'app-error') throw new AppError(Code.FailedPrecondition, 'not ready yet');
        if (aud === 'plain-error') throw new Error('boom');
        if (aud === 'encoded') {
          // Deliberately different bytes, to see which ones go out (callers must never do this).
          const bytes = toBinary(JWTSVIDResponseSchema, create(JWTSVIDResponseSchema, { svids: [{ spiffeId: 'spiffe://example.org/from-bytes' }] }));
          return withEncoding(create(JWTSVIDResponseSchema, { svids: [{ spiffeId: 'spiffe://example.org/from-message' }] }), bytes);
        }
        if (aud === 'denied') throw permissionDeniedError('agent is banned', PermissionDeniedDetails_Reason.AGENT_BANNED);
        return {
          svids: [
            {
              spiffeId: 'spiffe://example.org/w',
              svid: ctx.requestHeader.get('workload.spiffe.io') ?? '<missing>',
              hint: ctx.values.get(peerKey),
            },
          ],
        };
      },
      async *fetchX509Bundles() {
        // One message, then an application error mid-stream.
        yield { bundles: { 'spiffe://td0': new Uint8Array([1]) } };
        throw new AppError(Code.FailedPrecondition, 'bundle gone');
      },
      async *fetchJWTBundles(_req, ctx) {
        fx.streamsStarted++;
        const done = deferred();
        fx.streamAborted.push(done.promise);
        try {
          for (let i = 0; i < 3; i++) yield { bundles: { [`spiffe://td${i}`]: new TextEncoder().encode(`{"keys":[]}`) } };
          await untilAborted(ctx.signal);
        } finally {
          done.resolve();
        }
      },
    });
    router.service(Health, {
      check: (req) => ({ status: req.service === '' ? HealthCheckResponse_ServingStatus.SERVING : HealthCheckResponse_ServingStatus.SERVICE_UNKNOWN }),
    });
  };
  fx.server = await startGrpcServer({
    routes,
    listen,
    interceptors: [errorMappingInterceptor((e) => (e instanceof AppError ? e.grpc : undefined))],
    contextValues: (conn) => {
      const sock = conn.socket as net.Socket & { getPeerCertificate?: () => { subject?: { CN?: string } } };
      const cn = sock.getPeerCertificate?.().subject?.CN;
      return createContextValuesFor(cn ?? `${String(conn.session.alpnProtocol)}:${sock.remoteAddress ?? 'unix'}`);
    },
  });
  return fx;
}

function createContextValuesFor(peer: string): ReturnType<typeof createContextValues> {
  return createContextValues().set(peerKey, peer);
}

/** A fixture on a fresh socket and a Workload API client on it, both closed after `fn`. */
async function withWorkloadClient(fn: (wl: Client<typeof SpiffeWorkloadAPI>, fx: Fixture) => Promise<void>): Promise<void> {
  const p = sockPath();
  const fx = await startFixture({ path: p });
  const transport = createUnixGrpcTransport(p);
  try {
    await fn(createClient(SpiffeWorkloadAPI, transport), fx);
  } finally {
    transport.close();
    await fx.server.close();
  }
}

test('unary over a unix socket: request metadata, context values and health', async () => {
  const p = sockPath();
  const fx = await startFixture({ path: p, mode: 0o770 });
  const transport = createUnixGrpcTransport(p, { interceptors: [headersInterceptor({ 'workload.spiffe.io': 'true' })] });
  try {
    assert.equal(fs.statSync(p).mode & 0o777, 0o770);
    assert.deepEqual(fx.server.address, { kind: 'unix', path: p });
    const wl = createClient(SpiffeWorkloadAPI, transport);
    const res = await wl.fetchJWTSVID({ audience: ['a'] });
    assert.equal(res.svids.length, 1);
    assert.equal(res.svids[0]?.svid, 'true', 'server saw the metadata header');
    assert.equal(res.svids[0]?.hint, 'h2c:unix', 'contextValues ran on the HTTP/2 connection');
    const health = createClient(Health, transport);
    assert.equal((await health.check({})).status, HealthCheckResponse_ServingStatus.SERVING);
    assert.equal((await health.check({ service: 'x' })).status, HealthCheckResponse_ServingStatus.SERVICE_UNKNOWN);
  } finally {
    transport.close();
    await fx.server.close();
  }
  assert.equal(fs.existsSync(p), false, 'socket file removed on close');
});

test('error codes, raw messages and details propagate to the client', async () => {
  const cases: Array<{ name: string; aud: string; code: Code; msg: string }> = [
    { name: 'ConnectError passes through', aud: 'not-found', code: Code.NotFound, msg: 'entry not found' },
    { name: 'app error mapped by the interceptor', aud: 'app-error', code: Code.FailedPrecondition, msg: 'not ready yet' },
    { name: 'unknown error is internal', aud: 'plain-error', code: Code.Internal, msg: 'boom' },
    { name: 'permission denied with details', aud: 'denied', code: Code.PermissionDenied, msg: 'agent is banned' },
  ];
  await withWorkloadClient(async (wl) => {
    for (const c of cases) {
      await assert.rejects(wl.fetchJWTSVID({ audience: [c.aud] }), (e: unknown) => {
        assert.ok(e instanceof ConnectError, c.name);
        assert.equal(e.code, c.code, c.name);
        assert.equal(e.rawMessage, c.msg, c.name);
        return true;
      });
    }
    const denied = await wl.fetchJWTSVID({ audience: ['denied'] }).catch((e: unknown) => e);
    assert.equal(permissionDeniedReasonOf(denied), PermissionDeniedDetails_Reason.AGENT_BANNED);
    const other = await wl.fetchJWTSVID({ audience: ['not-found'] }).catch((e: unknown) => e);
    assert.equal(permissionDeniedReasonOf(other), undefined);
  });
});

/** One call from a raw HTTP/2 client (no client-side deadline of its own): its grpc-status and how many body bytes came. */
async function rawCall(
  h2: http2.ClientHttp2Session,
  path: string,
  headers: http2.OutgoingHttpHeaders,
  body: Buffer,
): Promise<{ status: string; bytes: number }> {
  const st = h2.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...headers });
  let bytes = 0;
  st.on('data', (d: Buffer) => {
    bytes += d.length;
  });
  const status = await new Promise<string>((resolve) => {
    st.on('response', (h) => {
      if (h['grpc-status'] !== undefined) resolve(String(h['grpc-status']));
    });
    st.on('trailers', (t) => resolve(String(t['grpc-status'])));
    st.end(body);
  });
  return { status, bytes };
}

/** A fixture on a fresh socket with a connect transport and a raw HTTP/2 session on it, all closed after `fn`. */
async function withClients(
  fn: (c: { fx: Fixture; transport: ReturnType<typeof createUnixGrpcTransport>; h2: http2.ClientHttp2Session }) => Promise<void>,
): Promise<void> {
  const p = sockPath();
  const fx = await startFixture({ path: p });
  const transport = createUnixGrpcTransport(p);
  const h2 = http2.connect('http://localhost', { createConnection: () => net.connect(p) });
  try {
    await fn({ fx, transport, h2 });
  } finally {
    h2.close();
    transport.close();
    await fx.server.close();
  }
}

test('unary and server-streaming calls are answered on the HTTP/2 stream; JSON goes through connect-node', async () => {
  await withClients(async ({ fx, transport, h2 }) => {
    const wl = createClient(SpiffeWorkloadAPI, transport);
    let compat = 0;
    fx.server.httpServer.on('request', () => compat++);
    const res = await wl.fetchJWTSVID({ audience: ['a'] });
    assert.equal(res.svids[0]?.spiffeId, 'spiffe://example.org/w');
    await assert.rejects(
      wl.fetchJWTSVID({ audience: ['denied'] }),
      (e: unknown) => permissionDeniedReasonOf(e) === PermissionDeniedDetails_Reason.AGENT_BANNED,
    );
    const enc = await wl.fetchJWTSVID({ audience: ['encoded'] });
    assert.equal(enc.svids[0]?.spiffeId, 'spiffe://example.org/from-bytes', 'a pre-made encoding is written as is');
    for await (const m of wl.fetchX509Bundles({})) {
      assert.deepEqual(Object.keys(m.bundles), ['spiffe://td0']);
      break;
    }
    assert.equal(compat, 0, 'unary and server-streaming calls never reached the compatibility layer');
    // gRPC with JSON messages is connect-node's job.
    const json = Buffer.from('{}');
    const frame = Buffer.concat([Buffer.from([0, 0, 0, 0, json.length]), json]);
    assert.equal((await rawCall(h2, '/grpc.health.v1.Health/Check', { 'content-type': 'application/grpc+json' }, frame)).status, '0');
    assert.equal(compat, 1, 'the JSON call went through connect-node');
  });
});

test('unary deadline: the server answers DeadlineExceeded and aborts the handler; a cancel aborts it too', async () => {
  await withClients(async ({ fx, transport, h2 }) => {
    // A raw client that sends grpc-timeout and never cancels by itself: the deadline is the server's.
    const body = Buffer.from([0, 0, 0, 0, 6, 0x0a, 0x04, ...Buffer.from('slow')]);
    assert.equal((await rawCall(h2, '/SpiffeWorkloadAPI/FetchJWTSVID', { 'grpc-timeout': '100m' }, body)).status, String(Code.DeadlineExceeded));
    await eventually('the first unary abort', () => fx.unaryAborts.length === 1, { timeoutMs: 5000 });
    assert.ok(fx.unaryAborts[0] instanceof ConnectError && fx.unaryAborts[0].code === Code.DeadlineExceeded, String(fx.unaryAborts[0]));
    // A client that cancels: the handler sees Canceled; the server keeps serving.
    const wl = createClient(SpiffeWorkloadAPI, transport);
    const ac = new AbortController();
    const call = wl.fetchJWTSVID({ audience: ['slow'] }, { signal: ac.signal });
    // cancel once the server runs the call, so that it is the handler that sees the cancel
    await eventually('the call to reach its handler', () => fx.unaryStarted === 2, { timeoutMs: 5000 });
    ac.abort();
    await assert.rejects(call);
    await eventually('the second unary abort', () => fx.unaryAborts.length === 2, { timeoutMs: 5000 });
    assert.ok(fx.unaryAborts[1] instanceof ConnectError && fx.unaryAborts[1].code === Code.Canceled, String(fx.unaryAborts[1]));
    assert.equal((await wl.fetchJWTSVID({ audience: ['a'] })).svids.length, 1);
  });
});

test('server-stream deadline: messages, then DeadlineExceeded in the trailers, and the handler sees the abort', async () => {
  await withClients(async ({ fx, h2 }) => {
    const r = await rawCall(h2, '/SpiffeWorkloadAPI/FetchJWTBundles', { 'grpc-timeout': '150m' }, Buffer.from([0, 0, 0, 0, 0]));
    assert.equal(r.status, String(Code.DeadlineExceeded));
    assert.ok(r.bytes > 0, 'the messages before the deadline were delivered');
    await fx.streamAborted[0];
  });
});

test('an application error thrown mid-stream reaches the client with its mapped code', async () => {
  await withWorkloadClient(async (wl) => {
    const got: string[] = [];
    await assert.rejects(
      (async () => {
        for await (const msg of wl.fetchX509Bundles({})) got.push(...Object.keys(msg.bundles));
      })(),
      (e: unknown) => {
        assert.ok(e instanceof ConnectError);
        assert.equal(e.code, Code.FailedPrecondition, 'not Internal');
        assert.equal(e.rawMessage, 'bundle gone');
        return true;
      },
    );
    assert.deepEqual(got, ['spiffe://td0'], 'the message before the error was delivered');
  });
});

test('server streaming: several messages, then the client cancels and the handler sees it', async () => {
  await withWorkloadClient(async (wl, fx) => {
    const got: string[] = [];
    for await (const msg of cancelOnBreak((signal) => wl.fetchJWTBundles({}, { signal }))) {
      got.push(...Object.keys(msg.bundles));
      if (got.length === 3) break; // cancels the call
    }
    assert.deepEqual(got, ['spiffe://td0', 'spiffe://td1', 'spiffe://td2']);
    await fx.streamAborted[0]; // resolves only when the server handler observed the cancel
    // The connection and server are still usable.
    const res = await wl.fetchJWTSVID({ audience: ['a'] });
    assert.equal(res.svids[0]?.svid, '<missing>');
  });
});

test('many open server streams at once raise no MaxListenersExceededWarning', async () => {
  await withWorkloadClient(async (wl, fx) => {
    const warnings: string[] = [];
    const onWarning = (w: Error): void => {
      warnings.push(`${w.name}: ${w.message}`);
    };
    process.on('warning', onWarning);
    const acs = Array.from({ length: 20 }, () => new AbortController());
    try {
      const open = acs.map(async (ac) => {
        for await (const _ of wl.fetchJWTBundles({}, { signal: ac.signal })) {
          /* the handler keeps the stream open */
        }
      });
      await eventually('20 streams started', () => fx.streamsStarted >= 20);
      await new Promise((r) => setImmediate(r));
      for (const ac of acs) ac.abort();
      await Promise.allSettled(open);
    } finally {
      process.off('warning', onWarning);
    }
    assert.deepEqual(
      warnings.filter((w) => w.includes('MaxListeners')),
      [],
    );
  });
});

test('a client that hangs up mid-stream does not crash the server', async () => {
  const p = sockPath();
  const fx = await startFixture({ path: p });
  try {
    // Raw HTTP/2 client: open the stream, wait for the first frame, then kill the socket.
    const sock = net.connect({ path: p });
    const session = http2.connect('http://localhost', { createConnection: () => sock });
    session.on('error', () => {});
    const stream = session.request({
      ':method': 'POST',
      ':path': '/SpiffeWorkloadAPI/FetchJWTBundles',
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    stream.on('error', () => {});
    stream.end(Buffer.from([0, 0, 0, 0, 0])); // one empty, uncompressed message
    await new Promise<void>((resolve) => stream.once('data', () => resolve()));
    sock.destroy();
    await fx.streamAborted[0];

    // Same via our transport being torn down mid-stream.
    const transport = createUnixGrpcTransport(p);
    const wl = createClient(SpiffeWorkloadAPI, transport);
    const it = wl.fetchJWTBundles({})[Symbol.asyncIterator]();
    await it.next();
    transport.close();
    await fx.streamAborted[1];

    const t2 = createUnixGrpcTransport(p);
    try {
      const res = await createClient(Health, t2).check({});
      assert.equal(res.status, HealthCheckResponse_ServingStatus.SERVING);
    } finally {
      t2.close();
    }
    assert.equal(fx.streamsStarted, 2);
  } finally {
    await fx.server.close();
  }
});

test('close() ends open streams promptly and the client sees an error', async () => {
  const p = sockPath();
  const fx = await startFixture({ path: p });
  const transport = createUnixGrpcTransport(p);
  try {
    const wl = createClient(SpiffeWorkloadAPI, transport);
    const it = wl.fetchJWTBundles({})[Symbol.asyncIterator]();
    for (let i = 0; i < 3; i++) assert.equal((await it.next()).done, false);
    const rest = (async () => {
      for (;;) {
        const r = await it.next();
        if (r.done) return 'done';
      }
    })().catch((e: unknown) => e);
    await fx.server.close({ graceMs: 60_000 }); // must not wait for the grace period
    await fx.streamAborted[0];
    const outcome = await rest;
    assert.ok(outcome === 'done' || outcome instanceof ConnectError, String(outcome));
  } finally {
    transport.close();
  }
});

test('unix listen: replaces a stale socket, refuses a live one or a regular file', async () => {
  const stale = sockPath();
  // A server that died without cleaning up leaves its socket file behind.
  const r = spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(stale)}, () => process.kill(process.pid, 'SIGKILL'))`]);
  assert.equal(r.signal, 'SIGKILL');
  assert.ok(fs.lstatSync(stale).isSocket(), 'stale socket file left behind');
  const fx = await startFixture({ path: stale });
  try {
    await assert.rejects(startFixture({ path: stale }), /in use by another server/);
  } finally {
    await fx.server.close();
  }
  const file = path.join(tmp, 'regular');
  fs.writeFileSync(file, 'x');
  await assert.rejects(startFixture({ path: file }), /exists and is not a socket/);
  assert.equal(fs.readFileSync(file, 'utf8'), 'x');
});

test('tcp h2c transport works', async () => {
  const fx = await startFixture({ host: '127.0.0.1', port: 0 });
  const addr = fx.server.address;
  assert.equal(addr.kind, 'tcp');
  if (addr.kind !== 'tcp') return;
  const transport = createTcpGrpcTransport({ host: addr.host, port: addr.port });
  try {
    const res = await createClient(SpiffeWorkloadAPI, transport).fetchJWTSVID({ audience: ['a'] });
    assert.equal(res.svids[0]?.hint, 'h2c:127.0.0.1');
  } finally {
    transport.close();
    await fx.server.close();
  }
});

test('errors helpers: toConnectError and statusOf', () => {
  const ce = new ConnectError('x', Code.NotFound);
  const cases: Array<{ name: string; err: unknown; code: number; message: string }> = [
    { name: 'ok', err: undefined, code: 0, message: 'OK' },
    { name: 'connect error', err: ce, code: Code.NotFound, message: 'x' },
    {
      name: 'resolved',
      err: new AppError(Code.AlreadyExists, 'similar entry already exists'),
      code: Code.AlreadyExists,
      message: 'similar entry already exists',
    },
    { name: 'unresolved', err: new Error('bad'), code: Code.Internal, message: 'bad' },
    { name: 'non-error', err: 'str', code: Code.Internal, message: 'str' },
  ];
  const resolve = (e: unknown): number | undefined => (e instanceof AppError ? e.grpc : undefined);
  for (const c of cases) assert.deepEqual(statusOf(c.err, resolve), { code: c.code, message: c.message }, c.name);
  assert.equal(toConnectError(ce), ce);
  assert.equal(toConnectError(new AppError(99, 'bad code'), resolve).code, Code.Internal, 'out-of-range code');
});

test('a percent-encoded socket path as :authority (gRPC C-core / py-spiffe) is served, not a crash', async () => {
  const p = sockPath();
  const fx = await startFixture({ path: p });
  try {
    const { connect, constants } = await import('node:http2');
    const session = connect('http://localhost', { createConnection: () => net.connect({ path: p }) });
    const body = await new Promise<{ status: string | undefined; grpcStatus: string | undefined }>((resolve, reject) => {
      const req = session.request({
        [constants.HTTP2_HEADER_METHOD]: 'POST',
        [constants.HTTP2_HEADER_PATH]: '/SpiffeWorkloadAPI/FetchJWTSVID',
        [constants.HTTP2_HEADER_AUTHORITY]: 'tmp%2Fspire-agent%2Fpublic%2Fapi.sock',
        'content-type': 'application/grpc',
        te: 'trailers',
        'workload.spiffe.io': 'true',
      });
      let status: string | undefined;
      let grpcStatus: string | undefined;
      req.on('response', (h) => {
        status = String(h[':status']);
        if (h['grpc-status'] !== undefined) grpcStatus = String(h['grpc-status']);
      });
      req.on('trailers', (t) => (grpcStatus = String(t['grpc-status'])));
      req.on('data', () => {});
      req.on('close', () => resolve({ status, grpcStatus }));
      req.on('error', reject);
      // an empty JWTSVIDRequest message: flag 0, length 0
      req.end(Buffer.from([0, 0, 0, 0, 0]));
    });
    session.close();
    assert.equal(body.status, '200');
    assert.equal(body.grpcStatus, '0', 'the call succeeded');
  } finally {
    await fx.server.close();
  }
});

test('direct unary: context and request carry their accessors on a prototype; a signal asked for after the call is already aborted', async () => {
  // Own accessors (an object literal's getter) would give each call's object a hidden class of its
  // own in V8's old space, holding the call's state past every scavenge.
  const ownAccessors = (o: object): string[] =>
    Object.entries(Object.getOwnPropertyDescriptors(o))
      .filter(([, d]) => d.get !== undefined || d.set !== undefined)
      .map(([k]) => k);
  let ctxSeen: HandlerContext | undefined;
  let reqSeen: UnaryRequest | undefined;
  let timeLeft: number | undefined;
  let headerInInterceptor: string | null = null;
  const p = sockPath();
  const server = await startGrpcServer({
    listen: { path: p },
    interceptors: [
      (next) => async (req) => {
        if (!req.stream) {
          reqSeen = req;
          headerInInterceptor = req.header.get('x-probe');
        }
        return await next(req);
      },
    ],
    routes: (router) => {
      router.service(Health, {
        check: (_req, ctx) => {
          ctxSeen = ctx;
          timeLeft = ctx.timeoutMs();
          return {
            status:
              ctx.requestHeader.get('x-probe') === 'yes' && !ctx.signal.aborted
                ? HealthCheckResponse_ServingStatus.SERVING
                : HealthCheckResponse_ServingStatus.NOT_SERVING,
          };
        },
      });
    },
  });
  const transport = createUnixGrpcTransport(p);
  try {
    const res = await createClient(Health, transport).check({}, { headers: { 'x-probe': 'yes' }, timeoutMs: 5000 });
    assert.equal(res.status, HealthCheckResponse_ServingStatus.SERVING);
    assert.equal(headerInInterceptor, 'yes');
    assert.ok(ctxSeen !== undefined && reqSeen !== undefined);
    assert.deepEqual(ownAccessors(ctxSeen), []);
    assert.deepEqual(ownAccessors(reqSeen), []);
    assert.ok(timeLeft !== undefined && timeLeft > 0 && timeLeft <= 5000, `timeoutMs() = ${String(timeLeft)}`);
    assert.equal(ctxSeen.signal.aborted, true, 'the call is over');
    assert.ok(reqSeen.signal.aborted);
    assert.equal(ctxSeen.url, 'http://localhost:80/grpc.health.v1.Health/Check');
  } finally {
    transport.close();
    await server.close();
  }
});

test('unknown services and methods: HTTP 200, application/grpc, Unimplemented with grpc-go texts (also with compressed responses)', async () => {
  for (const compressResponses of [false, true]) {
    const p = sockPath();
    const server = await startGrpcServer({
      listen: { path: p },
      compressResponses,
      routes: (r) => {
        r.service(Health, { check: () => ({ status: HealthCheckResponse_ServingStatus.SERVING }) });
      },
    });
    const h2 = http2.connect('http://localhost', { createConnection: () => net.connect(p) });
    const ask = (path: string, ct = 'application/grpc'): Promise<http2.IncomingHttpHeaders> =>
      new Promise((resolve, reject) => {
        const st = h2.request({ ':method': 'POST', ':path': path, 'content-type': ct, te: 'trailers' });
        st.on('response', resolve);
        st.on('error', reject);
        st.resume();
        st.end(Buffer.alloc(5));
      });
    try {
      const cases: Array<[string, string, string?]> = [
        ['/spire.api.server.trustdomain.v1.TrustDomain/ListFederationRelationships', 'unknown service spire.api.server.trustdomain.v1.TrustDomain'],
        ['/grpc.health.v1.Health/NoSuchMethod', 'unknown method NoSuchMethod for service grpc.health.v1.Health'],
        ['/no.such.Service/M', 'unknown service no.such.Service', 'application/grpc+proto'],
        ['/not-a-method', 'malformed method name: "/not-a-method"'],
      ];
      for (const [path, message, ct] of cases) {
        const h = await ask(path, ct);
        assert.equal(h[':status'], 200, path);
        assert.equal(h['content-type'], 'application/grpc', path);
        assert.equal(h['grpc-status'], String(Code.Unimplemented), path);
        assert.equal(decodeURIComponent(String(h['grpc-message'])), message, path);
      }
      // Our own client sees the same status.
      const t = createUnixGrpcTransport(p);
      try {
        await assert.rejects(
          createClient(SpiffeWorkloadAPI, t).fetchJWTSVID({}),
          (e) => e instanceof ConnectError && e.code === Code.Unimplemented && e.rawMessage === 'unknown service SpiffeWorkloadAPI',
        );
        assert.equal((await createClient(Health, t).check({})).status, HealthCheckResponse_ServingStatus.SERVING);
      } finally {
        t.close();
      }
    } finally {
      h2.close();
      await server.close();
    }
  }
});

test('unix listen backlog: 1,000 connections made while the server is busy are all accepted (SPIRE: 4,096)', async () => {
  const p = sockPath();
  const server = await startGrpcServer({
    listen: { path: p },
    routes: (r) => {
      r.service(Health, { check: () => ({ status: HealthCheckResponse_ServingStatus.SERVING }) });
    },
  });
  // Another process connects 1,000 times at once while this one is busy and accepts none.
  const script = `
    const net = require('node:net');
    process.stdin.once('data', () => {
      let ok = 0, failed = 0; const errors = new Set(); const socks = [];
      const done = () => { if (ok + failed === 1000) { for (const s of socks) s.destroy(); process.stdout.write(JSON.stringify({ ok, failed, errors: [...errors] }) + '\\n', () => process.exit(0)); } };
      for (let i = 0; i < 1000; i++) {
        const s = net.connect({ path: process.argv[1] });
        socks.push(s);
        s.once('connect', () => { ok++; done(); });
        s.once('error', (e) => { failed++; errors.add(e.code); done(); });
      }
    });
    console.log('ready');`;
  const child = spawn(process.execPath, ['-e', script, p], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  try {
    await new Promise<void>((resolve) => {
      const on = (): void => {
        if (out.includes('ready')) {
          child.stdout.off('data', on);
          resolve();
        }
      };
      child.stdout.on('data', on);
    });
    child.stdin.write('go\n');
    // Busy: accept nothing for a second (the child's connect() calls land in the backlog).
    const until = Date.now() + 1000;
    while (Date.now() < until) {
      /* busy */
    }
    await new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const r = JSON.parse(out.slice(out.indexOf('{'))) as { ok: number; failed: number; errors: string[] };
    assert.deepEqual(r, { ok: 1000, failed: 0, errors: [] });
  } finally {
    child.kill();
    await server.close({ graceMs: 100 });
  }
});
