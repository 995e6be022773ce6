import { mkdirSync } from 'node:fs';
import type { ConnectRouter, Interceptor } from '@connectrpc/connect';
import {
  configError,
  createLogger,
  cryptoRandom,
  listenError,
  loadMetrics,
  NO_METRICS,
  asError,
  ZTWIM_VERSION,
  serveHealthChecks,
  systemClock,
  runTasks,
  closeOnAbort,
  type Clock,
  type Logger,
  type Metrics,
  type PrometheusMetrics,
  type Random,
  type Task,
  lockDataDir,
  internal,
} from '@ztwim/core';
import {
  AgentHintsService,
  AgentService,
  BundleService,
  ChangesService,
  ServerInfoService,
  DebugService,
  EntryService,
  HealthService,
  SvidService,
  TrustDomainService,
  LocalAuthorityService,
  errorMappingInterceptor,
} from '@ztwim/proto';
import type { ServerConfig } from './config/server-config.ts';
import type { DataStore, Bundle } from './datastore/datastore.ts';
import { agentService } from './api/agent-service.ts';
import { authorizationInterceptor, NODE_CACHE_MAX_AGE_MS } from './api/authz.ts';
import { RATE_LIMIT_DEFAULTS, rateLimitInterceptor } from './api/ratelimit.ts';
import { bundleService } from './api/bundle-service.ts';
import { debugService, healthService } from './api/debug-health.ts';
import { AuthorizedAnswers, entryService, prepareAuthorizedAnswer } from './api/entry-service.ts';
import { EntryChanges, hintsService } from './api/hints-service.ts';
import { AdminWrites, adminWritesInterceptor, changesService } from './api/changes-service.ts';
import { serverInfoService, type Readiness } from './api/server-info-service.ts';
import { AgentActivity, agentActivityInterceptor } from './api/agent-activity.ts';
import { configuredPlugins } from './config/plugins.ts';
import { grpcCodeResolver } from './api/errors.ts';
import { svidService } from './api/svid-service.ts';
import { telemetryInterceptor } from './api/telemetry.ts';
import { auditInterceptor } from './api/audit.ts';
import { cachingPeerVerifier } from './api/peer-verifier.ts';
import type { Authority } from './api/authority.ts';
import { startAdminEndpoint, startTcpEndpoint } from './endpoints/endpoints.ts';
import { JoinTokenAttestor } from './attestation/join-token.ts';
import type { NodeAttestor } from './attestation/node-attestor.ts';
import type { K8sPsatCluster } from './attestation/k8s-psat.ts';
import { createCaManager, type CaManagerHandle } from './ca/wiring.ts';
import { BundlePublisher } from './bundle/publisher.ts';
import { SharedAuthorities } from './bundle/shared-authorities.ts';
import { ServerSvidRotator } from './svid/rotator.ts';
import { entryIndexRefresh, housekeeping } from './housekeeping.ts';
import { trustDomainService } from './api/trustdomain-service.ts';
import { localAuthorityService } from './api/localauthority-service.ts';
import { createFederation } from './federation/wiring.ts';
import type { K8sBundleNotifier } from './notifier/k8s-bundle.ts';

export interface ServerDeps {
  readonly clock?: Clock;
  readonly random?: Random;
  readonly log?: Logger;
  /** Open a datastore yourself (tests); otherwise built from the config. */
  readonly dataStore?: DataStore;
  /**
   * The command-line flags that move each listener, named in listen errors beside the config key;
   * default: `ztwim server run`'s (-socketPath, -serverPort).
   */
  readonly listenerFlags?: { readonly socketPath?: string; readonly bindPort?: string; readonly metrics?: string };
  /** PEM roots trusted beside the system's when fetching https_web bundle endpoints (tests). */
  readonly federationWebRootsPem?: string;
  /** PEM roots trusted for the bundle endpoint's ACME directory beside Node's (NODE_EXTRA_CA_CERTS does the same for a process). */
  readonly federationAcmeDirectoryCaPem?: string;
}

