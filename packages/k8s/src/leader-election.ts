// Leader election on a coordination.k8s.io/v1 Lease with client-go's semantics
// (k8s.io/client-go/tools/leaderelection): a candidate takes the Lease when it has no holder or
// when the record it last observed has not changed for the record's leaseDurationSeconds (measured
// on the local clock from when this candidate saw it change, so clock skew between replicas does
// not matter); the leader renews every retryPeriod and stops leading when it cannot renew within
// renewDeadline; on stop it clears the holder so the next candidate takes over at its next try.
// Writes are PUTs with the observed resourceVersion: two candidates never both win a round.
import { cryptoRandom, silentLogger, systemClock, ZtwimError, type Clock, type Logger, type Random } from '@ztwim/core';
import { unitInterval } from './backoff.ts';
import type { KubeObject } from './objects.ts';
import type { ResourceClient } from './resource-client.ts';
import { RESOURCES } from './resource-ref.ts';

export interface LeaseSpec {
  readonly holderIdentity?: string;
  readonly leaseDurationSeconds?: number;
  readonly acquireTime?: string;
  readonly renewTime?: string;
  readonly leaseTransitions?: number;
}

export interface Lease extends KubeObject {
  readonly spec?: LeaseSpec;
}

/** The calls an elector makes (a ResourceClient; tests hand it a fake). */
export type LeaseClient = Pick<ResourceClient, 'description' | 'get' | 'create' | 'replace'>;

export interface LeaderElectorOptions {
  readonly client: LeaseClient;
  readonly namespace: string;
  /** The Lease's name. */
  readonly name: string;
  /** This candidate's identity (holderIdentity), unique among the replicas (pod name + random, say). */
  readonly identity: string;
  /** How long a non-leader waits after the last observed change before taking over (default 15 s). */
  readonly leaseDurationMs?: number;
  /** How long the leader keeps retrying a renewal before it stops leading (default 10 s). */
  readonly renewDeadlineMs?: number;
  /** Between tries (default 2 s; candidates jitter it by up to 1.2x more). */
  readonly retryPeriodMs?: number;
  /** Clear the holder when stopped while leading, so another replica takes over at once (default true). */
  readonly releaseOnCancel?: boolean;
  /** Became leader; the signal aborts when leadership ends (lost or released). A returned promise's rejection is logged. */
  readonly onStartedLeading: (signal: AbortSignal) => void | Promise<void>;
  /** Leadership ended (after onStartedLeading only). */
  readonly onStoppedLeading?: () => void;
  /** The observed holder changed (this candidate included). */
  readonly onNewLeader?: (identity: string) => void;
  readonly clock?: Clock;
  readonly random?: Random;
  readonly logger?: Logger;
}

const JITTER_FACTOR = 1.2; // client-go's JitterFactor for candidates

/** metav1.MicroTime's wire form (RFC 3339 with microseconds). */
function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

function sameSpec(a: LeaseSpec | undefined, b: LeaseSpec | undefined): boolean {
  return (
    (a?.holderIdentity ?? '') === (b?.holderIdentity ?? '') &&
    a?.renewTime === b?.renewTime &&
    a?.acquireTime === b?.acquireTime &&
    a?.leaseDurationSeconds === b?.leaseDurationSeconds &&
    (a?.leaseTransitions ?? 0) === (b?.leaseTransitions ?? 0)
  );
}

export class LeaderElector {
  readonly #o: LeaderElectorOptions;
  readonly #clock: Clock;
  readonly #random: Random;
  readonly #log: Logger;
  readonly #leaseMs: number;
  readonly #renewMs: number;
  readonly #retryMs: number;
  #observed: Lease | undefined;
  #observedAt = 0;
  #leader = '';
  #leading = false;
  #running = false;

