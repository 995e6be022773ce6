// Our own server (in-process, temp dir, SQLite, disk keys) driven through its admin API, plus our
// agents started against it: the ztwim-only counterpart of ztwim-agent-env.ts (which needs SPIRE).
import { join } from 'node:path';
import { createClient, type Client } from '@connectrpc/connect';
import {
  AgentService,
  BundleService,
  EntryService,
  SpiffeWorkloadAPI,
  createUnixGrpcTransport,
  headersInterceptor,
  type GrpcClientTransport,
} from '@ztwim/proto';
import { parseConfigText, silentLogger, type Logger } from '@ztwim/core';
import { derToPem } from '@ztwim/spiffe';
import { buildServerConfig, startServer, type RunningServer, type ServerConfig } from '@ztwim/server';
import { buildAgentConfig, startAgent, type AgentConfig, type AgentDeps, type RunningAgent } from '@ztwim/agent';
import { agentConf, serverConf, serverWorkspace } from './server-conf.ts';
import type { TmpDir } from './tmp.ts';

export interface StackOptions {
  readonly trustDomain?: string;
  /** Extra lines inside `server { }` (e.g. `agent_ttl = "20s"`). */
  readonly serverExtra?: string;
  /** Extra plugin blocks inside `plugins { }` (e.g. an x509pop NodeAttestor). */
  readonly pluginsExtra?: string;
}

export interface AgentOptions {
  /** Join token; default a fresh one (join_token attestor); null = none (resume from the data dir). */
  readonly token?: string | null;
  readonly syncInterval?: string;
  /** Replaces the agent's `NodeAttestor "join_token"` block. */
  readonly nodeAttestor?: string;
  /** unix WorkloadAttestor plugin_data body. */
  readonly unixPluginData?: string;
  /** More plugin blocks for the agent (e.g. a k8s WorkloadAttestor). */
  readonly pluginsExtra?: string;
  /** Agent data dir name under the stack dir (default `agent-<n>`). */
  readonly name?: string;
  readonly deps?: AgentDeps;
}

export interface Stack {
  readonly tmp: TmpDir;
  readonly trustDomain: string;
  server: RunningServer;
  readonly port: number;
  readonly entry: Client<typeof EntryService>;
  readonly agentApi: Client<typeof AgentService>;
  readonly bundleApi: Client<typeof BundleService>;
  bundlePem(): Promise<string>;
  joinToken(): Promise<string>;
  /** Creates entries (parent, spiffe path, selectors "type:value") and returns their ids. */
  createEntries(specs: readonly { parentId: string; path: string; selectors: readonly string[]; x509SvidTtl?: number }[]): Promise<string[]>;
  agentConfig(o?: AgentOptions): Promise<AgentConfig>;
  startAgent(o?: AgentOptions): Promise<{ agent: RunningAgent; config: AgentConfig }>;
  /** A Workload API client on an agent's socket (closed by close()). */
  workload(socketPath: string, headers?: boolean): Client<typeof SpiffeWorkloadAPI>;
  stopServer(): Promise<void>;
  restartServer(): Promise<void>;
  close(): Promise<void>;
}

export function spiffeIdParts(id: string): { trustDomain: string; path: string } {
  const m = /^spiffe:\/\/([^/]+)(\/.*)?$/.exec(id);
  if (m === null) throw new Error(`not a SPIFFE ID: ${id}`);
  return { trustDomain: m[1] ?? '', path: m[2] ?? '' };
}

