// The authority layer in front of node:http2 on a Unix socket, driven by a raw HTTP/2 client
// (node:http2's own client cannot send a `/` in `:authority` either) against a real server.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FLAG, FRAME, RawH2Client, frame } from '../testing/raw-h2-client.ts';
import { acceptAnyAuthority, acceptedSocketOf } from './authority-layer.ts';
import { isValidAuthority } from './authority-rewrite.ts';
import { bindGrpcServer } from './grpc-server.ts';
import type { EncodeField } from './hpack.ts';
import { eventually } from '@ztwim/testkit';

interface Seen {
  headers: Record<string, string>;
  /** Whether the session's socket is the accepted net.Socket itself (the fast path). */
  raw: boolean;
  /** Whether the accepted Unix socket still has its fd (for SO_PEERCRED). */
  fd: boolean;
}

function hasFd(s: net.Socket | undefined): boolean {
  const handle = (s as unknown as { _handle?: { fd?: unknown } } | undefined)?._handle;
  return typeof handle?.fd === 'number' && handle.fd >= 0;
}

// As long as the layer waited before it took its timeout from the guard (1 s): a shorter one lets a
// loaded machine hand connections over before their first request arrives.
const DECISION_MS = 1000;

/** A server answering each request with the headers nghttp2 decoded, as JSON. */
async function echoServer(socketPath: string, layer: 'bind' | 'none'): Promise<{ server: http2.Http2Server; sessions: http2.ServerHttp2Session[] }> {
  const server = http2.createServer({});
  const sessions: http2.ServerHttp2Session[] = [];
  server.on('session', (s: http2.ServerHttp2Session) => sessions.push(s));
  server.on('stream', (stream, headers) => {
    const session = stream.session!;
    const accepted = acceptedSocketOf(session);
    const seen: Seen = {
      headers: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, String(v)])),
      raw: hasFd(session.socket as unknown as net.Socket),
      fd: hasFd(accepted),
    };
    stream.respond({ ':status': 200 });
    stream.end(JSON.stringify(seen));
  });
  if (layer === 'bind') {
    // Installed first with a short decision timeout (bindGrpcServer then finds it installed).
    acceptAnyAuthority(server, { decisionTimeoutMs: DECISION_MS });
    await bindGrpcServer(server, { path: socketPath });
  } else await new Promise<void>((r) => server.listen(socketPath, r));
  return { server, sessions };
}

const REQUEST: readonly EncodeField[] = [
  { name: ':method', value: 'POST', kind: 'indexed' },
  { name: ':scheme', value: 'http', kind: 'indexed' },
  { name: ':path', value: '/pkg.Service/Method' },
  { name: 'content-type', value: 'application/grpc' },
];

function request(authority: EncodeField | undefined, extra: readonly EncodeField[] = []): EncodeField[] {
  return authority === undefined ? [...REQUEST, ...extra] : [authority, ...REQUEST, ...extra];
}

function seenOf(body: Buffer): Seen {
  return JSON.parse(body.toString()) as Seen;
}

// Each authority shape seen in the wild, and what the server must see.
const SHAPES: readonly { name: string; value: string | undefined; seen: string }[] = [
  { name: 'empty', value: '', seen: 'localhost' },
  { name: 'localhost', value: 'localhost', seen: 'localhost' },
  { name: 'socket path (grpc-java)', value: '/tmp/spire-agent/public/api.sock', seen: 'localhost' },
  { name: 'percent-encoded path (grpc C-core)', value: 'tmp%2Fspire-agent%2Fpublic%2Fapi.sock', seen: 'tmp%2Fspire-agent%2Fpublic%2Fapi.sock' },
  { name: 'absent', value: undefined, seen: 'localhost' },
];

