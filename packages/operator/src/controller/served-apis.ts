// Which optional API groups the apiserver serves: OpenShift's route.openshift.io and
// security.openshift.io (Routes, SecurityContextConstraints, service-CA annotations) and the
// Prometheus operator's monitoring.coreos.com (ServiceMonitors). They come and go with CRDs (or an
// aggregated API), so the answer is not fixed at start: the manager calls refresh() on a timer
// (default every 30 s; ZTWIM assumes OpenShift and never asks) and, when the answer changed,
// starts or stops the informers of those kinds and runs a pass of every operand.
// A refresh drops the client's cached discovery of these three group/versions only and asks
// again: three GETs per refresh, nothing else re-read.

export interface ServedApiFlags {
  /** route.openshift.io/v1 and security.openshift.io/v1 are both served. */
  readonly hasOpenShiftGroups: boolean;
  /** monitoring.coreos.com/v1 is served. */
  readonly hasPrometheusOperator: boolean;
}

/** The discovery the tracker needs (@ztwim/k8s ResourceClient has it). */
export interface DiscoveryPort {
  hasGroupVersion(apiVersion: string): Promise<boolean>;
  refreshDiscovery(apiVersion?: string): void;
}

export const ROUTE_API = 'route.openshift.io/v1';
export const SECURITY_API = 'security.openshift.io/v1';
export const MONITORING_API = 'monitoring.coreos.com/v1';
export const OPTIONAL_APIS: readonly string[] = [ROUTE_API, SECURITY_API, MONITORING_API];

/** How often the manager re-checks discovery by default. */
export const DEFAULT_DISCOVERY_INTERVAL_MS = 30_000;

export class ServedApis {
  readonly #client: DiscoveryPort;
  #served = new Set<string>();
  #checked = false;
  #gets = 0;

  constructor(client: DiscoveryPort) {
    this.#client = client;
  }

  /** Asks the apiserver again; true when the set of served optional groups changed. */
  async refresh(): Promise<boolean> {
    const next = new Set<string>();
    for (const gv of OPTIONAL_APIS) {
      this.#client.refreshDiscovery(gv);
      this.#gets++;
      if (await this.#client.hasGroupVersion(gv)) next.add(gv);
    }
    const changed = !this.#checked || next.size !== this.#served.size || [...next].some((gv) => !this.#served.has(gv));
    this.#served = next;
    this.#checked = true;
    return changed;
  }

  /** Discovery GETs so far (the operator's per-minute stats line reports them). */
  get gets(): number {
    return this.#gets;
  }

  serves(apiVersion: string): boolean {
    return this.#served.has(apiVersion);
  }

  /** The served group/versions, sorted (for logs). */
  list(): string[] {
    return [...this.#served].sort();
  }

  flags(): ServedApiFlags {
    return { hasOpenShiftGroups: this.serves(ROUTE_API) && this.serves(SECURITY_API), hasPrometheusOperator: this.serves(MONITORING_API) };
  }
}
