// End to end on the real test node: a server on the host attests an agent DaemonSet
// with k8s_psat, and a workload pod gets its SPIFFE ID from its namespace and service account.
//
// ───── THE SEAMS: one parameter each (test/k8s/lib/e2e-parts.ts) ─────
//   SERVER  ztwimServer | spireServer                 host process, same deploy/k8s/server.conf
//   AGENT   ztwimAgentDaemonSet | spireAgentDaemonSet  same deploy/k8s/agent-daemonset.yaml and
//                                                      agent-configmap.yaml; image + command only
//   SOCKET  csiSocket | hostPathSocket                the `ztwim csi` DaemonSet + CSIDriver of
//                                                      deploy/k8s/csi-driver.yaml and a
//                                                      {csi: {driver: csi.spiffe.io, readOnly: true}}
//                                                      volume, or a hostPath of the agent's socket dir
//   REGISTRATION entryByHand | entryByRegistrar       `entry create` by hand, or a ClusterSPIFFEID
//                                                      turned into the entry by `ztwim registrar`
// CI runs ztwim/ztwim/csi, ztwim server + SPIRE's agent over csi, the SPIRE-only reference
// (spire/spire/hostPath), all by hand, and ztwim/ztwim/csi through the registrar (combinations()
// below); ZTWIM_E2E_SERVER, ZTWIM_E2E_AGENT, ZTWIM_E2E_SOCKET, ZTWIM_E2E_REGISTRATION
// (`registrar`) pick one combination instead. Only one csi.spiffe.io can register with the
// shared kubelet: csiSocket holds a node-wide lock (holdKubeletPlugin) that csi-driver.test.ts
// takes too. Everything else (manifests, entry, pod spec, assertions) stays the same for every
// combination.
//
// What runs, in namespace ztwim-e2e-<random> (the shipped `ztwim` namespace, made unique because
// the cluster is shared; cluster-scoped RBAC gets the same suffix):
//   1. deploy/k8s/serviceaccounts.yaml + rbac.yaml; deploy/k8s/server-kubeconfig.sh writes a
//      kubeconfig with the ztwim-server service account's token (least privilege);
//   2. the server with deploy/k8s/server.conf: k8s_psat for cluster `test` with that kubeconfig,
//      only the agent's service account allowed; ports, paths and trust domain set for the test;
//   3. its bundle as ConfigMap ztwim-bundle, the agent ConfigMap and DaemonSet (hostPID,
//      hostNetwork, projected token audience spire-server), socket dir a fresh host temp dir;
//   4. the agent attests: `agent list` shows spiffe://<td>/spire/agent/k8s_psat/test/<node UID>;
//   5. entry -parentID that -spiffeID spiffe://<td>/ns/<demo ns>/sa/client
//      -selector k8s:ns:<demo ns> -selector k8s:sa:client; or (entryByRegistrar) a ClusterSPIFFEID
//      for pods labelled app=client in the demo namespace and `ztwim registrar` (in-process) on
//      the server's socket, which makes the entry (selector k8s:pod-uid:<uid>) once the pod exists;
//   6. in namespace demo-<random> (a `demo` namespace, made unique for the same reason), pods from our
//      image with service accounts `client` and `other` (labels app=client, app=other), the socket volume and
//      SPIFFE_ENDPOINT_SOCKET: `ztwim api fetch x509` and `fetch jwt` in `client` get
//      spiffe://<td>/ns/<demo ns>/sa/client; in `other` they get PermissionDenied.
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe } from 'node:test';
import { freePort } from '../interop/lib/net.ts';
import { REPO_ROOT } from '../interop/lib/peers.ts';
import { makeTmpDir } from '../interop/lib/tmp.ts';
import { runCommand, stopProc, type CliRun, type Proc } from '../interop/lib/ztwim-cli.ts';
import { applyManifest, childEnv, createNamespace, ensureCluster, kubectl, waitFor, waitPodRunning, type ClusterEnv } from './lib/cluster.ts';
import { stepSequence } from './lib/steps.ts';
import { inNamespace, manifest, manifestObject, setConfValues, DEPLOY_DIR, type K8sObject } from './lib/deploy.ts';
import { importTestImage } from './lib/image.ts';
import {
  csiSocket,
  entryByHand,
  entryByRegistrar,
  hostPathSocket,
  spireAgentDaemonSet,
  spireServer,
  startServer,
  WORKLOAD_IMAGE,
  ztwimAgentDaemonSet,
  ztwimServer,
  type AgentImpl,
  type Registration,
  type RegistrationContext,
  type ServerImpl,
  type SocketAccess,
} from './lib/e2e-parts.ts';

