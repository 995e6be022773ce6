// Hostile connections on both kinds of endpoint (Unix socket; TCP + TLS): each class of bad
// input must leave the server holding no file descriptor for it, and a well-formed client beside
// the attackers must keep working. Timeouts are injected short; the defaults are in
// connection-guard.ts.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import {
  closedPromise,
  connectRaw,
  grpcRequestHeaders,
  h2Frame,
  h2Hello,
  holdsFor,
  hostile,
  openFds,
  trickle,
  waitUntil,
  FRAME,
  type RawTarget,
} from '@ztwim/testkit';
import { Health, HealthCheckResponse_ServingStatus } from '../gen/grpc/health/v1/health_pb.ts';
import { startGrpcServer, type GrpcServer } from './grpc-server.ts';
import type { ConnectionLimits, GuardCloseReason } from './connection-guard.ts';
import { FRAME as RAW_FRAME, frame, RawH2Client } from '../testing/raw-h2-client.ts';
import { issue, type Issued } from './test-pki.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ztwim-guard-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
let n = 0;

const LIMITS = { firstRequestMs: 300, probeIntervalMs: 500 };
/** Far longer than any injected bound: a connection still open after this was kept. */
const KEPT_MS = 3000;

let pki: { ca: Issued; server: Issued } | undefined;
async function serverPki(): Promise<{ ca: Issued; server: Issued }> {
  if (pki === undefined) {
    const ca = await issue('CN=guard ca', { isCa: true });
    pki = { ca, server: await issue('CN=server', { ca, sans: [{ type: 'dns', value: 'localhost' }] }) };
  }
  return pki;
}

type Kind = 'unix' | 'tls';

interface Endpoint {
  server: GrpcServer;
  target: RawTarget;
  closed: GuardCloseReason[];
  /** A socket speaking h2 the way this endpoint expects (TLS with ALPN h2 and no client certificate, or plain). */
  connect(): Promise<net.Socket>;
  /** A well-formed HTTP/2 client session (it answers the server's pings, as every gRPC client does). */
  h2(): http2.ClientHttp2Session;
}

/** Health/Check over a client session; resolves to the grpc-status. */
function healthCheck(h2s: http2.ClientHttp2Session): Promise<string> {
  return new Promise((resolve, reject) => {
    const st = h2s.request({ ':method': 'POST', ':path': '/grpc.health.v1.Health/Check', 'content-type': 'application/grpc', te: 'trailers' });
    st.on('response', (h) => {
      if (h['grpc-status'] !== undefined) resolve(String(h['grpc-status']));
    });
    st.on('trailers', (t) => resolve(String(t['grpc-status'])));
    st.on('error', reject);
    st.resume();
    st.end(Buffer.alloc(5));
  });
}

async function endpoint(kind: Kind, limits: ConnectionLimits = LIMITS): Promise<Endpoint> {
  const closed: GuardCloseReason[] = [];
  const routes = (r: Parameters<Parameters<typeof startGrpcServer>[0]['routes']>[0]): void => {
    r.service(Health, {
      check: () => ({ status: HealthCheckResponse_ServingStatus.SERVING }),
      // A server stream that stays open after its first message until the client cancels it.
      async *watch(_req, ctx) {
        yield { status: HealthCheckResponse_ServingStatus.SERVING };
        await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
      },
    });
  };
  const common = { routes, limits, onConnectionClosed: (r: GuardCloseReason) => closed.push(r) };
  if (kind === 'unix') {
    const p = path.join(tmp, `g${n++}.sock`);
    const server = await startGrpcServer({ ...common, listen: { path: p } });
    return {
      server,
      target: { path: p },
      closed,
      connect: () => connectRaw({ path: p }),
      h2: () => http2.connect('http://localhost', { createConnection: () => net.connect({ path: p }) }),
    };
  }
  const { ca, server: cert } = await serverPki();
  // The agent port's TLS: a client certificate requested, not required (SPIRE's VerifyClientCertIfGiven).
  const server = await startGrpcServer({
    ...common,
    listen: { host: '127.0.0.1', port: 0, tls: { key: cert.keyPem, cert: cert.certPem, ca: [ca.certPem], requestCert: true, rejectUnauthorized: false } },
  });
  const a = server.address;
  assert.ok(a.kind === 'tcp');
  const target = { host: a.host, port: a.port };
  return {
    server,
    target,
    closed,
    connect: () =>
      new Promise((resolve, reject) => {
        const s = tls.connect({ ...target, ca: [ca.certPem], ALPNProtocols: ['h2'], servername: 'localhost' }, () => resolve(s));
        s.once('error', reject);
      }),
    h2: () => http2.connect(`https://localhost:${target.port}`, { ca: [ca.certPem], host: target.host }),
  };
}

