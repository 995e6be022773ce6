// The driver through its real gRPC sockets with a fake mounter: NodePublishVolume's validation
// table, idempotent publish/unpublish, volume stats, identity, and kubelet registration.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { Code, ConnectError, createClient, type Client } from '@connectrpc/connect';
import { silentLogger } from '@ztwim/core';
import {
  createUnixGrpcTransport,
  CsiIdentityService,
  CsiNodeService,
  NodePublishVolumeRequestSchema,
  NodeServiceCapability_RPC_Type,
  PluginRegistrationService,
  VolumeCapability_AccessMode_Mode as Mode,
  VolumeUsage_Unit,
  type GrpcClientTransport,
} from '@ztwim/proto';
import { startCsiDriver, type CsiDriver } from './driver.ts';
import { FakeMounter } from './fake-mounter.test-util.ts';

type PublishInit = MessageInitShape<typeof NodePublishVolumeRequestSchema>;

let dir: string;
let socketDir: string;
let mounter: FakeMounter;
let driver: CsiDriver;
let transport: GrpcClientTransport;
let node: Client<typeof CsiNodeService>;
let identity: Client<typeof CsiIdentityService>;
const registrationFailures: string[] = [];
let registered = 0;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ztwim-csi-'));
  socketDir = join(dir, 'agent-sockets');
  mkdirSync(socketDir);
  writeFileSync(join(socketDir, 'api.sock'), '');
  mkdirSync(join(dir, 'pods'));
});

beforeEach(async () => {
  await driver?.close();
  transport?.close();
  mounter = new FakeMounter();
  driver = await startCsiDriver({
    vendorVersion: '9.9.9',
    nodeId: 'node-a',
    workloadApiSocketDir: socketDir,
    csiSocketPath: join(dir, 'plugins', 'csi.spiffe.io', 'csi.sock'),
    registration: {
      registryDir: join(dir, 'plugins_registry'),
      kubeletEndpoint: '/var/lib/kubelet/plugins/csi.spiffe.io/csi.sock',
      onFailed: (e) => registrationFailures.push(e),
      onRegistered: () => registered++,
    },
    mounter,
    logger: silentLogger(),
  });
  transport = createUnixGrpcTransport(driver.csiSocketPath);
  node = createClient(CsiNodeService, transport);
  identity = createClient(CsiIdentityService, transport);
});

after(async () => {
  await driver?.close();
  transport?.close();
  rmSync(dir, { recursive: true, force: true });
});

let n = 0;
/** A request as the kubelet sends it for `csi: {driver: csi.spiffe.io, readOnly: true}`, with a fresh target. */
function goodRequest(): PublishInit & { volumeId: string; targetPath: string } {
  n++;
  return {
    volumeId: `csi-${n}`,
    targetPath: join(dir, 'pods', `vol-${n}`),
    volumeCapability: { accessType: { case: 'mount', value: {} }, accessMode: { mode: Mode.SINGLE_NODE_WRITER } },
    readonly: true,
    volumeContext: {
      'csi.storage.k8s.io/ephemeral': 'true',
      'csi.storage.k8s.io/pod.name': 'p',
      'csi.storage.k8s.io/pod.namespace': 'ns',
      'csi.storage.k8s.io/pod.uid': 'uid',
      'csi.storage.k8s.io/serviceAccount.name': 'default',
    },
  };
}

async function codeAndMessage(p: Promise<unknown>): Promise<[Code, string]> {
  try {
    await p;
  } catch (e) {
    const ce = ConnectError.from(e);
    return [ce.code, ce.rawMessage];
  }
  assert.fail('call succeeded');
}

