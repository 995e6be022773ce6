import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Code, ConnectError } from '@connectrpc/connect';
import { create } from '@bufbuild/protobuf';
import { EntrySchema } from '@ztwim/proto';
import { ZtwimError, silentLogger } from '@ztwim/core';
import { FakeClock } from '@ztwim/testkit';
import { serverCallError } from './errors.ts';
import { CALL_TIMEOUT_MS, type ServerClient } from './server-client.ts';
import { ServerPool, isFailoverError, type ServerPoolOptions } from './server-pool.ts';
import { CacheManager } from '../manager/sync.ts';

/** A fake connection: its address, whether it presents the agent's SVID, and whether it was closed. */
interface FakeConn {
  readonly address: string;
  readonly bootstrap: boolean;
  closed: boolean;
}

const refused = (): unknown => serverCallError(new ConnectError('connect ECONNREFUSED', Code.Unavailable));
const reset = (): unknown => {
  const sys = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
  return serverCallError(new ConnectError('read ECONNRESET', Code.Internal, undefined, undefined, sys));
};

function setup(over: Partial<ServerPoolOptions> = {}, dns: Record<string, string[]> = { 'servers.test': ['127.0.0.1', '127.0.0.2', '127.0.0.3'] }) {
  const clock = new FakeClock();
  const conns: FakeConn[] = [];
  const resolved: string[] = [];
  const moves: string[] = [];
  const pool = new ServerPool({
    targets: [{ host: 'servers.test', port: 8081 }],
    connect: (a, bootstrap) => {
      const conn: FakeConn = { address: `${a.host}:${a.port}`, bootstrap, closed: false };
      conns.push(conn);
      return { conn, close: () => void (conn.closed = true) } as unknown as ServerClient;
    },
    resolve: async (host) => {
      resolved.push(host);
      const ips = dns[host];
      if (ips === undefined) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
      return ips;
    },
    clock,
    log: silentLogger(),
    random: () => 0,
    onFailover: (from, to) => moves.push(`${from} -> ${to}`),
    ...over,
  });
  return { clock, conns, resolved, moves, pool, dns };
}

const addressOf = (c: ServerClient): string => (c as unknown as { conn: FakeConn }).conn.address;

test('isFailoverError: a dead or refusing server fails over; answers about the request and spent deadlines do not', () => {
  const cases: { name: string; e: unknown; want: boolean }[] = [
    { name: 'Unavailable (refused, server stopping, datastore away)', e: refused(), want: true },
    { name: 'Aborted (connection reset under a unary call)', e: serverCallError(new ConnectError('reset', Code.Aborted)), want: true },
    { name: 'Internal caused by ECONNRESET (stream torn down)', e: reset(), want: true },
    { name: 'Internal from the server', e: serverCallError(new ConnectError('boom', Code.Internal)), want: false },
    { name: 'PermissionDenied', e: serverCallError(new ConnectError('no', Code.PermissionDenied)), want: false },
    { name: 'InvalidArgument', e: serverCallError(new ConnectError('bad', Code.InvalidArgument)), want: false },
    { name: 'DeadlineExceeded', e: serverCallError(new ConnectError('late', Code.DeadlineExceeded)), want: false },
    {
      name: 'Canceled (streams reset with CANCEL when the connection closed)',
      e: serverCallError(new ConnectError('http/2 stream closed with error code 0x8', Code.Canceled)),
      want: true,
    },
    { name: 'a ZtwimError without a gRPC code', e: new ZtwimError('ERR_UNAVAILABLE', 'x'), want: false },
    { name: 'a plain Error', e: new Error('x'), want: false },
  ];
  for (const c of cases) assert.equal(isFailoverError(c.e), c.want, c.name);
});

test('a call the caller canceled is not run again elsewhere, whatever the error', async () => {
  const { pool } = setup();
  const ac = new AbortController();
  let calls = 0;
  await assert.rejects(
    pool.call(
      async () => {
        calls++;
        ac.abort();
        throw serverCallError(new ConnectError('canceled', Code.Canceled));
      },
      { signal: ac.signal },
    ),
    /canceled/,
  );
  assert.equal(calls, 1);
  assert.equal(pool.failovers, 0);
});