/**
 * Runs `attack` on a fresh connection and checks the server closes it: the client sees its close
 * (or, for a client that hangs up itself, nothing is left), and the process holds as many fds
 * as before the connection was made.
 */
async function expectReleased(ep: Endpoint, attack: (s: net.Socket) => Promise<void> | void): Promise<void> {
  const before = openFds();
  const s = await ep.connect();
  const gone = closedPromise(s);
  await attack(s);
  await waitUntil(() => s.closed, KEPT_MS, 'the server closed the hostile connection');
  await gone;
  await waitUntil(() => openFds() <= before, KEPT_MS, `the process holds no fd for it (before ${before}, now ${openFds()})`);
}

for (const kind of ['unix', 'tls'] as const) {
  test(`${kind}: preface then a frame of the wrong length: closed, no fd kept`, async () => {
    const ep = await endpoint(kind);
    try {
      await expectReleased(ep, (s) => {
        s.write(hostile.badFrameLength());
      });
    } finally {
      await ep.server.close();
    }
  });

  test(`${kind}: preface then an undecodable HPACK block: closed, no fd kept`, async () => {
    const ep = await endpoint(kind);
    try {
      await expectReleased(ep, (s) => {
        s.write(hostile.badHpack());
      });
    } finally {
      await ep.server.close();
    }
  });

  test(`${kind}: a malformed frame after a completed call, then the client hangs up: no fd kept`, async () => {
    const ep = await endpoint(kind);
    try {
      const before = openFds();
      const s = await ep.connect();
      const gone = closedPromise(s);
      let got = 0;
      s.on('data', (d: Buffer) => {
        got += d.length;
      });
      // With the ACK of the server's SETTINGS, as every client sends it (on a Unix socket the
      // authority layer's own SETTINGS comes first and that ACK is taken for it).
      s.write(Buffer.concat([h2Hello(), h2Frame(FRAME.SETTINGS, 1, 0), grpcRequestHeaders(1, '/grpc.health.v1.Health/Check')]));
      // SETTINGS, SETTINGS ack, the call's trailers-only answer.
      await waitUntil(() => got > 18 + 9, KEPT_MS, 'the call was answered');
      s.write(h2Frame(FRAME.SETTINGS, 0, 0, Buffer.from([9, 9, 9])));
      s.end();
      s.destroy();
      await gone;
      await waitUntil(() => openFds() <= before, KEPT_MS, `the process holds no fd for it (before ${before}, now ${openFds()})`);
      assert.ok(ep.closed.includes('ping_unanswered'), `closed by the liveness round (${ep.closed.join(',')})`);
    } finally {
      await ep.server.close();
    }
  });

  test(`${kind}: a client that hangs up mid-frame leaves no fd`, async () => {
    const ep = await endpoint(kind);
    try {
      await expectReleased(ep, (s) => {
        s.write(hostile.halfFrame());
        s.destroy();
      });
    } finally {
      await ep.server.close();
    }
  });

  test(`${kind}: slowloris, one byte at a time: closed once the first-request time is up`, async () => {
    const ep = await endpoint(kind);
    try {
      const bytes = Buffer.concat([h2Hello(), grpcRequestHeaders(1, '/grpc.health.v1.Health/Check')]);
      // 20 ms a byte: the request would be complete after ~2.4 s, long after the 300 ms bound.
      await expectReleased(ep, (s) => {
        void trickle(s, bytes, 20);
      });
      assert.ok(ep.closed.includes('no_request_in_time'));
    } finally {
      await ep.server.close();
    }
  });

  test(`${kind}: silence after connecting: closed once the first-request time is up`, async () => {
    const ep = await endpoint(kind);
    try {
      await expectReleased(ep, () => {});
    } finally {
      await ep.server.close();
    }
  });

  test(`${kind}: a well-formed client beside the attackers keeps working, on the same connection through the pings`, async () => {
    const ep = await endpoint(kind);
    const good = ep.h2();
    let goodClosed = false;
    good.on('close', () => {
      goodClosed = true;
    });
    good.on('goaway', () => {
      goodClosed = true;
    });
    good.on('error', () => {});
    try {
      assert.equal(await healthCheck(good), '0');
      const attackers: net.Socket[] = [];
      for (let i = 0; i < 30; i++) {
        const s = await ep.connect();
        void closedPromise(s);
        s.write([hostile.badFrameLength, hostile.badHpack, hostile.halfFrame][i % 3]!());
        attackers.push(s);
      }
      // The good client keeps being answered, on its one connection, while the first-request
      // bound (300 ms) and more than two liveness rounds (500 ms each) pass: 1400 ms covers both.
      await holdsFor('the well-formed client is answered on its connection', async () => !goodClosed && (await healthCheck(good)) === '0', {
        forMs: 1400,
        intervalMs: 100,
      });
      await waitUntil(() => attackers.every((s) => s.closed), KEPT_MS, 'every attacker was closed');
      assert.equal(await healthCheck(good), '0');
      assert.equal(goodClosed, false, 'the well-formed connection was never closed');
    } finally {
      good.destroy();
      await ep.server.close();
    }
  });
}