describe('authority layer (Unix socket, raw HTTP/2 client)', () => {
  let dir: string;
  let socketPath: string;
  let srv: Awaited<ReturnType<typeof echoServer>>;
  const clients: RawH2Client[] = [];
  const connect = async (p = socketPath): Promise<RawH2Client> => {
    const c = await RawH2Client.connect(p);
    clients.push(c);
    return c;
  };

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ztwim-authority-'));
    socketPath = path.join(dir, 'api.sock');
    srv = await echoServer(socketPath, 'bind');
  });
  after(async () => {
    for (const c of clients) c.close();
    for (const s of srv.sessions) s.destroy();
    await new Promise((r) => srv.server.close(r));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  for (const shape of SHAPES) {
    for (const form of ['literal', 'huffman+incremental', 'never-indexed'] as const) {
      it(`${shape.name} :authority (${form}) reaches the server`, async () => {
        const c = await connect();
        const authority: EncodeField | undefined =
          shape.value === undefined
            ? undefined
            : {
                name: ':authority',
                value: shape.value,
                kind: form === 'literal' ? 'without-indexing' : form === 'never-indexed' ? 'never-indexed' : 'incremental',
                huffman: form === 'huffman+incremental',
              };
        const r = await c.request(request(authority));
        assert.equal(r.reset, undefined, `stream reset with code ${r.reset}`);
        assert.equal(r.headers.get(':status'), '200');
        const seen = seenOf(r.data);
        assert.equal(seen.headers[':authority'], shape.seen);
        assert.equal(seen.headers[':path'], '/pkg.Service/Method');
        // Only connections that need a rewrite leave the fast path.
        const rewritten = shape.value === undefined || !isValidAuthority(Buffer.from(shape.value));
        assert.equal(rewritten, shape.seen !== shape.value);
        assert.equal(seen.raw, !rewritten);
        assert.ok(seen.fd, 'the accepted Unix socket keeps its fd');
      });
    }
  }

  it('keeps nghttp2 HPACK state in step over many streams: indexed refs, huffman, eviction, size updates', async () => {
    const c = await connect();
    const paths = ['/a/b.sock', '/tmp/spire-agent/public/api.sock', '/x', '/var/run/\u00fc.sock', 'ok.example'];
    const pending: Promise<void>[] = [];
    let indexedRefs = 0;
    for (let i = 0; i < 300; i++) {
      const value = Buffer.from(paths[i % paths.length]!, 'utf8');
      // Bad authorities enter the table (incremental); whenever the client's table still holds
      // the value it is sent as an indexed reference. Custom headers of changing size force
      // evictions; size updates shrink and regrow the table.
      let authority: EncodeField;
      if (i % 3 === 2 && c.encoder.indexOf(':authority', value) !== undefined) {
        authority = { name: ':authority', value, kind: 'indexed' }; // first in its block: still there
        indexedRefs++;
      } else {
        authority = { name: ':authority', value, kind: i % 5 === 0 ? 'without-indexing' : i % 7 === 0 ? 'never-indexed' : 'incremental', huffman: i % 2 === 0 };
      }
      const custom = `${i}-${'v'.repeat(i % 90)}`;
      const extra: EncodeField[] = [
        { name: `x-n${i % 7}`, value: custom, kind: 'incremental', huffman: i % 4 < 2, indexName: i % 2 === 0 },
        { name: 'x-stable', value: 'same', kind: 'indexed-or-incremental' },
      ];
      const sizeUpdates = i === 100 ? [0, 512] : i === 200 ? [4096] : [];
      const want = { ':authority': isValidAuthority(value) ? value.toString('latin1') : 'localhost', [`x-n${i % 7}`]: custom, 'x-stable': 'same' };
      pending.push(
        c.request(request(authority, extra), { sizeUpdates }).then((r) => {
          assert.equal(r.reset, undefined, `stream of request ${i} reset with code ${r.reset}`);
          const seen = seenOf(r.data);
          for (const [k, v] of Object.entries(want)) assert.equal(seen.headers[k], v, `request ${i}: ${k}`);
        }),
      );
    }
    await Promise.all(pending);
    assert.ok(indexedRefs > 50, `only ${indexedRefs} indexed references`);
    assert.equal(c.goaway, undefined);
  });

  it('refers to bad authorities already in the table by index, and sees the fixed value', async () => {
    const c = await connect();
    const bad = '/run/spire/sockets/agent.sock';
    const first = await c.request(request({ name: ':authority', value: bad, kind: 'incremental', huffman: true }));
    assert.equal(seenOf(first.data).headers[':authority'], 'localhost');
    for (let i = 0; i < 5; i++) {
      const r = await c.request(request({ name: ':authority', value: bad, kind: 'indexed' }));
      assert.equal(r.reset, undefined);
      assert.equal(seenOf(r.data).headers[':authority'], 'localhost');
    }
    // A literal whose name is the dynamic entry's name (indexed name, new value).
    const r = await c.request(request({ name: ':authority', value: '/other', kind: 'incremental' }));
    assert.equal(seenOf(r.data).headers[':authority'], 'localhost');
    const good = await c.request(request({ name: ':authority', value: 'good.example', kind: 'incremental', huffman: true }));
    assert.equal(seenOf(good.data).headers[':authority'], 'good.example');
  });

  it('re-frames padded, prioritised HEADERS with CONTINUATION frames and a block larger than one frame', async () => {
    const c = await connect();
    const big = 'b'.repeat(20_000);
    for (const opts of [{ fragments: 3, padding: 7, priority: true }, { fragments: 1, padding: 200 }, { fragments: 5 }]) {
      const r = await c.request(
        request({ name: ':authority', value: '/a/socket', kind: 'incremental', huffman: true }, [{ name: 'x-big', value: big, huffman: true }]),
        opts,
      );
      assert.equal(r.reset, undefined, JSON.stringify(opts));
      const seen = seenOf(r.data);
      assert.equal(seen.headers[':authority'], 'localhost');
      assert.equal(seen.headers['x-big'], big);
    }
    assert.equal(c.goaway, undefined);
  });

  it('passes trailers (a second HEADERS on a stream) through the same HPACK state', async () => {
    const c = await connect();
    const { id, result } = c.openStream();
    c.write(c.headersFrames(id, request({ name: ':authority', value: '/s.sock', kind: 'incremental' }), {}, 0));
    c.write(frame(FRAME.DATA, 0, id, Buffer.from([0, 0, 0, 0, 0])));
    c.write(c.headersFrames(id, [{ name: 'x-trailer', value: '/not/an/authority', kind: 'incremental', huffman: true }], {}, FLAG.END_STREAM));
    const first = await result;
    assert.equal(first.reset, undefined);
    assert.equal(seenOf(first.data).headers[':authority'], 'localhost');
    const r = await c.request(
      request({ name: ':authority', value: '/s.sock', kind: 'indexed' }, [{ name: 'x-trailer', value: '/not/an/authority', kind: 'indexed' }]),
    );
    assert.equal(r.reset, undefined);
    const seen = seenOf(r.data);
    assert.equal(seen.headers[':authority'], 'localhost');
    assert.equal(seen.headers['x-trailer'], '/not/an/authority');
  });

  it('hands a connection with no request yet to nghttp2 after the decision timeout (PING answered)', async () => {
    const c = await connect();
    c.ping();
    await eventually('the PING ACK', () => c.pingAcks > 0, { timeoutMs: 2000 });
    assert.equal(c.pingAcks, 1);
    // Our empty SETTINGS, then nghttp2's own.
    assert.equal(c.serverSettingsFrames, 2);
    const r = await c.request(request({ name: ':authority', value: 'localhost' }));
    assert.equal(seenOf(r.data).headers[':authority'], 'localhost');
  });

  it('lets nghttp2 refuse what is not HTTP/2 (GOAWAY, connection closed)', async () => {
    const s = net.connect(socketPath);
    let got = Buffer.alloc(0);
    s.on('data', (d: Buffer) => (got = Buffer.concat([got, d])));
    s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await new Promise((r) => s.on('close', r));
    // nghttp2's SETTINGS then GOAWAY (type 7); our empty SETTINGS is not sent (no preface).
    assert.equal(got[3], FRAME.SETTINGS);
    assert.ok(got.length > 9 + got.readUIntBE(0, 3) && got[9 + got.readUIntBE(0, 3) + 3] === FRAME.GOAWAY, got.toString('hex'));
  });

  it('hands a connection stalled mid-frame to nghttp2 after the decision timeout, bytes intact', async () => {
    const c = await connect();
    // Our SETTINGS first, so the client's ACK of it is not written into the middle of the frame.
    await eventually("the layer's SETTINGS", () => c.serverSettingsFrames > 0, { timeoutMs: 1000 });
    const { id, result } = c.openStream();
    const bytes = c.headersFrames(id, request({ name: ':authority', value: 'localhost', kind: 'incremental', huffman: true }), {}, FLAG.END_STREAM);
    c.holdAcks = true; // no ACK of nghttp2's SETTINGS inside the split frame
    c.write(bytes.subarray(0, 20));
    // Past the layer's decision timeout it hands the connection to nghttp2, which sends its SETTINGS.
    await eventually('the hand-off to nghttp2 (its SETTINGS)', () => c.serverSettingsFrames === 2, { timeoutMs: DECISION_MS + 5000 });
    c.write(bytes.subarray(20));
    c.releaseAcks();
    const r = await result;
    assert.equal(seenOf(r.data).headers[':authority'], 'localhost');
    assert.equal(seenOf(r.data).raw, true);
  });

  it("serves a client whose ACK of the layer's SETTINGS comes after the decision timeout", async () => {
    // A busy agent (or a starved client) can take longer than the decision timeout to see the ACK
    // of the layer's own SETTINGS. Handed to nghttp2 with that ACK still to come, nghttp2 would
    // take it for the ACK of its own SETTINGS and refuse the real one ("SETTINGS: unexpected ACK":
    // GOAWAY, the client's call fails).
    const c = await connect();
    c.holdAcks = true;
    // Past the layer's decision timeout: the layer's SETTINGS, then nghttp2's once it takes over.
    await eventually("the layer's SETTINGS, then nghttp2's", () => c.serverSettingsFrames === 2, { timeoutMs: DECISION_MS + 5000 });
    c.releaseAcks();
    const r = await c.request(request({ name: ':authority', value: 'localhost' }));
    assert.equal(c.goaway, undefined, `GOAWAY ${JSON.stringify(c.goaway)}`);
    assert.equal(r.reset, undefined);
    assert.equal(seenOf(r.data).headers[':authority'], 'localhost');
    const r2 = await c.request(request({ name: ':authority', value: 'localhost' }));
    assert.equal(seenOf(r2.data).headers[':authority'], 'localhost');
  });

  it('serves node:http2 clients on the fast path', async () => {
    const client = http2.connect('http://localhost', { createConnection: () => net.connect(socketPath) });
    try {
      for (let i = 0; i < 3; i++) {
        const body = await new Promise<string>((resolve, reject) => {
          const req = client.request({ ':method': 'POST', ':path': '/p', 'x-i': String(i) });
          let data = '';
          req.on('data', (d: Buffer) => (data += d.toString()));
          req.on('end', () => resolve(data));
          req.on('error', reject);
          req.end();
        });
        const seen = JSON.parse(body) as Seen;
        assert.equal(seen.headers[':authority'], 'localhost:80');
        assert.equal(seen.raw, true);
      }
    } finally {
      client.close();
    }
  });
});