describe('NodePublishVolume validation (spiffe-csi rules and texts)', () => {
  const cases: Array<{ name: string; edit: (r: PublishInit) => void; message: string }> = [
    {
      name: 'no volume id',
      edit: (r) => {
        r.volumeId = '';
      },
      message: 'request missing required volume id',
    },
    {
      name: 'no target path',
      edit: (r) => {
        r.targetPath = '';
      },
      message: 'request missing required target path',
    },
    {
      name: 'no volume capability',
      edit: (r) => {
        delete r.volumeCapability;
      },
      message: 'request missing required volume capability',
    },
    {
      name: 'no access type',
      edit: (r) => {
        r.volumeCapability = { accessMode: { mode: Mode.SINGLE_NODE_WRITER } };
      },
      message: 'request missing required volume capability access type',
    },
    {
      name: 'block access type',
      edit: (r) => {
        r.volumeCapability = { accessType: { case: 'block', value: {} }, accessMode: { mode: Mode.SINGLE_NODE_WRITER } };
      },
      message: 'request volume capability access type must be a simple mount',
    },
    {
      name: 'mount with fsType',
      edit: (r) => {
        r.volumeCapability = { accessType: { case: 'mount', value: { fsType: 'ext4' } }, accessMode: { mode: Mode.SINGLE_NODE_WRITER } };
      },
      message: 'request volume capability access type must be a simple mount',
    },
    {
      name: 'mount with flags',
      edit: (r) => {
        r.volumeCapability = { accessType: { case: 'mount', value: { mountFlags: ['noexec'] } }, accessMode: { mode: Mode.SINGLE_NODE_WRITER } };
      },
      message: 'request volume capability access type must be a simple mount',
    },
    {
      name: 'no access mode',
      edit: (r) => {
        r.volumeCapability = { accessType: { case: 'mount', value: {} } };
      },
      message: 'request missing required volume capability access mode',
    },
    {
      name: 'single-node reader-only access mode',
      edit: (r) => {
        r.volumeCapability = { accessType: { case: 'mount', value: {} }, accessMode: { mode: Mode.SINGLE_NODE_READER_ONLY } };
      },
      message: 'request volume capability access mode is not valid',
    },
    {
      name: 'not read-only',
      edit: (r) => {
        r.readonly = false;
      },
      message: "pod.spec.volumes[].csi.readOnly must be set to 'true'",
    },
    {
      name: 'no ephemeral context',
      edit: (r) => {
        r.volumeContext = {};
      },
      message: 'only ephemeral volumes are supported',
    },
    {
      name: 'ephemeral context not "true"',
      edit: (r) => {
        r.volumeContext = { 'csi.storage.k8s.io/ephemeral': 'false' };
      },
      message: 'only ephemeral volumes are supported',
    },
  ];
  for (const c of cases) {
    test(`${c.name} → InvalidArgument "${c.message}"`, async () => {
      const req = goodRequest();
      c.edit(req);
      assert.deepEqual(await codeAndMessage(node.nodePublishVolume(create(NodePublishVolumeRequestSchema, req))), [Code.InvalidArgument, c.message]);
      assert.equal(mounter.binds, 0);
      assert.equal(existsSync(join(dir, 'pods', `vol-${n}`)), false, 'target not created');
    });
  }

  test('other writer access modes are accepted (only reader-only is refused, as upstream)', async () => {
    for (const mode of [Mode.SINGLE_NODE_WRITER, Mode.SINGLE_NODE_SINGLE_WRITER, Mode.MULTI_NODE_MULTI_WRITER, Mode.MULTI_NODE_READER_ONLY]) {
      const req = goodRequest();
      req.volumeCapability = { accessType: { case: 'mount', value: {} }, accessMode: { mode } };
      await node.nodePublishVolume(req);
    }
    assert.equal(mounter.binds, 4);
  });
});