/**
 * One one-shot call as go-spiffe's FetchX509SVID makes it: open a server stream, take the first
 * message, cancel the stream (RST_STREAM CANCEL). Resolves 'ok', or what went wrong.
 */
const REFUSED = 'Stream closed with error code NGHTTP2_REFUSED_STREAM';
function oneShot(h2s: http2.ClientHttp2Session): Promise<string> {
  return new Promise((resolve) => {
    const st = h2s.request({ ':method': 'POST', ':path': '/grpc.health.v1.Health/Watch', 'content-type': 'application/grpc', te: 'trailers' });
    st.on('data', () => {
      st.close(http2.constants.NGHTTP2_CANCEL);
      resolve('ok');
    });
    st.on('error', (e: Error) => resolve(e.message));
    st.on('close', () => resolve(`stream closed before a message (HTTP/2 code ${st.rstCode})`));
    st.end(Buffer.alloc(5));
  });
}

for (const kind of ['unix', 'tls'] as const) {
  test(`${kind}: one-shot streaming calls in a fast loop: drained with GOAWAY(NO_ERROR) once the reset budget runs low, no call fails, a new connection goes on`, async () => {
    // A small bucket, so that the loop gets there in a few hundred calls at any load; the same
    // arithmetic with nghttp2's own numbers is reset-budget.test.ts, and the real limit is met by
    // test/interop/agent-oneshot-calls.test.ts.
    const ep = await endpoint(kind, { ...LIMITS, streamResets: { burst: 200, ratePerSecond: 33, lowWater: 20 } });
    const goaways: { code: number; last: number }[] = [];
    const sessions: http2.ClientHttp2Session[] = [];
    const open = (): http2.ClientHttp2Session => {
      const s = ep.h2();
      s.on('goaway', (code: number, last: number) => goaways.push({ code, last }));
      s.on('error', () => undefined);
      sessions.push(s);
      return s;
    };
    try {
      let h2s = open();
      let calls = 0;
      let refusedAfterGoaway = 0;
      // Until the second connection has made a call (a fast loop needs ~200 on the first).
      while (sessions.length < 2 || calls < 400) {
        // A gRPC client dials again for the next call after a GOAWAY.
        if (goaways.length >= sessions.length || h2s.closed || h2s.destroyed) h2s = open();
        let r = await oneShot(h2s);
        if (r === REFUSED && goaways.length > 0) {
          // The call crossed the GOAWAY on the wire (above its last stream id): gRPC clients send
          // it again on a new connection, and so does this loop.
          refusedAfterGoaway++;
          h2s = open();
          r = await oneShot(h2s);
        }
        assert.equal(r, 'ok', `call ${calls} on connection ${sessions.length}`);
        calls++;
        assert.ok(calls < 20_000, 'the server never drained the connection');
      }
      assert.ok(goaways.length >= 1, 'a GOAWAY');
      for (const g of goaways) assert.equal(g.code, http2.constants.NGHTTP2_NO_ERROR, JSON.stringify(goaways));
      assert.ok(refusedAfterGoaway <= goaways.length, `at most the call in flight at each GOAWAY is refused (${refusedAfterGoaway})`);
      assert.ok(ep.closed.every((r) => r === 'stream_resets') && ep.closed.length === goaways.length, ep.closed.join());
      // The drained connection closes by itself once its streams are done.
      await waitUntil(() => sessions[0]?.closed === true || sessions[0]?.destroyed === true, KEPT_MS, 'the drained connection to close');
    } finally {
      for (const s of sessions) s.destroy();
      await ep.server.close();
    }
  });
}

