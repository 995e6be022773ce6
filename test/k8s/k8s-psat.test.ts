// k8s_psat node attestation on the project's real test cluster (scripts/k8s/cluster.sh), both
// directions with SPIRE v1.13.0's own binaries on the host:
//   - a real spire-agent with k8s_psat attests to `ztwim server` and gets its entries;
//   - a ztwim agent with k8s_psat attests to a real spire-server with k8s_psat and gets its entries;
//   - for the same pod-bound token both servers give the same agent ID and the same selectors;
//   - the refusals (wrong audience, service account not allowed, unknown cluster, token of a
//     deleted pod, token of a pod on a node that is gone) come from both servers, same code and text.
// The servers use a kubeconfig of a ServiceAccount with only SPIRE's documented RBAC
// (tokenreviews create, pods and nodes get), not the admin one. Tokens come from the TokenRequest
// API, bound to running hostNetwork busybox pods, audience spire-server.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLogger, isZtwimError, parseConfigText, silentLogger } from '@ztwim/core';
import { buildAgentConfig, startAgent, type AgentConfig, type RunningAgent } from '@ztwim/agent';
import { agentConf } from '../interop/lib/server-conf.ts';
import { freePort, runBinary, supervise } from '../interop/lib/spire-admin.ts';
import { spireAgentBin } from '../interop/lib/peers.ts';
import { startSpireServer, type SpireServer } from '../interop/lib/spire-server.ts';
import { makeTmpDir, type TmpDir } from '../interop/lib/tmp.ts';
import { until } from '../interop/lib/wait.ts';
import { startStack, type Stack } from '../interop/lib/ztwim-stack.ts';
import { ensureCluster, kubectl, waitFor, type Pod } from './lib/cluster.ts';
import { psatFixture, type PsatFixture } from './lib/psat-fixture.ts';

const TD = 'example.org';
const CLUSTER = 'test';

/** The server plugin block, the same text for spire-server and ztwim server. */
const serverPlugin = (kubeconfig: string): string => `NodeAttestor "k8s_psat" {
    plugin_data {
      clusters = {
        "${CLUSTER}" = {
          service_account_allow_list = ["NS:spire-agent"]
          kube_config_file = "${kubeconfig}"
          allowed_pod_label_keys = ["tier"]
          allowed_node_label_keys = ["kubernetes.io/hostname"]
        }
      }
    }
  }`;

const agentPlugin = (tokenPath: string, cluster = CLUSTER): string => `NodeAttestor "k8s_psat" {
    plugin_data {
      cluster = "${cluster}"
      token_path = "${tokenPath}"
    }
  }`;

/** `spire-agent api fetch jwt` on the socket until it returns the SVID of /psat/<name>; its output. */
async function fetchJwt(socketPath: string, name: string, agentLogs: () => string): Promise<string> {
  let last = '';
  try {
    // (not spawnSync: the ztwim server or agent answering runs in this process)
    return await until(
      `the SVID of /psat/${name}`,
      async () => {
        const r = await runBinary(spireAgentBin(), ['api', 'fetch', 'jwt', '-audience', 'psat', '-socketPath', socketPath], { timeoutMs: 10_000 });
        last = `status ${String(r.status)}\n${r.stdout}${r.stderr}`;
        return r.stdout.includes(`spiffe://${TD}/psat/${name}`) ? r.stdout : undefined;
      },
      60_000,
    );
  } catch (e) {
    throw new Error(`${(e as Error).message}; last fetch: ${last}\nagent log:\n${agentLogs().slice(-3000)}`);
  }
}

/** `Selectors : type:value` lines of `spire-server agent show`. */
function spireSelectors(server: SpireServer, id: string): string[] {
  const out = server.cli(['agent', 'show', '-spiffeID', id]);
  return [...out.matchAll(/^Selectors\s*:\s*(\S+)$/gm)].map((m) => m[1] as string).sort();
}

