// NodePublishVolume's request rules, as spiffe-csi's driver checks them (same order, same
// InvalidArgument texts, each naming the field), so the kubelet reports the same events for a
// misconfigured pod as with the upstream driver.
import { invalidArgument } from '@ztwim/core';
import { VolumeCapability_AccessMode_Mode, type NodePublishVolumeRequest, type NodeUnpublishVolumeRequest } from '@ztwim/proto';

/** The volume_context key the kubelet sets to "true" for a CSI ephemeral inline volume. */
export const EPHEMERAL_CONTEXT_KEY = 'csi.storage.k8s.io/ephemeral';

/** Throws ERR_INVALID_ARGUMENT unless the request asks for a read-only, plain-mount, ephemeral inline volume. */
export function validatePublishRequest(req: NodePublishVolumeRequest): void {
  const cap = req.volumeCapability;
  if (req.volumeId === '') throw invalidArgument('request missing required volume id');
  if (req.targetPath === '') throw invalidArgument('request missing required target path');
  if (cap === undefined) throw invalidArgument('request missing required volume capability');
  if (cap.accessType.case === undefined) throw invalidArgument('request missing required volume capability access type');
  // A plain mount: no block volume, no filesystem type, no mount flags.
  if (cap.accessType.case !== 'mount' || cap.accessType.value.fsType !== '' || cap.accessType.value.mountFlags.length > 0) {
    throw invalidArgument('request volume capability access type must be a simple mount');
  }
  if (cap.accessMode === undefined) throw invalidArgument('request missing required volume capability access mode');
  // As upstream: SINGLE_NODE_READER_ONLY is refused; the kubelet asks inline volumes for a writer
  // mode and says read-only with `readonly` (checked next).
  if (cap.accessMode.mode === VolumeCapability_AccessMode_Mode.SINGLE_NODE_READER_ONLY) {
    throw invalidArgument('request volume capability access mode is not valid');
  }
  if (!req.readonly) throw invalidArgument("pod.spec.volumes[].csi.readOnly must be set to 'true'");
  if (req.volumeContext[EPHEMERAL_CONTEXT_KEY] !== 'true') throw invalidArgument('only ephemeral volumes are supported');
}

/** NodeUnpublishVolume needs the volume ID and the target path. */
export function validateUnpublishRequest(req: NodeUnpublishVolumeRequest): void {
  if (req.volumeId === '') throw invalidArgument('request missing required volume id');
  if (req.targetPath === '') throw invalidArgument('request missing required target path');
}