test('unix: a rapid-reset flood (thousands of streams opened and reset at once) still loses its connection; the server serves others', async () => {
  // nghttp2's own numbers: the flood outruns anything the guard hears of, and nghttp2 ends it.
  const ep = await endpoint('unix');
  try {
    assert.ok('path' in ep.target);
    const c = await RawH2Client.connect(ep.target.path);
    const headers = [
      { name: ':method', value: 'POST' },
      { name: ':scheme', value: 'http' },
      { name: ':path', value: '/grpc.health.v1.Health/Watch' },
      { name: ':authority', value: 'localhost' },
      { name: 'content-type', value: 'application/grpc' },
      { name: 'te', value: 'trailers' },
    ];
    const cancel = Buffer.alloc(4);
    cancel.writeUInt32BE(http2.constants.NGHTTP2_CANCEL);
    const flood: Buffer[] = [];
    for (let i = 0; i < 3000; i++) {
      const { id } = c.openStream();
      flood.push(c.headersFrames(id, headers, {}, 0), frame(RAW_FRAME.RST_STREAM, 0, id, cancel));
    }
    c.write(Buffer.concat(flood));
    await waitUntil(() => c.closed, KEPT_MS, 'the server to close the flooding connection');
    assert.ok(c.goaway !== undefined, 'told with a GOAWAY');
    // Far below the 3,000 streams it opened: the rest were never processed.
    assert.ok(c.goaway.lastStreamId < 2 * 3000 - 1, JSON.stringify(c.goaway));
    const ok = ep.h2();
    try {
      assert.equal(await healthCheck(ok), '0');
    } finally {
      ok.destroy();
    }
  } finally {
    await ep.server.close();
  }
});

test('tls: a TCP client that never starts the TLS handshake, or sends garbage instead, is closed', async () => {
  const ep = await endpoint('tls');
  try {
    for (const bytes of [undefined, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')]) {
      const before = openFds();
      const s = await connectRaw(ep.target);
      const gone = closedPromise(s);
      if (bytes !== undefined) s.write(bytes);
      await waitUntil(() => s.closed, KEPT_MS, 'the server closed the connection');
      await gone;
      await waitUntil(() => openFds() <= before, KEPT_MS, 'no fd kept');
    }
    // TLS done, no client certificate, then garbage instead of the HTTP/2 preface.
    await expectReleased(ep, (s) => {
      s.write('not http/2 at all\r\n\r\n');
    });
  } finally {
    await ep.server.close();
  }
});
