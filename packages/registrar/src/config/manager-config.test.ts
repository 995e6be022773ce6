import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isZtwimError } from '@ztwim/core';
import { isNamespaceIgnored, parseManagerConfig } from './manager-config.ts';
import { clusterDomainFromResolvConf } from './cluster-domain.ts';

const MIN = 'clusterName: c1\ntrustDomain: example.org\n';

describe('parseManagerConfig', () => {
  it('applies SPIRE defaults', () => {
    const c = parseManagerConfig(MIN);
    assert.equal(c.gcIntervalMs, 10_000);
    assert.equal(c.spireServerSocketPath, '/spire-server/api.sock');
    assert.deepEqual(
      c.ignoreNamespaces.map((r) => r.source),
      ['kube-system', 'kube-public', 'spire-system'],
    );
    assert.deepEqual(c.reconcile, { clusterSPIFFEIDs: true, clusterStaticEntries: true, clusterFederatedTrustDomains: true });
    assert.equal(c.entryIDPrefix, '');
    assert.equal(c.entryIDPrefixCleanup, undefined);
    assert.equal(c.leaderElection.leaderElect, false);
    assert.equal(c.logEncoding, 'console');
    assert.equal(c.validatingWebhookConfigurationName, 'spire-controller-manager-webhook');
    assert.deepEqual(c.webhook, { host: '', port: 9443, certDir: '' });
  });

  it("reads controller-runtime's webhook section (port 0 is the default port, as there)", () => {
    const c = parseManagerConfig(`${MIN}webhook:\n  port: 19443\n  host: 127.0.0.1\n  certDir: /tmp/certs\nvalidatingWebhookConfigurationName: mine\n`);
    assert.deepEqual(c.webhook, { host: '127.0.0.1', port: 19443, certDir: '/tmp/certs' });
    assert.equal(c.validatingWebhookConfigurationName, 'mine');
    assert.equal(parseManagerConfig(`${MIN}webhook: {port: 0}\n`).webhook.port, 9443);
    for (const bad of ['"9443"', '70000', '-1', '1.5']) {
      assert.throws(
        () => parseManagerConfig(`${MIN}webhook: {port: ${bad}}\n`),
        (e: unknown) => isZtwimError(e) && /webhook\.port: must be a port number/.test((e as Error).message),
        bad,
      );
    }
  });

  it('reads the helm chart shape', () => {
    const c = parseManagerConfig(`
apiVersion: spire.spiffe.io/v1alpha1
kind: ControllerManagerConfig
metrics:
  bindAddress: 127.0.0.1:8082
health:
  healthProbeBindAddress: 0.0.0.0:8083
leaderElection:
  leaderElect: true
  resourceName: 98c9c988.spiffe.io
  resourceNamespace: spire-server
  leaseDuration: 20s
validatingWebhookConfigurationName: spire-controller-manager-webhook
clusterName: demo
trustDomain: example.org
clusterDomain: cluster.local
className: ztwim
watchClassless: true
gcInterval: 1m30s
spireServerSocketPath: /tmp/spire-server/private/api.sock
entryIDPrefix: demo
entryIDPrefixCleanup: ""
reconcile:
  clusterSPIFFEIDs: true
ignoreNamespaces: [kube-system, "openshift-.*"]
unknownKey: ignored
`);
    assert.equal(c.gcIntervalMs, 90_000);
    assert.equal(c.entryIDPrefix, 'demo.');
    assert.equal(c.entryIDPrefixCleanup, '');
    assert.deepEqual(c.reconcile, { clusterSPIFFEIDs: true, clusterStaticEntries: false, clusterFederatedTrustDomains: false });
    assert.equal(c.leaderElection.leaderElect, true);
    assert.equal(c.leaderElection.resourceNamespace, 'spire-server');
    assert.equal(c.leaderElection.leaseDurationMs, 20_000);
    assert.equal(c.metricsBindAddress, '127.0.0.1:8082');
    assert.equal(c.healthProbeBindAddress, '0.0.0.0:8083');
    assert.equal(c.className, 'ztwim');
    assert.equal(c.watchClassless, true);
    assert.equal(isNamespaceIgnored(c.ignoreNamespaces, 'openshift-dns'), true);
    assert.equal(isNamespaceIgnored(c.ignoreNamespaces, 'default'), false);
  });

  it('reads JSON too', () => {
    const c = parseManagerConfig('{"clusterName":"c","trustDomain":"td.test","gcInterval":"250ms"}');
    assert.equal(c.gcIntervalMs, 250);
  });

  const bad: Array<[string, string, RegExp]> = [
    ['no trust domain', 'clusterName: c\n', /trustDomain: is required/],
    ['no cluster name', 'trustDomain: example.org\n', /clusterName: is required/],
    ['bad trust domain', 'clusterName: c\ntrustDomain: "Bad TD"\n', /trustDomain: invalid trust domain/],
    ['bad duration', `${MIN}gcInterval: soon\n`, /gcInterval: invalid duration "soon"/],
    ['zero gc interval', `${MIN}gcInterval: 0s\n`, /gcInterval: must be more than 0/],
    ['wrong type', `${MIN}watchClassless: "yes"\n`, /watchClassless: must be true or false/],
    ['bad regex', `${MIN}ignoreNamespaces: ["("]\n`, /ignoreNamespaces\[0\]: invalid regex/],
    ['same prefixes', `${MIN}entryIDPrefix: a\nentryIDPrefixCleanup: a.\n`, /entryIDPrefixCleanup: can not be the same value as entryIDPrefix/],
    ['bad log encoding', `${MIN}logEncoding: xml\n`, /logEncoding: must be console or json/],
    ['wrong kind', `${MIN}kind: Pod\n`, /kind: must be ControllerManagerConfig/],
    ['nested wrong type', `${MIN}reconcile:\n  clusterSPIFFEIDs: 1\n`, /reconcile.clusterSPIFFEIDs: must be true or false/],
    ['not yaml', 'a: [\n', /config: /],
    ['a list', '- a\n', /must be a mapping/],
  ];
  for (const [name, text, re] of bad) {
    it(`refuses ${name} with the key named`, () => {
      assert.throws(
        () => parseManagerConfig(text),
        (e: unknown) => isZtwimError(e, 'ERR_CONFIG') && re.test(e.message),
      );
    });
  }
});

describe('clusterDomainFromResolvConf', () => {
  it('takes the svc.<domain> search entry', () => {
    assert.equal(
      clusterDomainFromResolvConf('nameserver 10.0.0.10\nsearch ns1.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n'),
      'cluster.local',
    );
    assert.equal(clusterDomainFromResolvConf('search svc.k8s.example.\n'), 'k8s.example');
    assert.equal(clusterDomainFromResolvConf('nameserver 1.1.1.1\nsearch example.com\n'), '');
  });
});
