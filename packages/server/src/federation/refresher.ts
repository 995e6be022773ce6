import { X509Certificate } from 'node:crypto';
import type { Clock, Logger } from '@ztwim/core';
import { SpiffeId, TrustDomain, type SpiffeBundle } from '@ztwim/spiffe';
import type { BundleRefresher } from '../api/trustdomain-service.ts';
import type { DataStore, FederationRelationship } from '../datastore/datastore.ts';
import { spiffeBundleToInput } from './bundle-json.ts';
import { fetchBundle, type FetchBundleOptions } from './fetch-bundle.ts';
import { internal } from '@ztwim/core';

/** A relationship from the config file (`federates_with`); the same fields as the datastore's. */
export type RelationshipConfig = Pick<FederationRelationship, 'trustDomain' | 'bundleEndpointUrl' | 'bundleEndpointProfile' | 'endpointSpiffeId'>;

/** SPIRE's bundle client timing (pkg/server/bundle/client, bundleutil). */
export const REFRESH_TIMING = {
  /** Relationships re-read from the datastore. */
  configReloadMs: 10_000,
  /** A bundle without a refresh hint is polled this often. */
  defaultIntervalMs: 5 * 60_000,
  /** Refresh hints below this are raised to it. */
  minimumHintMs: 60_000,
  /** Polls per refresh hint. */
  attemptsPerHint: 4,
  /** Consecutive failures double the wait, up to this factor. */
  maxBackoffFactor: 8,
} as const;

export interface FederationRefresherOptions {
  readonly dataStore: DataStore;
  readonly clock: Clock;
  readonly log: Logger;
  /** Config relationships; they take precedence over the datastore's (as SPIRE merges them). */
  readonly relationships: readonly RelationshipConfig[];
  /** PEM roots trusted beside the system's for https_web endpoints. */
  readonly extraWebRootsPem?: string;
  /** Injected for tests. */
  readonly fetch?: (o: FetchBundleOptions) => Promise<SpiffeBundle>;
}

interface Managed {
  rel: RelationshipConfig;
  failures: number;
  cancel?: () => void;
  running?: Promise<void>;
}

/** The wait after a successful fetch (SPIRE: refresh hint, at least 1 min, divided by 4). */
export function nextRefreshMs(hintSeconds: number | undefined): number {
  if (hintSeconds === undefined || hintSeconds <= 0) return REFRESH_TIMING.defaultIntervalMs;
  return Math.max(hintSeconds * 1000, REFRESH_TIMING.minimumHintMs) / REFRESH_TIMING.attemptsPerHint;
}

/** SPIFFE URI SANs of the bundle's X.509 authorities that name another trust domain. */
function foreignAuthority(sb: SpiffeBundle, td: string): string | undefined {
  for (const der of sb.x509Authorities()) {
    const san = new X509Certificate(der).subjectAltName ?? '';
    for (const m of san.matchAll(/URI:(spiffe:\/\/[^,\s]+)/g)) {
      const uri = m[1] as string;
      try {
        const other = SpiffeId.parse(uri).trustDomain.name;
        if (other !== td) return other;
      } catch {
        /* not a SPIFFE ID: not ours to judge */
      }
    }
  }
  return undefined;
}

/**
 * Keeps each federated trust domain's bundle fresh (SPIRE's bundle client manager): one loop per
 * relationship, polling at the refresh hint (SPIRE's floor), backing off on errors. A bad answer
 * (other trust domain, malformed JSON, a key without `use`, a lower spiffe_sequence) is refused
 * with one log line naming the relationship; the last good bundle stays.
 */
export class FederationRefresher implements BundleRefresher {
  readonly #o: FederationRefresherOptions;
  readonly #managed = new Map<string, Managed>();
  #stopped = false;
  #cancelReload: (() => void) | undefined;
  #reloading: Promise<void> | undefined;

  constructor(o: FederationRefresherOptions) {
    this.#o = o;
  }