test('a DNS name with several A records: the agent connects to one address and stays there', async () => {
  const { pool, conns, resolved } = setup({ random: () => 0.5 });
  const seen: string[] = [];
  for (let i = 0; i < 3; i++) await pool.call(async (c) => void seen.push(addressOf(c)));
  assert.deepEqual(pool.addresses, ['127.0.0.1:8081', '127.0.0.2:8081', '127.0.0.3:8081']);
  assert.deepEqual(seen, ['127.0.0.2:8081', '127.0.0.2:8081', '127.0.0.2:8081'], 'random 0.5 starts on the second of three, one connection');
  assert.equal(conns.length, 1);
  assert.deepEqual(resolved, ['servers.test']);
  assert.equal(pool.serverAddress, '127.0.0.2:8081');
  assert.equal(pool.failovers, 0);
});

test('a call that meets a dead server runs again on the next one, within the same call', async () => {
  const { pool, conns, clock, moves, resolved } = setup();
  const down = new Set(['127.0.0.1:8081']);
  const attempts: string[] = [];
  const out = await pool.call(async (c) => {
    attempts.push(addressOf(c));
    if (down.has(addressOf(c))) throw refused();
    return 'token';
  });
  assert.equal(out, 'token');
  assert.deepEqual(attempts, ['127.0.0.1:8081', '127.0.0.2:8081']);
  assert.deepEqual(moves, ['127.0.0.1:8081 -> 127.0.0.2:8081']);
  assert.equal(pool.failovers, 1);
  assert.equal(pool.serverAddress, '127.0.0.2:8081');
  assert.equal(resolved.length, 2, 'the name is resolved again at the fail-over');
  // The dead server's connection is closed once the calls on it had their deadline.
  assert.equal(conns[0]?.closed, false);
  clock.advance(CALL_TIMEOUT_MS);
  assert.equal(conns[0]?.closed, true);
  assert.equal(conns[1]?.closed, false);
});

test('a connection torn down under a call (reset) fails over too; a PermissionDenied does not', async () => {
  const { pool } = setup();
  let first = true;
  assert.equal(
    await pool.call(async () => {
      if (first) {
        first = false;
        throw reset();
      }
      return 1;
    }),
    1,
  );
  assert.equal(pool.serverAddress, '127.0.0.2:8081');
  const denied = serverCallError(new ConnectError('agent is banned', Code.PermissionDenied));
  let calls = 0;
  await assert.rejects(
    pool.call(async () => {
      calls++;
      throw denied;
    }),
    (e) => e === denied,
  );
  assert.equal(calls, 1, 'not retried elsewhere');
  assert.equal(pool.serverAddress, '127.0.0.2:8081', 'not moved');
});

test('many calls failing on the dead server at once move the agent once, and all succeed on the next server', async () => {
  const { pool, moves } = setup();
  await pool.call(async () => undefined); // connected to .1
  let release: () => void = () => undefined;
  const dies = new Promise<void>((r) => (release = r));
  const calls = Array.from({ length: 20 }, () =>
    pool.call(async (c) => {
      if (addressOf(c) === '127.0.0.1:8081') {
        await dies;
        throw refused();
      }
      return addressOf(c);
    }),
  );
  release();
  const served = await Promise.all(calls);
  assert.deepEqual(new Set(served), new Set(['127.0.0.2:8081']));
  assert.deepEqual(moves, ['127.0.0.1:8081 -> 127.0.0.2:8081']);
});

test('every server down: each is tried, then again after a backoff with the name resolved again; the last error is thrown', async () => {
  const { pool, clock, resolved } = setup({ backoffMs: 200, maxRounds: 2 });
  const attempts: string[] = [];
  const call = pool.call(async (c) => {
    attempts.push(addressOf(c));
    throw refused();
  });
  await clock.waitForTimers(4); // three dead connections retired, and the backoff
  assert.equal(attempts.length, 3, 'one round over the three addresses');
  clock.advance(199);
  assert.equal(attempts.length, 3, 'waits the backoff');
  clock.advance(1);
  await assert.rejects(call, (e) => isFailoverError(e));
  assert.equal(attempts.length, 6, 'a second round, then it gives up');
  assert.ok(resolved.length >= 3, `resolved again between rounds (${resolved.length})`);
});

