import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_IMAGES, imagesFromEnv, kubeletSecurePortFromEnv, resolveContext } from './context.ts';
import { isZtwimError } from '@ztwim/core';
import { toHcl, attr, block, plugin } from './hcl.ts';

test('imagesFromEnv: RELATED_IMAGE_* override each image; unset or empty keep the variant default', () => {
  const imgs = imagesFromEnv({ RELATED_IMAGE_SPIRE_SERVER: 'reg/server:1', RELATED_IMAGE_SPIFFE_CSI_DRIVER: '', OTHER: 'x' });
  assert.equal(imgs.server, 'reg/server:1');
  assert.equal(imgs.csi, 'ztwim:0.1.0');
  assert.deepEqual({ ...imagesFromEnv({}, 'spire') }, { ...DEFAULT_IMAGES.spire });
});

test('kubeletSecurePortFromEnv: KUBELET_SECURE_PORT a port number, unset or empty the default; anything else refused by name', () => {
  assert.equal(kubeletSecurePortFromEnv({}), undefined);
  assert.equal(kubeletSecurePortFromEnv({ KUBELET_SECURE_PORT: '' }), undefined);
  assert.equal(kubeletSecurePortFromEnv({ KUBELET_SECURE_PORT: '26250' }), 26250);
  assert.equal(kubeletSecurePortFromEnv({ KUBELET_SECURE_PORT: ' 10250 ' }), 10250);
  for (const bad of ['0', '65536', 'abc', '12.5', '-1', '0x2710', '1e4']) {
    assert.throws(
      () => kubeletSecurePortFromEnv({ KUBELET_SECURE_PORT: bad }),
      (e: unknown) => isZtwimError(e, 'ERR_CONFIG') && e.message.includes('KUBELET_SECURE_PORT') && e.message.includes(JSON.stringify(bad)),
      bad,
    );
  }
  assert.equal(resolveContext({ namespace: 'ns' }).kubeletSecurePort, 10250);
  assert.equal(resolveContext({ namespace: 'ns', kubeletSecurePort: 26250 }).kubeletSecurePort, 26250);
});

test('resolveContext: defaults; hostNetwork moves the agent to 127.0.0.1 and the server port', () => {
  const c = resolveContext({ namespace: 'ns' });
  assert.deepEqual(c.serverAddress, { host: 'spire-server.ns', port: 443 });
  assert.equal(c.clusterDomain, 'cluster.local');
  assert.equal(c.kubeletRoot, '/var/lib/kubelet');
  assert.equal(c.version, '0.1.0');
  const h = resolveContext({ namespace: 'ns', hostNetwork: true, ports: { serverGrpc: 18081 } });
  assert.deepEqual(h.serverAddress, { host: '127.0.0.1', port: 18081 });
  // no two operands of one node on the same host port
  const used = Object.values(h.ports).filter((p, i, all) => all.indexOf(p) !== i);
  assert.deepEqual(used, [], `shared ports: ${used.join(', ')}`);
  assert.equal(resolveContext({ namespace: 'ns', hostNetwork: true, ports: { agentMetrics: 9500 } }).ports.agentMetrics, 9500);
  assert.equal(c.ports.agentMetrics, 9402, 'off the host network the pods have their own ports');
  assert.equal(resolveContext({ namespace: 'ns', variant: 'spire' }).version, '1.13.0');
});

test('toHcl: attributes, nested blocks, labelled plugins, maps with quoted keys, escaping', () => {
  const text = toHcl([
    block('server', [
      ...attr('trust_domain', 'example.org'),
      ...attr('port', 8081),
      ...attr('on', true),
      ...attr('skip', undefined),
      ...attr('list', ['a', 'b"c']),
    ]),
    block('plugins', [
      plugin('NodeAttestor', 'k8s_psat', attr('clusters', { 'my.cluster': { audience: ['spire-server'] } })),
      plugin('KeyManager', 'memory', []),
    ]),
  ]);
  assert.equal(
    text,
    [
      'server {',
      '  trust_domain = "example.org"',
      '  port = 8081',
      '  on = true',
      '  list = ["a", "b\\"c"]',
      '}',
      'plugins {',
      '  NodeAttestor "k8s_psat" {',
      '    plugin_data {',
      '      clusters = {',
      '        "my.cluster" = {',
      '          "audience" = ["spire-server"]',
      '        }',
      '      }',
      '    }',
      '  }',
      '  KeyManager "memory" {',
      '    plugin_data {',
      '    }',
      '  }',
      '}',
      '',
    ].join('\n'),
  );
});