export interface RunningServer {
  readonly config: ServerConfig;
  readonly dataStore: DataStore;
  readonly socketPath: string;
  /** The bound TCP port of the agent API (useful with bind_port 0). */
  readonly port: number;
  readonly metricsPort?: number;
  /** The bound port of the federation bundle endpoint, when one is configured. */
  readonly bundleEndpointPort?: number;
  readonly metrics: Metrics;
  /** The own trust bundle as currently published. */
  bundle(): Promise<Bundle>;
  /** Resolves when the server stops (close() or a fatal error). */
  readonly done: Promise<void>;
  close(): Promise<void>;
}

/**
 * Opens the configured datastore. Each kind's module (better-sqlite3, or pg and its pool) is
 * imported only when configured: every SQLite start used to load the pg driver as well.
 */
export async function openDataStore(cfg: ServerConfig, clock: Clock, random: Random, logger?: Logger): Promise<DataStore> {
  const ds = cfg.dataStore;
  if (ds.type === 'sqlite3') {
    const { SqliteDataStore } = await import('./datastore/sqlite/sqlite-datastore.ts');
    return SqliteDataStore.open({ path: ds.path, clock, random });
  }
  const { PostgresDataStore } = await import('./datastore/postgres/postgres-datastore.ts');
  return await PostgresDataStore.open({
    connectionString: ds.connectionString,
    ...(ds.roConnectionString === undefined ? {} : { roConnectionString: ds.roConnectionString }),
    maxOpenConns: ds.maxOpenConns,
    maxIdleConns: ds.maxIdleConns,
    connMaxLifetimeMs: ds.connMaxLifetimeMs,
    clock,
    random,
    ...(logger === undefined ? {} : { logger }),
  });
}

/** The configured k8sbundle notifier (its Kubernetes client loaded only then), or undefined. */
async function startNotifier(cfg: ServerConfig, log: Logger): Promise<K8sBundleNotifier | undefined> {
  const nc = cfg.notifiers?.k8sBundle;
  if (nc === undefined) return undefined;
  const [{ K8sBundleNotifier, configMapClientOf }, { createResourceClient, kubeClientSource }] = await Promise.all([
    import('./notifier/k8s-bundle.ts'),
    import('@ztwim/k8s'),
  ]);
  const client = await createResourceClient(kubeClientSource(nc.kubeConfigFilePath)).catch((e: unknown) => {
    throw configError(`plugins.Notifier.k8sbundle.plugin_data.kube_config_file_path: ${(e as Error).message}`, { cause: e });
  });
  const n = new K8sBundleNotifier({ client: configMapClientOf(client), config: nc, log: log.child({ subsystem: 'notifier' }) });
  log.info({ notifier: 'k8sbundle', config_map: n.target, kube_api: client.description }, 'Notifier k8sbundle configured');
  return n;
}

