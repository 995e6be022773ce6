// Starts ztwim's own server in-process on a temp dir (SQLite file, disk keys, join_token),
// exposing the same AdminServer shape as lib/spire-admin.ts so suites can drive either.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfigText, silentLogger } from '@ztwim/core';
import { buildServerConfig, startServer, type RunningServer } from '@ztwim/server';
import { findSpireBinary, freePort, runBinary, type AdminServer, type CliResult } from './spire-admin.ts';
import { makeTmpDir } from './tmp.ts';

export interface ZtwimAdminServer extends AdminServer {
  readonly server: RunningServer;
}

export async function startZtwimAdminServer(opts: { trustDomain?: string; extraServerConfig?: string } = {}): Promise<ZtwimAdminServer> {
  const trustDomain = opts.trustDomain ?? 'example.org';
  const dir = makeTmpDir('ztwim-server-');
  const dataDir = join(dir.path, 'data');
  mkdirSync(dataDir, { recursive: true });
  const socketPath = join(dir.path, 'api.sock');
  const port = await freePort();
  const conf = `server {
  bind_address = "127.0.0.1"
  bind_port = "${port}"
  socket_path = "${socketPath}"
  trust_domain = "${trustDomain}"
  data_dir = "${dataDir}"
${opts.extraServerConfig ?? ''}
}
plugins {
  DataStore "sql" {
    plugin_data {
      database_type = "sqlite3"
      connection_string = "${join(dataDir, 'datastore.sqlite3')}"
    }
  }
  KeyManager "disk" {
    plugin_data {
      keys_path = "${join(dataDir, 'keys')}"
    }
  }
  NodeAttestor "join_token" {
    plugin_data {}
  }
}
telemetry {
  Prometheus {
    host = "127.0.0.1"
    port = 0
  }
}
`;
  dir.write('server.conf', conf);
  const cfg = buildServerConfig(parseConfigText(conf, 'hcl'), 'server.conf');
  const server = await startServer(cfg, { log: silentLogger() });
  const binary = findSpireBinary('spire-server');
  const spireCli = (args: readonly string[], input?: string): Promise<CliResult> =>
    runBinary(binary, args, input === undefined ? { cwd: dir.path } : { cwd: dir.path, input });
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