test('a server that comes back at a new address (DNS changed) is found on the next round', async () => {
  const { pool, clock, dns } = setup({ backoffMs: 100 });
  const attempts: string[] = [];
  const call = pool.call(async (c) => {
    attempts.push(addressOf(c));
    if (addressOf(c) !== '127.0.0.9:8081') throw refused();
    return 'ok';
  });
  await clock.waitForTimers(4); // three dead connections retired, and the backoff
  dns['servers.test'] = ['127.0.0.9'];
  clock.advance(100);
  assert.equal(await call, 'ok');
  assert.deepEqual(attempts, ['127.0.0.1:8081', '127.0.0.2:8081', '127.0.0.3:8081', '127.0.0.9:8081']);
  assert.equal(pool.serverAddress, '127.0.0.9:8081');
});

test("fail-over stays within the call's deadline: each attempt gets the time left, and none starts after it", async () => {
  const { pool, clock } = setup({ backoffMs: 0 });
  const given: number[] = [];
  await assert.rejects(
    pool.call(
      async (_c, o) => {
        given.push(o.timeoutMs);
        clock.advance(400); // each dead server takes 400 ms to fail
        throw refused();
      },
      { timeoutMs: 1000 },
    ),
    (e) => isFailoverError(e),
  );
  assert.deepEqual(given, [1000, 600, 200]);
});

test('a server passed over after failing is skipped while another has not failed', async () => {
  const { pool } = setup();
  const down = new Set(['127.0.0.1:8081', '127.0.0.2:8081']);
  const f = async (c: ServerClient): Promise<string> => {
    if (down.has(addressOf(c))) throw refused();
    return addressOf(c);
  };
  assert.equal(await pool.call(f), '127.0.0.3:8081');
  // .3 dies; .1 and .2 failed a moment ago, .1 came back: the pool moves on in order, past the
  // quarantined ones only while another is left.
  down.delete('127.0.0.1:8081');
  down.add('127.0.0.3:8081');
  assert.equal(await pool.call(f), '127.0.0.1:8081');
});

test('bootstrap calls (node attestation) get a connection of their own, closed after it; a dead server moves the pool', async () => {
  const { pool, conns } = setup();
  const out = await pool.call(
    async (c) => {
      if (addressOf(c) === '127.0.0.1:8081') throw refused();
      return addressOf(c);
    },
    { bootstrap: true },
  );
  assert.equal(out, '127.0.0.2:8081');
  assert.deepEqual(
    conns.map((c) => [c.address, c.bootstrap, c.closed]),
    [
      ['127.0.0.1:8081', true, true],
      ['127.0.0.2:8081', true, true],
    ],
  );
  await pool.call(async () => undefined);
  assert.deepEqual(conns.at(-1), { address: '127.0.0.2:8081', bootstrap: false, closed: false });
});

test('reconnect (a new agent SVID): the next call gets a new connection to the same server; the old one closes after the deadline', async () => {
  const { pool, conns, clock } = setup();
  await pool.call(async () => undefined);
  pool.reconnect();
  await pool.call(async () => undefined);
  assert.deepEqual(
    conns.map((c) => c.address),
    ['127.0.0.1:8081', '127.0.0.1:8081'],
  );
  assert.equal(conns[0]?.closed, false);
  clock.advance(CALL_TIMEOUT_MS);
  assert.equal(conns[0]?.closed, true);
  pool.close();
  assert.equal(conns[1]?.closed, true);
});

test('reportFailure (a stream the caller runs): a dead server moves the pool, a stale or non-fail-over failure does not', async () => {
  const { pool } = setup();
  const a = await pool.client();
  assert.equal(pool.reportFailure(a, serverCallError(new ConnectError('x', Code.PermissionDenied))), false);
  assert.equal(pool.reportFailure(a, refused()), true);
  assert.equal(pool.serverAddress, '127.0.0.2:8081');
  assert.equal(pool.reportFailure(a, refused()), false, 'already moved off it');
});

