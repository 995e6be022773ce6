// SPIFFE_ENDPOINT_SOCKET parsing: our parseWorkloadEndpoint vs go-spiffe v2.9.0's
// workloadapi.TargetFromAddress (test/interop/sdkaddr), message for message.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { parseWorkloadEndpoint } from '@ztwim/spiffe';
import { goBuild, INTEROP_DIR } from './lib/peers.ts';

const ADDRS = [
  '',
  '\t',
  'a\x7fb',
  'blah',
  ':foo',
  '1tcp://1.2.3.4:5',
  'http://1.2.3.4:5',
  'TCP://1.2.3.4:5',
  'UNIX:///a',
  'tcp:opaque',
  'tcp://',
  'tcp:///x',
  'tcp://1.2.3.4:5?whatever',
  'tcp://1.2.3.4:5?',
  'tcp://1.2.3.4:5#whatever',
  'tcp://1.2.3.4:5#',
  'tcp://john:doe@1.2.3.4:5/path',
  'tcp://john@1.2.3.4:5',
  'tcp://1.2.3.4:5/path',
  'tcp://1.2.3.4:5/',
  'tcp://foo',
  'tcp://foo:1',
  'tcp://1.2.3.4',
  'tcp://1.2.3.4:',
  'tcp://1.2.3.4:x',
  'tcp://1.2.3.4:5',
  'tcp://01.2.3.4:5',
  'tcp://1.2.3.256:5',
  'tcp://[::1]:8000',
  'tcp://[::1]',
  'tcp://[::1',
  'tcp://[fe80::1%25eth0]:1',
  'tcp://::1:80',
  'tcp://[::ffff:1.2.3.4]:9',
  'tcp://1.2.3.4:99999',
  'tcp://1.2.3.4:5%',
  'tcp://a b:1',
  'tcp://1.2.3.4:5#%zz',
  'unix:opaque',
  'unix:run/agent.sock',
  'unix://',
  'unix:',
  'unix:/',
  'unix:///',
  'unix://foo?whatever',
  'unix:///a?',
  'unix://foo#whatever',
  'unix://john:doe@foo/path',
  'unix://foo',
  'unix://foo/bar',
  'unix:///run/spire/agent.sock',
  'unix:/run/spire/agent.sock',
  'unix:///a%zz',
  'unix:///a%2',
  'unix:///a%20b',
  'unix:///a b',
  'unix:////double',
  'unix://%41/x',
  'unix://a%2fb/x',
  'unix://[::1]/x',
  'unix://x:1/y',
  'unix://x:y/z',
  '/run/agent.sock',
  '//host/path',
];

test('parseWorkloadEndpoint agrees with go-spiffe TargetFromAddress', () => {
  const bin = goBuild(join(INTEROP_DIR, 'sdkaddr'));
  const r = spawnSync(bin, [], { input: JSON.stringify(ADDRS), encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const go = JSON.parse(r.stdout) as { target: string; err: string }[];
  assert.equal(go.length, ADDRS.length);
  const mismatches: string[] = [];
  ADDRS.forEach((addr, i) => {
    const want = go[i] as { target: string; err: string };
    let got: { target: string; err: string };
    try {
      got = { target: parseWorkloadEndpoint(addr).target, err: '' };
    } catch (e) {
      got = { target: '', err: (e as Error).message };
    }
    if (got.err !== want.err || (want.err === '' && got.target !== want.target)) {
      mismatches.push(`${JSON.stringify(addr)}: go ${JSON.stringify(want)} ours ${JSON.stringify(got)}`);
    }
  });
  assert.deepEqual(mismatches, []);
});