// ───── the seams ─────
/** One run of the flow: which server, which agent DaemonSet, how pods reach the agent socket. */
interface Combination {
  server: ServerImpl;
  agent: AgentImpl;
  socket: SocketAccess;
  registration: Registration;
}

/**
 * What CI runs, one after the other (one csi.spiffe.io at a time on the shared kubelet): all
 * ztwim, SPIRE's agent attached to ztwim server, and SPIRE's server and agent (hostPath socket)
 * as the reference (~30 s). ZTWIM_E2E_SERVER / ZTWIM_E2E_AGENT
 * (`ztwim` or `spire`) and ZTWIM_E2E_SOCKET (`csi` or `hostPath`) pick one combination instead;
 * all three `spire` + hostPath is the SPIRE-only reference run.
 */
function combinations(): Combination[] {
  const pick = process.env;
  if (
    pick['ZTWIM_E2E_SERVER'] === undefined &&
    pick['ZTWIM_E2E_AGENT'] === undefined &&
    pick['ZTWIM_E2E_SOCKET'] === undefined &&
    pick['ZTWIM_E2E_REGISTRATION'] === undefined
  ) {
    return [
      { server: ztwimServer, agent: ztwimAgentDaemonSet, socket: csiSocket, registration: entryByHand },
      { server: ztwimServer, agent: spireAgentDaemonSet, socket: csiSocket, registration: entryByHand },
      // the reference: SPIRE on both sides, as the flow runs without any of ours but the image
      { server: spireServer, agent: spireAgentDaemonSet, socket: hostPathSocket, registration: entryByHand },
      // Kubernetes part 2: no entry by hand, the registrar makes it from a ClusterSPIFFEID
      { server: ztwimServer, agent: ztwimAgentDaemonSet, socket: csiSocket, registration: entryByRegistrar },
    ];
  }
  /** `name`'s value: `ours` (ztwim's part, the default) or `otherName`. */
  const choose = <T>(name: string, ours: T, other: T, otherName: string): T => {
    const oursName = name === 'ZTWIM_E2E_SOCKET' ? 'csi' : 'ztwim';
    const v = pick[name] ?? oursName;
    if (v !== oursName && v !== otherName) throw new Error(`${name}=${v}: expected ${oursName} or ${otherName}`);
    return v === oursName ? ours : other;
  };
  return [
    {
      server: choose('ZTWIM_E2E_SERVER', ztwimServer, spireServer, 'spire'),
      agent: choose('ZTWIM_E2E_AGENT', ztwimAgentDaemonSet, spireAgentDaemonSet, 'spire'),
      socket: choose('ZTWIM_E2E_SOCKET', csiSocket, hostPathSocket, 'hostPath'),
      registration: pick['ZTWIM_E2E_REGISTRATION'] === 'registrar' ? entryByRegistrar : entryByHand,
    },
  ];
}

const TRUST_DOMAIN = 'e2e.ztwim.test';
/** Where the workload pods mount the socket dir, and the socket name the agent config uses. */
const POD_SOCKET_DIR = '/run/spire/sockets';
const SOCKET_NAME = 'spire-agent.sock';

function serverCli(SERVER: ServerImpl, args: readonly string[], socket: string, cwd: string): Promise<CliRun> {
  const [cmd = '', ...pre] = SERVER.argv();
  return runCommand(cmd, [...pre, ...args, '-socketPath', socket], cwd, { timeoutMs: 30_000 });
}

