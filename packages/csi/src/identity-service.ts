// The CSI Identity service: plugin name and version, no plugin capabilities (no Controller
// service, as spiffe-csi), and a Probe that is always ready.
import type { ServiceImpl } from '@connectrpc/connect';
import type { CsiIdentityService } from '@ztwim/proto';

export interface IdentityServiceOptions {
  /** GetPluginInfo's name: the CSIDriver object's name, `csi.spiffe.io` by default. */
  readonly pluginName: string;
  readonly vendorVersion: string;
}

export function identityService(opts: IdentityServiceOptions): Partial<ServiceImpl<typeof CsiIdentityService>> {
  return {
    async getPluginInfo() {
      return { name: opts.pluginName, vendorVersion: opts.vendorVersion };
    },
    async getPluginCapabilities() {
      return {};
    },
    async probe() {
      return {};
    },
  };
}