export async function startStack(opts: StackOptions = {}, log: Logger = silentLogger()): Promise<Stack> {
  const trustDomain = opts.trustDomain ?? 'example.org';
  const { dir: tmp, dataDir, socketPath, port } = await serverWorkspace('ztwim-stack-', { data: 'server-data', socket: 'server.sock' });
  const conf = serverConf({
    port,
    socketPath,
    trustDomain,
    dataDir,
    keyManager: { disk: join(dataDir, 'keys.json') },
    extraServerConfig: opts.serverExtra ?? '',
    extraPlugins: opts.pluginsExtra ?? '',
    trailer: 'telemetry {\n  Prometheus {\n    host = "127.0.0.1"\n    port = 0\n  }\n}\n',
  });
  tmp.write('server.conf', conf);
  const cfg: ServerConfig = buildServerConfig(parseConfigText(conf, 'hcl'), 'server.conf');
  const adminTransport: GrpcClientTransport = createUnixGrpcTransport(socketPath);
  const transports: GrpcClientTransport[] = [adminTransport];
  const agents: RunningAgent[] = [];
  let n = 0;
  let running = true;
  const stack: Stack = {
    tmp,
    trustDomain,
    server: await startServer(cfg, { log }),
    port,
    entry: createClient(EntryService, adminTransport),
    agentApi: createClient(AgentService, adminTransport),
    bundleApi: createClient(BundleService, adminTransport),
    async bundlePem() {
      const b = await stack.bundleApi.getBundle({});
      return b.x509Authorities.map((a) => derToPem(a.asn1, 'CERTIFICATE')).join('');
    },
    async joinToken() {
      const t = await stack.agentApi.createJoinToken({ ttl: 600 });
      return t.value;
    },
    async createEntries(specs) {
      const ids: string[] = [];
      for (let i = 0; i < specs.length; i += 500) {
        const res = await stack.entry.batchCreateEntry({
          entries: specs.slice(i, i + 500).map((s) => ({
            parentId: spiffeIdParts(s.parentId),
            spiffeId: { trustDomain, path: s.path },
            selectors: s.selectors.map((sel) => {
              const k = sel.indexOf(':');
              return { type: sel.slice(0, k), value: sel.slice(k + 1) };
            }),
            ...(s.x509SvidTtl === undefined ? {} : { x509SvidTtl: s.x509SvidTtl }),
          })),
        });
        for (const r of res.results) {
          if (r.status !== undefined && r.status.code !== 0) throw new Error(`entry create failed: ${r.status.message}`);
          ids.push(r.entry?.id ?? '');
        }
      }
      return ids;
    },
    async agentConfig(o = {}) {
      const name = o.name ?? `agent-${++n}`;
      const dir = join(tmp.path, name);
      const doc = parseConfigText(
        agentConf({
          serverPort: port,
          trustDomain,
          dataDir: join(dir, 'data'),
          socketPath: join(dir, 'api.sock'),
          ...(o.syncInterval === undefined ? {} : { syncInterval: o.syncInterval }),
          ...(o.nodeAttestor === undefined ? {} : { nodeAttestor: o.nodeAttestor }),
          ...(o.unixPluginData === undefined ? {} : { unixPluginData: o.unixPluginData }),
          ...(o.pluginsExtra === undefined ? {} : { pluginsExtra: o.pluginsExtra }),
        }),
        'hcl',
      );
      const base = buildAgentConfig(doc, `${name}.conf`);
      const token = o.token === null ? undefined : (o.token ?? (base.nodeAttestor.type === 'join_token' ? await stack.joinToken() : undefined));
      return { ...base, ...(token === undefined ? {} : { joinToken: token }), trustBundle: await stack.bundlePem() };
    },
    async startAgent(o = {}) {
      const config = await stack.agentConfig(o);
      const agent = await startAgent(config, o.deps ?? { logger: log });
      agents.push(agent);
      return { agent, config };
    },
    workload(sock, headers = true) {
      const t = createUnixGrpcTransport(sock, headers ? { interceptors: [headersInterceptor({ 'workload.spiffe.io': 'true' })] } : {});
      transports.push(t);
      return createClient(SpiffeWorkloadAPI, t);
    },
    async stopServer() {
      if (!running) return;
      running = false;
      await stack.server.close();
    },
    async restartServer() {
      await stack.stopServer();
      stack.server = await startServer(cfg, { log });
      running = true;
    },
    async close() {
      for (const t of transports) t.close();
      for (const a of agents) await a.close();
      await stack.stopServer();
      tmp.cleanup();
    },
  };
  return stack;
}
