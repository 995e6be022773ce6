import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isSpiffeError } from '../errors.ts';
import { defaultWorkloadEndpoint, parseWorkloadEndpoint } from './address.ts';

// go-spiffe v2.9.0 workloadapi addr_test.go / addr_posix_test.go, plus Go net/url edge cases.
// The interop suite test/interop/sdk-address.test.ts checks a larger table against go-spiffe itself.
const cases: ReadonlyArray<{ name: string; addr: string; err?: string; target?: string }> = [
  { name: 'control char', addr: '\t', err: 'workload endpoint socket is not a valid URI: parse "\\t": net/url: invalid control character in URL' },
  { name: 'no scheme', addr: 'blah', err: 'workload endpoint socket URI must have a "tcp" or "unix" scheme' },
  { name: 'empty', addr: '', err: 'workload endpoint socket URI must have a "tcp" or "unix" scheme' },
  { name: 'missing scheme', addr: ':foo', err: 'workload endpoint socket is not a valid URI: parse ":foo": missing protocol scheme' },
  { name: 'tcp opaque', addr: 'tcp:opaque', err: 'workload endpoint tcp socket URI must not be opaque' },
  { name: 'tcp no host', addr: 'tcp://', err: 'workload endpoint tcp socket URI must include a host' },
  { name: 'tcp query', addr: 'tcp://1.2.3.4:5?whatever', err: 'workload endpoint tcp socket URI must not include query values' },
  { name: 'tcp fragment', addr: 'tcp://1.2.3.4:5#whatever', err: 'workload endpoint tcp socket URI must not include a fragment' },
  { name: 'tcp userinfo', addr: 'tcp://john:doe@1.2.3.4:5/path', err: 'workload endpoint tcp socket URI must not include user info' },
  { name: 'tcp path', addr: 'tcp://1.2.3.4:5/path', err: 'workload endpoint tcp socket URI must not include a path' },
  { name: 'tcp hostname', addr: 'tcp://foo', err: 'workload endpoint tcp socket URI host component must be an IP:port' },
  { name: 'tcp hostname with port', addr: 'tcp://localhost:8000', err: 'workload endpoint tcp socket URI host component must be an IP:port' },
  { name: 'tcp no port', addr: 'tcp://1.2.3.4', err: 'workload endpoint tcp socket URI host component must include a port' },
  { name: 'tcp empty port', addr: 'tcp://1.2.3.4:', err: 'workload endpoint tcp socket URI host component must include a port' },
  { name: 'tcp bad port', addr: 'tcp://1.2.3.4:x', err: 'workload endpoint socket is not a valid URI: parse "tcp://1.2.3.4:x": invalid port ":x" after host' },
  { name: 'tcp ok', addr: 'tcp://1.2.3.4:5', target: '1.2.3.4:5' },
  { name: 'tcp ipv6', addr: 'tcp://[::1]:8000', target: '[::1]:8000' },
  { name: 'TCP upper-case scheme', addr: 'TCP://127.0.0.1:1', target: '127.0.0.1:1' },
  { name: 'unix opaque', addr: 'unix:opaque', err: 'workload endpoint unix socket URI must not be opaque' },
  { name: 'unix relative', addr: 'unix:run/agent.sock', err: 'workload endpoint unix socket URI must not be opaque' },
  { name: 'unix empty', addr: 'unix://', err: 'workload endpoint unix socket URI must include a path' },
  { name: 'unix query', addr: 'unix://foo?whatever', err: 'workload endpoint unix socket URI must not include query values' },
  { name: 'unix fragment', addr: 'unix://foo#whatever', err: 'workload endpoint unix socket URI must not include a fragment' },
  { name: 'unix userinfo', addr: 'unix://john:doe@foo/path', err: 'workload endpoint unix socket URI must not include user info' },
  { name: 'unix bad escape', addr: 'unix:///a%zz', err: 'workload endpoint socket is not a valid URI: parse "unix:///a%zz": invalid URL escape "%zz"' },
  { name: 'unix authority only', addr: 'unix://foo', target: 'unix://foo' },
  { name: 'unix absolute', addr: 'unix:///run/spire/agent.sock', target: 'unix:///run/spire/agent.sock' },
  { name: 'unix single slash', addr: 'unix:/run/spire/agent.sock', target: 'unix:/run/spire/agent.sock' },
  { name: 'other scheme', addr: 'http://1.2.3.4:5', err: 'workload endpoint socket URI must have a "tcp" or "unix" scheme' },
];

for (const c of cases) {
  test(`parseWorkloadEndpoint: ${c.name}`, () => {
    if (c.err !== undefined) {
      assert.throws(
        () => parseWorkloadEndpoint(c.addr),
        (e: unknown) => {
          assert.ok(isSpiffeError(e, 'ERR_WORKLOAD_ADDRESS_INVALID'));
          assert.equal(e.message, c.err);
          return true;
        },
      );
    } else {
      assert.equal(parseWorkloadEndpoint(c.addr).target, c.target);
    }
  });
}

test('parseWorkloadEndpoint: decoded unix path and tcp parts', () => {
  const u = parseWorkloadEndpoint('unix:///tmp/a%20b.sock');
  assert.equal(u.kind, 'unix');
  assert.equal(u.kind === 'unix' && u.path, '/tmp/a b.sock');
  const t = parseWorkloadEndpoint('tcp://[::1]:8081');
  assert.deepEqual(t.kind === 'tcp' && [t.host, t.port], ['::1', 8081]);
});

test('defaultWorkloadEndpoint reads SPIFFE_ENDPOINT_SOCKET', () => {
  assert.equal(defaultWorkloadEndpoint({ SPIFFE_ENDPOINT_SOCKET: 'unix:///x' }), 'unix:///x');
  assert.throws(() => defaultWorkloadEndpoint({}), /^SpiffeError: workload endpoint socket address is not configured$/);
});
