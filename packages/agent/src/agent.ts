// startAgent: the agent's composition root. It wires storage (storage/), attestation or resume,
// the server client (client/), the cache and its sync (manager/), the agent-SVID rotator (svid/)
// and the Workload API endpoint, then runs them as tasks until close() or a fatal error.
import {
  ZtwimError,
  closeOnAbort,
  createLogger,
  every,
  listenError,
  lockDataDir,
  loadMetrics,
  runTasks,
  serveHealthChecks,
  isZtwimError,
  type DataDirLock,
  systemClock,
  Wakeup,
  type Clock,
  type Logger,
  type ProbeResult,
  type Task,
} from '@ztwim/core';
import { TrustDomain } from '@ztwim/spiffe';
import type { Bundle } from '@ztwim/proto';
import { AGENT_DEFAULTS, serverTargets, type AgentConfig } from './config/agent-config.ts';
import type { ServerTarget } from './config/server-targets.ts';
import { watchHints } from './client/hints.ts';
import { DEFAULT_SERVER_KEEPALIVE, ServerClient, attestAgent, renewAgent } from './client/server-client.ts';
import { ServerPool, type ResolveHost } from './client/server-pool.ts';
import { bootstrapRoots } from './client/bootstrap-bundle.ts';
import { statusText } from './client/errors.ts';
import { AgentDataStore, type AgentCredentials } from './storage/storage.ts';
import { AgentSvidRotator } from './svid/rotator.ts';
import { CacheManager } from './manager/sync.ts';
import { startWorkloadEndpoint } from './endpoints/workload-api.ts';
import { PeerTracker } from './attestation/workload/peer-tracker.ts';
import { UnixWorkloadAttestor } from './attestation/workload/unix.ts';
import type { K8sWorkloadAttestor } from './attestation/workload/k8s.ts';
import { attestationData } from './attestation/node/attestation-data.ts';

export { deleteAgentData, storedAgentId } from './storage/storage.ts';

export interface AgentDeps {
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Log 'agent stopped' when the agent stops on its own (default true; off where the caller reports it). */
  readonly logStop?: boolean;
  /** How server host names become addresses (default: getaddrinfo); tests map names to loopback addresses. */
  readonly resolveHost?: ResolveHost;
  /** Called once, when the first sync since start has completed (every entry's SVID minted). */
  readonly onFirstSync?: () => void;
}

export interface RunningAgent {
  readonly socketPath: string;
  /** Port of the Prometheus endpoint, when the config has one. */
  readonly metricsPort?: number;
  readonly agentId: string;
  /** The server the agent is connected to (`host:port`), and how often it failed over since start. */
  /**
   * The server in use, the fail-overs and rebalancing moves since start, and whether the agent is
   * still checking the servers after a fail-over (some did not answer yet).
   */
  server(): { readonly address: string | undefined; readonly failovers: number; readonly rebalances: number; readonly rebalancing: boolean };
  /** Resolves when the agent stops; rejects with the reason if it stopped on its own (e.g. banned). */
  readonly done: Promise<void>;
  close(): Promise<void>;
}

/** Whether the agent stopped because the server no longer knows it (evicted, or another datastore). */
export function isAgentNotAttested(e: unknown): boolean {
  return isZtwimError(e, 'ERR_PERMISSION_DENIED') && e.fields['agent_state'] === 'not_attested';
}

function rootsOf(b: Bundle): Uint8Array[] {
  return b.x509Authorities.map((a) => a.asn1);
}