test('names that do not resolve: the first resolution fails naming the host; later failures keep the known addresses', async () => {
  const bad = setup({}, {});
  await assert.rejects(
    bad.pool.call(async () => 1),
    (e: unknown) =>
      e instanceof ZtwimError && e.code === 'ERR_UNAVAILABLE' && /cannot resolve the server address: servers\.test: getaddrinfo ENOTFOUND/.test(e.message),
  );
  const { pool, dns } = setup();
  await pool.call(async () => undefined);
  delete dns['servers.test'];
  let n = 0;
  assert.equal(
    await pool.call(async () => {
      if (n++ === 0) throw refused();
      return 'ok';
    }),
    'ok',
  );
  assert.equal(pool.serverAddress, '127.0.0.2:8081', 'moved along the addresses resolved before');
});

test('several targets (server_addresses) are resolved and tried in order', async () => {
  const { pool } = setup(
    {
      targets: [
        { host: 'a.test', port: 1 },
        { host: '127.0.0.5', port: 2 },
      ],
    },
    { 'a.test': ['127.0.0.4'], '127.0.0.5': ['127.0.0.5'] },
  );
  const out = await pool.call(async (c) => {
    if (addressOf(c) === '127.0.0.4:1') throw refused();
    return addressOf(c);
  });
  assert.equal(out, '127.0.0.5:2');
});

/** A CacheManager whose calls run on the pool, each connection answered by `fake(its address)`. */
function cacheOnPool(pool: ServerPool, clock: FakeClock, fake: (address: string) => ServerClient): CacheManager {
  return new CacheManager({
    clock,
    logger: silentLogger(),
    syncIntervalMs: 1000,
    server: { call: (fn, policy) => pool.call((c, o) => fn(fake(addressOf(c)), o), policy) },
  });
}

test('CacheManager on a pool: a JWT-SVID asked for while the server in use is dead comes from another server', async () => {
  const { pool, clock } = setup();
  const dead = new Set(['127.0.0.1:8081']);
  const entry = create(EntrySchema, { id: 'e1', spiffeId: { trustDomain: 'example.org', path: '/w' } });
  const fake = (address: string) =>
    ({
      svid: {
        newJWTSVID: async ({ audience }: { audience: string[] }) => {
          if (dead.has(address)) throw refused();
          return { svid: { token: `${address}/${audience.join(',')}`, issuedAt: 1n, expiresAt: 2n } };
        },
      },
    }) as unknown as ServerClient;
  const m = cacheOnPool(pool, clock, fake);
  assert.equal(await m.jwtSvid(entry, ['aud']), '127.0.0.2:8081/aud');
});

test('CacheManager on a pool: a sync pass whose X509-SVID minting meets a dead server runs again on the next one', async () => {
  const { pool, clock } = setup();
  const dead = new Set(['127.0.0.1:8081']);
  const entries = [
    create(EntrySchema, { id: 'e1', spiffeId: { trustDomain: 'example.org', path: '/w1' }, selectors: [{ type: 'unix', value: 'uid:0' }] }),
    create(EntrySchema, { id: 'e2', spiffeId: { trustDomain: 'example.org', path: '/w2' }, selectors: [{ type: 'unix', value: 'uid:0' }] }),
  ];
  const minted: string[] = [];
  const fake = (address: string) =>
    ({
      entry: {
        syncAuthorizedEntries: () =>
          (async function* () {
            yield { entries, entryRevisions: [], more: false };
          })(),
      },
      bundle: { getBundle: async () => ({ trustDomain: 'example.org', x509Authorities: [], jwtAuthorities: [] }) },
      svid: {
        // The entries and the bundle come back from every server; the dead one's minting fails.
        batchNewX509SVID: async ({ params }: { params: { entryId: string }[] }) => {
          if (dead.has(address)) throw refused();
          minted.push(...params.map((p) => `${address}/${p.entryId}`));
          return { results: params.map(() => ({ svid: { certChain: [new Uint8Array([0x30])], expiresAt: BigInt(Math.floor(clock.nowMs() / 1000) + 3600) } })) };
        },
      },
    }) as unknown as ServerClient;
  const m = cacheOnPool(pool, clock, fake);
  assert.equal(await m.sync(), true, 'the pass succeeded: no failed sync, no backoff');
  assert.equal(m.nextDelayMs(), 1000);
  assert.deepEqual(minted, ['127.0.0.2:8081/e1', '127.0.0.2:8081/e2']);
  assert.equal(m.identitiesFor([{ type: 'unix', value: 'uid:0' }]).filter((i) => i.svid !== undefined).length, 2);
});

