import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isZtwimError } from '../errors.ts';
import { parseHcl, HclSyntaxError } from './hcl.ts';
import { parseConfigText } from './load.ts';
import { toPlain } from './node.ts';
import { parseDuration, problems, Section, throwIfProblems } from './schema.ts';

const SERVER_CONF = `
# a SPIRE-style server config
server {
    bind_address = "0.0.0.0"
    bind_port = "8081"
    trust_domain = "example.org"
    data_dir = "./.data"   // trailing comment
    ca_subject = {
        country = ["US"],
        organization = ["SPIFFE"],
        common_name = "",
    }
    /* block
       comment */
    ca_ttl = "24h"
}

plugins {
    DataStore "sql" {
        plugin_data {
            database_type = "sqlite3"
            connection_string = "./.data/datastore.sqlite3"
        }
    }
    NodeAttestor "join_token" {
        plugin_data {}
    }
    KeyManager "disk" {
        plugin_data = { keys_path = "./.data/keys.json" }
    }
}
`;

test('parses SPIRE server.conf HCL into plain values', () => {
  const doc = parseHcl(SERVER_CONF);
  assert.deepEqual(toPlain(doc), {
    server: {
      bind_address: '0.0.0.0',
      bind_port: '8081',
      trust_domain: 'example.org',
      data_dir: './.data',
      ca_subject: { country: ['US'], organization: ['SPIFFE'], common_name: '' },
      ca_ttl: '24h',
    },
    plugins: {
      DataStore: { sql: { plugin_data: { database_type: 'sqlite3', connection_string: './.data/datastore.sqlite3' } } },
      NodeAttestor: { join_token: { plugin_data: {} } },
      KeyManager: { disk: { plugin_data: { keys_path: './.data/keys.json' } } },
    },
  });
});

test('HCL syntax errors carry the line', () => {
  const cases: Array<[string, number, RegExp]> = [
    ['a = "x\n', 1, /unterminated string/],
    ['a {\n b = 1\n', 3, /missing "}"/],
    ['a = foo\n', 1, /unexpected identifier "foo"/],
    ['\n\na = "${x}"', 3, /interpolation/],
    ['a = 1 b = 2', 1, /expected a newline/],
    ['x = <<EOF\nhi\nEOF', 1, /heredoc/],
  ];
  for (const [src, line, re] of cases) {
    assert.throws(
      () => parseHcl(src),
      (e: unknown) => e instanceof HclSyntaxError && e.line === line && re.test(e.message),
      src,
    );
  }
});

function readServer(doc: ReturnType<typeof parseHcl>): { td?: string; ttl?: number; problems: readonly string[] } {
  const p = problems('server.conf');
  const root = new Section(doc, '', p);
  const server = root.section('server');
  const td = server?.string('trust_domain');
  const ttl = server?.duration('ca_ttl');
  server?.ignore('bind_address');
  server?.ignore('bind_port');
  server?.ignore('data_dir');
  server?.ignore('ca_subject');
  server?.done();
  root.ignore('plugins');
  root.done();
  return { ...(td === undefined ? {} : { td }), ...(ttl === undefined ? {} : { ttl }), problems: p.list };
}

test('unknown keys are reported with their path and line; all problems at once', () => {
  const doc = parseHcl('server {\n  trust_domain = "example.org"\n  ca_ttll = "24h"\n  ca_ttl = "soon"\n}\nextra = 1\n');
  const r = readServer(doc);
  assert.deepEqual(r.problems, [
    'server.conf: server.ca_ttl (line 4): must be a duration like "1h", "30m" or "90s"',
    'server.conf: server.ca_ttll (line 3): unknown key',
    'server.conf: extra (line 6): unknown key',
  ]);
  const p = problems('x');
  p.add('a', 1, 'bad');
  assert.throws(
    () => throwIfProblems(p),
    (e: unknown) => isZtwimError(e, 'ERR_CONFIG') && /a \(line 1\): bad/.test(e.message),
  );
});

test('YAML and JSON configs give the same values and lines', () => {
  const yaml = parseConfigText('server:\n  trust_domain: example.org\n  ca_ttl: 12h\n  bogus: 1\n', 'yaml');
  const r = readServer(yaml);
  assert.equal(r.td, 'example.org');
  assert.equal(r.ttl, 12 * 3600_000);
  assert.deepEqual(r.problems, ['server.conf: server.bogus (line 4): unknown key']);
  const json = parseConfigText('{\n "server": {\n  "trust_domain": "example.org",\n  "nope": true\n }\n}', 'json');
  assert.deepEqual(readServer(json).problems, ['server.conf: server.nope (line 4): unknown key']);
  assert.throws(
    () => parseConfigText('a: [1, 2\n', 'yaml'),
    (e: unknown) => isZtwimError(e, 'ERR_CONFIG'),
  );
  assert.throws(
    () => parseConfigText('a: 1\na: 2\n', 'yaml'),
    (e: unknown) => isZtwimError(e, 'ERR_CONFIG'),
  );
});

test('parseDuration follows Go syntax', () => {
  const cases: Array<[string, number | undefined]> = [
    ['1h', 3600_000],
    ['1h30m', 5400_000],
    ['90s', 90_000],
    ['250ms', 250],
    ['0', 0],
    ['1.5h', 5400_000],
    ['', undefined],
    ['5', undefined],
    ['h', undefined],
    ['1x', undefined],
    ['1h 2m', undefined],
  ];
  for (const [s, ms] of cases) assert.equal(parseDuration(s), ms, s);
});

test('a .conf file that opens with { is JSON, as HCL reads it; blocks as objects or lists of objects', () => {
  // the shape SPIRE's Helm chart and Red Hat's operator write: plugin types as lists of one-key objects
  const src = `{
  "server": { "trust_domain": "example.org" },
  "plugins": {
    "DataStore": [{ "sql": { "plugin_data": { "database_type": "sqlite3" } } }],
    "NodeAttestor": [{ "join_token": { "plugin_data": {} } }, { "k8s_psat": { "plugin_data": {} } }],
    "KeyManager": { "memory": { "plugin_data": {} } },
    "Notifier": [{ "k8sbundle": "not a block" }]
  }
}`;
  const doc = parseConfigText(src, 'hcl', 'server.conf');
  const p = problems('server.conf');
  const plugins = new Section(doc, '', p).section('plugins');
  assert.ok(plugins !== undefined);
  const labels = (key: string): string[] => plugins.labelled(key).map((b) => `${b.label}@${b.line}`);
  assert.deepEqual(labels('DataStore'), ['sql@4']);
  assert.deepEqual(labels('NodeAttestor'), ['join_token@5', 'k8s_psat@5']);
  assert.deepEqual(labels('KeyManager'), ['memory@6']);
  assert.deepEqual(labels('Notifier'), []);
  assert.deepEqual(p.list, ['server.conf: plugins.Notifier.k8sbundle (line 7): must be a block/object']);
  // still HCL when it does not open with {
  assert.throws(
    () => parseConfigText('server {\n  x = \n}', 'hcl', 'server.conf'),
    (e: unknown) => isZtwimError(e, 'ERR_CONFIG') && /server\.conf: /.test(e.message),
  );
});
