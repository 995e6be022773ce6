// OperatorKube on @ztwim/k8s's ResourceClient: 404 on get/delete is "absent", writes are
// server-side apply with the operator's field manager (force: the operator owns these fields;
// a hand edit of one of them is put back, as ZTWIM does by update), metadata and status by JSON
// merge patch.
import { isZtwimError } from '@ztwim/core';
import type { ResourceClient } from '@ztwim/k8s';
import { FIELD_MANAGER, type KubeObj, type OperatorKube } from './kube-port.ts';

export function operatorKube(rc: ResourceClient): OperatorKube {
  return {
    async get(ref, name, namespace) {
      try {
        return await rc.get(ref, name, namespace);
      } catch (e) {
        if (isZtwimError(e, 'ERR_NOT_FOUND')) return undefined;
        throw e;
      }
    },
    apply: (ref, object) => rc.apply(ref, object, { fieldManager: FIELD_MANAGER, force: true }),
    patch: (ref, name, patch, namespace) =>
      rc.patch<KubeObj>(ref, name, patch, 'merge', { fieldManager: FIELD_MANAGER, ...(namespace === undefined ? {} : { namespace }) }),
    patchStatus: (ref, name, patch) => rc.patchStatus<KubeObj>(ref, name, patch, 'merge', { fieldManager: FIELD_MANAGER }),
    async delete(ref, name, namespace) {
      try {
        await rc.delete(ref, name, { propagationPolicy: 'Background', ...(namespace === undefined ? {} : { namespace }) });
      } catch (e) {
        if (!isZtwimError(e, 'ERR_NOT_FOUND')) throw e;
      }
    },
    resourceFor: (apiVersion, kind) => rc.resourceFor(apiVersion, kind),
  };
}
