// `ztwim csi` as the kubelet runs it, with real mounts (this machine's tests run as root):
// NodePublishVolume bind-mounts the socket directory read-only (mountinfo says `ro`, writes fail
// with EROFS, files the agent adds later show through), publish and unpublish are idempotent
// (across a driver restart too),
// the registration socket answers the kubelet's calls, a refused registration ends the process
// with the kubelet's error, and SIGTERM removes both sockets.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createClient, type Client } from '@connectrpc/connect';
import { readMountInfo } from '@ztwim/csi';
import { createUnixGrpcTransport, CsiNodeService, PluginRegistrationService, VolumeCapability_AccessMode_Mode, type GrpcClientTransport } from '@ztwim/proto';
import { makeTmpDir, type TmpDir } from '../interop/lib/tmp.ts';
import { until } from '../interop/lib/wait.ts';
import { startZtwim, stopProc, type Proc } from '../interop/lib/ztwim-cli.ts';

async function mountsAt(path: string): Promise<Array<{ options: readonly string[] }>> {
  return (await readMountInfo()).filter((e) => e.mountPoint === path);
}

function publishRequest(targetPath: string) {
  return {
    volumeId: 'csi-0123',
    targetPath,
    volumeCapability: { accessType: { case: 'mount' as const, value: {} }, accessMode: { mode: VolumeCapability_AccessMode_Mode.SINGLE_NODE_WRITER } },
    readonly: true,
    volumeContext: { 'csi.storage.k8s.io/ephemeral': 'true', 'csi.storage.k8s.io/pod.name': 'p', 'csi.storage.k8s.io/pod.namespace': 'demo' },
  };
}

function startDriver(tmp: TmpDir, name: string): { proc: Proc; csiSocket: string; regSocket: string } {
  const csiSocket = join(tmp.path, name, 'plugin', 'csi.sock');
  const registry = join(tmp.path, name, 'plugins_registry');
  const proc = startZtwim(tmp, [
    'csi',
    '-workload-api-socket-dir',
    join(tmp.path, 'agent-sockets'),
    '-csi-socket-path',
    csiSocket,
    '-node-id',
    'node-1',
    '-kubelet-plugins-registry-dir',
    registry,
    '-kubelet-registration-path',
    '/var/lib/kubelet/plugins/csi.spiffe.io/csi.sock',
    '-log-level',
    'debug',
  ]);
  return { proc, csiSocket, regSocket: join(registry, 'csi.spiffe.io-reg.sock') };
}