describe('publish and unpublish', () => {
  test('publish creates the target and bind-mounts the socket directory onto it; twice mounts once', async () => {
    const req = goodRequest();
    await node.nodePublishVolume(req);
    assert.ok(statSync(req.targetPath).isDirectory());
    assert.deepEqual(mounter.mounts, [{ source: socketDir, target: req.targetPath }]);
    await node.nodePublishVolume(req);
    assert.equal(mounter.binds, 1);
    assert.equal(mounter.mounts.length, 1);
  });

  test('concurrent publishes of one target mount it once', async () => {
    const req = goodRequest();
    let release!: () => void;
    mounter.holdBind = new Promise<void>((r) => (release = r));
    const first = node.nodePublishVolume(req);
    const second = node.nodePublishVolume(req);
    await new Promise((r) => setImmediate(r));
    release();
    await Promise.all([first, second]);
    assert.equal(mounter.binds, 1);
  });

  test('unpublish unmounts and removes the target; again, and for a target never published, is success', async () => {
    const req = goodRequest();
    await node.nodePublishVolume(req);
    await node.nodeUnpublishVolume({ volumeId: req.volumeId, targetPath: req.targetPath });
    assert.equal(mounter.mounts.length, 0);
    assert.equal(existsSync(req.targetPath), false);
    await node.nodeUnpublishVolume({ volumeId: req.volumeId, targetPath: req.targetPath });
    await node.nodeUnpublishVolume({ volumeId: 'never', targetPath: join(dir, 'pods', 'never-published') });
    assert.equal(mounter.unmounts, 1);
  });

  test('unpublish undoes mounts stacked on one target', async () => {
    const req = goodRequest();
    mkdirSync(req.targetPath);
    await mounter.bindMountReadOnly(socketDir, req.targetPath);
    await mounter.bindMountReadOnly(socketDir, req.targetPath);
    await node.nodeUnpublishVolume({ volumeId: req.volumeId, targetPath: req.targetPath });
    assert.equal(mounter.mounts.length, 0);
    assert.equal(existsSync(req.targetPath), false);
  });

  test('unpublish validates volume id and target path', async () => {
    assert.deepEqual(await codeAndMessage(node.nodeUnpublishVolume({ targetPath: '/x' })), [Code.InvalidArgument, 'request missing required volume id']);
    assert.deepEqual(await codeAndMessage(node.nodeUnpublishVolume({ volumeId: 'v' })), [Code.InvalidArgument, 'request missing required target path']);
  });

  test('a failed mount is Internal naming the target, and a retry mounts', async () => {
    const req = goodRequest();
    mounter.failNextBind = new Error('mount: permission denied');
    assert.deepEqual(await codeAndMessage(node.nodePublishVolume(req)), [Code.Internal, `unable to mount "${req.targetPath}": mount: permission denied`]);
    await node.nodePublishVolume(req);
    assert.equal(mounter.mounts.length, 1);
  });

  test('a target whose parent does not exist is Internal naming the target', async () => {
    const req = goodRequest();
    req.targetPath = join(dir, 'no-such-parent', 'mount');
    const [code, message] = await codeAndMessage(node.nodePublishVolume(req));
    assert.equal(code, Code.Internal);
    assert.match(message, /^unable to create target path ".*no-such-parent\/mount": .*ENOENT/);
  });

  test('unpublish leaves a target that is not empty (never deletes what it did not mount) and says so', async () => {
    const req = goodRequest();
    mkdirSync(req.targetPath);
    writeFileSync(join(req.targetPath, 'keep'), 'x');
    const [code, message] = await codeAndMessage(node.nodeUnpublishVolume({ volumeId: req.volumeId, targetPath: req.targetPath }));
    assert.equal(code, Code.Internal);
    assert.match(message, /^unable to remove target path ".*": .*ENOTEMPTY/);
    assert.ok(existsSync(join(req.targetPath, 'keep')));
  });
});

describe('NodeGetVolumeStats', () => {
  test('missing volume id or path is InvalidArgument', async () => {
    assert.deepEqual(await codeAndMessage(node.nodeGetVolumeStats({ volumePath: '/x' })), [Code.InvalidArgument, 'request missing required volume id']);
    assert.deepEqual(await codeAndMessage(node.nodeGetVolumeStats({ volumeId: 'v' })), [Code.InvalidArgument, 'request missing required volume path']);
  });

  test('a path that does not exist, or is not mounted, is NotFound', async () => {
    const missing = join(dir, 'pods', 'missing');
    assert.deepEqual(await codeAndMessage(node.nodeGetVolumeStats({ volumeId: 'v', volumePath: missing })), [
      Code.NotFound,
      `volume path "${missing}" does not exist`,
    ]);
    const req = goodRequest();
    mkdirSync(req.targetPath);
    assert.deepEqual(await codeAndMessage(node.nodeGetVolumeStats({ volumeId: 'v', volumePath: req.targetPath })), [
      Code.NotFound,
      `volume path "${req.targetPath}" is not mounted`,
    ]);
  });

  test('a published volume reports bytes and inodes of its filesystem', async () => {
    const req = goodRequest();
    await node.nodePublishVolume(req);
    const res = await node.nodeGetVolumeStats({ volumeId: req.volumeId, volumePath: req.targetPath });
    assert.deepEqual(
      res.usage.map((u) => u.unit),
      [VolumeUsage_Unit.BYTES, VolumeUsage_Unit.INODES],
    );
    for (const u of res.usage) {
      assert.ok(u.total > 0n, 'total');
      assert.equal(u.used <= u.total && u.available <= u.total, true);
    }
  });
});