/** A long-running workload pod from our image with the agent socket volume; waits until Running. */
async function workloadPod(env: ClusterEnv, ns: string, name: string, serviceAccount: string, volume: Record<string, unknown>): Promise<void> {
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: ns, labels: { app: name } },
    spec: {
      serviceAccountName: serviceAccount,
      // the test node has a loopback-only CNI: pods run on the host network
      hostNetwork: true,
      restartPolicy: 'Never',
      terminationGracePeriodSeconds: 1,
      containers: [
        {
          name: 'workload',
          image: WORKLOAD_IMAGE,
          imagePullPolicy: 'Never',
          // stays up for `kubectl exec`; the image has node and ztwim, no shell
          command: ['node', '-e', 'setInterval(() => {}, 1 << 30)'],
          env: [{ name: 'SPIFFE_ENDPOINT_SOCKET', value: `unix://${POD_SOCKET_DIR}/${SOCKET_NAME}` }],
          volumeMounts: [{ name: 'spiffe-workload-api', mountPath: POD_SOCKET_DIR, readOnly: true }],
        },
      ],
      volumes: [{ name: 'spiffe-workload-api', ...volume }],
    },
  };
  await applyManifest(env, JSON.stringify(pod));
  await waitPodRunning(env, ns, name, 120_000);
}

/** `ztwim <args>` in the pod's container; never throws: status and output. */
async function execInPod(env: ClusterEnv, ns: string, pod: string, args: readonly string[]): Promise<CliRun> {
  return await runCommand(join(env.bin, 'kubectl'), ['--kubeconfig', env.kubeconfig, 'exec', '-n', ns, pod, '--', 'ztwim', ...args], REPO_ROOT, {
    env: childEnv(env),
    timeoutMs: 60_000,
  });
}