// --- A hung server (keepalive) -----------------------------------------------------------------

test('a call on a hung server fails over when the keepalive closes its connection (PING unanswered, or a handshake that never ends)', async () => {
  // The errors the transport gives a call on a hung server (packages/proto/src/rpc/keepalive.test.ts).
  const keepaliveErrors = [
    serverCallError(new ConnectError('PING timed out', Code.Unavailable)),
    serverCallError(new ConnectError('connection to 127.0.0.1:8081 not established within 5000 ms', Code.Unavailable)),
  ];
  for (const hung of keepaliveErrors) {
    assert.equal(isFailoverError(hung), true);
    const { pool, moves } = setup();
    const attempts: string[] = [];
    const out = await pool.call(async (c) => {
      attempts.push(addressOf(c));
      if (addressOf(c) === '127.0.0.1:8081') throw hung;
      return 'jwt';
    });
    assert.equal(out, 'jwt');
    assert.deepEqual(attempts, ['127.0.0.1:8081', '127.0.0.2:8081']);
    assert.deepEqual(moves, ['127.0.0.1:8081 -> 127.0.0.2:8081']);
  }
});

// --- Rebalancing -------------------------------------------------------------------------------

const flush = async (): Promise<void> => {
  for (let i = 0; i < 20; i++) await new Promise<void>((r) => setImmediate(r));
};

/** A pool whose servers in `down` refuse calls and probes; probes run GetBundle-like on the fake client. */
function rebalancing(random: () => number, over: Partial<ServerPoolOptions> = {}) {
  const down = new Set<string>();
  const probed: string[] = [];
  const moved: string[] = [];
  const s = setup({
    random,
    rebalanceIntervalMs: 60_000,
    probe: async (c) => {
      probed.push(addressOf(c));
      if (down.has(addressOf(c))) throw refused();
    },
    onRebalance: (from, to) => moved.push(`${from} -> ${to}`),
    ...over,
  });
  const run = (pool: ServerPool) =>
    pool.call(async (c) => {
      if (down.has(addressOf(c))) throw refused();
      return addressOf(c);
    });
  return { ...s, down, probed, moved, run };
}

test('rebalancing: none without a fail-over', async () => {
  const { pool, clock, probed, run } = rebalancing(() => 0);
  await run(pool);
  assert.equal(pool.rebalancing, false);
  clock.advance(3_600_000);
  await flush();
  assert.deepEqual(probed, []);
  assert.equal(pool.serverAddress, '127.0.0.1:8081');
});

test('rebalancing: after a fail-over the agent checks the servers at a jittered interval, re-picks among those serving, and stops once all serve', async () => {
  let r = 0.25; // the first check at 0.75 x 60 s
  const { pool, clock, down, probed, moved, run, conns } = rebalancing(() => r);
  down.add('127.0.0.1:8081');
  // random 0.25 of three: the agent starts on .1, which is dead: it fails over to .2.
  assert.equal(await run(pool), '127.0.0.2:8081');
  assert.equal(pool.rebalancing, true);
  clock.advance(44_999);
  await flush();
  assert.deepEqual(probed, [], 'no check before 0.5 + 0.25 of the interval');
  // First check: .1 still down, .3 serves: pick among {.2, .3}; 0.75 of two -> .3.
  r = 0.75;
  clock.advance(1);
  await flush();
  assert.deepEqual(probed.sort(), ['127.0.0.1:8081', '127.0.0.3:8081']);
  assert.deepEqual(moved, ['127.0.0.2:8081 -> 127.0.0.3:8081']);
  assert.equal(pool.serverAddress, '127.0.0.3:8081');
  assert.equal(await run(pool), '127.0.0.3:8081', 'calls go to the server it moved to, on the connection the check made');
  assert.equal(pool.rebalancing, true, '.1 is still down: the checks go on');
  // Second check, .1 still down, same set: no move (one pick per set of serving servers).
  probed.length = 0;
  clock.advance(60_000 * 1.25);
  await flush();
  assert.deepEqual(probed.sort(), ['127.0.0.1:8081', '127.0.0.2:8081']);
  assert.equal(moved.length, 1);
  // .1 is back: the next check (drawn at 0.75: 75 s later) sees all three serve, picks among them
  // (0.1 of three -> .1) and stops.
  down.delete('127.0.0.1:8081');
  r = 0.1;
  clock.advance(60_000 * 1.25);
  await flush();
  assert.deepEqual(moved, ['127.0.0.2:8081 -> 127.0.0.3:8081', '127.0.0.3:8081 -> 127.0.0.1:8081']);
  assert.equal(pool.serverAddress, '127.0.0.1:8081');
  assert.equal(pool.rebalancing, false);
  assert.equal(pool.rebalances, 2);
  probed.length = 0;
  clock.advance(3_600_000);
  await flush();
  assert.deepEqual(probed, [], 'settled: no more checks');
  // Probe connections that were not moved to are closed; the one moved to is in use.
  const open = conns.filter((c) => !c.closed).map((c) => c.address);
  assert.deepEqual(open, ['127.0.0.1:8081']);
});

