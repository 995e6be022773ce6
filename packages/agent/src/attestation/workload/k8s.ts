// The `k8s` workload attestor (SPIRE v1.13 pkg/agent/plugin/workloadattestor/k8s): the caller's
// pod UID and container ID from procfs, the pod from the kubelet's `/pods`, `k8s:` selectors from
// it. A process outside any container gets no selectors and no error (other attestors still
// apply); a container not yet in the pod's status is polled for, max_poll_attempts times.
import { ZtwimError, configError, silentLogger, systemClock, type Clock, type Logger } from '@ztwim/core';

import { ContainerLocator, type ContainerLocation } from './k8s-container-locator.ts';
import { KubeletClient, type KubeletClientConfig } from './k8s-kubelet-client.ts';
import { PodListCache, type PodsByUid } from './k8s-pod-list-cache.ts';
import { containerSelectorValues, findContainerStatus, podSelectorValues } from './k8s-selectors.ts';
import type { Selector, WorkloadAttestor } from './workload-attestor.ts';

export const K8S_SELECTOR_TYPE = 'k8s';
export const DEFAULT_MAX_POLL_ATTEMPTS = 60;
export const DEFAULT_POLL_RETRY_INTERVAL_MS = 500;
export const DEFAULT_NODE_NAME_ENV = 'MY_NODE_NAME';

/** SPIRE's `plugin_data` of `WorkloadAttestor "k8s"`, durations in milliseconds. */
export interface K8sAttestorConfig extends Omit<KubeletClientConfig, 'nodeName'> {
  readonly maxPollAttempts?: number;
  readonly pollRetryIntervalMs?: number;
  /** `node_name_env`: variable holding the node name (default MY_NODE_NAME). */
  readonly nodeNameEnv?: string;
  /** `node_name`: takes precedence over the variable. */
  readonly nodeName?: string;
  /** `disable_container_selectors`: pod selectors only, even before the container is in the status. */
  readonly disableContainerSelectors?: boolean;
  readonly useNewContainerLocator?: boolean;
  readonly verboseContainerLocatorLogs?: boolean;
}

export interface K8sAttestorDeps {
  readonly clock?: Clock;
  readonly logger?: Logger;
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** procfs mount; default `/proc`. */
  readonly procRoot?: string;
  /** Reads credential and CA files (default: the file system). */
  readonly readFile?: (path: string) => Buffer;
  /** Reads procfs files (default: readFileSync). */
  readonly readProcFile?: (path: string) => string;
  /** Fetches the `/pods` body instead of the kubelet client (tests). */
  readonly fetchPodList?: () => Promise<Buffer | string>;
}

/** SPIRE's node name rule: node_name, else the named variable, else MY_NODE_NAME. */
export function resolveNodeName(config: Pick<K8sAttestorConfig, 'nodeName' | 'nodeNameEnv'>, env: Readonly<Record<string, string | undefined>>): string {
  if (config.nodeName !== undefined && config.nodeName !== '') return config.nodeName;
  const name = config.nodeNameEnv !== undefined && config.nodeNameEnv !== '' ? config.nodeNameEnv : DEFAULT_NODE_NAME_ENV;
  return env[name] ?? '';
}

export class K8sWorkloadAttestor implements WorkloadAttestor {
  readonly name = K8S_SELECTOR_TYPE;
  readonly #locator: ContainerLocator;
  readonly #pods: PodListCache;
  readonly #client: KubeletClient | undefined;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #maxPollAttempts: number;
  readonly #pollRetryMs: number;
  readonly #disableContainerSelectors: boolean;