export async function startAgent(config: AgentConfig, deps: AgentDeps = {}): Promise<RunningAgent> {
  const clock = deps.clock ?? systemClock;
  const log = deps.logger ?? createLogger({ level: config.logLevel, name: 'agent', ...(config.logFormat === undefined ? {} : { format: config.logFormat }) });
  for (const warning of config.warnings ?? []) log.warn({ warning }, 'Configuration not fully applied');
  // One agent per data dir: a second would overwrite its SVID and key.
  const lock = lockDataDir(config.dataDir, { what: 'the agent', moveWith: 'data_dir (agent block)', file: 'ztwim-agent.lock' });
  // Built first: its token and kubelet CA are read now, and a missing one stops the start here.
  let k8s: K8sWorkloadAttestor | undefined;
  try {
    // Loaded only when configured (the kubelet client and its HTTP code stay out of other agents).
    if (config.k8sAttestor !== undefined) {
      const { K8sWorkloadAttestor } = await import('./attestation/workload/k8s.ts');
      k8s = new K8sWorkloadAttestor(config.k8sAttestor, { clock, logger: log });
    }
    return await runAgent(config, clock, log, lock, deps.logStop ?? true, k8s, deps);
  } catch (e) {
    k8s?.close();
    lock.release();
    throw e;
  }
}

/** The stored SVID to resume with, or undefined to attest; refuses a corrupted data dir it cannot replace. */
function resumable(
  config: AgentConfig,
  storage: AgentDataStore | undefined,
  td: TrustDomain,
  clock: Clock,
  log: Logger,
): { creds: AgentCredentials; roots: Uint8Array[] } | undefined {
  const loaded = storage?.load(td);
  if (loaded === undefined) return undefined;
  if (!('creds' in loaded)) {
    // As spire-agent, a data dir that cannot be read is never used. Re-attest when we can
    // (a join token, x509pop or k8s_psat); otherwise refuse to start, naming the file.
    if (attestationData(config) === undefined) {
      throw new ZtwimError(
        'ERR_CONFIG',
        `agent data file ${loaded.file} is corrupted (${loaded.reason}); remove it and start the agent with a new join token`,
        {
          fields: { file: loaded.file, reason: loaded.reason },
        },
      );
    }
    log.error({ file: loaded.file, reason: loaded.reason }, 'Agent data dir is corrupted; ignoring it and re-attesting');
    return undefined;
  }
  if (loaded.creds.svid.expiresAt().getTime() <= clock.nowMs()) {
    log.warn({}, 'Stored agent SVID expired; re-attesting');
    return undefined;
  }
  return loaded;
}