for (const { server: SERVER, agent: AGENT, socket: SOCKET, registration: REGISTRATION } of combinations())
  describe(`end to end on the test node: ${SERVER.name}, ${AGENT.name}, socket by ${SOCKET.name}, ${REGISTRATION.name}`, () => {
    const tmp = makeTmpDir('ztwim-e2e-');
    let env: ClusterEnv;
    let ns: string;
    let demo: string;
    let server: Proc | undefined;
    let serverSocket: string;
    let serverPort: number;
    const hostSocketDir = join(tmp.path, 'agent-sockets');
    const clusterScoped: string[] = [];
    let nodeUid: string;
    let agentId: string;
    let clientId: string;

    /**
     * The steps build on each other: once one fails, the later ones fail at once naming it
     * (instead of each waiting out its own timeout).
     */
    const step = stepSequence();

    before(async () => {
      env = await ensureCluster();
      assert.equal(env.clusterName, 'test');
      ns = await createNamespace(env, 'ztwim-e2e');
      demo = await createNamespace(env, 'demo');
      const [agentImage, workloadImage] = await Promise.all([
        importTestImage(env, { spire: AGENT.spire }),
        AGENT.image === WORKLOAD_IMAGE ? undefined : importTestImage(env),
      ]);
      assert.equal(agentImage.name, `docker.io/library/${AGENT.image}`);
      if (workloadImage !== undefined) assert.equal(workloadImage.name, `docker.io/library/${WORKLOAD_IMAGE}`);
      nodeUid = (await kubectl(env, ['get', 'node', env.nodeName, '-o', 'jsonpath={.metadata.uid}'])).trim();
      assert.match(nodeUid, /^[0-9a-f-]{36}$/);
      agentId = `spiffe://${TRUST_DOMAIN}/spire/agent/k8s_psat/${env.clusterName}/${nodeUid}`;
      clientId = `spiffe://${TRUST_DOMAIN}/ns/${demo}/sa/client`;
    });

    after(async () => {
      // the pods first: their volumes unmount through the CSI driver, which goes next
      if (env !== undefined && demo !== undefined)
        await kubectl(env, ['delete', 'pods', '--all', '-n', demo, '--wait=true', '--timeout=60s'], { timeoutMs: 90_000 }).catch(() => undefined);
      if (REGISTRATION.tearDown !== undefined && env !== undefined) await REGISTRATION.tearDown(registration());
      if (SOCKET.tearDown !== undefined) await SOCKET.tearDown(env, ns);
      if (server !== undefined) await stopProc(server);
      for (const obj of clusterScoped) await kubectl(env, ['delete', obj, '--ignore-not-found', '--wait=false']).catch(() => undefined);
      tmp.cleanup();
    });

    step('applies the shipped service accounts and least-privilege RBAC; server-kubeconfig.sh gives the server a token of its own', async () => {
      const objects = inNamespace([...manifest('serviceaccounts.yaml'), ...manifest('rbac.yaml')], ns);
      for (const o of objects) if (o.kind.startsWith('Cluster')) clusterScoped.push(`${o.kind.toLowerCase()}/${o.metadata.name}`);
      await applyManifest(env, objects.map((o) => JSON.stringify(o)).join('\n'));
      const kubeconfig = join(tmp.path, 'kubeconfig-test');
      const r = await runCommand('bash', [join(DEPLOY_DIR, 'server-kubeconfig.sh'), kubeconfig, '--namespace', ns, '--duration', '1h'], REPO_ROOT, {
        env: childEnv(env),
      });
      assert.equal(r.status, 0, r.stderr);
      // what the server may do with it, and what it may not
      const as = ['--kubeconfig', kubeconfig];
      const can = async (verb: string, resource: string): Promise<string> =>
        (await runCommand(join(env.bin, 'kubectl'), [...as, 'auth', 'can-i', verb, resource], REPO_ROOT, { env: childEnv(env) })).stdout.trim();
      assert.equal(await can('create', 'tokenreviews.authentication.k8s.io'), 'yes');
      assert.equal(await can('get', 'pods'), 'yes');
      assert.equal(await can('get', 'nodes'), 'yes');
      assert.equal(await can('list', 'pods'), 'no');
      assert.equal(await can('get', 'secrets'), 'no');
    });

    step(`runs ${SERVER.name} on the host with deploy/k8s/server.conf (k8s_psat, cluster test)`, async () => {
      const dir = join(tmp.path, 'server');
      mkdirSync(dir);
      serverSocket = join(dir, 'api.sock');
      serverPort = await freePort();
      const conf = setConfValues(readFileSync(join(DEPLOY_DIR, 'server.conf'), 'utf8'), {
        bind_address: '127.0.0.1',
        bind_port: String(serverPort),
        socket_path: serverSocket,
        trust_domain: TRUST_DOMAIN,
        data_dir: dir,
        connection_string: join(dir, 'datastore.sqlite3'),
        keys_path: join(dir, 'keys.json'),
        kube_config_file: join(tmp.path, 'kubeconfig-test'),
        service_account_allow_list: [`${ns}:ztwim-agent`],
      });
      assert.match(conf, new RegExp(`^\\s*"${env.clusterName}" = \\{`, 'm'), 'the shipped config names cluster test');
      const confPath = join(dir, 'server.conf');
      writeFileSync(confPath, conf);
      server = startServer(SERVER, confPath, dir);
      await waitFor(
        `${SERVER.name} healthy`,
        async () => {
          if (server?.child.exitCode !== null) assert.fail(`${SERVER.name} exited ${server?.child.exitCode}:\n${server?.out()}`);
          return (await serverCli(SERVER, ['healthcheck'], serverSocket, dir)).status === 0 ? true : undefined;
        },
        60_000,
      );
    });

    step(`runs ${AGENT.name} from the shipped manifests and it attests with k8s_psat as the node's agent`, async () => {
      const bundle = await serverCli(SERVER, ['bundle', 'show'], serverSocket, tmp.path);
      assert.equal(bundle.status, 0, bundle.stderr);
      assert.match(bundle.stdout, /BEGIN CERTIFICATE/);
      mkdirSync(hostSocketDir, { mode: 0o755 });
      chmodSync(hostSocketDir, 0o755);

      const kubeletPort = Number(new URL(env.kubeletUrl).port);
      const cm = inNamespace([manifestObject('agent-configmap.yaml', 'ConfigMap')], ns)[0] as K8sObject & { data: Record<string, string> };
      const agentConf = cm.data['agent.conf'];
      assert.ok(agentConf !== undefined);
      cm.data['agent.conf'] = setConfValues(agentConf, {
        server_address: '127.0.0.1',
        server_port: String(serverPort),
        trust_domain: TRUST_DOMAIN,
        cluster: env.clusterName,
        kubelet_secure_port: kubeletPort,
        log_level: 'DEBUG',
      });
      assert.match(agentConf, new RegExp(`socket_path = "/run/spire/agent-sockets/${SOCKET_NAME}"`));
      const bundleCm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'ztwim-bundle', namespace: ns }, data: { 'bundle.crt': bundle.stdout } };

      const ds = inNamespace([manifestObject('agent-daemonset.yaml', 'DaemonSet')], ns)[0] as DaemonSet;
      const pod = ds.spec.template.spec;
      const container = pod.containers[0];
      assert.ok(container !== undefined);
      // what the DaemonSet needs (host PID and network, the projected token), as shipped
      assert.equal(pod.hostPID, true);
      assert.equal(pod.hostNetwork, true);
      const token = pod.volumes.find((v) => v.projected !== undefined)?.projected?.sources[0]?.serviceAccountToken;
      assert.deepEqual({ audience: token?.audience, path: token?.path }, { audience: 'spire-server', path: 'spire-agent' });
      assert.ok(
        container.volumeMounts.some((m) => m.mountPath === '/var/run/secrets/tokens'),
        "the token at SPIRE's default path",
      );
      // the seams: image and command; the socket dir is a fresh host dir on the shared node
      container.image = AGENT.image;
      container.imagePullPolicy = 'Never';
      container.command = [...AGENT.command];
      const sockets = pod.volumes.find((v) => v.name === 'agent-sockets');
      assert.ok(sockets?.hostPath !== undefined);
      sockets.hostPath.path = hostSocketDir;
      await applyManifest(env, [cm, bundleCm, ds].map((o) => JSON.stringify(o)).join('\n'));

      const podName = await waitFor('the agent DaemonSet pod', async () => {
        // the DaemonSet's pod on the test node (another test file may have added a node meanwhile)
        const sel = ['-l', 'app.kubernetes.io/name=ztwim-agent', '--field-selector', `spec.nodeName=${env.nodeName}`];
        const out = await kubectl(env, ['get', 'pods', '-n', ns, ...sel, '-o', 'jsonpath={.items[*].metadata.name}']);
        return out.trim() !== '' ? out.trim().split(' ')[0] : undefined;
      });
      assert.ok(podName !== undefined);
      await waitPodRunning(env, ns, podName, 120_000);
      await waitFor(
        `agent ${agentId} attested`,
        async () => {
          const r = await serverCli(SERVER, ['agent', 'list'], serverSocket, tmp.path);
          return r.stdout.includes(agentId) ? true : undefined;
        },
        90_000,
      ).catch(async (e: Error) => {
        const logs = await kubectl(env, ['logs', '-n', ns, podName]).catch((x: Error) => x.message);
        throw new Error(`${e.message}\nagent logs:\n${logs}\nserver:\n${server?.out() ?? ''}`);
      });
      const show = await serverCli(SERVER, ['agent', 'show', '-spiffeID', agentId], serverSocket, tmp.path);
      assert.equal(show.status, 0, show.stderr);
      assert.match(show.stdout, new RegExp(`k8s_psat:agent_sa:ztwim-agent`));
      assert.match(show.stdout, new RegExp(`k8s_psat:agent_ns:${ns}`));
      assert.match(show.stdout, new RegExp(`k8s_psat:cluster:${env.clusterName}`));
      // the shipped liveness probe's command passes against this agent
      const probe = container.livenessProbe?.exec?.command;
      assert.ok(probe !== undefined && probe.length > 0, 'the DaemonSet has an exec liveness probe');
      const live = await runCommand(join(env.bin, 'kubectl'), ['--kubeconfig', env.kubeconfig, 'exec', '-n', ns, podName, '--', ...probe], REPO_ROOT, {
        env: childEnv(env),
        timeoutMs: 60_000,
      });
      assert.equal(live.status, 0, `liveness probe ${probe.join(' ')}: ${live.stdout}${live.stderr}`);
    });

    const registration = (): RegistrationContext => ({
      env,
      namespace: demo,
      trustDomain: TRUST_DOMAIN,
      agentId,
      clientId,
      serverSocket,
      cli: (args) => serverCli(SERVER, args, serverSocket, tmp.path),
    });

    step(`registers the workload: ${REGISTRATION.name}`, async () => {
      await REGISTRATION.register(registration());
    });

    step('a pod of service account client gets its X509-SVID and JWT-SVID with ztwim api fetch from our image', async () => {
      if (SOCKET.setUp !== undefined) await SOCKET.setUp(env, ns, hostSocketDir, WORKLOAD_IMAGE);
      await kubectl(env, ['create', 'serviceaccount', '-n', demo, 'client']);
      await workloadPod(env, demo, 'client', 'client', SOCKET.volume(hostSocketDir));
      // the agent picks the entry up on its next sync: until then the answer is PermissionDenied
      let last: CliRun | undefined;
      const x509 = await waitFor(
        'an X509-SVID in pod client',
        async () => {
          last = await execInPod(env, demo, 'client', ['api', 'fetch', 'x509']);
          return last.status === 0 ? last.stdout : undefined;
        },
        90_000,
      ).catch((e: Error) => assert.fail(`${e.message}: ${last?.stdout ?? ''}${last?.stderr ?? ''}`));
      assert.match(x509, new RegExp(`^SPIFFE ID:\\t\\t${clientId.replace(/\./g, '\\.')}$`, 'm'));
      const jwt = await execInPod(env, demo, 'client', ['api', 'fetch', 'jwt', '-audience', 'e2e']);
      assert.equal(jwt.status, 0, jwt.stderr);
      assert.match(jwt.stdout, new RegExp(`^token\\(${clientId.replace(/\./g, '\\.')}\\):$`, 'm'));
      const token = /^\t(\S+)$/m.exec(jwt.stdout)?.[1];
      assert.ok(token !== undefined, jwt.stdout);
      const claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { sub: string; aud: string[] | string };
      assert.equal(claims.sub, clientId);
      assert.deepEqual([claims.aud].flat(), ['e2e']);
    });

    step('a pod of another service account in the same namespace gets PermissionDenied', async () => {
      await kubectl(env, ['create', 'serviceaccount', '-n', demo, 'other']);
      await workloadPod(env, demo, 'other', 'other', SOCKET.volume(hostSocketDir));
      for (const kind of ['x509', 'jwt']) {
        const r = await execInPod(env, demo, 'other', ['api', 'fetch', kind, ...(kind === 'jwt' ? ['-audience', 'e2e'] : [])]);
        assert.notEqual(r.status, 0, `${kind}: ${r.stdout}`);
        assert.match(r.stderr + r.stdout, /code = PermissionDenied/, kind);
      }
    });
  });

/** The parts of the DaemonSet manifest the test reads and sets. */
interface DaemonSet extends K8sObject {
  spec: {
    template: {
      spec: {
        hostPID?: boolean;
        hostNetwork?: boolean;
        containers: Array<{
          image: string;
          imagePullPolicy?: string;
          command?: string[];
          volumeMounts: Array<{ name: string; mountPath: string }>;
          livenessProbe?: { exec?: { command: string[] } };
        }>;
        volumes: Array<{
          name: string;
          hostPath?: { path: string; type?: string };
          projected?: { sources: Array<{ serviceAccountToken?: { path: string; audience?: string; expirationSeconds?: number } }> };
        }>;
      };
    };
  };
}
