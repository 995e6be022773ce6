// A peer that accepts connections and never answers (a server stopped with SIGSTOP, a hung
// process): the transport's keepalive PINGs and connect timeout turn it into Unavailable instead
// of a call that waits for its deadline.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { Health } from '../gen/grpc/health/v1/health_pb.ts';
import { createTcpGrpcTransport, type TcpGrpcTransportOptions } from './client-transport.ts';
import { callFailure } from '../testing/call-failure.ts';

/** A TCP listener on 127.0.0.1:0 that holds every connection open and never writes a byte. */
async function hungPeer(t: { after: (fn: () => void) => void }): Promise<number> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
    s.resume();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return (server.address() as net.AddressInfo).port;
}

// The call deadline (10 s) is far longer than the keepalive here and shorter than connect-node's
// default PING timeout (15 s): a DeadlineExceeded would mean no
// keepalive; the transport must fail the call Unavailable (a fail-over error) on its own.
const DEADLINE_MS = 10_000;

async function callHung(o: Omit<TcpGrpcTransportOptions, 'host' | 'port'>, port: number): Promise<ConnectError> {
  const transport = createTcpGrpcTransport({ host: '127.0.0.1', port, ...o });
  try {
    return await callFailure(createClient(Health, transport).check({}, { timeoutMs: DEADLINE_MS }));
  } finally {
    transport.close();
  }
}

test('h2c: a call open on a peer that never answers fails Unavailable when its keepalive PING goes unanswered', async (t) => {
  const port = await hungPeer(t);
  const e = await callHung({ pingIntervalMs: 50, pingTimeoutMs: 50 }, port);
  assert.equal(Code[e.code], 'Unavailable', e.message);
  assert.match(e.rawMessage, /PING timed out/);
});

test('TLS: a connection whose handshake is never answered fails Unavailable after connectTimeoutMs', async (t) => {
  const port = await hungPeer(t);
  const e = await callHung({ tls: { rejectUnauthorized: false }, connectTimeoutMs: 100 }, port);
  assert.equal(Code[e.code], 'Unavailable', e.message);
  assert.match(e.rawMessage, /not established within 100 ms/);
});

test('h2c: connectTimeoutMs covers the TCP connect too and leaves a connected peer alone', async (t) => {
  // A connected h2c socket is "established" at once: the timeout does not fire, the keepalive does.
  const port = await hungPeer(t);
  const e = await callHung({ connectTimeoutMs: 100, pingIntervalMs: 300, pingTimeoutMs: 50 }, port);
  assert.equal(Code[e.code], 'Unavailable', e.message);
  assert.match(e.rawMessage, /PING timed out/);
});

test('h2c: a call on an idle connection whose server closes it under the keepalive check PING fails Unavailable, not at its deadline', async (t) => {
  // A real HTTP/2 server that answers the first call, then drops the TCP connection (FIN, no
  // GOAWAY, no error) when a PING arrives: the PING connect-node sends to check an idle
  // connection before the next call is canceled without an 'error'.
  const server = http2.createServer();
  server.on('stream', (stream) => {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '12', 'grpc-message': 'not here' }, { endStream: true });
  });
  let calls = 0;
  const sockets = new Set<net.Socket>();
  server.on('connection', (socket: net.Socket) => sockets.add(socket));
  server.on('session', (session) => {
    session.on('stream', () => calls++);
    session.on('ping', () => {
      if (calls > 0) for (const socket of sockets) socket.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => server.close());
  const port = (server.address() as net.AddressInfo).port;
  const transport = createTcpGrpcTransport({ host: '127.0.0.1', port, pingIntervalMs: 50, pingTimeoutMs: 200, connectTimeoutMs: 200 });
  try {
    const health = createClient(Health, transport);
    const first = await callFailure(health.check({}, { timeoutMs: DEADLINE_MS }));
    assert.equal(Code[first.code], 'Unimplemented', first.message);
    // Idle for longer than the PING interval: the next call checks the connection first. The idle
    // time is measured by connect-node's session manager on the real clock (nothing to inject),
    // so this pause is the behaviour under test: three PING intervals of real idleness.
    await new Promise((r) => setTimeout(r, 150));
    server.close();
    const e = await callFailure(health.check({}, { timeoutMs: DEADLINE_MS }));
    assert.notEqual(Code[e.code], 'DeadlineExceeded', e.message);
    assert.equal(Code[e.code], 'Unavailable', e.message);
  } finally {
    transport.close();
  }
});
