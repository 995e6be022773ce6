// @ztwim/csi: the SPIFFE CSI driver (csi.spiffe.io), SPIRE's spiffe-csi-driver in TypeScript.
export { startCsiDriver, registrationSocketPathOf, DEFAULT_PLUGIN_NAME, DEFAULT_CSI_SOCKET_PATH } from './driver.ts';
export type { CsiDriver, CsiDriverOptions, KubeletRegistrationOptions } from './driver.ts';
export { LinuxMounter } from './mounter.ts';
export type { Mounter, LinuxMounterOptions } from './mounter.ts';
export { parseMountInfo, readMountInfo } from './mountinfo.ts';
export type { MountInfoEntry } from './mountinfo.ts';
export { validatePublishRequest, EPHEMERAL_CONTEXT_KEY } from './publish-request.ts';
export { CSI_SUPPORTED_VERSIONS } from './registration-service.ts';
