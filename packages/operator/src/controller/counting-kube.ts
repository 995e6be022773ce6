// Counts the operator's API calls by verb (reads and writes), for the per-minute stats line and
// the bench: at rest the writes stay at zero.
import type { OperatorKube } from './kube-port.ts';

export interface ApiCallCounts {
  reads: number;
  writes: number;
}

export function countingKube(kube: OperatorKube, counts: ApiCallCounts): OperatorKube {
  const read =
    <A extends unknown[], R>(f: (...a: A) => Promise<R>) =>
    (...a: A): Promise<R> => {
      counts.reads++;
      return f(...a);
    };
  const write =
    <A extends unknown[], R>(f: (...a: A) => Promise<R>) =>
    (...a: A): Promise<R> => {
      counts.writes++;
      return f(...a);
    };
  return {
    get: read(kube.get.bind(kube)),
    resourceFor: kube.resourceFor.bind(kube), // discovery is cached by the client
    apply: write(kube.apply.bind(kube)),
    patch: write(kube.patch.bind(kube)),
    patchStatus: write(kube.patchStatus.bind(kube)),
    delete: write(kube.delete.bind(kube)),
  };
}