/** Builds the server graph by hand (the composition root) and starts its endpoints. */
export async function startServer(cfg: ServerConfig, deps: ServerDeps = {}): Promise<RunningServer> {
  const clock = deps.clock ?? systemClock;
  const random = deps.random ?? cryptoRandom;
  const log = (deps.log ?? createLogger({ level: cfg.logLevel, name: 'server', ...(cfg.logFormat === undefined ? {} : { format: cfg.logFormat }) })).child({
    subsystem: 'server',
  });
  const td = cfg.trustDomain;
  for (const warning of cfg.warnings ?? []) log.warn({ warning }, 'Configuration not fully applied');
  mkdirSync(cfg.dataDir, { recursive: true, mode: 0o700 });
  // One server per data dir: a second would share its keys and (SQLite) database.
  const lock = lockDataDir(cfg.dataDir, { what: 'the server', moveWith: 'data_dir (server block)', file: 'ztwim-server.lock' });
  // prom-client only where `telemetry { Prometheus { ... } }` asks for a listener (as SPIRE).
  const prometheus: PrometheusMetrics | undefined = cfg.metrics === undefined ? undefined : await loadMetrics({ prefix: 'ztwim_server' });
  const metrics: Metrics = prometheus ?? NO_METRICS;
  let ds: DataStore;
  try {
    ds = deps.dataStore ?? (await openDataStore(cfg, clock, random, log.child({ subsystem: 'datastore' })));
  } catch (e) {
    lock.release();
    throw e;
  }
  // The server is a list of tasks (SPIRE pkg/server/server.go): endpoints, rotators and pollers
  // run together until close() aborts them or one fails; the datastore and the data-dir lock are
  // released after all of them have stopped.
  const tasks: Task[] = [];
  const stopping = new AbortController();
  const release = async (): Promise<void> => {
    try {
      if (deps.dataStore === undefined) await ds.close();
    } catch (e) {
      log.warn({ error: (e as Error).message }, 'Error while stopping');
    }
    lock.release();
  };
  const closing = (what: string, close: () => Promise<void> | void): Task =>
    closeOnAbort(async () => {
      try {
        await close();
      } catch (e) {
        log.warn({ error: (e as Error).message, component: what }, 'Error while stopping');
      }
    });
  try {
    // CA: keys, rotation, and the bundle it publishes into the datastore.
    // The authorised-entry index is built before the endpoints open (as SPIRE builds its entry
    // cache), so the first agent sync after a restart does not pay for reading every entry.
    await ds.warmUp?.();
    const notifier = await startNotifier(cfg, log);
    const roots = async (): Promise<Uint8Array[]> => ((await ds.getBundle(td.name))?.x509Authorities ?? []).map((a) => a.asn1);
    // "bundle updated" is sent for changes after the start's "bundle loaded".
    let bundleLoaded = false;
    const publisher = new BundlePublisher({
      dataStore: ds,
      trustDomain: td,
      clock,
      // As SPIRE: a failed "bundle updated" notification is logged and the server carries on.
      ...(notifier === undefined
        ? {}
        : {
            afterUpdate: async () => {
              if (!bundleLoaded) return;
              await notifier.notify('bundle updated', roots).catch((e: unknown) => {
                log.warn({ notifier: 'k8sbundle', event: 'bundle updated', error: (e as Error).message }, 'Notifier failed to handle event');
              });
            },
          }),
    });
    const ca: CaManagerHandle = await createCaManager({
      config: cfg,
      clock,
      random,
      log: log.child({ subsystem: 'ca_manager' }),
      dataStore: ds,
      publishBundle: (b) => publisher.publish(b),
    });
    tasks.push(ca.task());
    // As SPIRE: the "bundle loaded" notification is part of the start (its failure fails the start).
    await notifier?.notify('bundle loaded', roots);
    bundleLoaded = true;
    // Every server's CA keys, for verifying callers' X509-SVIDs signed by any server of the trust domain.
    // When this server last read the datastore (docs/ha.md: health and metrics of each server).
    let datastoreSeenMs: number | undefined;
    const datastoreRead = (ms: number): void => {
      datastoreSeenMs = ms;
      metrics.datastoreLastSuccess.set(ms / 1000);
    };
    // Ready while the datastore answers: the health_checks ready path and ServerInfo's health.
    const readiness = async (): Promise<Readiness> => {
      const failed = await ds.countEntries().then(
        () => undefined,
        (e: unknown) => asError(e),
      );
      if (failed === undefined) datastoreRead(clock.nowMs());
      const hosts = ds.hosts?.();
      return {
        serving: failed === undefined,
        // the datastore's errors name it already ("datastore: postgres unavailable: ...")
        ...(failed === undefined ? {} : { reason: failed.message.startsWith('datastore:') ? failed.message : `datastore: ${failed.message}` }),
        ...(datastoreSeenMs === undefined ? {} : { datastoreLastSuccessMs: datastoreSeenMs }),
        ...(hosts === undefined ? {} : { datastoreHost: hosts.primary ?? null }),
        ...(hosts?.readReplica === undefined ? {} : { datastoreReadReplicaHost: hosts.readReplica }),
      };
    };
    const trusted = new SharedAuthorities({
      dataStore: ds,
      trustDomain: td,
      clock,
      local: () => ca.bundle().x509Authorities,
      log,
      onRead: datastoreRead,
    });
    await trusted.refresh();
    tasks.push(trusted.task());
    const authority: Authority = {
      signX509Svid: async (p) => ca.x509Ca().signX509Svid(p),
      signJwtSvid: (p) => ca.jwtSigner().signJwtSvid(p),
    };

    // Node attestors: a new attestor is a new file listed here.
    const attestors = new Map<string, NodeAttestor>();
    if (cfg.nodeAttestors.joinToken) attestors.set('join_token', new JoinTokenAttestor({ dataStore: ds, trustDomain: td, clock }));
    const pop = cfg.nodeAttestors.x509pop;
    if (pop !== undefined) {
      // Imported only when configured: its X.509 library (@peculiar/x509 and reflect-metadata)
      // was the largest module in a CPU profile of a join_token-only start.
      const { X509PopAttestor } = await import('./attestation/x509pop.ts');
      attestors.set(
        'x509pop',
        new X509PopAttestor({
          trustDomain: td,
          mode: pop.mode,
          caBundlePaths: pop.caBundlePaths,
          spiffeAuthorities: () => [...trusted.x509Authorities()],
          ...(pop.agentPathTemplate === undefined ? {} : { agentPathTemplate: pop.agentPathTemplate }),
          spiffePrefix: pop.spiffePrefix,
          clock,
          random,
        }),
      );
    }

    const psat = cfg.nodeAttestors.k8sPsat;
    if (psat !== undefined) {
      // Imported only when configured: the Kubernetes client library is large (k8s-psat.ts and
      // @ztwim/k8s load it on first use).
      const [{ K8sPsatAttestor }, { createKubeClient, kubeClientSource }] = await Promise.all([import('./attestation/k8s-psat.ts'), import('@ztwim/k8s')]);
      const clusters = new Map<string, K8sPsatCluster>();
      for (const c of psat.clusters) {
        const client = await createKubeClient(kubeClientSource(c.kubeConfigFile)).catch((e: unknown) => {
          throw configError(`plugins.NodeAttestor.k8s_psat.plugin_data.clusters.${c.name}.kube_config_file: ${(e as Error).message}`, { cause: e });
        });
        clusters.set(c.name, { ...c, client });
        log.info({ cluster: c.name, kube_api: client.description }, 'Kubernetes cluster configured for k8s_psat');
      }
      attestors.set('k8s_psat', new K8sPsatAttestor({ trustDomain: td, clusters }));
    }

    // The per-call agent check has just read (and cached) the node, selectors included.
    const nodeSelectors = async (agentId: string): Promise<Array<{ type: string; value: string }>> => {
      const node = ds.getCachedAttestedNode === undefined ? null : await ds.getCachedAttestedNode(agentId, NODE_CACHE_MAX_AGE_MS);
      return node === null ? ds.getNodeSelectors(agentId) : node.selectors.map((s) => ({ type: s.type, value: s.value }));
    };
    const startedAt = clock.now();
    // The server's own SVID for the TCP endpoint (minted now, renewed by its task).
    const svidRotator = new ServerSvidRotator({ trustDomain: td, ttlMs: cfg.x509SvidTtlMs, clock, log, ca });
    // The wire forms of authorised-entry answers (Entry service, and prepared on attestation).
    const answers = new AuthorizedAnswers();
    // Entry writes and index refreshes wake the agents watching for hints (AgentHints/Watch).
    const entryChanges = new EntryChanges();
    // What the admin API lists moved (ztwim.server.v1.Changes, read by the web console).
    const adminWrites = new AdminWrites();
    // When each agent last called (ServerInfo/GetAgentsLastSeen, the console's agents page).
    const agentActivity = new AgentActivity();
    // Federation: bundle endpoint and the refresher of federated bundles (config + TrustDomain API).
    const federation = createFederation({
      config: cfg.federation,
      dataStore: ds,
      trustDomain: td,
      clock,
      log,
      ...(deps.federationWebRootsPem === undefined ? {} : { extraWebRootsPem: deps.federationWebRootsPem }),
      ...(deps.federationAcmeDirectoryCaPem === undefined ? {} : { acmeDirectoryCaPem: deps.federationAcmeDirectoryCaPem }),
    });
    const routes = (r: ConnectRouter): void => {
      r.service(EntryService, entryService({ dataStore: ds, trustDomain: td, nodeSelectors, answers, onWrite: () => entryChanges.notify() }));
      r.service(AgentHintsService, hintsService({ dataStore: ds, nodeSelectors, changes: entryChanges, clock }));
      r.service(ChangesService, changesService({ writes: adminWrites, startedAtMs: startedAt.getTime() }));
      r.service(
        ServerInfoService,
        serverInfoService({ version: ZTWIM_VERSION, plugins: configuredPlugins(cfg), readiness, startedAtMs: startedAt.getTime(), clock, agentActivity }),
      );
      r.service(
        AgentService,
        agentService({
          dataStore: ds,
          trustDomain: td,
          authority,
          attestors,
          agentTtlMs: cfg.agentTtlMs,
          clock,
          random,
          log: log.child({ subsystem: 'agent_api' }),
          // The agent's first sync follows at once: its answer is ready (or on its way) by then.
          onAgentAttested: (agentId) => {
            prepareAuthorizedAnswer({ dataStore: ds, nodeSelectors, answers }, agentId).catch((e: unknown) =>
              log.debug({ agent_id: agentId, err: asError(e) }, 'Failed to prepare the authorised entries of an attested agent'),
            );
          },
        }),
      );
      r.service(BundleService, bundleService({ dataStore: ds, trustDomain: td }));
      r.service(
        SvidService,
        svidService({
          dataStore: ds,
          trustDomain: td,
          authority,
          log: log.child({ subsystem: 'svid_api' }),
          nodeSelectors,
          onMint: (kind, signSeconds) => {
            metrics.svidsMinted.inc({ type: kind });
            metrics.svidSignDuration.observe({ type: kind }, signSeconds);
          },
        }),
      );
      r.service(DebugService, debugService({ dataStore: ds, trustDomain: td, clock, startedAt, serverChain: () => [...svidRotator.current().certChain] }));
      r.service(HealthService, healthService({ dataStore: ds, trustDomain: td }));
      r.service(
        TrustDomainService,
        trustDomainService({ dataStore: ds, trustDomain: td, refresher: federation.refresher, log: log.child({ subsystem: 'trustdomain_api' }) }),
      );
      r.service(LocalAuthorityService, localAuthorityService({ ca, log: log.child({ subsystem: 'localauthority_api' }) }));
    };
    // Verified once per chain (a connection's, or the same bytes on a new connection) while the
    // chain and the authorities stay the same.
    const verifyPeer = cachingPeerVerifier(td, () => trusted.x509Authorities());
    const interceptors: Interceptor[] = [
      ...(cfg.auditLog === true ? [auditInterceptor(log.child({ subsystem: 'api' }))] : []),
      telemetryInterceptor(metrics, log.child({ subsystem: 'api' })),
      errorMappingInterceptor(grpcCodeResolver),
      authorizationInterceptor({
        dataStore: ds,
        clock,
        adminIds: cfg.adminIds,
        verifyPeer: async (chain) => {
          try {
            return verifyPeer(chain, clock.now());
          } catch (e) {
            // signed by a CA this server has not read yet (a server that has just joined): read the
            // stored bundle again, at most once a second, and verify once more
            if (await trusted.refreshIfOlderThan(1000).catch(() => false)) return verifyPeer(chain, clock.now());
            throw e;
          }
        },
        isAgentPath: (id) => id.memberOf(td) && id.path.startsWith('/spire/agent/'),
        log: log.child({ subsystem: 'api' }),
      }),
      rateLimitInterceptor(cfg.rateLimit ?? RATE_LIMIT_DEFAULTS, clock),
      adminWritesInterceptor(adminWrites),
      agentActivityInterceptor(agentActivity, clock),
    ];

    const flags = { socketPath: '-socketPath', bindPort: '-serverPort', ...deps.listenerFlags };
    const moveWith = (key: string, flag: string | undefined): string => `${key} in the config${flag === undefined ? '' : ` or ${flag}`}`;
    const admin = await startAdminEndpoint({ socketPath: cfg.socketPath, routes, interceptors, log }).catch((e: unknown) => {
      throw listenError(e, {
        name: 'server admin API socket',
        address: cfg.socketPath,
        at: { path: cfg.socketPath },
        moveWith: moveWith('server.socket_path', flags.socketPath),
      });
    });
    tasks.push(closing('admin_endpoint', () => admin.close({ graceMs: 1000 })));
    const tcpAddress = `${cfg.bindAddress.includes(':') ? `[${cfg.bindAddress}]` : cfg.bindAddress}:${cfg.bindPort}`;
    const tcp = await startTcpEndpoint({ host: cfg.bindAddress, port: cfg.bindPort, tls: svidRotator.current().tls, routes, interceptors, log }).catch(
      (e: unknown) => {
        throw listenError(e, {
          name: 'server API for agents',
          address: tcpAddress,
          at: { port: cfg.bindPort },
          moveWith: moveWith('server.bind_port (and bind_address)', flags.bindPort),
        });
      },
    );
    tasks.push(closing('tcp_endpoint', () => tcp.close({ graceMs: 1000 })));
    const port = tcp.address.kind === 'tcp' ? tcp.address.port : cfg.bindPort;

    tasks.push(
      svidRotator.run((svid) => {
        tcp.rotate(svid.tls);
        federation.rotateServerTls(svid.tls);
      }),
      housekeeping({ dataStore: ds, clock, metrics, log }),
      entryIndexRefresh({ dataStore: ds, clock, log, onRefreshed: () => entryChanges.notify() }),
    );
    tasks.push(closing('federation', () => federation.stop()));
    tasks.push(...(await federation.start(svidRotator.current().tls)));
    const bundleEndpointPort = federation.endpointPort();
    metrics.entries.set(await ds.countEntries());
    metrics.agents.set(await ds.countAttestedNodes());

    let metricsPort: number | undefined;
    if (cfg.metrics !== undefined && prometheus !== undefined) {
      const { host: mHost, port: mPort } = cfg.metrics;
      const m = await prometheus.serve(mHost, mPort).catch((e: unknown) => {
        throw listenError(e, {
          name: 'Prometheus metrics listener',
          address: `${mHost}:${mPort}`,
          at: { port: mPort },
          moveWith: moveWith('telemetry.Prometheus.port (and host)', flags.metrics),
        });
      });
      metricsPort = m.port;
      tasks.push(closing('metrics', () => m.close()));
      log.info({ host: cfg.metrics.host, port: m.port }, 'Starting prometheus exporter');
    }

    // SPIRE's health_checks listener: live_path answers while the process runs, ready_path while
    // the datastore answers (the probes the operator's StatefulSet uses).
    if (cfg.healthChecks !== undefined) {
      const health = await serveHealthChecks(cfg.healthChecks, {
        live: () => ({ ok: true }),
        // with what this server is (its CA keys) and when it last reached the datastore
        ready: async () => {
          const r = await readiness();
          const details = {
            serving: r.serving,
            ...(r.datastoreLastSuccessMs === undefined ? {} : { datastore_last_success: new Date(r.datastoreLastSuccessMs).toISOString() }),
            // the PostgreSQL host in use (chosen among those of a multi-host connection string), none while away
            ...(r.datastoreHost === undefined ? {} : { datastore_host: r.datastoreHost }),
            ...(r.datastoreReadReplicaHost === undefined ? {} : { datastore_read_replica_host: r.datastoreReadReplicaHost }),
            ca: ca.status(),
          };
          return r.serving ? { ok: true as const, details } : { ok: false as const, reason: r.reason ?? 'datastore: not serving', details };
        },
      });
      tasks.push(closing('health_checks', () => health.close()));
      log.info({ address: cfg.healthChecks.bindAddress, port: health.port }, 'Serving health checks');
    }

    const done = runTasks(tasks, stopping.signal)
      .catch((e: unknown) => log.error({ error: (e as Error).message }, 'Server stopped on a failed task'))
      .then(release)
      .then(() => log.info({}, 'Server stopped'));
    log.info({ trust_domain: td.name, socket_path: cfg.socketPath, port, data_store: cfg.dataStore.type }, 'Server started');
    return {
      config: cfg,
      dataStore: ds,
      socketPath: cfg.socketPath,
      port,
      ...(metricsPort === undefined ? {} : { metricsPort }),
      ...(bundleEndpointPort === undefined ? {} : { bundleEndpointPort }),
      metrics,
      async bundle() {
        const b = await ds.getBundle(td.name);
        if (b === null) throw internal('server: own bundle missing');
        return b;
      },
      done,
      close() {
        stopping.abort();
        return done;
      },
    };
  } catch (e) {
    // Start-up failed: close what was opened so far, then release the datastore and the lock.
    stopping.abort();
    await runTasks(tasks, stopping.signal).catch(() => undefined);
    await release();
    throw e;
  }
}
