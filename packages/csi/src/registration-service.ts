// The kubelet's plugin registration service (pluginregistration.Registration), so the driver
// registers itself without node-driver-registrar: the kubelet's plugin watcher finds
// `<kubelet root>/plugins_registry/<name>-reg.sock`, calls GetInfo, connects to the CSI socket
// it names, and reports the outcome with NotifyRegistrationStatus.
import type { ServiceImpl } from '@connectrpc/connect';
import type { Logger } from '@ztwim/core';
import type { PluginRegistrationService } from '@ztwim/proto';

/** What the kubelet's CSI plugin handler accepts as `supported_versions`. */
export const CSI_SUPPORTED_VERSIONS = ['1.0.0'] as const;

export interface RegistrationServiceOptions {
  readonly pluginName: string;
  /** The CSI socket as the kubelet sees it (node-driver-registrar's -kubelet-registration-path). */
  readonly endpoint: string;
  readonly logger: Logger;
  /** Called when the kubelet reports that registration failed, with its error text. */
  readonly onRegistrationFailed: (error: string) => void;
  /** Called when the kubelet reports the plugin registered. */
  readonly onRegistered?: () => void;
}

export function registrationService(opts: RegistrationServiceOptions): Partial<ServiceImpl<typeof PluginRegistrationService>> {
  return {
    async getInfo() {
      opts.logger.info({ plugin_name: opts.pluginName, endpoint: opts.endpoint }, 'Kubelet asked for plugin info');
      return { type: 'CSIPlugin', name: opts.pluginName, endpoint: opts.endpoint, supportedVersions: [...CSI_SUPPORTED_VERSIONS] };
    },
    async notifyRegistrationStatus(req) {
      if (req.pluginRegistered) {
        opts.logger.info({ plugin_name: opts.pluginName }, 'Registered with the kubelet');
        opts.onRegistered?.();
      } else {
        opts.logger.error({ plugin_name: opts.pluginName, error: req.error }, 'Kubelet refused the plugin registration');
        opts.onRegistrationFailed(req.error);
      }
      return {};
    },
  };
}
