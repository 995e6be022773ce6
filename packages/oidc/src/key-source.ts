import type { Clock, Logger } from '@ztwim/core';
import type { KeySourceConfig } from './config-file.ts';
import { FileJwksSource } from './file-jwks-source.ts';
import type { JwksSource } from './jwks-source.ts';
import { ServerApiJwksSource } from './server-api-jwks-source.ts';
import { WorkloadApiJwksSource } from './workload-api-jwks-source.ts';

/** Creates the JwksSource a config file's key source section describes. Call close() on it when done. */
export function createJwksSource(cfg: KeySourceConfig, deps: { clock?: Clock; logger?: Logger } = {}): JwksSource & { close(): void } {
  const common = { ...(deps.clock === undefined ? {} : { clock: deps.clock }), ...(deps.logger === undefined ? {} : { logger: deps.logger }) };
  switch (cfg.kind) {
    case 'workload_api':
      return new WorkloadApiJwksSource({ address: cfg.socketPath, trustDomain: cfg.trustDomain, pollIntervalMs: cfg.pollIntervalMs, ...common });
    case 'server_api':
      return new ServerApiJwksSource({ socketPath: cfg.socketPath, pollIntervalMs: cfg.pollIntervalMs, ...common });
    case 'file':
      return new FileJwksSource(cfg.path, { pollIntervalMs: cfg.pollIntervalMs, ...common });
  }
}
