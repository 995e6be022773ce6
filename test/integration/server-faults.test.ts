// Bad input on both server endpoints: garbage bytes, an oversized request, a client that hangs
// up mid-handshake, malformed entries. Each gets a clear error and the server keeps serving.
import assert from 'node:assert/strict';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { createClient } from '@connectrpc/connect';
import { createUnixGrpcTransport, EntryService, HealthService, HealthCheckResponse_ServingStatus } from '@ztwim/proto';
import { startZtwimAdminServer, type ZtwimAdminServer } from '../interop/lib/ztwim-server.ts';

function sendGarbage(open: () => import('node:net').Socket, bytes: Buffer): Promise<void> {
  return new Promise((resolve) => {
    const s = open();
    s.on('error', () => resolve());
    s.on('close', () => resolve());
    s.on('connect', () => s.end(bytes));
    s.on('secureConnect', () => s.end(bytes));
    setTimeout(() => s.destroy(), 2000).unref();
  });
}

describe('server faults', () => {
  let srv: ZtwimAdminServer;
  before(async () => {
    srv = await startZtwimAdminServer();
  });
  after(async () => {
    await srv?.stop();
  });

  async function healthy(): Promise<void> {
    const t = createUnixGrpcTransport(srv.socketPath);
    try {
      const r = await createClient(HealthService, t).check({});
      assert.equal(r.status, HealthCheckResponse_ServingStatus.SERVING);
    } finally {
      t.close();
    }
  }

  it('garbage bytes and half-open handshakes on both endpoints do not stop the server', async () => {
    const junk = Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n' + 'x'.repeat(10_000));
    await sendGarbage(() => netConnect({ path: srv.socketPath }), junk);
    await sendGarbage(() => netConnect({ host: '127.0.0.1', port: srv.port }), junk);
    await sendGarbage(
      () => tlsConnect({ host: '127.0.0.1', port: srv.port, rejectUnauthorized: false, ALPNProtocols: ['h2'] }),
      Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n' + '\u0000'.repeat(100)),
    );
    await new Promise<void>((resolve) => {
      const s = netConnect({ host: '127.0.0.1', port: srv.port }, () => {
        s.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0xff]));
        s.destroy();
        resolve();
      });
      s.on('error', () => resolve());
    });
    await healthy();
  });

  it('an oversized request is refused with ResourceExhausted and the server keeps serving', async () => {
    const t = createUnixGrpcTransport(srv.socketPath);
    try {
      const entries = Array.from({ length: 30 }, (_, i) => ({
        spiffeId: { trustDomain: 'example.org', path: `/big/${i}` },
        parentId: { trustDomain: 'example.org', path: '/p' },
        selectors: [{ type: 'unix', value: 'x'.repeat(200_000) }],
      }));
      await assert.rejects(createClient(EntryService, t).batchCreateEntry({ entries }), (e: unknown) =>
        /ResourceExhausted|resource_exhausted|message size|too large/i.test(String(e)),
      );
      const count = await createClient(EntryService, t).countEntries({});
      assert.equal(count.count, 0, 'nothing was stored from the refused request');
    } finally {
      t.close();
    }
    await healthy();
  });

  it('malformed entries get per-item InvalidArgument; valid ones in the same batch are stored', async () => {
    const t = createUnixGrpcTransport(srv.socketPath);
    try {
      const c = createClient(EntryService, t);
      const r = await c.batchCreateEntry({
        entries: [
          {
            spiffeId: { trustDomain: 'example.org', path: '/ok' },
            parentId: { trustDomain: 'example.org', path: '/p' },
            selectors: [{ type: 'unix', value: 'uid:1' }],
          },
          {
            spiffeId: { trustDomain: 'Bad Domain', path: '/x' },
            parentId: { trustDomain: 'example.org', path: '/p' },
            selectors: [{ type: 'unix', value: 'uid:1' }],
          },
          { spiffeId: { trustDomain: 'example.org', path: '/x' }, parentId: { trustDomain: 'example.org', path: '/p' }, selectors: [] },
          { spiffeId: { trustDomain: 'other.org', path: '/x' }, parentId: { trustDomain: 'example.org', path: '/p' }, selectors: [{ type: 'a', value: 'b' }] },
          {
            spiffeId: { trustDomain: 'example.org', path: '/spire/x' },
            parentId: { trustDomain: 'example.org', path: '/p' },
            selectors: [{ type: 'a', value: 'b' }],
          },
        ],
      });
      assert.deepEqual(
        r.results.map((x) => x.status?.code),
        [0, 3, 3, 3, 3],
      );
      assert.match(r.results[1]?.status?.message ?? '', /failed to convert entry: invalid spiffe ID/);
      assert.match(r.results[2]?.status?.message ?? '', /selector list is empty/);
      assert.match(r.results[3]?.status?.message ?? '', /is not a member of trust domain "example.org"/);
      assert.match(r.results[4]?.status?.message ?? '', /reserved namespace/);
      assert.equal((await c.countEntries({})).count, 1);
    } finally {
      t.close();
    }
  });
});