  async start(): Promise<void> {
    await this.#reload();
    const again = (): void => {
      if (this.#stopped) return;
      this.#cancelReload = this.#o.clock.setTimer(REFRESH_TIMING.configReloadMs, () => {
        this.#reload().finally(again);
      });
    };
    again();
  }

  /** Trust domains managed now. */
  trustDomains(): string[] {
    return [...this.#managed.keys()];
  }

  reload(): void {
    this.#reload().catch(() => undefined);
  }

  async refresh(trustDomain: string): Promise<boolean> {
    await this.#reload();
    const m = this.#managed.get(trustDomain);
    if (m === undefined) return false;
    await m.running;
    await this.#runOnce(trustDomain, m);
    return true;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#cancelReload?.();
    for (const m of this.#managed.values()) m.cancel?.();
    await Promise.allSettled([...this.#managed.values()].map((m) => m.running));
  }

  #reload(): Promise<void> {
    this.#reloading ??= this.#loadRelationships().finally(() => (this.#reloading = undefined));
    return this.#reloading;
  }

  async #loadRelationships(): Promise<void> {
    const want = new Map<string, RelationshipConfig>();
    try {
      let token = '';
      do {
        const page = await this.#o.dataStore.listFederationRelationships({ pageSize: 500, pageToken: token });
        for (const r of page.relationships) want.set(r.trustDomain, r);
        token = page.nextPageToken;
      } while (token !== '');
    } catch (e) {
      this.#o.log.error({ error: (e as Error).message }, 'Failed to reload configs');
      return;
    }
    for (const r of this.#o.relationships) want.set(r.trustDomain, r);
    if (this.#stopped) return;
    for (const [td, m] of this.#managed) {
      if (!want.has(td)) {
        m.cancel?.();
        this.#managed.delete(td);
        this.#o.log.info({ trust_domain: td }, 'Trust domain no longer managed');
      }
    }
    for (const [td, rel] of want) {
      const m = this.#managed.get(td);
      if (m === undefined) {
        const fresh: Managed = { rel, failures: 0 };
        this.#managed.set(td, fresh);
        this.#o.log.info(
          { trust_domain: td, bundle_endpoint_url: rel.bundleEndpointUrl, bundle_endpoint_profile: rel.bundleEndpointProfile },
          'Trust domain is now managed',
        );
        this.#schedule(td, fresh, 0);
      } else if (
        m.rel.bundleEndpointUrl !== rel.bundleEndpointUrl ||
        m.rel.bundleEndpointProfile !== rel.bundleEndpointProfile ||
        m.rel.endpointSpiffeId !== rel.endpointSpiffeId
      ) {
        m.rel = rel;
        m.failures = 0;
        this.#o.log.info({ trust_domain: td, bundle_endpoint_url: rel.bundleEndpointUrl }, 'Updated configuration for managed trust domain');
        m.cancel?.();
        this.#schedule(td, m, 0);
      }
    }
  }

  #schedule(td: string, m: Managed, ms: number): void {
    m.cancel?.();
    m.cancel = this.#o.clock.setTimer(ms, () => {
      if (this.#stopped || this.#managed.get(td) !== m) return;
      void this.#runOnce(td, m);
    });
  }

  /** One poll; schedules the next. */
  #runOnce(td: string, m: Managed): Promise<void> {
    const run = (async () => {
      let next: number;
      try {
        const hint = await this.#update(td, m.rel);
        m.failures = 0;
        next = nextRefreshMs(hint);
      } catch (e) {
        m.failures++;
        const local = await this.#o.dataStore.getBundle(td).catch(() => null);
        const base = local === null ? REFRESH_TIMING.minimumHintMs : nextRefreshMs(local.refreshHint);
        next = base * Math.min(2 ** (m.failures - 1), REFRESH_TIMING.maxBackoffFactor);
        this.#o.log.error(
          { trust_domain: td, bundle_endpoint_url: m.rel.bundleEndpointUrl, error: (e as Error).message, failures: m.failures, retry_in_ms: next },
          'Error updating bundle',
        );
      }
      if (!this.#stopped && this.#managed.get(td) === m) this.#schedule(td, m, next);
    })();
    m.running = run;
    return run;
  }

  /** Fetches and stores; returns the refresh hint to schedule by. Throws with the reason to refuse. */
  async #update(td: string, rel: RelationshipConfig): Promise<number | undefined> {
    const ds = this.#o.dataStore;
    const trustDomain = TrustDomain.parse(td);
    let auth: FetchBundleOptions['auth'];
    if (rel.bundleEndpointProfile === 'https_spiffe') {
      const endpointSpiffeId = SpiffeId.parse(rel.endpointSpiffeId);
      // Self-serving: the bootstrap bundle, then the latest fetched; else the endpoint's domain's.
      const roots = await ds.getBundle(endpointSpiffeId.trustDomain.name);
      if (roots === null) throw internal("can't perform SPIFFE Authentication: local copy of bundle not found");
      auth = { profile: 'https_spiffe', endpointSpiffeId, roots: roots.x509Authorities.map((a) => a.asn1) };
    } else {
      auth = { profile: 'https_web', ...(this.#o.extraWebRootsPem === undefined ? {} : { extraRootsPem: this.#o.extraWebRootsPem }) };
    }
    const fetched = await (this.#o.fetch ?? fetchBundle)({ url: rel.bundleEndpointUrl, trustDomain, auth, now: () => this.#o.clock.now() });
    const other = foreignAuthority(fetched, td);
    if (other !== undefined) throw internal(`endpoint served a bundle of trust domain "${other}", expected "${td}"`);
    const local = await ds.getBundle(td);
    const seq = fetched.sequenceNumber;
    if (local?.spiffeSequence !== undefined && seq !== undefined && seq < local.spiffeSequence) {
      throw internal(`spiffe_sequence went down from ${local.spiffeSequence} to ${seq}; keeping the stored bundle`);
    }
    const input = spiffeBundleToInput(fetched);
    const stored = await ds.setBundle(input);
    if (local === null || stored.sequenceNumber !== local.sequenceNumber) {
      this.#o.log.info({ trust_domain: td, spiffe_sequence: seq?.toString() ?? '' }, 'Bundle refreshed');
    }
    return fetched.refreshHintSeconds;
  }
}