describe('k8s_psat on the real cluster, with SPIRE v1.13.0', { timeout: 600_000 }, () => {
  let tmp: TmpDir;
  let f: PsatFixture;
  let agentPod: Pod;
  let nodeUid: string;
  let goodToken: string;
  let stack: Stack;
  let spire: SpireServer;
  let spirePort: number;
  const agents: RunningAgent[] = [];
  const uid = process.getuid?.() ?? 0;

  const tokenFile = (name: string, token: string): string => tmp.write(`${name}.token`, token);

  /** A ztwim agent config for k8s_psat against the ztwim server or the spire-server. */
  const ourAgentConfig = async (to: 'ztwim' | 'spire', name: string, tokenPath: string, cluster = CLUSTER): Promise<AgentConfig> => {
    if (to === 'ztwim') return stack.agentConfig({ name, token: null, nodeAttestor: agentPlugin(tokenPath, cluster), syncInterval: '500ms' });
    const conf = agentConf({
      serverPort: spirePort,
      trustDomain: TD,
      dataDir: tmp.file(`${name}-data`),
      socketPath: tmp.file(`${name}.sock`),
      keyManager: 'memory',
      nodeAttestor: agentPlugin(tokenPath, cluster),
    });
    return {
      ...buildAgentConfig(parseConfigText(conf, 'hcl'), `${name}.conf`),
      trustBundle: spire.cli(['bundle', 'show']),
    };
  };

  /** The refusal our agent reports when attesting with `token` to either server: "<Code>: <message>". */
  const refusal = async (to: 'ztwim' | 'spire', name: string, token: string, cluster = CLUSTER): Promise<string> => {
    const cfg = await ourAgentConfig(to, `${to}-${name}`, tokenFile(`${to}-${name}`, token), cluster);
    let agent: RunningAgent | undefined;
    try {
      agent = await startAgent(cfg, { logger: silentLogger() });
    } catch (e) {
      assert.ok(isZtwimError(e), String(e));
      const m = /^node attestation failed: (.*)$/s.exec(e.message);
      assert.ok(m !== null, e.message);
      return m[1] as string;
    }
    await agent.close();
    assert.fail(`${name}: ${to} server accepted the token (agent ${agent.agentId})`);
  };

  before(async () => {
    tmp = makeTmpDir('ztwim-k8s-psat-');
    const env = await ensureCluster();
    f = await psatFixture(env, 'psat', tmp.file('server-kubeconfig'));
    agentPod = await f.runPod('agent-0', 'spire-agent', { labels: { tier: 'node-agent', other: 'x' } });
    nodeUid = (await f.getNode(agentPod.spec.nodeName ?? '')).metadata.uid;
    goodToken = await f.podToken(agentPod, ['spire-server']);
    const plugin = serverPlugin(f.serverKubeconfig).replace('NS:', `${f.ns}:`);
    // A short agent SVID TTL on our server: our agents re-attest at ~10 s (half-life).
    stack = await startStack({ trustDomain: TD, pluginsExtra: plugin, serverExtra: '  agent_ttl = "20s"' });
    spirePort = await freePort();
    spire = await startSpireServer(tmp, { trustDomain: TD, bindPort: spirePort, extraPlugins: plugin });
  });
  after(async () => {
    for (const a of agents) await a.close().catch(() => undefined);
    await stack?.close();
    await spire?.stop();
    await f?.cleanup();
    tmp?.cleanup();
  });

  it('a real spire-agent with k8s_psat attests to ztwim server and gets its entries', async () => {
    const agentId = `spiffe://${TD}/spire/agent/k8s_psat/${CLUSTER}/${nodeUid}`;
    await stack.createEntries([{ parentId: agentId, path: '/psat/from-spire-agent', selectors: [`unix:uid:${uid}`] }]);
    const dir = join(tmp.path, 'spire-agent');
    mkdirSync(join(dir, 'data'), { recursive: true });
    const sock = join(dir, 'workload.sock');
    const conf = tmp.write(
      'spire-agent.conf',
      agentConf({
        serverPort: stack.port,
        trustDomain: TD,
        dataDir: join(dir, 'data'),
        socketPath: sock,
        logLevel: 'DEBUG',
        keyManager: 'memory',
        trustBundlePath: tmp.write('ztwim-bundle.pem', await stack.bundlePem()),
        nodeAttestor: agentPlugin(tokenFile('spire-agent', goodToken)),
      }),
    );
    const sup = supervise(spawn(spireAgentBin(), ['run', '-config', conf], { stdio: ['ignore', 'pipe', 'pipe'] }));
    try {
      await until(
        'spire-agent Workload API socket',
        () => (sup.exited() !== undefined ? Promise.reject(new Error(`spire-agent exited:\n${sup.logs()}`)) : existsSync(sock) ? true : undefined),
        60_000,
      );
      const fetched = await fetchJwt(sock, 'from-spire-agent', () => sup.logs());
      assert.match(fetched, /token\(spiffe:\/\/example\.org\/psat\/from-spire-agent\)/);
      assert.match(sup.logs(), new RegExp(`Node attestation was successful.*spiffe_id="?${agentId.replaceAll('.', '\\.')}`), sup.logs());
      const listed = await stack.agentApi.getAgent({ id: { trustDomain: TD, path: `/spire/agent/k8s_psat/${CLUSTER}/${nodeUid}` } });
      assert.equal(listed.attestationType, 'k8s_psat');
      assert.equal(listed.canReattest, true);
    } finally {
      await sup.stop();
    }
  });

  it('a ztwim agent with k8s_psat attests to a real spire-server with k8s_psat and gets its entries', async () => {
    const cfg = await ourAgentConfig('spire', 'ours-to-spire', tokenFile('ours-to-spire', goodToken));
    const agent = await startAgent(cfg, { logger: silentLogger() });
    agents.push(agent);
    assert.equal(agent.agentId, `spiffe://${TD}/spire/agent/k8s_psat/${CLUSTER}/${nodeUid}`);
    assert.match(spire.cli(['agent', 'show', '-spiffeID', agent.agentId]), /Attestation type\s*:\s*k8s_psat/);
    spire.cli(['entry', 'create', '-parentID', agent.agentId, '-spiffeID', `spiffe://${TD}/psat/from-ztwim-agent`, '-selector', `unix:uid:${uid}`]);
    const r = await fetchJwt(cfg.socketPath, 'from-ztwim-agent', () => '');
    assert.match(r, /token\(spiffe:\/\/example\.org\/psat\/from-ztwim-agent\)/);
  });

  it('the same token gives the same agent ID and the same selectors from both servers', async () => {
    const ours = await stack.startAgent({ name: 'ours-to-ztwim', token: null, nodeAttestor: agentPlugin(tokenFile('ours-to-ztwim', goodToken)) });
    // (one agent per node ID at a time: the next test attests the same node again)
    await ours.agent.close();
    const id = `spiffe://${TD}/spire/agent/k8s_psat/${CLUSTER}/${nodeUid}`;
    assert.equal(ours.agent.agentId, id);
    const listed = await stack.agentApi.getAgent({ id: { trustDomain: TD, path: `/spire/agent/k8s_psat/${CLUSTER}/${nodeUid}` } });
    const ztwimSelectors = listed.selectors.map((s) => `${s.type}:${s.value}`).sort();
    const spireSel = spireSelectors(spire, id);
    assert.deepEqual(ztwimSelectors, spireSel);
    // and they are the ones of SPIRE's plugin for this pod and node
    const hostIp = (agentPod.status as { hostIP?: string }).hostIP ?? '';
    assert.deepEqual(
      ztwimSelectors,
      [
        `k8s_psat:agent_node_ip:${hostIp}`,
        `k8s_psat:agent_node_label:kubernetes.io/hostname:${agentPod.spec.nodeName ?? ''}`,
        `k8s_psat:agent_node_name:${agentPod.spec.nodeName ?? ''}`,
        `k8s_psat:agent_node_uid:${nodeUid}`,
        `k8s_psat:agent_ns:${f.ns}`,
        'k8s_psat:agent_pod_label:tier:node-agent',
        'k8s_psat:agent_pod_name:agent-0',
        `k8s_psat:agent_pod_uid:${agentPod.metadata.uid}`,
        'k8s_psat:agent_sa:spire-agent',
        `k8s_psat:cluster:${CLUSTER}`,
      ].sort(),
    );
  });

  it('our agent reads the token file at each re-attestation: without it the rotation fails naming the file, with a new token it succeeds', async () => {
    const lines: string[] = [];
    const logger = createLogger({
      level: 'info',
      destination: {
        write: (l: string) => {
          lines.push(l);
        },
      },
    });
    const path = tokenFile('rotating', goodToken);
    const { agent } = await stack.startAgent({ name: 'ours-rotating', token: null, nodeAttestor: agentPlugin(path), syncInterval: '500ms', deps: { logger } });
    agents.push(agent);
    unlinkSync(path);
    const failed = await until('a failed re-attestation', () => lines.find((l) => l.includes('Agent SVID rotation failed')), 40_000);
    assert.ok(failed.includes(`k8s_psat: unable to load token from ${path}: no such file`), failed);
    writeFileSync(path, await f.podToken(agentPod, ['spire-server']));
    const rotated = await until('a re-attestation with the new token', () => lines.find((l) => l.includes('Agent SVID rotated')), 30_000);
    assert.match(rotated, new RegExp(`k8s_psat/${CLUSTER}/${nodeUid}`));
  });

  it('refuses with the same code and text from both servers: wrong audience, service account not allowed, unknown cluster, deleted pod, pod of a node that is gone', async () => {
    const otherPod = await f.runPod('other-0', 'other');
    const doomed = await f.runPod('doomed-0', 'spire-agent');
    const doomedToken = await f.podToken(doomed, ['spire-server']);
    const ghost = await f.addGhostNode(`psat-ghost-${f.ns}`);
    const ghostPod = await f.runPod('ghost-0', 'spire-agent', { nodeName: ghost.name, wait: false });
    const ghostToken = await f.podToken(ghostPod, ['spire-server']);
    const cases: Array<{ name: string; token: string; cluster?: string; code: string }> = [
      { name: 'wrong audience', token: await f.podToken(agentPod, ['not-spire-server']), code: 'Internal' },
      { name: 'service account not allowed', token: await f.podToken(otherPod, ['spire-server']), code: 'PermissionDenied' },
      { name: 'unknown cluster', token: goodToken, cluster: 'elsewhere', code: 'InvalidArgument' },
    ];
    // A token of a deleted pod: the apiserver stops authenticating it.
    await kubectl(f.env, ['delete', 'pod', '-n', f.ns, 'doomed-0', '--wait=false']);
    await waitFor(
      "the deleted pod's token to be refused by TokenReview",
      async () => ((await f.tokenValid(doomedToken, ['spire-server'])) ? undefined : true),
      60_000,
    );
    cases.push({ name: 'deleted pod', token: doomedToken, code: 'Internal' });
    // A token of a pod on another node (no kubelet here): while that node exists the token
    // attests as that node on both servers (PSATs are bearer tokens, SPIRE has no caller check);
    // once the node is gone, both refuse.
    const idFor = async (to: 'ztwim' | 'spire'): Promise<string> => {
      const a = await startAgent(await ourAgentConfig(to, `${to}-ghost`, tokenFile(`${to}-ghost`, ghostToken)), { logger: silentLogger() });
      await a.close();
      return a.agentId;
    };
    const ghostId = `spiffe://${TD}/spire/agent/k8s_psat/${CLUSTER}/${ghost.uid}`;
    assert.deepEqual([await idFor('ztwim'), await idFor('spire')], [ghostId, ghostId]);
    await kubectl(f.env, ['delete', 'node', ghost.name, '--wait=false']);
    await waitFor(
      "the gone node's pod token to be refused by TokenReview",
      async () => ((await f.tokenValid(ghostToken, ['spire-server'])) ? undefined : true),
      120_000,
    );
    cases.push({ name: 'pod of a node that is gone', token: ghostToken, code: 'Internal' });

    const seen: Array<{ name: string; code: string; ztwim: string; spire: string }> = [];
    for (const c of cases) {
      const slug = c.name.replaceAll(' ', '-');
      seen.push({
        name: c.name,
        code: c.code,
        ztwim: await refusal('ztwim', slug, c.token, c.cluster),
        spire: await refusal('spire', slug, c.token, c.cluster),
      });
    }
    console.log(seen.map((r) => `${r.name}\n  ztwim: ${r.ztwim}\n  spire: ${r.spire}`).join('\n'));
    for (const r of seen) {
      // the same code and the same text, SPIRE's plugin prefix included
      assert.equal(r.spire.split(':')[0], r.code, `${r.name}: spire ${r.spire}`);
      assert.equal(r.ztwim, r.spire, r.name);
    }
  });
});
