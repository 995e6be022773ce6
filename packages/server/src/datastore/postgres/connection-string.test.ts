import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { isZtwimError } from '@ztwim/core';
import { parseKeywordValue, parsePgConnectionString, sslFallback, SSL_MODES } from './connection-string.ts';

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
    const c = parsePgConnectionString('dbname=postgres user=postgres host=127.0.0.1 port=5432 sslmode=disable');
    assert.deepEqual(c, { host: '127.0.0.1', port: 5432, database: 'postgres', user: 'postgres', ssl: false, sslmode: 'disable' });
  });

  it('the URL form means the same', () => {
    const c = parsePgConnectionString('postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable');
    assert.deepEqual(c, { host: '127.0.0.1', port: 5432, database: 'postgres', user: 'postgres', ssl: false, sslmode: 'disable' });
    const p = parsePgConnectionString('postgresql://u%40x:p%2Fw@[::1]:6543/my%20db?options=-c%20search_path%3Ds1&application_name=ztwim');
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
    { name: 'several hosts', input: 'host=a,b', want: /several hosts/ },
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
  const tlsOf = (s: string) => parsePgConnectionString(`host=db.example.org dbname=d ${s}`);
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
      assert.deepEqual(parsePgConnectionString(`postgres://db.example.org/d?sslmode=${mode}`).ssl, c.ssl);
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
