// `ztwim registrar -config <file>`: the workload registrar (spire-controller-manager's entry and
// federation reconcilers) with its ControllerManagerConfig file. Kubernetes comes from
// -kubeconfig, $KUBECONFIG or the pod's in-cluster config; staticManifestPath runs without it.
import { cryptoRandom, createLogger, loadMetrics, systemClock } from '@ztwim/core';
import {
  connectKube,
  detectClusterDomain,
  dialEntryClient,
  kubeWebhookConfigurationStore,
  loadManagerConfig,
  serveProbes,
  serverApiOverSocket,
  startRegistrar,
  startRegistrarWebhook,
  type ManagerConfig,
} from '@ztwim/registrar';
import { CommandError, type Command } from '../command.ts';
import { tuneForDaemon } from '../daemon-tuning.ts';
import { ZTWIM_VERSION } from './version.ts';

function hostPort(address: string): { host: string; port: number } | undefined {
  if (address === '' || address === '0') return undefined;
  const i = address.lastIndexOf(':');
  return { host: i <= 0 ? '0.0.0.0' : address.slice(0, i), port: Number(address.slice(i + 1)) };
}

export const registrarCommand: Command = {
  name: 'registrar',
  summary: 'Run the workload registrar: ClusterSPIFFEID / ClusterStaticEntry CRs into registration entries',
  description: [
    "Reads spire-controller-manager's ControllerManagerConfig (-config) and keeps the server's",
    'entries in step with the ClusterSPIFFEIDs and pods of the cluster (docs/registrar.md).',
  ].join('\n'),
  flags: {
    config: { kind: 'string', usage: 'Path to the ControllerManagerConfig file (YAML or JSON; required)', arg: 'FILE' },
    kubeconfig: { kind: 'string', usage: 'Path to a kubeconfig (default: $KUBECONFIG, else the in-cluster config)', arg: 'FILE' },
    'log-level': { kind: 'string', usage: 'Log level: debug, info, warn, error', default: 'info', arg: 'LEVEL' },
  },
  async run(f, env) {
    const configPath = f.optString('config');
    if (configPath === undefined || configPath === '') throw new CommandError('-config is required');
    let cfg: ManagerConfig;
    try {
      cfg = loadManagerConfig(configPath);
    } catch (e) {
      throw new CommandError(`unable to load the config file: ${e instanceof Error ? e.message : String(e)}`);
    }
    if (cfg.clusterDomain === '') cfg = { ...cfg, clusterDomain: detectClusterDomain() };
    const level = f.string('log-level');
    if (!['debug', 'info', 'warn', 'error'].includes(level)) throw new CommandError(`-log-level must be one of debug, info, warn, error (got "${level}")`);
    const log = createLogger({ level: level as 'info', format: cfg.logEncoding === 'json' ? 'json' : 'text', name: 'registrar' });
    tuneForDaemon();

    let kube;
    if (cfg.staticManifestPath === '') {
      const kubeconfig = f.optString('kubeconfig') ?? env.vars['KUBECONFIG'] ?? '';
      try {
        kube = await connectKube(kubeconfig);
      } catch (e) {
        throw new CommandError(`unable to reach Kubernetes: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    const entries = dialEntryClient(cfg.spireServerSocketPath);
    log.info(
      {
        version: ZTWIM_VERSION,
        cluster_name: cfg.clusterName,
        cluster_domain: cfg.clusterDomain,
        trust_domain: cfg.trustDomain,
        ignore_namespaces: cfg.ignoreNamespaces.map((r) => r.source),
        gc_interval_ms: cfg.gcIntervalMs,
        spire_server_socket_path: cfg.spireServerSocketPath,
        class_name: cfg.className,
        watch_classless: cfg.watchClassless,
        reconcile: cfg.reconcile,
        entry_id_prefix: cfg.entryIDPrefix,
        entry_id_prefix_cleanup: cfg.entryIDPrefixCleanup ?? '<unset>',
        static_manifest_path: cfg.staticManifestPath,
        leader_elect: cfg.leaderElection.leaderElect,
        validating_webhook_configuration_name: cfg.validatingWebhookConfigurationName,
        webhook_port: cfg.webhook.port,
      },
      'Config loaded',
    );
    if (cfg.webhook.certDir !== '') log.info({ cert_dir: cfg.webhook.certDir }, 'certDir configuration is ignored');
    const registrar = startRegistrar({
      config: cfg,
      entries,
      kube,
      clock: systemClock,
      random: cryptoRandom,
      log,
      ...(env.vars['POD_NAMESPACE'] === undefined ? {} : { podNamespace: env.vars['POD_NAMESPACE'] }),
    });
    const closers: Array<() => Promise<void>> = [];
    if (kube !== undefined) {
      // The admission webhook and caBundle patcher run on every replica, leader or not, as the
      // controller manager's webhook manager does; it serves once the configuration exists.
      const serverApi = serverApiOverSocket(cfg.spireServerSocketPath);
      const webhook = startRegistrarWebhook({
        host: cfg.webhook.host,
        port: cfg.webhook.port,
        trustDomain: cfg.trustDomain,
        serverApi,
        store: kubeWebhookConfigurationStore(kube),
        webhookConfigurationName: cfg.validatingWebhookConfigurationName,
        clock: systemClock,
        log,
      });
      closers.push(async () => {
        await webhook.stop();
        serverApi.close();
      });
    }
    try {
      const probe = hostPort(cfg.healthProbeBindAddress);
      if (probe !== undefined) closers.push((await serveProbes(`${probe.host}:${probe.port}`, () => registrar.isReady())).close);
      const metrics = hostPort(cfg.metricsBindAddress);
      if (metrics !== undefined) closers.push((await (await loadMetrics({ prefix: 'registrar' })).serve(metrics.host, metrics.port)).close);
    } catch (e) {
      await registrar.close();
      for (const close of closers) await close();
      entries.close();
      throw new CommandError(`cannot listen: ${e instanceof Error ? e.message : String(e)}`);
    }
    log.info('Started');
    // The registrar's timers are unref'd (systemClock) and, with staticManifestPath, no socket
    // stays open between passes: hold the process until the stop signal.
    const keepAlive = setInterval(() => undefined, 1 << 30);
    await new Promise<void>((r) => (env.signal.aborted ? r() : env.signal.addEventListener('abort', () => r(), { once: true })));
    clearInterval(keepAlive);
    await registrar.close();
    for (const close of closers) await close();
    entries.close();
    log.info('Stopped');
    return 0;
  },
};
