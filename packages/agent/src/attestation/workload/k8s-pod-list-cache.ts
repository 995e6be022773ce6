// The kubelet's pod list, fetched once for all attestations that ask at the same time and kept
// for a short while (SPIRE v1.13: half the poll retry interval, 250 ms by default), so a burst of
// Workload API calls costs one `/pods` round trip and one parse, not one per caller.
import { ZtwimError, silentLogger, systemClock, type Clock, type Logger } from '@ztwim/core';

import type { KubeletPod } from './k8s-selectors.ts';

/** Pods by UID. */
export type PodsByUid = ReadonlyMap<string, KubeletPod>;

/** Parses a `/pods` body (a core/v1 PodList) into pods by UID; pods without a UID are skipped. */
export function parsePodList(body: Buffer | string, log: Logger = silentLogger()): PodsByUid {
  let doc: unknown;
  try {
    doc = JSON.parse(typeof body === 'string' ? body : body.toString('utf8'));
  } catch (e) {
    throw new ZtwimError('ERR_INTERNAL', 'k8s: unable to parse kubelet response', { cause: e });
  }
  const items = typeof doc === 'object' && doc !== null ? (doc as { items?: unknown }).items : undefined;
  const out = new Map<string, KubeletPod>();
  if (items === undefined || items === null) return out;
  if (!Array.isArray(items)) throw new ZtwimError('ERR_INTERNAL', 'k8s: unable to parse kubelet response: items is not a list');
  for (const item of items as unknown[]) {
    if (typeof item !== 'object' || item === null) continue;
    const pod = item as KubeletPod;
    const uid = pod.metadata?.uid;
    if (typeof uid !== 'string' || uid === '') {
      log.warn({ pod_name: pod.metadata?.name, pod_namespace: pod.metadata?.namespace }, 'k8s: Pod has no UID');
      continue;
    }
    out.set(uid, pod);
  }
  return out;
}

export class PodListCache {
  readonly #fetch: () => Promise<Buffer | string>;
  readonly #clock: Clock;
  readonly #log: Logger;
  #pods: PodsByUid | undefined;
  #validUntil = 0;
  #inFlight: Promise<PodsByUid> | undefined;

  constructor(fetch: () => Promise<Buffer | string>, deps: { clock?: Clock; logger?: Logger } = {}) {
    this.#fetch = fetch;
    this.#clock = deps.clock ?? systemClock;
    this.#log = deps.logger ?? silentLogger();
  }

  /** The cached list if still fresh, else one fetch shared by every caller waiting on it. */
  get(cacheForMs: number): Promise<PodsByUid> {
    if (this.#pods !== undefined && this.#clock.nowMs() < this.#validUntil) return Promise.resolve(this.#pods);
    if (this.#inFlight !== undefined) return this.#inFlight;
    const p = (async () => {
      try {
        const pods = parsePodList(await this.#fetch(), this.#log);
        this.#pods = pods;
        this.#validUntil = this.#clock.nowMs() + cacheForMs;
        return pods;
      } finally {
        this.#inFlight = undefined;
      }
    })();
    this.#inFlight = p;
    return p;
  }
}
