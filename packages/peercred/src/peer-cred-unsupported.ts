// Every platform but Linux: no SO_PEERCRED, so no workload attestation by peer credentials.
import { PeerCredError } from './errors.ts';
import type { PeerCred, PeerCredBackend } from './peer-cred-types.ts';

function unsupported(): never {
  throw new PeerCredError('ERR_PEERCRED_UNSUPPORTED', `peercred: peer credentials are not supported on ${process.platform}`);
}

export const unsupportedBackend: PeerCredBackend = {
  supported: false,
  credOfFd(_fd: number): PeerCred {
    return unsupported();
  },
  groupsOfFd(_fd: number): readonly number[] {
    return unsupported();
  },
  // Nothing taken: the event loop's own accept serves every connection.
  acceptPending(): number[] {
    return [];
  },
  // No addon to call: nothing handed back.
  trimHeap(): boolean {
    return false;
  },
};