  constructor(options: LeaderElectorOptions) {
    this.#o = options;
    this.#clock = options.clock ?? systemClock;
    this.#random = options.random ?? cryptoRandom;
    this.#log = options.logger ?? silentLogger();
    this.#leaseMs = options.leaseDurationMs ?? 15_000;
    this.#renewMs = options.renewDeadlineMs ?? 10_000;
    this.#retryMs = options.retryPeriodMs ?? 2_000;
    if (options.identity === '') throw new ZtwimError('ERR_CONFIG', 'k8s: leader election needs an identity');
    if (this.#leaseMs <= this.#renewMs) throw new ZtwimError('ERR_CONFIG', 'k8s: leader election: leaseDuration must be greater than renewDeadline');
    if (this.#renewMs <= JITTER_FACTOR * this.#retryMs)
      throw new ZtwimError('ERR_CONFIG', 'k8s: leader election: renewDeadline must be greater than retryPeriod*1.2');
  }

  isLeader(): boolean {
    return this.#leading;
  }

  /** The holder last observed ('' when none). */
  get leader(): string {
    return this.#leader;
  }

  /**
   * Campaigns until this candidate leads, then renews until the signal aborts (releasing the Lease)
   * or a renewal fails for renewDeadline. Resolves when leadership ended or the signal aborted
   * before it began; call again to campaign anew.
   */
  async run(signal: AbortSignal): Promise<void> {
    if (this.#running) throw new ZtwimError('ERR_FAILED_PRECONDITION', 'k8s: this leader elector is already running');
    this.#running = true;
    try {
      if (!(await this.#acquire(signal))) return;
      const leadership = new AbortController();
      this.#leading = true;
      this.#log.info({ lease: this.#leaseName(), identity: this.#o.identity }, 'k8s: Became leader');
      try {
        const started = this.#o.onStartedLeading(leadership.signal);
        if (started instanceof Promise) started.catch((e: unknown) => this.#log.error({ err: e }, 'k8s: onStartedLeading failed'));
      } catch (e) {
        this.#log.error({ err: e }, 'k8s: onStartedLeading failed');
      }
      const lost = await this.#renewLoop(signal);
      this.#leading = false;
      if (!lost && this.#o.releaseOnCancel !== false) await this.#release();
      leadership.abort(new ZtwimError('ERR_UNAVAILABLE', lost ? 'k8s: leadership lost' : 'k8s: leadership released'));
      this.#log.info({ lease: this.#leaseName(), identity: this.#o.identity, lost }, lost ? 'k8s: Lost leadership' : 'k8s: Stopped leading');
      try {
        this.#o.onStoppedLeading?.();
      } catch (e) {
        this.#log.error({ err: e }, 'k8s: onStoppedLeading failed');
      }
    } finally {
      this.#running = false;
    }
  }

  #leaseName(): string {
    return `${this.#o.namespace}/${this.#o.name}`;
  }

  /** Tries every retryPeriod (jittered) until the Lease is ours; false when the signal aborted first. */
  async #acquire(signal: AbortSignal): Promise<boolean> {
    while (!signal.aborted) {
      if (await this.#tryAcquireOrRenew(this.#clock.nowMs() + this.#retryMs * (1 + JITTER_FACTOR))) return true;
      const wait = this.#retryMs * (1 + JITTER_FACTOR * unitInterval(this.#random));
      try {
        await this.#clock.sleep(wait, signal);
      } catch {
        return false;
      }
    }
    return false;
  }

  /** Renews every retryPeriod; true when leadership was lost, false when the signal aborted. */
  async #renewLoop(signal: AbortSignal): Promise<boolean> {
    for (;;) {
      try {
        await this.#clock.sleep(this.#retryMs, signal);
      } catch {
        return false;
      }
      // One renewal round: retry every retryPeriod until it succeeds or renewDeadline passes.
      const deadline = this.#clock.nowMs() + this.#renewMs;
      for (;;) {
        if (signal.aborted) return false;
        if (await this.#tryAcquireOrRenew(deadline)) break;
        const left = deadline - this.#clock.nowMs();
        if (left <= 0) return true;
        try {
          await this.#clock.sleep(Math.min(this.#retryMs, left), signal);
        } catch {
          return false;
        }
        if (this.#clock.nowMs() >= deadline) return true;
      }
    }
  }

  /** An AbortSignal that fires at `deadline` on the injected clock (so no call outlives it). */
  #deadlineSignal(deadline: number): { signal: AbortSignal; cancel: () => void } {
    const ctl = new AbortController();
    const cancel = this.#clock.setTimer(Math.max(0, deadline - this.#clock.nowMs()), () =>
      ctl.abort(new ZtwimError('ERR_UNAVAILABLE', 'k8s: leader election deadline passed')),
    );
    return { signal: ctl.signal, cancel };
  }

  /** One round of client-go's tryAcquireOrRenew: true when this candidate holds the Lease after it. */
  async #tryAcquireOrRenew(deadline: number): Promise<boolean> {
    const { signal, cancel } = this.#deadlineSignal(deadline);
    const { client, namespace, name, identity } = this.#o;
    const now = this.#clock.nowMs();
    const durationS = Math.ceil(this.#leaseMs / 1000);
    try {
      let lease: Lease;
      try {
        lease = await client.get<Lease>(RESOURCES.leases, name, namespace, { signal });
      } catch (e) {
        if (!(e instanceof ZtwimError && e.code === 'ERR_NOT_FOUND')) throw e;
        const created = await client.create<Lease>(
          RESOURCES.leases,
          {
            apiVersion: 'coordination.k8s.io/v1',
            kind: 'Lease',
            metadata: { name, namespace },
            spec: { holderIdentity: identity, leaseDurationSeconds: durationS, acquireTime: microTime(now), renewTime: microTime(now), leaseTransitions: 0 },
          },
          { signal },
        );
        this.#observe(created, this.#clock.nowMs());
        return true;
      }
      if (!sameSpec(lease.spec, this.#observed?.spec)) this.#observe(lease, now);
      else this.#observed = lease;
      const spec = lease.spec ?? {};
      const holder = spec.holderIdentity ?? '';
      const heldMs = (spec.leaseDurationSeconds ?? durationS) * 1000;
      if (holder !== '' && holder !== identity && this.#observedAt + heldMs > now) return false;
      const mine = holder === identity;
      const updated = await client.replace<Lease>(
        RESOURCES.leases,
        {
          ...lease,
          spec: {
            holderIdentity: identity,
            leaseDurationSeconds: durationS,
            acquireTime: mine && spec.acquireTime !== undefined ? spec.acquireTime : microTime(now),
            renewTime: microTime(now),
            leaseTransitions: (spec.leaseTransitions ?? 0) + (mine ? 0 : 1),
          },
        },
        { signal },
      );
      this.#observe(updated, this.#clock.nowMs());
      return true;
    } catch (e) {
      this.#log.debug({ err: e, lease: this.#leaseName() }, 'k8s: Lease acquire/renew failed');
      return false;
    } finally {
      cancel();
    }
  }

  /** Clears the holder (leaseDurationSeconds 1, as client-go's release) when this candidate still holds the Lease. */
  async #release(): Promise<void> {
    const { signal, cancel } = this.#deadlineSignal(this.#clock.nowMs() + this.#renewMs);
    const { client, namespace, name, identity } = this.#o;
    try {
      const lease = await client.get<Lease>(RESOURCES.leases, name, namespace, { signal });
      if ((lease.spec?.holderIdentity ?? '') !== identity) return;
      const now = microTime(this.#clock.nowMs());
      const released = await client.replace<Lease>(
        RESOURCES.leases,
        {
          ...lease,
          spec: { leaseDurationSeconds: 1, acquireTime: now, renewTime: now, leaseTransitions: lease.spec?.leaseTransitions ?? 0 },
        },
        { signal },
      );
      this.#observe(released, this.#clock.nowMs());
    } catch (e) {
      this.#log.warn({ err: e, lease: this.#leaseName() }, 'k8s: Could not release the lease; it expires after its duration');
    } finally {
      cancel();
    }
  }

  #observe(lease: Lease, at: number): void {
    this.#observed = lease;
    this.#observedAt = at;
    const holder = lease.spec?.holderIdentity ?? '';
    if (holder !== this.#leader) {
      this.#leader = holder;
      if (holder !== '') {
        try {
          this.#o.onNewLeader?.(holder);
        } catch (e) {
          this.#log.error({ err: e }, 'k8s: onNewLeader failed');
        }
      }
    }
  }
}
