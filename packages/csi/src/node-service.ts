// The CSI Node service of csi.spiffe.io: NodePublishVolume bind-mounts the Workload API socket
// directory (read-only) onto the pod's target path, NodeUnpublishVolume undoes it, as spiffe-csi
// does; both are idempotent (already mounted / already gone is success), which the CSI spec asks
// and spiffe-csi does not do. Stage/Unstage/Expand are not implemented (Unimplemented, as upstream).
import { lstat, mkdir, readdir, rmdir, statfs, unlink } from 'node:fs/promises';
import type { ServiceImpl } from '@connectrpc/connect';
import { errnoOf, internal, invalidArgument, notFound, type Logger } from '@ztwim/core';
import type { MessageInitShape } from '@bufbuild/protobuf';
import { NodeServiceCapability_RPC_Type, VolumeUsage_Unit, type CsiNodeService, type VolumeUsageSchema } from '@ztwim/proto';
import type { Mounter } from './mounter.ts';
import { validatePublishRequest, validateUnpublishRequest } from './publish-request.ts';
import { KeyedMutex } from './keyed-mutex.ts';

export interface NodeServiceOptions {
  /** NodeGetInfo's node ID (the Kubernetes node name). */
  readonly nodeId: string;
  /** The directory bind-mounted into pods (the agent's Workload API socket directory). */
  readonly workloadApiSocketDir: string;
  readonly mounter: Mounter;
  readonly logger: Logger;
}

/** Unmounts at most this many mounts stacked on one target before giving up. */
const MAX_STACKED_UNMOUNTS = 16;

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Removes the target path (an empty directory, or a file), as upstream's os.Remove; gone already is fine. */
async function removeTarget(path: string): Promise<void> {
  try {
    const st = await lstat(path);
    if (st.isDirectory()) await rmdir(path);
    else await unlink(path);
  } catch (e) {
    if (errnoOf(e) !== 'ENOENT') throw e;
  }
}

/** Space and inode usage of the filesystem behind `path` (the socket directory's). */
async function usageOf(path: string): Promise<MessageInitShape<typeof VolumeUsageSchema>[]> {
  const s = await statfs(path, { bigint: true });
  return [
    { unit: VolumeUsage_Unit.BYTES, total: s.blocks * s.bsize, available: s.bavail * s.bsize, used: (s.blocks - s.bfree) * s.bsize },
    { unit: VolumeUsage_Unit.INODES, total: s.files, available: s.ffree, used: s.files - s.ffree },
  ];
}

export function nodeService(opts: NodeServiceOptions): Partial<ServiceImpl<typeof CsiNodeService>> {
  const { mounter, logger } = opts;
  // The kubelet may retry a call while the first one still runs: one operation per path at a time.
  const perPath = new KeyedMutex();

  return {
    async nodePublishVolume(req) {
      const log = logger.child({ volume_id: req.volumeId, target_path: req.targetPath, access_mode: req.volumeCapability?.accessMode?.mode });
      try {
        validatePublishRequest(req);
        await perPath.run(req.targetPath, async () => {
          // Create the target (the CSI spec leaves it to the plugin); the kubelet made its parent.
          try {
            await mkdir(req.targetPath, 0o777);
          } catch (e) {
            if (errnoOf(e) !== 'EEXIST') throw internal(`unable to create target path "${req.targetPath}": ${messageOf(e)}`, { cause: e });
          }
          if (await mounter.isMountPoint(req.targetPath)) {
            log.info('Volume already published');
            return;
          }
          try {
            await mounter.bindMountReadOnly(opts.workloadApiSocketDir, req.targetPath);
          } catch (e) {
            throw internal(`unable to mount "${req.targetPath}": ${messageOf(e)}`, { cause: e });
          }
          log.info(
            {
              pod_namespace: req.volumeContext['csi.storage.k8s.io/pod.namespace'],
              pod_name: req.volumeContext['csi.storage.k8s.io/pod.name'],
              pod_uid: req.volumeContext['csi.storage.k8s.io/pod.uid'],
            },
            'Volume published',
          );
        });
        return {};
      } catch (e) {
        log.error({ error: messageOf(e) }, 'Failed to publish volume');
        throw e;
      }
    },

    async nodeUnpublishVolume(req) {
      const log = logger.child({ volume_id: req.volumeId, target_path: req.targetPath });
      try {
        validateUnpublishRequest(req);
        await perPath.run(req.targetPath, async () => {
          let unmounted = 0;
          while (await mounter.isMountPoint(req.targetPath)) {
            if (unmounted === MAX_STACKED_UNMOUNTS) throw internal(`unable to unmount "${req.targetPath}": still mounted after ${unmounted} unmounts`);
            try {
              await mounter.unmount(req.targetPath);
            } catch (e) {
              throw internal(`unable to unmount "${req.targetPath}": ${messageOf(e)}`, { cause: e });
            }
            unmounted++;
          }
          try {
            await removeTarget(req.targetPath);
          } catch (e) {
            throw internal(`unable to remove target path "${req.targetPath}": ${messageOf(e)}`, { cause: e });
          }
          log.info({ unmounted }, unmounted > 0 ? 'Volume unpublished' : 'Volume already unpublished');
        });
        return {};
      } catch (e) {
        log.error({ error: messageOf(e) }, 'Failed to unpublish volume');
        throw e;
      }
    },

    async nodeGetVolumeStats(req) {
      if (req.volumeId === '') throw invalidArgument('request missing required volume id');
      if (req.volumePath === '') throw invalidArgument('request missing required volume path');
      try {
        await lstat(req.volumePath);
      } catch (e) {
        if (errnoOf(e) === 'ENOENT') throw notFound(`volume path "${req.volumePath}" does not exist`);
        throw internal(`unable to stat volume path "${req.volumePath}": ${messageOf(e)}`, { cause: e });
      }
      // spiffe-csi reports these two as an abnormal VolumeCondition; the CSI spec this is built on
      // (v1.13, kubernetes v1.37) has removed VolumeCondition, so they are errors here.
      if (!(await mounter.isMountPoint(req.volumePath))) throw notFound(`volume path "${req.volumePath}" is not mounted`);
      try {
        await readdir(req.volumePath);
      } catch (e) {
        throw internal(`unable to list contents of volume path "${req.volumePath}": ${messageOf(e)}`, { cause: e });
      }
      return { usage: await usageOf(req.volumePath) };
    },

    async nodeGetCapabilities() {
      return { capabilities: [{ type: { case: 'rpc', value: { type: NodeServiceCapability_RPC_Type.GET_VOLUME_STATS } } }] };
    },

    async nodeGetInfo() {
      // 0: no limit on volumes per node (upstream's value).
      return { nodeId: opts.nodeId, maxVolumesPerNode: 0n };
    },
  };
}
