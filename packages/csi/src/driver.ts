// Runs the csi.spiffe.io driver: the CSI Identity and Node services on the CSI socket and, when
// asked, the kubelet plugin registration service on `<registry dir>/<plugin name>-reg.sock`
// (what node-driver-registrar would serve for it). Both on @ztwim/proto's gRPC server; errors
// map to gRPC codes in one place (errorMappingInterceptor with @ztwim/core's mapping).
import { mkdir, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Interceptor } from '@connectrpc/connect';
import { configError, grpcCodeOfError, type Logger } from '@ztwim/core';
import { CsiIdentityService, CsiNodeService, errorMappingInterceptor, PluginRegistrationService, startGrpcServer, type GrpcServer } from '@ztwim/proto';
import { identityService } from './identity-service.ts';
import { LinuxMounter, type Mounter } from './mounter.ts';
import { nodeService } from './node-service.ts';
import { registrationService } from './registration-service.ts';

export const DEFAULT_PLUGIN_NAME = 'csi.spiffe.io';
export const DEFAULT_CSI_SOCKET_PATH = '/spiffe-csi/csi.sock';

export interface KubeletRegistrationOptions {
  /** The kubelet's plugin registry directory, e.g. /var/lib/kubelet/plugins_registry. */
  readonly registryDir: string;
  /** The CSI socket path as the kubelet sees it (default: the CSI socket path itself). */
  readonly kubeletEndpoint?: string;
  /** The kubelet refused the registration: its error text. */
  readonly onFailed: (error: string) => void;
  readonly onRegistered?: () => void;
}

export interface CsiDriverOptions {
  readonly pluginName?: string;
  readonly vendorVersion: string;
  readonly nodeId: string;
  readonly workloadApiSocketDir: string;
  readonly csiSocketPath: string;
  /** Register with the kubelet directly (no node-driver-registrar). */
  readonly registration?: KubeletRegistrationOptions;
  /** Default: LinuxMounter (util-linux mount/umount). */
  readonly mounter?: Mounter;
  readonly logger: Logger;
}

export interface CsiDriver {
  readonly csiSocketPath: string;
  /** The registration socket, when registering with the kubelet. */
  readonly registrationSocketPath?: string;
  /** Stops both servers and removes their socket files. */
  close(): Promise<void>;
}

/** The registration socket name the kubelet's plugin watcher expects for a plugin. */
export function registrationSocketPathOf(registryDir: string, pluginName: string): string {
  return join(registryDir, `${pluginName}-reg.sock`);
}

function rpcLogging(logger: Logger): Interceptor {
  return (next) => async (req) => {
    try {
      const res = await next(req);
      logger.debug({ method: req.method.name }, 'RPC succeeded');
      return res;
    } catch (e) {
      logger.debug({ method: req.method.name, error: e instanceof Error ? e.message : String(e) }, 'RPC failed');
      throw e;
    }
  };
}

export async function startCsiDriver(opts: CsiDriverOptions): Promise<CsiDriver> {
  const pluginName = opts.pluginName ?? DEFAULT_PLUGIN_NAME;
  if (opts.nodeId === '') throw configError('node ID is required (-node-id, or the variable -node-id-env names)');
  if (opts.workloadApiSocketDir === '') throw configError('workload API socket directory is required (-workload-api-socket-dir)');
  if (opts.csiSocketPath === '') throw configError('CSI socket path is required (-csi-socket-path)');
  const logger = opts.logger;
  try {
    if (!(await stat(opts.workloadApiSocketDir)).isDirectory())
      logger.warn({ workload_api_socket_dir: opts.workloadApiSocketDir }, 'Workload API socket directory is not a directory');
  } catch {
    logger.warn(
      { workload_api_socket_dir: opts.workloadApiSocketDir },
      'Workload API socket directory does not exist yet; volumes fail to publish until it does',
    );
  }
  const interceptors = [rpcLogging(logger), errorMappingInterceptor(grpcCodeOfError)];
  const onConnectionError = (e: Error): void => logger.debug({ error: e.message }, 'CSI connection error');

  await mkdir(dirname(opts.csiSocketPath), { recursive: true });
  const csi = await startGrpcServer({
    listen: { path: opts.csiSocketPath },
    routes: (r) => {
      r.service(CsiIdentityService, identityService({ pluginName, vendorVersion: opts.vendorVersion }));
      r.service(
        CsiNodeService,
        nodeService({ nodeId: opts.nodeId, workloadApiSocketDir: opts.workloadApiSocketDir, mounter: opts.mounter ?? new LinuxMounter(), logger }),
      );
    },
    interceptors,
    onConnectionError,
  });
  logger.info({ csi_socket_path: opts.csiSocketPath, plugin_name: pluginName, node_id: opts.nodeId }, 'CSI driver listening');

  let registration: GrpcServer | undefined;
  let registrationSocketPath: string | undefined;
  const reg = opts.registration;
  if (reg !== undefined) {
    registrationSocketPath = registrationSocketPathOf(reg.registryDir, pluginName);
    try {
      await mkdir(reg.registryDir, { recursive: true });
      registration = await startGrpcServer({
        listen: { path: registrationSocketPath },
        routes: (r) =>
          r.service(
            PluginRegistrationService,
            registrationService({
              pluginName,
              endpoint: reg.kubeletEndpoint ?? opts.csiSocketPath,
              logger,
              onRegistrationFailed: reg.onFailed,
              ...(reg.onRegistered === undefined ? {} : { onRegistered: reg.onRegistered }),
            }),
          ),
        interceptors,
        onConnectionError,
      });
    } catch (e) {
      await csi.close();
      throw e;
    }
    logger.info({ registration_socket_path: registrationSocketPath }, 'Serving kubelet plugin registration');
  }

  let closing: Promise<void> | undefined;
  return {
    csiSocketPath: opts.csiSocketPath,
    ...(registrationSocketPath === undefined ? {} : { registrationSocketPath }),
    close() {
      // The registration socket first: the kubelet deregisters the plugin when it disappears.
      closing ??= (async () => {
        await registration?.close({ graceMs: 1000 });
        await csi.close({ graceMs: 5000 });
      })();
      return closing;
    },
  };
}
