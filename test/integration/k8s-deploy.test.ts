// deploy/k8s without a cluster: the manifests hang together (names, namespace, paths, the image
// tag), hold what SPIRE's Kubernetes quickstart grants and no more, and both configs are
// accepted by SPIRE v1.13.0's own `validate` (which reads SPIRE's format, not plugin settings).
// test/k8s/e2e.test.ts runs them on the real node.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { REPO_ROOT, spireAgentBin, spireServerBin } from '../interop/lib/peers.ts';
import { makeTmpDir } from '../interop/lib/tmp.ts';
import { runCommand } from '../interop/lib/ztwim-cli.ts';
import { DEPLOY_DIR, DEPLOY_NAMESPACE, inNamespace, manifest, manifestObject, setConfValue, setConfValues } from '../k8s/lib/deploy.ts';

const VERSION = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}
interface Container {
  image: string;
  command: string[];
  env: Array<{ name: string; valueFrom?: { fieldRef?: { fieldPath: string } } }>;
  securityContext?: { runAsUser?: number };
  volumeMounts: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
}
interface Volume {
  name: string;
  configMap?: { name: string };
  hostPath?: { path: string; type: string };
  projected?: { sources: Array<{ serviceAccountToken?: { path: string; audience: string; expirationSeconds: number } }> };
}
interface PodSpec {
  serviceAccountName: string;
  hostPID: boolean;
  hostNetwork: boolean;
  dnsPolicy: string;
  containers: Container[];
  volumes: Volume[];
}

const daemonSet = (): { spec: { template: { spec: PodSpec } } } =>
  manifestObject('agent-daemonset.yaml', 'DaemonSet', 'ztwim-agent') as unknown as { spec: { template: { spec: PodSpec } } };
const agentConf = (): string =>
  (manifestObject('agent-configmap.yaml', 'ConfigMap', 'ztwim-agent') as unknown as { data: Record<string, string> }).data['agent.conf'] ?? '';
const serverConf = (): string => readFileSync(join(DEPLOY_DIR, 'server.conf'), 'utf8');
/** The value of `key = "value"` in a SPIRE-format config. */
const confValue = (conf: string, key: string): string | undefined => new RegExp(`^\\s*${key}\\s*=\\s*"?([^"\\n]*)"?\\s*$`, 'm').exec(conf)?.[1];