async function runAgent(
  config: AgentConfig,
  clock: Clock,
  log: Logger,
  lock: DataDirLock,
  logStop: boolean,
  k8s: K8sWorkloadAttestor | undefined,
  { resolveHost, onFirstSync }: AgentDeps,
): Promise<RunningAgent> {
  const td = TrustDomain.parse(config.trustDomain);
  const storage = config.keyManager === 'disk' ? new AgentDataStore(config.dataDir) : undefined;
  const stored = resumable(config, storage, td, clock, log);
  let creds: AgentCredentials;
  /** Set once `creds` holds the agent's SVID: a rebalancing check before that has none to present. */
  let attested = false;
  let roots: Uint8Array[] = [];
  // Node attestation may skip the server's chain check (insecure_bootstrap); nothing after it does.
  let insecure = false;
  /** Set once the metrics exist: counts fail-overs. */
  const onFailover: { metric?: () => void; rebalanced?: () => void } = {};
  const keepalive = config.serverKeepalive ?? DEFAULT_SERVER_KEEPALIVE;
  // The agent's server connection: one server at a time, failing over between the addresses the
  // configured targets resolve to (client/server-pool.ts). New connections use the current SVID
  // and trust bundle.
  const pool = new ServerPool({
    targets: serverTargets(config),
    connect: (address: ServerTarget, bootstrap: boolean) =>
      new ServerClient(
        { host: address.host, port: address.port, trustDomain: td, roots, keepalive, ...(bootstrap && insecure ? { insecure: true } : {}) },
        bootstrap ? undefined : creds,
      ),
    clock,
    log,
    ...(resolveHost === undefined ? {} : { resolve: resolveHost }),
    onFailover: () => onFailover.metric?.(),
    // After a fail-over: check the servers now and then and spread again once they are back.
    rebalanceIntervalMs: config.serverRebalanceIntervalMs ?? AGENT_DEFAULTS.serverRebalanceIntervalMs,
    probe: async (c, o) => {
      if (!attested) throw new ZtwimError('ERR_UNAVAILABLE', 'the agent is not attested yet');
      return await c.bundle.getBundle({}, { timeoutMs: o.timeoutMs });
    },
    probeTimeoutMs: keepalive.intervalMs + keepalive.timeoutMs,
    onRebalance: () => onFailover.rebalanced?.(),
  });
  if (stored !== undefined) {
    ({ creds, roots } = stored);
    attested = true;
    log.info({ spiffe_id: creds.svid.id.toString() }, 'Resuming with stored agent SVID');
  } else {
    const data = attestationData(config);
    if (data === undefined) {
      throw new ZtwimError('ERR_CONFIG', `no agent SVID stored in ${config.dataDir} and no join token, x509pop or k8s_psat NodeAttestor configured to attest`);
    }
    roots = await bootstrapRoots(config);
    if (roots.length === 0 && !config.insecureBootstrap)
      throw new ZtwimError('ERR_CONFIG', 'trust bundle is required (trust_bundle_path, trust_bundle_url or insecure_bootstrap)');
    insecure = config.insecureBootstrap;
    try {
      creds = await pool.call((c) => attestAgent(c, data), { bootstrap: true });
    } catch (e) {
      pool.close();
      const reason = statusText(e);
      throw new ZtwimError('ERR_UNAVAILABLE', `node attestation failed: ${reason}`, { cause: e, fields: { reason } });
    } finally {
      insecure = false;
    }
    attested = true;
    log.info({ spiffe_id: creds.svid.id.toString() }, 'Node attested');
  }
  const cache = new CacheManager({ clock, logger: log, syncIntervalMs: config.syncIntervalMs, server: pool });
  // The agent's data is stored after the first bundle fetch and after each sync (when it changed).
  const persist = async (): Promise<void> => {
    try {
      await storage?.save(creds, roots);
    } catch (e) {
      log.warn({ err: e }, 'Cannot store the agent data');
    }
  };
  const rotator = new AgentSvidRotator(creds, {
    clock,
    log,
    checkIntervalMs: config.syncIntervalMs,
    server: pool,
    attest: attestAgent,
    renew: renewAgent,
    attestationData: () => attestationData(config),
    onRotated: async (next) => {
      creds = next;
      // New connections present the new SVID; the calls under way on the old one finish first.
      pool.reconnect();
      await persist();
    },
  });
  // Fetch the bundle right away (first sync).
  try {
    const b = await pool.call((c, o) => c.bundle.getBundle({}, { timeoutMs: o.timeoutMs }));
    cache.setBundle(b);
    roots = rootsOf(b);
    await storage?.save(creds, roots);
  } catch (e) {
    if (stored === undefined) {
      pool.close();
      throw new ZtwimError('ERR_UNAVAILABLE', 'cannot fetch bundle after attestation', { cause: e });
    }
    log.warn({ err: e }, 'Server unavailable at start; serving from cache when it returns');
  }
  const tasks: Task[] = [];
  const stopping = new AbortController();
  try {
    // Metrics only where the config asks for them (telemetry { Prometheus { ... } }), as spire-agent.
    // prom-client is loaded only then.
    const metrics = config.metrics === undefined ? undefined : await loadMetrics({ prefix: 'ztwim_agent' });
    let metricsPort: number | undefined;
    if (metrics !== undefined && config.metrics !== undefined) {
      metrics.entries.set(cache.entries.size);
      const connection = metrics.serverConnection(() => pool.serverAddress);
      onFailover.metric = connection.failedOver;
      onFailover.rebalanced = connection.rebalanced;
      const m = await metrics.serve(config.metrics.host, config.metrics.port).catch((e: unknown) => {
        throw new ZtwimError(
          'ERR_CONFIG',
          `agent metrics cannot listen on ${config.metrics?.host}:${config.metrics?.port} (telemetry.Prometheus): ${(e as Error).message}`,
          { cause: e },
        );
      });
      metricsPort = m.port;
      tasks.push(closeOnAbort(() => m.close()));
    }
    const unix = new UnixWorkloadAttestor({ ...config.unixAttestor, logger: log });
    const tracker = new PeerTracker({ attestors: k8s === undefined ? [unix] : [unix, k8s], logger: log });
    const endpoint = await startWorkloadEndpoint({
      socketPath: config.socketPath,
      cache,
      attestor: tracker,
      logger: log,
      allowUnauthenticatedVerifiers: config.allowUnauthenticatedVerifiers === true,
    }).catch((e: unknown) => {
      throw listenError(e, {
        name: 'Workload API socket',
        address: config.socketPath,
        at: { path: config.socketPath },
        moveWith: 'agent.socket_path in the config or -socketPath',
      });
    });
    tasks.push(closeOnAbort(() => endpoint.close({ graceMs: 1000 })));
    // SPIRE's health_checks listener (the DaemonSet's httpGet probes): live while the agent's own
    // SVID is unexpired, ready when it also holds the trust bundle its workloads are served.
    if (config.healthChecks !== undefined) {
      const svidLive = (): { ok: true } | { ok: false; reason: string } =>
        rotator.creds.svid.expiresAt().getTime() > clock.nowMs() ? { ok: true } : { ok: false, reason: 'agent SVID expired' };
      // A ready answer names the server in use and the fail-overs since start.
      const ready = (): ProbeResult => {
        if (cache.bundle === undefined) return { ok: false, reason: 'no trust bundle yet' };
        const live = svidLive();
        return live.ok
          ? { ok: true, details: { server_address: pool.serverAddress ?? '', server_failovers: pool.failovers, server_rebalances: pool.rebalances } }
          : live;
      };
      const health = await serveHealthChecks(config.healthChecks, { live: svidLive, ready });
      tasks.push(closeOnAbort(() => health.close()));
      log.info({ address: config.healthChecks.bindAddress, port: health.port }, 'Serving health checks');
    }

    // A ztwim server hints when this agent's entries change: the sync runs at once instead of at
    // the end of its interval (client/hints.ts; a spire-server has no such service).
    const hinted = new Wakeup();
    const sync = every(
      clock,
      () => cache.nextDelayMs(),
      async (signal) => {
        const first = !cache.synced;
        await cache.sync(signal); // throws only PermissionDenied: the agent stops
        if (first && cache.synced) onFirstSync?.();
        metrics?.entries.set(cache.entries.size);
        const b = cache.bundle;
        if (b !== undefined) {
          roots = rootsOf(b);
          await persist();
        }
      },
      { wakeup: hinted, stopOnError: true },
    );
    tasks.push(
      sync,
      rotator.run(),
      async (signal) =>
        void (await watchHints({
          client: () => pool.client(),
          onFailure: (c, e) => void pool.reportFailure(c, e),
          clock,
          log,
          signal,
          onHint: () => hinted.fire(),
        })),
    );
    const agentStopped = (e: unknown): unknown => {
      // Banned or evicted: the stored SVID is worthless; the next start attests again.
      if (isZtwimError(e, 'ERR_PERMISSION_DENIED') && e.fields['agent_state'] !== undefined) storage?.delete();
      return e;
    };
    let closed = false;
    const done = runTasks(tasks, stopping.signal)
      .catch((e: unknown) => {
        throw agentStopped(e);
      })
      .finally(() => {
        pool.close();
        k8s?.close();
        lock.release();
      })
      .catch((e: unknown) => {
        if (!closed && logStop) log.error({ err: e }, 'Agent stopped');
        throw e;
      });
    done.catch(() => undefined);
    return {
      socketPath: config.socketPath,
      ...(metricsPort === undefined ? {} : { metricsPort }),
      agentId: creds.svid.id.toString(),
      server: () => ({ address: pool.serverAddress, failovers: pool.failovers, rebalances: pool.rebalances, rebalancing: pool.rebalancing }),
      done,
      async close() {
        closed = true;
        stopping.abort();
        await done.catch(() => undefined);
      },
    };
  } catch (e) {
    // Start-up failed: close what was opened so far.
    stopping.abort();
    await runTasks(tasks, stopping.signal).catch(() => undefined);
    pool.close();
    throw e;
  }
}
