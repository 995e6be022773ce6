import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { isZtwimError } from '@ztwim/core';
import { parseKeywordValue, parsePgConnectionString, sslFallback, SSL_MODES, TARGET_SESSION_ATTRS, type PgConnectionConfig } from './connection-string.ts';

/** The one host's config of a single-host connection string. */
function one(s: string): PgConnectionConfig {
  const spec = parsePgConnectionString(s);
  assert.equal(spec.hosts.length, 1);
  return spec.hosts[0] as PgConnectionConfig;
}

const dir = mkdtempSync(join(tmpdir(), 'ztwim-pgconn-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const ca = join(dir, 'root.crt');
const cert = join(dir, 'client.crt');
const key = join(dir, 'client.key');
writeFileSync(ca, 'CA PEM');
writeFileSync(cert, 'CERT PEM');
writeFileSync(key, 'KEY PEM');

describe("postgres connection_string: both of libpq's forms", () => {
  it("SPIRE's documented keyword/value form (was: getaddrinfo ENOTFOUND base)", () => {
    const c = one('dbname=postgres user=postgres host=127.0.0.1 port=5432 sslmode=disable');
    assert.deepEqual(c, { host: '127.0.0.1', port: 5432, database: 'postgres', user: 'postgres', ssl: false, sslmode: 'disable' });
  });

  it('the URL form means the same', () => {
    const c = one('postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable');
    assert.deepEqual(c, { host: '127.0.0.1', port: 5432, database: 'postgres', user: 'postgres', ssl: false, sslmode: 'disable' });
    const p = one('postgresql://u%40x:p%2Fw@[::1]:6543/my%20db?options=-c%20search_path%3Ds1&application_name=ztwim');
    assert.equal(p.user, 'u@x');
    assert.equal(p.password, 'p/w');
    assert.equal(p.host, '::1');
    assert.equal(p.port, 6543);
    assert.equal(p.database, 'my db');
    assert.equal(p.options, '-c search_path=s1');
    assert.equal(p.application_name, 'ztwim');
  });

  const quoting: Array<{ name: string; input: string; want: Record<string, string> }> = [
    { name: 'spaces around =', input: 'host = db.local  dbname=  spire', want: { host: 'db.local', dbname: 'spire' } },
    { name: 'a quoted value with spaces', input: "password='a b c' user=x", want: { password: 'a b c', user: 'x' } },
    { name: 'escaped quote and backslash in quotes', input: "password='it\\'s \\\\ here'", want: { password: "it's \\ here" } },
    { name: 'an empty quoted value', input: "password='' user=u", want: { password: '', user: 'u' } },
    { name: 'a backslash escape unquoted', input: 'password=a\\ b', want: { password: 'a b' } },
    { name: 'tabs and newlines between pairs', input: 'host=h\n\tport=1', want: { host: 'h', port: '1' } },
  ];
  for (const q of quoting) {
    it(`keyword/value quoting: ${q.name}`, () => {
      assert.deepEqual(Object.fromEntries(parseKeywordValue(q.input)), q.want);
    });
  }

  const bad: Array<{ name: string; input: string; want: RegExp }> = [
    { name: 'unknown keyword', input: 'dbname=x colour=blue', want: /invalid connection option "colour"/ },
    { name: 'missing =', input: 'dbname x', want: /missing "=" after "dbname"/ },
    { name: 'unterminated quote', input: "password='abc", want: /unterminated quoted value for "password"/ },
    { name: 'bad sslmode', input: 'sslmode=sometimes', want: /invalid sslmode value: "sometimes"/ },
    { name: 'bad port', input: 'port=http', want: /invalid port number: "http"/ },
    { name: 'more ports than hosts', input: 'host=a,b port=1,2,3', want: /could not match 3 port numbers \(port\) to 2 hosts \(host\)/ },
    { name: 'a bad port in a list', input: 'host=a,b port=5432,x', want: /invalid port number: "x"/ },
    {
      name: 'bad target_session_attrs',
      input: 'host=a,b target_session_attrs=master',
      want: /invalid target_session_attrs value: "master" \(use any, read-write/,
    },
    { name: 'bad target_session_attrs in a URL', input: 'postgres://a,b/d?target_session_attrs=rw', want: /invalid target_session_attrs value: "rw"/ },
    { name: 'bad load_balance_hosts', input: 'host=a,b load_balance_hosts=yes', want: /invalid load_balance_hosts value: "yes" \(use disable, random\)/ },
    { name: 'a bad host in a URL host list', input: 'postgres://u:secret@a:1,b:2:3/d', want: /cannot read host "b:2:3" of the host list/ },
    { name: 'missing root cert file', input: `sslmode=verify-full sslrootcert=${join(dir, 'nope.crt')}`, want: /sslrootcert: cannot read .*nope\.crt/ },
    { name: 'verify-ca without a root cert', input: 'sslmode=verify-ca', want: /verify-ca needs sslrootcert/ },
    { name: 'a URL that does not parse', input: 'postgres://u:secret@[bad/db', want: /not a valid postgres:\/\/ URL/ },
  ];
  for (const b of bad) {
    it(`refused with a message naming the cause: ${b.name}`, () => {
      assert.throws(
        () => parsePgConnectionString(b.input),
        (e: unknown) => isZtwimError(e, 'ERR_CONFIG') && b.want.test(e.message) && !e.message.includes('secret'),
      );
    });
  }
});

describe('sslmode, as libpq, onto Node TLS options', () => {
  const tlsOf = (s: string) => one(`host=db.example.org dbname=d ${s}`);
  const expectations: Record<(typeof SSL_MODES)[number], (c: ReturnType<typeof tlsOf>) => void> = {
    disable: (c) => assert.equal(c.ssl, false),
    allow: (c) => assert.equal(c.ssl, false, 'allow starts without TLS'),
    prefer: (c) => assert.deepEqual(c.ssl, { rejectUnauthorized: false }),
    require: (c) => assert.deepEqual(c.ssl, { rejectUnauthorized: false }),
    'verify-ca': () => undefined, // needs sslrootcert: below
    'verify-full': (c) => assert.deepEqual(c.ssl, { rejectUnauthorized: true, servername: 'db.example.org' }),
  };
  for (const mode of SSL_MODES) {
    if (mode === 'verify-ca') continue;
    it(`sslmode=${mode}`, () => {
      const c = tlsOf(`sslmode=${mode}`);
      assert.equal(c.sslmode, mode);
      expectations[mode](c);
      // the URL form gives the same
      assert.deepEqual(one(`postgres://db.example.org/d?sslmode=${mode}`).ssl, c.ssl);
    });
  }

  it("no sslmode is libpq's default, prefer", () => {
    assert.equal(tlsOf('').sslmode, 'prefer');
  });

  it('sslmode=verify-ca checks the chain against sslrootcert but not the host name', () => {
    const c = tlsOf(`sslmode=verify-ca sslrootcert=${ca}`);
    assert.ok(c.ssl !== false);
    assert.equal(c.ssl.ca, 'CA PEM');
    assert.equal(c.ssl.rejectUnauthorized, true);
    assert.equal(typeof c.ssl.checkServerIdentity, 'function');
    assert.equal(c.ssl.checkServerIdentity?.('other.host', {} as never), undefined);
  });

  it('sslmode=require with sslrootcert behaves as verify-ca (libpq)', () => {
    const c = tlsOf(`sslmode=require sslrootcert=${ca}`);
    assert.ok(c.ssl !== false);
    assert.equal(c.ssl.rejectUnauthorized, true);
    assert.equal(c.ssl.ca, 'CA PEM');
  });

  it('sslcert, sslkey and sslpassword become the client certificate', () => {
    const c = tlsOf(`sslmode=verify-full sslrootcert=${ca} sslcert=${cert} sslkey=${key} sslpassword='pw x'`);
    assert.deepEqual(c.ssl, { ca: 'CA PEM', cert: 'CERT PEM', key: 'KEY PEM', passphrase: 'pw x', rejectUnauthorized: true, servername: 'db.example.org' });
  });

  it('allow and prefer fall back as libpq does', () => {
    assert.equal(sslFallback(tlsOf('sslmode=prefer'), new Error('The server does not support SSL connections')), false);
    assert.deepEqual(sslFallback(tlsOf('sslmode=allow'), new Error('no pg_hba.conf entry for host "1.2.3.4", user "u", database "d", no encryption')), {
      rejectUnauthorized: false,
    });
    assert.equal(sslFallback(tlsOf('sslmode=require'), new Error('The server does not support SSL connections')), undefined);
    assert.equal(sslFallback(tlsOf('sslmode=prefer'), new Error('connect ECONNREFUSED')), undefined);
  });
});

describe('several hosts, as libpq', () => {
  const hostsOf = (s: string) => parsePgConnectionString(s).hosts.map((h) => [h.host, h.port]);

  it('keyword/value: a port per host, or one port for all', () => {
    const spec = parsePgConnectionString('host=127.0.0.1,127.0.0.1 port=25480,25481 dbname=d user=u target_session_attrs=read-write');
    assert.deepEqual(
      spec.hosts.map((h) => [h.host, h.port, h.database, h.user]),
      [
        ['127.0.0.1', 25480, 'd', 'u'],
        ['127.0.0.1', 25481, 'd', 'u'],
      ],
    );
    assert.equal(spec.targetSessionAttrs, 'read-write');
    assert.equal(spec.loadBalanceHosts, 'disable');
    assert.deepEqual(hostsOf('host=db1,db2,db3 port=6000'), [
      ['db1', 6000],
      ['db2', 6000],
      ['db3', 6000],
    ]);
    // an empty item is the default host, an empty port the default port
    assert.deepEqual(hostsOf('host=db1,,db3 port=1,,3'), [
      ['db1', 1],
      [undefined, undefined],
      ['db3', 3],
    ]);
  });

  it('URL: host:port items in the authority, IPv6 in brackets, the query as keywords', () => {
    const spec = parsePgConnectionString('postgresql://u:p%40w@h1:25480,[::1]:25481,h3/db?target_session_attrs=read-write&load_balance_hosts=random');
    assert.deepEqual(
      spec.hosts.map((h) => [h.host, h.port, h.user, h.password, h.database]),
      [
        ['h1', 25480, 'u', 'p@w', 'db'],
        ['::1', 25481, 'u', 'p@w', 'db'],
        ['h3', undefined, 'u', 'p@w', 'db'],
      ],
    );
    assert.equal(spec.targetSessionAttrs, 'read-write');
    assert.equal(spec.loadBalanceHosts, 'random');
    // the same hosts given as query parameters
    assert.deepEqual(hostsOf('postgresql:///db?host=h1,h2&port=1,2'), [
      ['h1', 1],
      ['h2', 2],
    ]);
  });

  it('the two forms mean the same', () => {
    assert.deepEqual(
      parsePgConnectionString('postgresql://postgres@127.0.0.1:25480,127.0.0.1:25481/ztwim?target_session_attrs=read-write&sslmode=disable'),
      parsePgConnectionString('host=127.0.0.1,127.0.0.1 port=25480,25481 user=postgres dbname=ztwim target_session_attrs=read-write sslmode=disable'),
    );
  });

  for (const attrs of TARGET_SESSION_ATTRS) {
    it(`target_session_attrs=${attrs} is taken in both forms`, () => {
      assert.equal(parsePgConnectionString(`host=a,b target_session_attrs=${attrs}`).targetSessionAttrs, attrs);
      assert.equal(parsePgConnectionString(`postgres://a,b/d?target_session_attrs=${attrs}`).targetSessionAttrs, attrs);
    });
  }

  it("no target_session_attrs is libpq's default, any", () => {
    assert.equal(parsePgConnectionString('host=a,b').targetSessionAttrs, 'any');
  });

  it('verify-full checks each host against its own name', () => {
    const spec = parsePgConnectionString(`host=db1.example.org,db2.example.org sslmode=verify-full sslrootcert=${ca}`);
    assert.deepEqual(
      spec.hosts.map((h) => (h.ssl === false ? undefined : h.ssl.servername)),
      ['db1.example.org', 'db2.example.org'],
    );
  });
});