  constructor(config: K8sAttestorConfig = {}, deps: K8sAttestorDeps = {}) {
    const attempts = config.maxPollAttempts ?? 0;
    const retry = config.pollRetryIntervalMs ?? 0;
    if (!Number.isSafeInteger(attempts)) throw configError('k8s: max_poll_attempts must be an integer');
    if (!Number.isFinite(retry)) throw configError('k8s: poll_retry_interval must be a duration');
    this.#maxPollAttempts = attempts > 0 ? attempts : DEFAULT_MAX_POLL_ATTEMPTS;
    this.#pollRetryMs = retry > 0 ? retry : DEFAULT_POLL_RETRY_INTERVAL_MS;
    this.#disableContainerSelectors = config.disableContainerSelectors ?? false;
    this.#clock = deps.clock ?? systemClock;
    this.#log = deps.logger ?? silentLogger();
    this.#locator = new ContainerLocator({
      ...(deps.procRoot === undefined ? {} : { procRoot: deps.procRoot }),
      ...(config.useNewContainerLocator === undefined ? {} : { useNewContainerLocator: config.useNewContainerLocator }),
      verbose: config.verboseContainerLocatorLogs ?? false,
      logger: this.#log,
      ...(deps.readProcFile === undefined ? {} : { readFile: deps.readProcFile }),
    });
    let fetch = deps.fetchPodList;
    if (fetch === undefined) {
      const client = new KubeletClient(
        { ...config, nodeName: resolveNodeName(config, deps.env ?? process.env) },
        { clock: this.#clock, logger: this.#log, ...(deps.readFile === undefined ? {} : { readFile: deps.readFile }) },
      );
      this.#client = client;
      fetch = () => client.getPodList();
    }
    this.#pods = new PodListCache(fetch, { clock: this.#clock, logger: this.#log });
  }

  async attest(pid: number, signal?: AbortSignal): Promise<Selector[]> {
    if (!Number.isSafeInteger(pid) || pid <= 0) throw new ZtwimError('ERR_INVALID_ARGUMENT', 'k8s: pid must be a positive integer');
    signal?.throwIfAborted();
    const where = this.#locator.locate(pid);
    // Not in a container: not a pod, nothing for this attestor to say.
    if (where.containerId === undefined) return [];
    for (let attempt = 1; ; attempt++) {
      const pods = await this.#pods.get(this.#pollRetryMs / 2);
      signal?.throwIfAborted();
      const values = this.#selectorValues(pods, where, pid);
      if (values !== undefined) return values.map((value) => ({ type: K8S_SELECTOR_TYPE, value }));
      if (attempt >= this.#maxPollAttempts) {
        this.#log.warn({ pid, pod_uid: where.podUid, container_id: where.containerId, attempt }, 'k8s: Container id not found; giving up');
        throw new ZtwimError(
          'ERR_UNAVAILABLE',
          `k8s: no selectors found after max poll attempts (${this.#maxPollAttempts}): container ${where.containerId} not in the kubelet's pod list`,
          {
            fields: { pid, pod_uid: where.podUid, container_id: where.containerId },
          },
        );
      }
      this.#log.debug(
        { pid, pod_uid: where.podUid, container_id: where.containerId, attempt, retry_interval_ms: this.#pollRetryMs },
        'k8s: Container id not found',
      );
      await this.#clock.sleep(this.#pollRetryMs, signal);
    }
  }

  /** Selector values for the located container, or undefined when it is not (yet) listed. */
  #selectorValues(pods: PodsByUid, where: ContainerLocation, pid: number): string[] | undefined {
    const containerId = where.containerId as string;
    const candidates = where.podUid === undefined ? [...pods.values()] : [pods.get(where.podUid)].filter((p) => p !== undefined);
    let found: string[] | undefined;
    for (const pod of candidates) {
      const status = findContainerStatus(pod, containerId);
      let values: string[] | undefined;
      if (status !== undefined) {
        values = podSelectorValues(pod);
        if (!this.#disableContainerSelectors) values.push(...containerSelectorValues(status));
      } else if (where.podUid !== undefined && this.#disableContainerSelectors) {
        // The pod is known and container selectors are off: its selectors do not need the
        // container to be in the status yet (e.g. a postStart hook still running).
        values = podSelectorValues(pod);
      }
      if (values === undefined) continue;
      if (found !== undefined) {
        this.#log.warn({ pid, container_id: containerId }, 'k8s: Two pods found with same container id');
        throw new ZtwimError('ERR_INTERNAL', `k8s: two pods found with same container id ${containerId}`, { fields: { pid } });
      }
      found = values;
    }
    return found;
  }

  close(): void {
    this.#client?.close();
  }
}