test('rebalancing never drops a call under way: the old connection closes only after the call deadline', async () => {
  const { pool, clock, down, run, conns } = rebalancing(() => 0.9);
  down.add('127.0.0.3:8081');
  assert.equal(await run(pool), '127.0.0.1:8081', 'random 0.9 starts on .3: dead, next is .1');
  down.delete('127.0.0.3:8081');
  let release: (v: string) => void = () => undefined;
  const slow = pool.call(async (c) => {
    const at = addressOf(c);
    await new Promise<string>((r) => (release = r));
    assert.equal(conns.find((x) => x.address === at && !x.bootstrap)?.closed, false, 'the connection of the call under way is still open');
    return at;
  });
  await flush();
  const r = await pool.rebalance();
  assert.deepEqual([...r.serving].sort(), ['127.0.0.1:8081', '127.0.0.2:8081', '127.0.0.3:8081']);
  assert.equal(r.movedTo, '127.0.0.3:8081');
  assert.equal(r.settled, true);
  release('done');
  assert.equal(await slow, '127.0.0.1:8081', 'the call finished where it started');
  const old = conns.find((c) => c.address === '127.0.0.1:8081');
  assert.equal(old?.closed, false);
  clock.advance(CALL_TIMEOUT_MS);
  assert.equal(old?.closed, true, 'the old connection is closed once its calls had their deadline');
});

test('rebalancing: a check during which the connection was replaced (SVID renewed, fail-over) does not move the agent', async () => {
  const { pool, down, run, conns } = rebalancing(() => 0.9, {
    probe: async () => {
      pool.reconnect(); // the agent's SVID rotated while the probes ran
    },
  });
  down.add('127.0.0.3:8081');
  await run(pool);
  down.delete('127.0.0.3:8081');
  const before = conns.length;
  const r = await pool.rebalance();
  assert.equal(r.movedTo, undefined);
  assert.equal(r.settled, false, 'checked again later');
  assert.equal(pool.rebalances, 0);
  const probes = conns.slice(before);
  assert.equal(probes.length, 2);
  assert.ok(
    probes.every((c) => c.closed),
    'the probe connections (made with the old SVID) are closed',
  );
});

test('rebalancing spreads a fleet: 300 agents that all failed over to one server spread over the three once the dead one is back', async () => {
  // A small seeded generator (mulberry32): the same spread on every run.
  let seed = 0x2f6b_1d3c;
  const random = (): number => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const counts = new Map<string, number>();
  for (let i = 0; i < 300; i++) {
    // Every agent starts on .1 (random 0); the rebalancing pick draws from the seeded generator.
    let draw: () => number = () => 0;
    const { pool, down, run } = rebalancing(() => draw());
    down.add('127.0.0.1:8081');
    assert.equal(await run(pool), '127.0.0.2:8081', 'every agent failed over to the same next server');
    down.delete('127.0.0.1:8081');
    draw = random;
    const r = await pool.rebalance();
    assert.equal(r.settled, true);
    pool.close();
    counts.set(pool.serverAddress ?? '', (counts.get(pool.serverAddress ?? '') ?? 0) + 1);
  }
  for (const a of ['127.0.0.1:8081', '127.0.0.2:8081', '127.0.0.3:8081']) {
    const n = counts.get(a) ?? 0;
    assert.ok(n >= 75 && n <= 125, `${a} holds ${n} of 300 agents (expected about 100)`);
  }
});
