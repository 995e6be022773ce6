export { acceptPendingConnections, peerCredOf, peerCredOfFd, peerGroupsOf, socketFd, isPeerCredSupported, trimNativeHeap } from './peer-cred.ts';
export type { PeerCred } from './peer-cred-types.ts';
export { PeerCredError, isPeerCredError, PEERCRED_ERROR_CODES } from './errors.ts';
export type { PeerCredErrorCode, PeerCredErrorOptions } from './errors.ts';
