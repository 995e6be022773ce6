// `ztwim csi`: the SPIFFE CSI driver (csi.spiffe.io), with spiffe-csi-driver's flags, plus
// registration with the kubelet (node-driver-registrar's job) when -kubelet-plugins-registry-dir
// is given. Runs until SIGINT/SIGTERM, then removes its sockets.
import { createLogger, parseLogFormat, parseLogLevel } from '@ztwim/core';
import { DEFAULT_CSI_SOCKET_PATH, DEFAULT_PLUGIN_NAME, startCsiDriver } from '@ztwim/csi';
import { CommandError, EXIT_USAGE, type Command } from '../command.ts';
import { println } from '../env.ts';
import { tuneForDaemon } from '../daemon-tuning.ts';
import { ZTWIM_VERSION } from './version.ts';

export const csiCommand: Command = {
  name: 'csi',
  summary: 'Run the SPIFFE CSI driver (csi.spiffe.io): the Workload API socket directory as a pod volume',
  description: [
    'Flags as spiffe-csi-driver; with -kubelet-plugins-registry-dir it also registers itself with the',
    'kubelet (no node-driver-registrar needed). Pods use:',
    '  volumes: [{name: spiffe-workload-api, csi: {driver: csi.spiffe.io, readOnly: true}}]',
  ].join('\n'),
  flags: {
    'workload-api-socket-dir': { kind: 'string', usage: 'Path to the Workload API socket directory (required)', arg: 'DIR' },
    'plugin-name': { kind: 'string', usage: 'Plugin name (the CSIDriver object name)', default: DEFAULT_PLUGIN_NAME, arg: 'NAME' },
    'csi-socket-path': { kind: 'string', usage: 'Path to the CSI socket', default: DEFAULT_CSI_SOCKET_PATH, arg: 'PATH' },
    'node-id': { kind: 'string', usage: 'Kubernetes Node ID. If unset, the node ID is obtained from the environment (i.e., -node-id-env)', arg: 'ID' },
    'node-id-env': { kind: 'string', usage: 'Envvar from which to obtain the node ID. Overridden by -node-id.', default: 'MY_NODE_NAME', arg: 'NAME' },
    'kubelet-plugins-registry-dir': {
      kind: 'string',
      usage:
        "Register with the kubelet: serve <dir>/<plugin-name>-reg.sock in the kubelet's plugin registry (e.g. /var/lib/kubelet/plugins_registry). Unset: node-driver-registrar registers the driver",
      arg: 'DIR',
    },
    'kubelet-registration-path': {
      kind: 'string',
      usage: 'The CSI socket path as the kubelet sees it, sent when registering (default: -csi-socket-path)',
      arg: 'PATH',
    },
    'log-level': { kind: 'string', usage: 'Log level: debug, info, warn, error', default: 'info', arg: 'LEVEL' },
    'log-format': { kind: 'string', usage: 'Log format: json or text', default: 'json', arg: 'FORMAT' },
  },
  async run(f, env) {
    const level = parseLogLevel(f.string('log-level'));
    if (level === undefined) throw new CommandError(`-log-level must be one of debug, info, warn, error (got "${f.string('log-level')}")`, EXIT_USAGE);
    const format = parseLogFormat(f.string('log-format'));
    if (format === undefined) throw new CommandError(`-log-format must be json or text (got "${f.string('log-format')}")`, EXIT_USAGE);
    const nodeId = f.optString('node-id') ?? env.vars[f.string('node-id-env')] ?? '';
    const registryDir = f.optString('kubelet-plugins-registry-dir');
    const logger = createLogger({ level, format, name: 'spiffe-csi-driver' });
    tuneForDaemon();

    let refused: (error: string) => void = () => undefined;
    const registrationRefused = new Promise<string>((r) => (refused = r));
    const csiSocketPath = f.string('csi-socket-path');
    const kubeletEndpoint = f.optString('kubelet-registration-path');
    const driver = await startCsiDriver({
      pluginName: f.string('plugin-name'),
      vendorVersion: ZTWIM_VERSION,
      nodeId,
      workloadApiSocketDir: f.string('workload-api-socket-dir'),
      csiSocketPath,
      logger,
      ...(registryDir === undefined
        ? {}
        : { registration: { registryDir, onFailed: (e: string) => refused(e), ...(kubeletEndpoint === undefined ? {} : { kubeletEndpoint }) } }),
    });
    logger.info({ version: ZTWIM_VERSION, node_id: nodeId, workload_api_socket_dir: f.string('workload-api-socket-dir') }, 'Started');
    const stopped = new Promise<undefined>((r) =>
      env.signal.aborted ? r(undefined) : env.signal.addEventListener('abort', () => r(undefined), { once: true }),
    );
    const kubeletError = await Promise.race([stopped, registrationRefused]);
    await driver.close();
    if (kubeletError !== undefined) throw new CommandError(`kubelet refused the plugin registration: ${kubeletError}`);
    logger.info('Stopped');
    println(env.stderr, 'CSI driver stopped.');
    return 0;
  },
};