describe('Identity and node info', () => {
  test('GetPluginInfo names the plugin and version; no plugin capabilities; Probe answers', async () => {
    const info = await identity.getPluginInfo({});
    assert.equal(info.name, 'csi.spiffe.io');
    assert.equal(info.vendorVersion, '9.9.9');
    assert.deepEqual((await identity.getPluginCapabilities({})).capabilities, []);
    await identity.probe({});
  });

  test('NodeGetInfo gives the node ID and no volume limit; capabilities are GET_VOLUME_STATS', async () => {
    const info = await node.nodeGetInfo({});
    assert.equal(info.nodeId, 'node-a');
    assert.equal(info.maxVolumesPerNode, 0n);
    const caps = await node.nodeGetCapabilities({});
    assert.deepEqual(
      caps.capabilities.map((c) => (c.type.case === 'rpc' ? c.type.value.type : undefined)),
      [NodeServiceCapability_RPC_Type.GET_VOLUME_STATS],
    );
  });

  test('NodeStageVolume and NodeExpandVolume are Unimplemented, as upstream', async () => {
    assert.equal((await codeAndMessage(node.nodeStageVolume({ volumeId: 'v' })))[0], Code.Unimplemented);
    assert.equal((await codeAndMessage(node.nodeUnstageVolume({ volumeId: 'v' })))[0], Code.Unimplemented);
    assert.equal((await codeAndMessage(node.nodeExpandVolume({ volumeId: 'v' })))[0], Code.Unimplemented);
  });
});

describe('kubelet plugin registration', () => {
  test('GetInfo names a CSI plugin, its kubelet-side endpoint and version 1.0.0; status reports reach the callbacks', async () => {
    assert.equal(driver.registrationSocketPath, join(dir, 'plugins_registry', 'csi.spiffe.io-reg.sock'));
    const t = createUnixGrpcTransport(driver.registrationSocketPath as string);
    try {
      const reg = createClient(PluginRegistrationService, t);
      const info = await reg.getInfo({});
      assert.deepEqual(
        { type: info.type, name: info.name, endpoint: info.endpoint, supportedVersions: info.supportedVersions },
        { type: 'CSIPlugin', name: 'csi.spiffe.io', endpoint: '/var/lib/kubelet/plugins/csi.spiffe.io/csi.sock', supportedVersions: ['1.0.0'] },
      );
      await reg.notifyRegistrationStatus({ pluginRegistered: true });
      assert.equal(registered, 1);
      await reg.notifyRegistrationStatus({ pluginRegistered: false, error: 'plugin already registered' });
      assert.deepEqual(registrationFailures, ['plugin already registered']);
    } finally {
      t.close();
    }
  });

  test('close removes both sockets', async () => {
    const paths = [driver.csiSocketPath, driver.registrationSocketPath as string];
    assert.ok(paths.every((p) => existsSync(p)));
    await driver.close();
    assert.ok(paths.every((p) => !existsSync(p)));
  });

  test('start refuses an empty node ID or socket directory with the flag to set', async () => {
    const base = { vendorVersion: '1', csiSocketPath: join(dir, 'x.sock'), mounter, logger: silentLogger() };
    await assert.rejects(startCsiDriver({ ...base, nodeId: '', workloadApiSocketDir: socketDir }), /node ID is required \(-node-id/);
    await assert.rejects(startCsiDriver({ ...base, nodeId: 'n', workloadApiSocketDir: '' }), /-workload-api-socket-dir/);
  });
});