describe('without the layer (the defect it fixes)', () => {
  it('nghttp2 resets a stream whose :authority has a slash', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ztwim-authority-'));
    const socketPath = path.join(dir, 'api.sock');
    const { server, sessions } = await echoServer(socketPath, 'none');
    try {
      const c = await RawH2Client.connect(socketPath);
      const r = await c.request(request({ name: ':authority', value: '/tmp/spire-agent/public/api.sock' }));
      assert.equal(r.reset, http2.constants.NGHTTP2_PROTOCOL_ERROR);
      c.close();
    } finally {
      for (const s of sessions) s.destroy();
      await new Promise((r) => server.close(r));
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('acceptAnyAuthority', () => {
  it('calls onAccept at accept, before the session exists, and is installed once per server', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ztwim-authority-'));
    const socketPath = path.join(dir, 'api.sock');
    const server = http2.createServer({});
    const accepted: net.Socket[] = [];
    let sessionsAtAccept = -1;
    let sessions = 0;
    server.on('session', () => sessions++);
    acceptAnyAuthority(server, {
      onAccept: (s) => {
        accepted.push(s);
        sessionsAtAccept = sessions;
      },
    });
    server.on('stream', (stream) => {
      stream.respond({ ':status': 200 });
      stream.end('{"headers":{}}');
    });
    await bindGrpcServer(server, { path: socketPath }); // installs again: must not double the layer
    try {
      const c = await RawH2Client.connect(socketPath);
      const r = await c.request(request({ name: ':authority', value: '/p' }));
      assert.equal(r.headers.get(':status'), '200');
      assert.equal(accepted.length, 1);
      assert.equal(sessionsAtAccept, 0);
      assert.equal(sessions, 1);
      c.close();
    } finally {
      await new Promise((r) => {
        server.close(r);
      });
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