describe('ztwim csi with real mounts', () => {
  let tmp: TmpDir;
  let driver: ReturnType<typeof startDriver>;
  let transport: GrpcClientTransport;
  let node: Client<typeof CsiNodeService>;

  before(async () => {
    assert.equal(process.getuid?.(), 0, 'bind mounts need root');
    tmp = makeTmpDir('ztwim-csi-it-');
    mkdirSync(join(tmp.path, 'agent-sockets'));
    writeFileSync(join(tmp.path, 'agent-sockets', 'spire-agent.sock'), '');
    mkdirSync(join(tmp.path, 'pods', 'uid-1', 'volumes', 'kubernetes.io~csi', 'spiffe'), { recursive: true });
    driver = startDriver(tmp, 'a');
    await until('the CSI and registration sockets', () => (existsSync(driver.csiSocket) && existsSync(driver.regSocket) ? true : undefined), 20_000);
    transport = createUnixGrpcTransport(driver.csiSocket);
    node = createClient(CsiNodeService, transport);
  });

  after(async () => {
    transport?.close();
    if (driver !== undefined) await stopProc(driver.proc);
    // Never leave a mount behind a failed test.
    for (const m of (await readMountInfo()).filter((e) => e.mountPoint.startsWith(tmp.path)).reverse()) {
      execFileSync('umount', [m.mountPoint]);
    }
    tmp?.cleanup();
  });

  it('publishes a read-only bind mount of the socket directory, once however often it is asked', async () => {
    const target = join(tmp.path, 'pods', 'uid-1', 'volumes', 'kubernetes.io~csi', 'spiffe', 'mount');
    await node.nodePublishVolume(publishRequest(target));
    const mounts = await mountsAt(target);
    assert.equal(mounts.length, 1);
    assert.ok(mounts[0]?.options.includes('ro'), `mount options ${mounts[0]?.options.join(',')}`);
    assert.deepEqual(readdirSync(target), ['spire-agent.sock']);
    assert.throws(() => writeFileSync(join(target, 'x'), 'x'), /EROFS/);
    // What the agent puts in its directory later shows in the pod's volume.
    writeFileSync(join(tmp.path, 'agent-sockets', 'later'), '');
    assert.deepEqual(readdirSync(target).sort(), ['later', 'spire-agent.sock']);

    await node.nodePublishVolume(publishRequest(target));
    assert.equal((await mountsAt(target)).length, 1, 'second publish mounts nothing more');

    const stats = await node.nodeGetVolumeStats({ volumeId: 'csi-0123', volumePath: target });
    assert.equal(stats.usage.length, 2);

    await node.nodeUnpublishVolume({ volumeId: 'csi-0123', targetPath: target });
    assert.equal((await mountsAt(target)).length, 0);
    assert.equal(existsSync(target), false, 'target removed');
    assert.ok(existsSync(join(tmp.path, 'agent-sockets', 'spire-agent.sock')), 'socket directory untouched');
    await node.nodeUnpublishVolume({ volumeId: 'csi-0123', targetPath: target });
  });

  it('answers the kubelet on the registration socket', async () => {
    const t = createUnixGrpcTransport(driver.regSocket);
    try {
      const info = await createClient(PluginRegistrationService, t).getInfo({});
      assert.equal(info.type, 'CSIPlugin');
      assert.equal(info.name, 'csi.spiffe.io');
      assert.equal(info.endpoint, '/var/lib/kubelet/plugins/csi.spiffe.io/csi.sock');
      assert.deepEqual(info.supportedVersions, ['1.0.0']);
      await createClient(PluginRegistrationService, t).notifyRegistrationStatus({ pluginRegistered: true });
    } finally {
      t.close();
    }
    await until('the registration log line', () => (driver.proc.out().includes('Registered with the kubelet') ? true : undefined), 5000);
  });

  it('SIGTERM stops it cleanly and removes both sockets', async () => {
    transport.close();
    const { code } = await stopProc(driver.proc);
    assert.equal(code, 0, driver.proc.out());
    assert.equal(existsSync(driver.csiSocket), false);
    assert.equal(existsSync(driver.regSocket), false);
  });

  it('a restarted driver unpublishes what the one before it published (mount state is read from mountinfo)', async () => {
    const first = startDriver(tmp, 'c');
    const target = join(tmp.path, 'pods', 'uid-1', 'volumes', 'kubernetes.io~csi', 'spiffe', 'mount');
    await until('the first driver', () => (existsSync(first.csiSocket) ? true : undefined), 20_000);
    let t = createUnixGrpcTransport(first.csiSocket);
    await createClient(CsiNodeService, t).nodePublishVolume(publishRequest(target));
    t.close();
    assert.equal((await stopProc(first.proc)).code, 0);
    assert.equal((await mountsAt(target)).length, 1, 'the mount outlives the driver');

    const second = startDriver(tmp, 'c');
    try {
      await until('the second driver', () => (existsSync(second.csiSocket) ? true : undefined), 20_000);
      t = createUnixGrpcTransport(second.csiSocket);
      const node2 = createClient(CsiNodeService, t);
      await node2.nodePublishVolume(publishRequest(target));
      assert.equal((await mountsAt(target)).length, 1, 'publishing again after the restart mounts nothing more');
      await node2.nodeUnpublishVolume({ volumeId: 'csi-0123', targetPath: target });
      t.close();
      assert.equal((await mountsAt(target)).length, 0);
      assert.equal(existsSync(target), false);
    } finally {
      await stopProc(second.proc);
    }
  });

  it("a registration the kubelet refuses ends the process with the kubelet's error", async () => {
    const d = startDriver(tmp, 'b');
    try {
      await until('the registration socket', () => (existsSync(d.regSocket) ? true : undefined), 20_000);
      const t = createUnixGrpcTransport(d.regSocket);
      await createClient(PluginRegistrationService, t)
        .notifyRegistrationStatus({ pluginRegistered: false, error: 'error validating CSI driver name: duplicate' })
        .catch(() => undefined);
      t.close();
      const code = await new Promise<number | null>((r) =>
        d.proc.child.exitCode !== null ? r(d.proc.child.exitCode) : d.proc.child.once('exit', (c) => r(c)),
      );
      assert.equal(code, 1);
      assert.match(d.proc.out(), /Error: kubelet refused the plugin registration: error validating CSI driver name: duplicate/);
      assert.equal(existsSync(d.csiSocket), false);
      assert.equal(existsSync(d.regSocket), false);
    } finally {
      await stopProc(d.proc);
    }
  });

  it('refuses to start without -workload-api-socket-dir or a node ID, naming the flag', async () => {
    const noDir = startZtwim(tmp, ['csi', '-csi-socket-path', join(tmp.path, 'c', 'csi.sock'), '-node-id', 'n']);
    const c1 = await new Promise<number | null>((r) => noDir.child.once('exit', (c) => r(c)));
    assert.equal(c1, 1);
    assert.match(noDir.out(), /workload API socket directory is required \(-workload-api-socket-dir\)/);
    const noNode = startZtwim(tmp, [
      'csi',
      '-workload-api-socket-dir',
      join(tmp.path, 'agent-sockets'),
      '-csi-socket-path',
      join(tmp.path, 'c', 'csi.sock'),
      '-node-id-env',
      'ZTWIM_TEST_NO_SUCH_VAR',
    ]);
    const c2 = await new Promise<number | null>((r) => noNode.child.once('exit', (c) => r(c)));
    assert.equal(c2, 1);
    assert.match(noNode.out(), /node ID is required/);
  });
});
