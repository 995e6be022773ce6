// `ztwim operator`: the ZTWIM operator. Reconciles the five operator.openshift.io CRs (each named
// `cluster`) into the identity plane in OPERATOR_NAMESPACE; images from RELATED_IMAGE_*;
// CREATE_ONLY_MODE=true creates objects but never updates them. With leader election (default on)
// only one replica reconciles. Health on -health-port: /healthz (process up), /readyz (leading or
// standing by with informers synced).
import { createServer } from 'node:http';
import { createLogger, cryptoRandom, parseDuration, parseLogFormat, parseLogLevel, systemClock } from '@ztwim/core';
import { CommandError, EXIT_USAGE, type Command } from '../command.ts';
import { tuneForDaemon } from '../daemon-tuning.ts';
import { ZTWIM_VERSION } from './version.ts';

export const operatorCommand: Command = {
  name: 'operator',
  summary: 'Run the operator: five operator.openshift.io CRs reconciled into server, agent, CSI driver and OIDC provider',
  description: [
    'Environment: OPERATOR_NAMESPACE (operand namespace, required unless -namespace),',
    'RELATED_IMAGE_SPIRE_SERVER, _SPIRE_AGENT, _SPIFFE_CSI_DRIVER, _SPIFFE_OIDC_DISCOVERY_PROVIDER,',
    '_SPIRE_CONTROLLER_MANAGER (operand images, default ztwim:<version>), CREATE_ONLY_MODE=true,',
    'POD_NAME (leader election identity), KUBELET_ROOT_DIR (default /var/lib/kubelet),',
    "KUBELET_SECURE_PORT (the kubelets' port, default 10250). docs/operator.md.",
  ].join('\n'),
  flags: {
    kubeconfig: { kind: 'string', usage: 'Kubeconfig file (default: the in-cluster config)', arg: 'FILE' },
    namespace: { kind: 'string', usage: 'Operand namespace (default $OPERATOR_NAMESPACE)', arg: 'NS' },
    'health-port': { kind: 'string', usage: 'Port of /healthz and /readyz (0: none)', default: '8081', arg: 'PORT' },
    'leader-elect': { kind: 'bool', usage: 'Take the Lease ztwim-operator-lock in the namespace before reconciling', default: true },
    'log-level': { kind: 'string', usage: 'Log level: debug, info, warn, error', default: 'info', arg: 'LEVEL' },
    'log-format': { kind: 'string', usage: 'Log format: json or text', default: 'json', arg: 'FORMAT' },
    'discovery-interval': {
      kind: 'string',
      usage: 'How often to ask again whether route.openshift.io, security.openshift.io and monitoring.coreos.com are served',
      default: '30s',
      arg: 'DURATION',
    },
  },
  async run(f, env) {
    const level = parseLogLevel(f.string('log-level'));
    if (level === undefined) throw new CommandError(`-log-level must be one of debug, info, warn, error (got "${f.string('log-level')}")`, EXIT_USAGE);
    const format = parseLogFormat(f.string('log-format'));
    if (format === undefined) throw new CommandError(`-log-format must be json or text (got "${f.string('log-format')}")`, EXIT_USAGE);
    const namespace = f.optString('namespace') ?? env.vars['OPERATOR_NAMESPACE'] ?? '';
    if (namespace === '') throw new CommandError('the operand namespace is required: set OPERATOR_NAMESPACE or -namespace', EXIT_USAGE);
    const healthPort = Number(f.string('health-port'));
    if (!Number.isInteger(healthPort) || healthPort < 0 || healthPort > 65535)
      throw new CommandError(`-health-port must be a port number (got "${f.string('health-port')}")`, EXIT_USAGE);
    const discoveryIntervalMs = parseDuration(f.string('discovery-interval'));
    if (discoveryIntervalMs === undefined || discoveryIntervalMs < 100)
      throw new CommandError(`-discovery-interval must be a duration of at least 100ms, e.g. 30s (got "${f.string('discovery-interval')}")`, EXIT_USAGE);
    const log = createLogger({ level, format, name: 'ztwim-operator' });
    tuneForDaemon();
    const { createOperatorClient, startOperator } = await import('@ztwim/operator');
    const client = await createOperatorClient(f.optString('kubeconfig') ?? '');
    const op = await startOperator({
      client,
      namespace,
      env: env.vars,
      clock: systemClock,
      random: cryptoRandom,
      log,
      leaderElect: f.bool('leader-elect'),
      version: ZTWIM_VERSION,
      discoveryIntervalMs,
    });
    let server: ReturnType<typeof createServer> | undefined;
    if (healthPort !== 0) {
      server = createServer((req, res) => {
        const ok = req.url === '/healthz' ? true : req.url === '/readyz' ? op.ready() : undefined;
        res.writeHead(ok === undefined ? 404 : ok ? 200 : 503, { 'content-type': 'text/plain' });
        res.end(ok === undefined ? 'not found\n' : ok ? 'ok\n' : 'not ready\n');
      });
      await new Promise<void>((resolve, reject) => {
        server?.once('error', reject);
        server?.listen(healthPort, () => resolve());
      });
    }
    log.info({ version: ZTWIM_VERSION, namespace, kube_api: client.description, health_port: healthPort }, 'Operator started');
    await new Promise<void>((r) => (env.signal.aborted ? r() : env.signal.addEventListener('abort', () => r(), { once: true })));
    await op.stop();
    server?.close();
    log.info('Operator stopped');
    return 0;
  },
};
