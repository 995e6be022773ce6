// Starts ztwim's own server in-process on a temp dir (SQLite file, disk keys, join_token),
// exposing the same AdminServer shape as lib/spire-admin.ts so suites can drive either.
import { join } from 'node:path';
import { parseConfigText, silentLogger, type Clock } from '@ztwim/core';
import { buildServerConfig, startServer, type RunningServer, type ServerConfig } from '@ztwim/server';
import { findSpireBinary, runBinary, type AdminServer, type CliResult } from './spire-admin.ts';
import { serverConf, serverWorkspace, type ServerConfOptions } from './server-conf.ts';
import type { TmpDir } from './tmp.ts';

export interface ZtwimAdminServer extends AdminServer {
  readonly server: RunningServer;
}

export interface ZtwimAdminServerOptions {
  readonly trustDomain?: string;
  /** Lines added inside the `server { }` block (e.g. `agent_ttl = "10m"`). */
  readonly extraServerConfig?: string;
  /** `plugin_data` lines of the sql DataStore; default: a SQLite file in the temp dir. */
  readonly dataStorePluginData?: string;
  /** Injected clock (e.g. a FakeClock) for the server's CA, SVIDs and peer verification. */
  readonly clock?: Clock;
  /** Top-level blocks added to the config (e.g. `health_checks { ... }`). */
  readonly extraConfig?: string;
}

/**
 * ztwim's parsed config of {@link serverConf} for an in-process server with its files in `tmp`:
 * socket `<name>.sock`, data dir `<name>`, trust domain example.org, any free port; `more` adds to it.
 */
export function tmpServerConfig(tmp: TmpDir, name: string, more: Partial<ServerConfOptions> = {}): ServerConfig {
  const conf = serverConf({ port: 0, socketPath: tmp.file(`${name}.sock`), trustDomain: 'example.org', dataDir: tmp.file(name), ...more });
  return buildServerConfig(parseConfigText(conf, 'hcl'), 'server.conf');
}

export async function startZtwimAdminServer(opts: ZtwimAdminServerOptions = {}): Promise<ZtwimAdminServer> {
  const trustDomain = opts.trustDomain ?? 'example.org';
  const { dir, dataDir, socketPath, port } = await serverWorkspace('ztwim-server-');
  const conf = serverConf({
    port,
    socketPath,
    trustDomain,
    dataDir,
    ...(opts.extraServerConfig === undefined ? {} : { extraServerConfig: opts.extraServerConfig }),
    ...(opts.dataStorePluginData === undefined ? {} : { dataStorePluginData: opts.dataStorePluginData }),
    keyManager: { disk: join(dataDir, 'keys.json') },
    trailer: `telemetry {\n  Prometheus {\n    host = "127.0.0.1"\n    port = 0\n  }\n}\n${opts.extraConfig ?? ''}`,
  });
  dir.write('server.conf', conf);
  const cfg = buildServerConfig(parseConfigText(conf, 'hcl'), 'server.conf');
  let server: RunningServer;
  try {
    server = await startServer(cfg, { log: silentLogger(), ...(opts.clock === undefined ? {} : { clock: opts.clock }) });
  } catch (e) {
    dir.cleanup();
    throw e;
  }
  // Looked up on first use: suites that never run the real CLI do not need SPIRE installed.
  const spireCli = (args: readonly string[], input?: string): Promise<CliResult> =>
    runBinary(findSpireBinary('spire-server'), args, input === undefined ? { cwd: dir.path } : { cwd: dir.path, input });
  return {
    dir,
    socketPath,
    port: server.port,
    trustDomain,
    spireCli,
    server,
    logs: () => '',
    stop: async () => {
      await server.close();
      dir.cleanup();
    },
  };
}
