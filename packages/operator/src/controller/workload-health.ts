// Whether a generated workload has rolled out (digest §1.6): ready = updated = available =
// desired and status.observedGeneration = metadata.generation; a DaemonSet must also want at
// least one pod.

export interface WorkloadLike {
  readonly kind?: string;
  readonly metadata: { readonly name?: string; readonly generation?: number };
  readonly spec?: unknown;
  readonly status?: unknown;
}

export interface WorkloadHealth {
  readonly ready: boolean;
  /** Human-readable counts for the condition message. */
  readonly message: string;
}

const num = (o: unknown, k: string): number => {
  const v = (o as Record<string, unknown> | undefined)?.[k];
  return typeof v === 'number' ? v : 0;
};

export function workloadHealth(w: WorkloadLike): WorkloadHealth {
  const s = w.status;
  const gen = w.metadata.generation ?? 0;
  const observed = num(s, 'observedGeneration');
  const name = `${w.kind ?? 'workload'} ${w.metadata.name ?? ''}`;
  if (observed < gen) return { ready: false, message: `${name}: generation ${gen} not observed yet` };
  if (w.kind === 'DaemonSet') {
    const desired = num(s, 'desiredNumberScheduled');
    const ready = num(s, 'numberReady');
    const updated = num(s, 'updatedNumberScheduled');
    const available = num(s, 'numberAvailable');
    const ok = desired > 0 && ready === desired && updated === desired && available === desired;
    return { ready: ok, message: `${name}: ${ready}/${desired} ready, ${updated} updated, ${available} available` };
  }
  const rawReplicas = (w.spec as Record<string, unknown> | undefined)?.['replicas'];
  const desired = typeof rawReplicas === 'number' ? rawReplicas : 1;
  const ready = num(s, 'readyReplicas');
  const updated = num(s, 'updatedReplicas');
  const available = num(s, 'availableReplicas');
  const ok = ready === desired && updated === desired && (w.kind === 'StatefulSet' ? true : available === desired);
  return { ready: ok, message: `${name}: ${ready}/${desired} ready, ${updated} updated${w.kind === 'StatefulSet' ? '' : `, ${available} available`}` };
}
