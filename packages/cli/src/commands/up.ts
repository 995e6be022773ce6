import { userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { buildAgentConfig, deleteAgentData, storedAgentId } from '@ztwim/agent';
import { createLogger, lockDataDir, parseConfigText, parseLogFormat, parseLogLevel, isZtwimError, type LogFormat, type Logger } from '@ztwim/core';
import { startOidcProvider, type OidcProvider } from '@ztwim/oidc';
import type { RunningConsole } from '@ztwim/console';
import { serverBundleJwksSource } from '../server-jwks-source.ts';
import { bootstrapFromEndpoint, buildServerConfig, spiffeBundleToInput, startServer, SimilarEntryError, type RunningServer } from '@ztwim/server';
import { derToPem, SpiffeId, TrustDomain } from '@ztwim/spiffe';
import { CommandError, type Command } from '../command.ts';
import { println, type Env } from '../env.ts';
import { DEFAULT_AGENT_SOCKET } from './agent-api.ts';
import { DEFAULT_SERVER_SOCKET_PATH } from './server/client.ts';
import { tuneForDaemon } from '../daemon-tuning.ts';
import { hostAlias, superviseAgent, type SupervisedAgent } from '../up/agent-supervisor.ts';
import { upBanner } from '../up/banner.ts';
import { removeUpState, writeUpState, type UpState } from '../up/state-file.ts';

const q = (s: string): string => JSON.stringify(s);

/** A Prometheus endpoint on 127.0.0.1:port, or none for port 0. */
function telemetryBlock(port: number): string {
  return port > 0 ? `telemetry {\n  Prometheus {\n    host = "127.0.0.1"\n    port = ${port}\n  }\n}\n` : 'telemetry {\n  disabled = true\n}\n';
}

/** `text` in a terminal, `json` when stdout is a pipe or a file (log collectors). */
/** One -federateWith URL: bootstrap, relationship, the user's entry federating with it. */
async function federateUp(server: RunningServer, url: string, userId: string, signal: AbortSignal, say: (line: string) => void, log: Logger): Promise<void> {
  for (let attempt = 0; !signal.aborted; attempt++) {
    try {
      const { endpointSpiffeId, bundle } = await bootstrapFromEndpoint(url);
      const td = endpointSpiffeId.trustDomain.name;
      const rel = { trustDomain: td, bundleEndpointUrl: url, bundleEndpointProfile: 'https_spiffe' as const, endpointSpiffeId: endpointSpiffeId.toString() };
      const ds = server.dataStore;
      if ((await ds.getFederationRelationship(td)) === null) await ds.createFederationRelationship(rel, spiffeBundleToInput(bundle));
      else await ds.updateFederationRelationship(rel);
      const { entries } = await ds.listEntries({ bySpiffeId: userId });
      for (const e of entries) {
        if (!e.federatesWith.includes(td)) await ds.updateEntry({ id: e.id, federatesWith: [...e.federatesWith, td] }, { federatesWith: true });
      }
      say(`Federating with ${td} through ${url} (its bundle trusted on first use); ${userId} gets its bundle.`);
      return;
    } catch (e) {
      if (attempt === 0) log.warn({ url, error: (e as Error).message }, 'Federation endpoint not reachable yet; retrying every 2s');
      await new Promise((r) => setTimeout(r, 2000).unref());
    }
  }
}

function defaultLogFormat(env: Env): LogFormat {
  return (env.stdout as { isTTY?: boolean }).isTTY === true ? 'text' : 'json';
}

/**
 * `ztwim up`: the whole system on one machine, in one process: server (SQLite under
 * ./.ztwim), agent (join token, reused SVID on restart, node alias spiffe://<td>/host) and OIDC
 * discovery provider, plus a registration entry for the invoking user, so `ztwim api fetch ...`
 * works at once.
 */
export const upCommand: Command = {
  name: 'up',
  summary: 'Start server, agent and OIDC discovery provider locally (SQLite under ./.ztwim)',
  flags: {
    trustDomain: { kind: 'string', usage: 'Trust domain', default: 'example.org', arg: 'TD' },
    dataDir: { kind: 'string', usage: 'Where server and agent keep their state (one ztwim up per directory)', default: './.ztwim', arg: 'DIR' },
    serverPort: { kind: 'int', usage: 'Port of the server API for agents (127.0.0.1)', default: 8081, arg: 'PORT' },
    serverSocketPath: { kind: 'string', usage: 'Server admin API socket', default: DEFAULT_SERVER_SOCKET_PATH, arg: 'PATH' },
    socketPath: { kind: 'string', usage: 'Workload API socket', default: DEFAULT_AGENT_SOCKET, arg: 'PATH' },
    oidcPort: { kind: 'int', usage: 'Port of the OIDC discovery provider (127.0.0.1, plain HTTP unless -oidcCert; 0 disables)', default: 8443, arg: 'PORT' },
    oidcCert: {
      kind: 'string',
      usage: 'Serve the OIDC provider over HTTPS with this PEM certificate (with -oidcKey); the issuer becomes https://localhost:PORT',
      arg: 'FILE',
    },
    oidcKey: { kind: 'string', usage: 'PEM private key for -oidcCert', arg: 'FILE' },
    jwtKeyType: {
      kind: 'string',
      usage: "JWT signing key type: 'ec-p256' (default), 'ec-p384', 'rsa-2048' or 'rsa-4096' (rsa-2048 for Entra ID)",
      arg: 'TYPE',
    },
    metricsPort: { kind: 'int', usage: 'Port of the server Prometheus endpoint (127.0.0.1; 0 disables)', default: 9402, arg: 'PORT' },
    consolePort: {
      kind: 'int',
      usage: 'Port of the web console (127.0.0.1; 0 disables; when the default is in use another free port is taken)',
      default: 8090,
      arg: 'PORT',
    },
    agentMetricsPort: { kind: 'int', usage: 'Port of the agent Prometheus endpoint (127.0.0.1; 0 disables)', default: 9403, arg: 'PORT' },
    user: { kind: 'string', usage: 'Name in the SPIFFE ID issued to the invoking user (spiffe://<td>/user/<name>)', arg: 'NAME' },
    logLevel: { kind: 'string', usage: "'debug', 'info', 'warn' or 'error'", default: 'warn', arg: 'LEVEL' },
    bundleEndpointPort: { kind: 'int', usage: 'Port of the SPIFFE federation bundle endpoint (127.0.0.1, https_spiffe; 0 disables)', default: 0, arg: 'PORT' },
    federateWith: {
      kind: 'list',
      usage: "Another ztwim up's bundle endpoint (https://127.0.0.1:PORT) to federate with; its trust domain and bundle are trusted on first use (repeatable)",
      arg: 'URL',
    },
    logFormat: { kind: 'string', usage: "'text' or 'json' (default: text in a terminal, json otherwise)", arg: 'FORMAT' },
  },
  async run(f, env) {
    const level = parseLogLevel(f.string('logLevel'));
    if (level === undefined) throw new CommandError(`unknown log level "${f.string('logLevel')}"`);
    const formatFlag = f.optString('logFormat');
    const format = formatFlag === undefined ? defaultLogFormat(env) : parseLogFormat(formatFlag);
    if (format === undefined) throw new CommandError(`unknown log format "${formatFlag ?? ''}" (-logFormat): 'text' or 'json'`);
    const log = createLogger({ level, name: 'ztwim-up', format });
    const td = TrustDomain.parse(f.string('trustDomain'));
    const dataDir = resolve(env.cwd, f.string('dataDir'));
    const oidcPort = f.int('oidcPort');
    const oidcCert = f.optString('oidcCert');
    const oidcKey = f.optString('oidcKey');
    if ((oidcCert === undefined) !== (oidcKey === undefined)) throw new CommandError('-oidcCert and -oidcKey go together');
    // One `ztwim up` per data dir: a second would run a second CA on the same keys and database.
    let lock;
    try {
      lock = lockDataDir(dataDir, { what: 'ztwim up', moveWith: '-dataDir' });
    } catch (e) {
      if (isZtwimError(e, 'ERR_FAILED_PRECONDITION')) throw new CommandError(`${e.message} (is another ztwim up running there?)`);
      throw e;
    }
    tuneForDaemon();
    const issuer = oidcPort > 0 ? `${oidcCert === undefined ? 'http' : 'https'}://localhost:${oidcPort}` : undefined;
    const datastorePath = join(dataDir, 'server', 'datastore.sqlite3');
    const serverConf = `server {
  bind_address = "127.0.0.1"
  bind_port = ${f.int('serverPort')}
  socket_path = ${q(f.string('serverSocketPath'))}
  trust_domain = ${q(td.name)}
  data_dir = ${q(join(dataDir, 'server'))}
  log_level = ${q(level)}
${f.optString('jwtKeyType') === undefined ? '' : `  jwt_key_type = ${q(f.string('jwtKeyType'))}\n`}${issuer === undefined ? '' : `  jwt_issuer = ${q(issuer)}\n`}${f.int('bundleEndpointPort') > 0 ? `  federation {\n    bundle_endpoint {\n      address = "127.0.0.1"\n      port = ${f.int('bundleEndpointPort')}\n    }\n  }\n` : ''}}
plugins {
  DataStore "sql" {
    plugin_data {
      database_type = "sqlite3"
      connection_string = ${q(datastorePath)}
    }
  }
  KeyManager "disk" {
    plugin_data {
      keys_path = ${q(join(dataDir, 'server', 'keys.json'))}
    }
  }
  NodeAttestor "join_token" {
    plugin_data {}
  }
}
${telemetryBlock(f.int('metricsPort'))}`;
    const federateWith = f.list('federateWith');
    for (const u of federateWith) if (!/^https:\/\/[^/@]+/.test(u)) throw new CommandError(`-federateWith ${u}: must be an https URL of a bundle endpoint`);
    const stops: Array<() => Promise<void>> = [async () => lock.release()];
    const stopAll = async (): Promise<void> => {
      for (const s of stops.reverse()) await s().catch(() => undefined);
    };
    try {
      const server: RunningServer = await startServer(buildServerConfig(parseConfigText(serverConf, 'hcl'), 'ztwim up (server)', {}, env.cwd), {
        log,
        listenerFlags: { socketPath: '-serverSocketPath', bindPort: '-serverPort', metrics: '-metricsPort' },
      });
      stops.push(() => server.close());
      const agentDir = join(dataDir, 'agent');
      // An agent SVID the datastore does not know (the database was emptied or replaced while up
      // was stopped) would be refused at its first sync: say so, and attest the agent afresh.
      const stored = storedAgentId(agentDir);
      if (stored !== undefined && (await server.dataStore.getAttestedNode(stored)) === null) {
        const empty = (await server.dataStore.countAttestedNodes()) === 0 && (await server.dataStore.countEntries()) === 0;
        println(
          env.stdout,
          empty
            ? `The datastore ${datastorePath} is empty (no agents, no entries): it was emptied or replaced; attesting the agent again (it was ${stored}).`
            : `The datastore ${datastorePath} has no agent ${stored} (evicted while ztwim up was stopped); attesting the agent again.`,
        );
        deleteAgentData(agentDir);
      }
      const bundle = await server.bundle();
      const bundlePem = bundle.x509Authorities.map((a) => derToPem(a.asn1, 'CERTIFICATE')).join('');
      const agentConf = (token: string): string => `agent {
  server_address = "127.0.0.1"
  server_port = ${server.port}
  trust_domain = ${q(td.name)}
  data_dir = ${q(agentDir)}
  socket_path = ${q(f.string('socketPath'))}
  log_level = ${q(level)}
  join_token = ${q(token)}
}
plugins {
  NodeAttestor "join_token" {
    plugin_data {}
  }
  KeyManager "disk" {
    plugin_data {
      directory = ${q(agentDir)}
    }
  }
  WorkloadAttestor "unix" {
    plugin_data {
      discover_workload_path = true
    }
  }
}
${telemetryBlock(f.int('agentMetricsPort'))}`;
      const agent: SupervisedAgent = await superviseAgent({
        server,
        trustDomain: td,
        log,
        config: (token) => ({
          ...buildAgentConfig(parseConfigText(agentConf(token), 'hcl'), 'ztwim up (agent)', {}, env.cwd),
          trustBundle: bundlePem,
          trustBundleFormat: 'pem' as const,
        }),
      });
      stops.push(() => agent.close());
      const nodeAlias = hostAlias(td);

      // The invoking user's identity, parented by the node alias: served whatever the agent's ID.
      const me = userInfo();
      const name = f.optString('user') ?? me.username;
      const userId = SpiffeId.fromSegments(td, 'user', name).toString();
      try {
        await server.dataStore.createEntry({ spiffeId: userId, parentId: nodeAlias, selectors: [{ type: 'unix', value: `uid:${me.uid}` }] });
      } catch (e) {
        if (!(e instanceof SimilarEntryError) && !isZtwimError(e, 'ERR_ALREADY_EXISTS')) throw e;
      }

      // -federateWith: learn each endpoint's trust domain and bundle (trust on first use, retried
      // until the other `ztwim up` answers), store the relationship, and let the user's identity
      // federate with it; the server's refresher keeps the bundle fresh from then on.
      const federating = new AbortController();
      stops.push(async () => federating.abort());
      for (const url of federateWith) {
        void federateUp(server, url, userId, federating.signal, (line) => println(env.stdout, line), log);
      }

      let oidc: OidcProvider | undefined;
      if (issuer !== undefined) {
        const source = serverBundleJwksSource(server, log);
        const listener =
          oidcCert === undefined || oidcKey === undefined
            ? { allowInsecureScheme: true, insecureAddr: `127.0.0.1:${oidcPort}` }
            : { servingCertFile: { addr: `127.0.0.1:${oidcPort}`, certFilePath: resolve(env.cwd, oidcCert), keyFilePath: resolve(env.cwd, oidcKey) } };
        oidc = await startOidcProvider({ domains: ['localhost', '127.0.0.1'], jwtIssuer: issuer, setKeyUse: true, ...listener }, { source, logger: log });
        const o = oidc;
        stops.push(async () => {
          await o.close();
          source.close();
        });
      }

      let webConsole: RunningConsole | undefined;
      const consolePort = f.int('consolePort');
      if (consolePort > 0) {
        const { startConsole } = await import('@ztwim/console');
        try {
          webConsole = await startConsole({
            serverSocketPath: f.string('serverSocketPath'),
            port: consolePort,
            fallbackToFreePort: !f.isSet('consolePort'),
            logger: log,
            // The dashboard's traffic figures come from the server's own Prometheus endpoint.
            ...(server.metricsPort === undefined ? {} : { metricsUrl: `http://127.0.0.1:${server.metricsPort}/metrics` }),
          });
        } catch (e) {
          throw new CommandError(`web console (-consolePort ${consolePort}): ${(e as Error).message}`);
        }
        const c = webConsole;
        stops.push(async () => c.close());
      }

      const state: UpState = {
        pid: process.pid,
        trustDomain: td.name,
        dataDir,
        datastore: datastorePath,
        serverSocketPath: f.string('serverSocketPath'),
        serverPort: server.port,
        socketPath: agent.socketPath,
        nodeAlias,
        ...(issuer === undefined ? {} : { oidcIssuer: issuer }),
        ...(server.metricsPort === undefined ? {} : { serverMetricsUrl: `http://127.0.0.1:${server.metricsPort}/metrics` }),
        ...(agent.metricsPort === undefined ? {} : { agentMetricsUrl: `http://127.0.0.1:${agent.metricsPort}/metrics` }),
        ...(webConsole === undefined ? {} : { consoleUrl: webConsole.url }),
      };
      writeUpState(dataDir, state);
      stops.push(async () => removeUpState(dataDir));
      const consoleBanner =
        webConsole === undefined
          ? {}
          : {
              consoleTokens: { admin: webConsole.adminToken, viewer: webConsole.viewerToken },
              ...(webConsole.fellBack ? { consoleNote: ` (port ${consolePort} was in use)` } : {}),
            };
      for (const l of upBanner({ ...state, nonDefaultDataDir: f.isSet('dataDir'), userId, uid: me.uid, ...consoleBanner })) println(env.stdout, l);

      await Promise.race([
        new Promise<void>((r) => (env.signal.aborted ? r() : env.signal.addEventListener('abort', () => r(), { once: true }))),
        server.done,
        agent.done,
        ...(oidc === undefined ? [] : [oidc.done]),
      ]);
    } finally {
      await stopAll();
    }
    println(env.stdout, 'ztwim stopped.');
  },
};