describe('deploy/k8s manifests', () => {
  it('every namespaced object is in the ztwim namespace the Namespace creates', () => {
    assert.equal(manifestObject('namespace.yaml', 'Namespace').metadata.name, DEPLOY_NAMESPACE);
    for (const f of ['serviceaccounts.yaml', 'agent-configmap.yaml', 'agent-daemonset.yaml']) {
      for (const o of manifest(f)) assert.equal(o.metadata.namespace, DEPLOY_NAMESPACE, `${f} ${o.kind} ${o.metadata.name}`);
    }
  });

  it('RBAC grants the server TokenReview and get pods/nodes, the agent get pods/nodes/nodes-proxy, bound to their service accounts', () => {
    const rules = (name: string): Rule[] => manifestObject('rbac.yaml', 'ClusterRole', name)['rules'] as Rule[];
    const flat = (rs: Rule[]): string[] =>
      rs.flatMap((r) => r.apiGroups.flatMap((g) => r.resources.flatMap((res) => r.verbs.map((v) => `${g}/${res}:${v}`)))).sort();
    assert.deepEqual(flat(rules('ztwim-server-k8s-psat')), ['/nodes:get', '/pods:get', 'authentication.k8s.io/tokenreviews:create']);
    assert.deepEqual(flat(rules('ztwim-agent')), ['/nodes/proxy:get', '/nodes:get', '/pods:get']);
    const sas = manifest('serviceaccounts.yaml')
      .map((o) => o.metadata.name)
      .sort();
    assert.deepEqual(sas, ['ztwim-agent', 'ztwim-server']);
    for (const [binding, sa] of [
      ['ztwim-server-k8s-psat', 'ztwim-server'],
      ['ztwim-agent', 'ztwim-agent'],
    ] as const) {
      const b = manifestObject('rbac.yaml', 'ClusterRoleBinding', binding);
      assert.deepEqual(b['subjects'], [{ kind: 'ServiceAccount', name: sa, namespace: DEPLOY_NAMESPACE }]);
      assert.deepEqual(b['roleRef'], { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: binding });
    }
  });

  it("the agent DaemonSet: hostPID, hostNetwork, projected token for spire-server at SPIRE's default path, our image, the ConfigMap's paths", () => {
    const pod = daemonSet().spec.template.spec;
    assert.equal(pod.serviceAccountName, 'ztwim-agent');
    assert.equal(pod.hostPID, true);
    assert.equal(pod.hostNetwork, true);
    assert.equal(pod.dnsPolicy, 'ClusterFirstWithHostNet');
    const [c] = pod.containers;
    assert.ok(c !== undefined);
    assert.equal(c.image, `ztwim:${VERSION}`, 'the tag image.sh builds');
    assert.deepEqual(c.command.slice(0, 3), ['ztwim', 'agent', 'run']);
    const conf = agentConf();
    const configMount = c.volumeMounts.find((m) => m.name === 'config');
    assert.equal(c.command[4], `${configMount?.mountPath}/agent.conf`);
    assert.equal(c.securityContext?.runAsUser, 0);
    assert.deepEqual(c.env.find((e) => e.name === 'MY_NODE_NAME')?.valueFrom, { fieldRef: { fieldPath: 'spec.nodeName' } });
    assert.equal(confValue(conf, 'node_name_env'), 'MY_NODE_NAME');

    const volume = (name: string): Volume => {
      const v = pod.volumes.find((x) => x.name === name);
      assert.ok(v !== undefined, name);
      return v;
    };
    const mount = (name: string): string => {
      const m = c.volumeMounts.find((x) => x.name === name);
      assert.ok(m !== undefined, name);
      return m.mountPath;
    };
    const token = volume('agent-token').projected?.sources[0]?.serviceAccountToken;
    assert.equal(token?.audience, 'spire-server');
    assert.equal(`${mount('agent-token')}/${token?.path}`, '/var/run/secrets/tokens/spire-agent', "k8s_psat's default token_path");
    assert.equal(confValue(conf, 'token_path'), undefined, 'the default path, not a setting');
    assert.equal(volume('config').configMap?.name, 'ztwim-agent');
    assert.equal(volume('bundle').configMap?.name, 'ztwim-bundle');
    assert.equal(confValue(conf, 'trust_bundle_path'), `${mount('bundle')}/bundle.crt`);
    const socketPath = confValue(conf, 'socket_path') ?? '';
    assert.equal(socketPath, `${mount('agent-sockets')}/spire-agent.sock`);
    assert.deepEqual(volume('agent-sockets').hostPath, { path: mount('agent-sockets'), type: 'DirectoryOrCreate' });
    assert.equal(confValue(conf, 'data_dir'), mount('data'));
  });

  it("the CSI driver DaemonSet: host network (no CNI needed to start), our image, serving the agent DaemonSet's socket dir", () => {
    const ds = manifestObject('csi-driver.yaml', 'DaemonSet', 'ztwim-csi-driver') as unknown as { spec: { template: { spec: PodSpec } } };
    const pod = ds.spec.template.spec;
    // without it the pod waits for a CNI sandbox, forever on a node whose CNI is loopback-only
    assert.equal(pod.hostNetwork, true);
    assert.equal(pod.containers[0]?.image, `ztwim:${VERSION}`);
    const agentSockets = daemonSet().spec.template.spec.volumes.find((v) => v.name === 'agent-sockets')?.hostPath?.path;
    assert.equal(pod.volumes.find((v) => v.name === 'spire-agent-socket-dir')?.hostPath?.path, agentSockets);
    assert.equal(manifestObject('csi-driver.yaml', 'CSIDriver').metadata.name, 'csi.spiffe.io');
  });

  it("server.conf allows exactly the agent DaemonSet's service account for cluster test, with the audience the token is projected for", () => {
    const conf = serverConf();
    assert.match(conf, /NodeAttestor "k8s_psat"/);
    assert.match(conf, /^\s*"test" = \{/m);
    assert.match(conf, /^\s*service_account_allow_list = \["ztwim:ztwim-agent"\]$/m);
    assert.match(conf, /^\s*audience = \["spire-server"\]$/m);
    assert.equal(confValue(agentConf(), 'cluster'), 'test');
    assert.equal(confValue(serverConf(), 'bind_port'), confValue(agentConf(), 'server_port'));
    assert.equal(confValue(serverConf(), 'trust_domain'), confValue(agentConf(), 'trust_domain'));
  });

  it('inNamespace moves namespaced objects and suffixes cluster-scoped RBAC with its subjects and role refs', () => {
    const moved = inNamespace([...manifest('serviceaccounts.yaml'), ...manifest('rbac.yaml')], 'e2e-x');
    assert.ok(moved.filter((o) => o.kind === 'ServiceAccount').every((o) => o.metadata.namespace === 'e2e-x'));
    const b = moved.find((o) => o.kind === 'ClusterRoleBinding' && o.metadata.name === 'ztwim-agent-e2e-x');
    assert.ok(b !== undefined);
    assert.deepEqual(b['subjects'], [{ kind: 'ServiceAccount', name: 'ztwim-agent', namespace: 'e2e-x' }]);
    assert.equal((b['roleRef'] as { name: string }).name, 'ztwim-agent-e2e-x');
    assert.ok(moved.some((o) => o.kind === 'ClusterRole' && o.metadata.name === 'ztwim-agent-e2e-x'));
    assert.equal(manifestObject('rbac.yaml', 'ClusterRole', 'ztwim-agent').metadata.name, 'ztwim-agent', 'the shipped objects are untouched');
  });

  it('setConfValue sets a key that appears once and refuses a missing or repeated one', () => {
    assert.equal(setConfValue('a {\n  x = "1"\n}\n', 'x', '2'), 'a {\n  x = "2"\n}\n');
    assert.equal(setConfValue('  p = 1\n', 'p', 5), '  p = 5\n');
    assert.equal(setConfValue('  l = ["a"]\n', 'l', ['b', 'c']), '  l = ["b","c"]\n');
    assert.throws(() => setConfValue('  y = 1\n', 'x', 2), /expected one "x = \.\.\." line, found 0/);
    assert.throws(() => setConfValue('  x = 1\n  x = 2\n', 'x', 2), /found 2/);
  });
});

describe('deploy/k8s configs and SPIRE v1.13.0', () => {
  it("spire-server validate and spire-agent validate accept server.conf and the agent ConfigMap's agent.conf", async () => {
    const tmp = makeTmpDir('ztwim-deploy-');
    try {
      const server = tmp.write(
        'server.conf',
        setConfValues(serverConf(), {
          socket_path: tmp.file('api.sock'),
          data_dir: tmp.path,
          connection_string: tmp.file('ds.sqlite3'),
          keys_path: tmp.file('keys.json'),
          kube_config_file: tmp.file('kubeconfig'),
        }),
      );
      const s = await runCommand(spireServerBin(), ['validate', '-config', server], tmp.path);
      assert.equal(s.status, 0, s.stdout + s.stderr);
      assert.match(s.stdout, /configuration file is valid/);
      writeFileSync(tmp.file('bundle.crt'), '');
      const agent = tmp.write(
        'agent.conf',
        setConfValues(agentConf(), {
          data_dir: tmp.path,
          socket_path: tmp.file('agent.sock'),
          trust_bundle_path: tmp.file('bundle.crt'),
        }),
      );
      const a = await runCommand(spireAgentBin(), ['validate', '-config', agent], tmp.path);
      assert.equal(a.status, 0, a.stdout + a.stderr);
      assert.match(a.stdout, /configuration file is valid/);
      // and it does refuse what is not SPIRE's format
      const bad = tmp.write('bad.conf', agentConf().replace('plugins {', 'plugins {{'));
      const b = await runCommand(spireAgentBin(), ['validate', '-config', bad], tmp.path);
      assert.notEqual(b.status, 0);
    } finally {
      tmp.cleanup();
    }
  });
});
