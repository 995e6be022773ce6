import { mkdirSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { buildAgentConfig, startAgent, type RunningAgent } from '@ztwim/agent';
import { createLogger, parseConfigText, parseLogLevel, randomUuid, cryptoRandom, unixSeconds, systemClock, isZtwimError } from '@ztwim/core';
import { startOidcProvider, type OidcProvider } from '@ztwim/oidc';
import { serverBundleJwksSource } from '../server-jwks-source.ts';
import { buildServerConfig, startServer, SimilarEntryError, type RunningServer } from '@ztwim/server';
import { derToPem, SpiffeId, TrustDomain } from '@ztwim/spiffe';
import { CommandError, type Command } from '../command.ts';
import { println } from '../env.ts';
import { DEFAULT_AGENT_SOCKET } from './agent-api.ts';
import { tuneForDaemon } from '../daemon-tuning.ts';

const q = (s: string): string => JSON.stringify(s);

/**
 * `ztwim up`: the whole system on one machine, in one process: server (SQLite under
 * ./.ztwim), agent (join token, reused SVID on restart) and OIDC discovery provider, plus a
 * registration entry for the invoking user, so `ztwim api fetch ...` works at once.
 */
export const upCommand: Command = {
  name: 'up',
  summary: 'Start server, agent and OIDC discovery provider locally (SQLite under ./.ztwim)',
  flags: {
    trustDomain: { kind: 'string', usage: 'Trust domain', default: 'example.org', arg: 'TD' },
    dataDir: { kind: 'string', usage: 'Where server and agent keep their state', default: './.ztwim', arg: 'DIR' },
    serverPort: { kind: 'int', usage: 'Port of the server API for agents (127.0.0.1)', default: 8081, arg: 'PORT' },
    serverSocketPath: { kind: 'string', usage: 'Server admin API socket', default: '/tmp/spire-server/private/api.sock', arg: 'PATH' },
    socketPath: { kind: 'string', usage: 'Workload API socket', default: DEFAULT_AGENT_SOCKET, arg: 'PATH' },
    oidcPort: { kind: 'int', usage: 'Port of the OIDC discovery provider (127.0.0.1, plain HTTP unless -oidcCert; 0 disables)', default: 8443, arg: 'PORT' },
    oidcCert: { kind: 'string', usage: 'Serve the OIDC provider over HTTPS with this PEM certificate (with -oidcKey); the issuer becomes https://localhost:PORT', arg: 'FILE' },
    oidcKey: { kind: 'string', usage: 'PEM private key for -oidcCert', arg: 'FILE' },
    jwtKeyType: { kind: 'string', usage: "JWT signing key type: 'ec-p256' (default), 'ec-p384', 'rsa-2048' or 'rsa-4096' (rsa-2048 for Entra ID)", arg: 'TYPE' },
    metricsPort: { kind: 'int', usage: 'Port of the server Prometheus endpoint (0 disables)', default: 9402, arg: 'PORT' },
    user: { kind: 'string', usage: 'Name in the SPIFFE ID issued to the invoking user (spiffe://<td>/user/<name>)', arg: 'NAME' },
    logLevel: { kind: 'string', usage: "'debug', 'info', 'warn' or 'error'", default: 'warn', arg: 'LEVEL' },
  },
  async run(f, env) {
    const level = parseLogLevel(f.string('logLevel'));
    if (level === undefined) throw new CommandError(`unknown log level "${f.string('logLevel')}"`);
    const log = createLogger({ level, name: 'ztwim-up' });
    tuneForDaemon();
    const td = TrustDomain.parse(f.string('trustDomain'));
    const dataDir = resolve(env.cwd, f.string('dataDir'));
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const oidcPort = f.int('oidcPort');
    const oidcCert = f.optString('oidcCert');
    const oidcKey = f.optString('oidcKey');
    if ((oidcCert === undefined) !== (oidcKey === undefined)) throw new CommandError('-oidcCert and -oidcKey go together');
    const issuer = oidcPort > 0 ? `${oidcCert === undefined ? 'http' : 'https'}://localhost:${oidcPort}` : undefined;
    const serverConf = `server {
  bind_address = "127.0.0.1"
  bind_port = ${f.int('serverPort')}
  socket_path = ${q(f.string('serverSocketPath'))}
  trust_domain = ${q(td.name)}
  data_dir = ${q(join(dataDir, 'server'))}
  log_level = ${q(level)}
${f.optString('jwtKeyType') === undefined ? '' : `  jwt_key_type = ${q(f.string('jwtKeyType'))}\n`}${issuer === undefined ? '' : `  jwt_issuer = ${q(issuer)}\n`}}
plugins {
  DataStore "sql" {
    plugin_data {
      database_type = "sqlite3"
      connection_string = ${q(join(dataDir, 'server', 'datastore.sqlite3'))}
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
${f.int('metricsPort') > 0 ? `telemetry {\n  Prometheus {\n    host = "127.0.0.1"\n    port = ${f.int('metricsPort')}\n  }\n}\n` : 'telemetry {\n  disabled = true\n}\n'}`;
    const server: RunningServer = await startServer(buildServerConfig(parseConfigText(serverConf, 'hcl'), 'ztwim up (server)', {}, env.cwd), {
      log,
      listenerFlags: { socketPath: '-serverSocketPath', bindPort: '-serverPort', metrics: '-metricsPort' },
    });
    const stops: Array<() => Promise<void>> = [() => server.close()];
    const stopAll = async (): Promise<void> => {
      for (const s of stops.reverse()) await s().catch(() => undefined);
    };
    try {
      // A fresh single-use token each start; an agent with a valid stored SVID does not use it.
      const token = randomUuid(cryptoRandom);
      await server.dataStore.createJoinToken({ token, expiresAt: unixSeconds(systemClock.now()) + 600 });
      const bundle = await server.bundle();
      const bundlePem = bundle.x509Authorities.map((a) => derToPem(a.asn1, 'CERTIFICATE')).join('');
      const agentConf = `agent {
  server_address = "127.0.0.1"
  server_port = ${server.port}
  trust_domain = ${q(td.name)}
  data_dir = ${q(join(dataDir, 'agent'))}
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
      directory = ${q(join(dataDir, 'agent'))}
    }
  }
  WorkloadAttestor "unix" {
    plugin_data {
      discover_workload_path = true
    }
  }
}
`;
      const agentCfg = { ...buildAgentConfig(parseConfigText(agentConf, 'hcl'), 'ztwim up (agent)', {}, env.cwd), trustBundle: bundlePem, trustBundleFormat: 'pem' as const };
      const agent: RunningAgent = await startAgent(agentCfg, { logger: log });
      stops.push(() => agent.close());

      // The invoking user's identity, parented by this agent.
      const me = userInfo();
      const name = f.optString('user') ?? me.username;
      const userId = SpiffeId.fromSegments(td, 'user', name).toString();
      try {
        await server.dataStore.createEntry({ spiffeId: userId, parentId: agent.agentId, selectors: [{ type: 'unix', value: `uid:${me.uid}` }] });
      } catch (e) {
        if (!(e instanceof SimilarEntryError) && !isZtwimError(e, 'ERR_ALREADY_EXISTS')) throw e;
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

      println(env.stdout, `ztwim is up: trust domain ${td.name}, state in ${dataDir}`);
      println(env.stdout, `  server API (admin):   ${f.string('serverSocketPath')}`);
      println(env.stdout, `  server API (agents):  127.0.0.1:${server.port}`);
      println(env.stdout, `  Workload API:         ${agent.socketPath}`);
      if (issuer !== undefined) println(env.stdout, `  OIDC discovery:       ${issuer}/.well-known/openid-configuration`);
      if (server.metricsPort !== undefined) println(env.stdout, `  metrics:              http://127.0.0.1:${server.metricsPort}/metrics`);
      println(env.stdout, `  your identity:        ${userId} (unix uid ${me.uid})`);
      println(env.stdout, '');
      println(env.stdout, 'Try, from another shell:');
      println(env.stdout, '  npx ztwim api fetch x509');
      println(env.stdout, '  npx ztwim api fetch jwt -audience test');
      println(env.stdout, '  npx ztwim server entry show');
      println(env.stdout, 'Press Ctrl-C to stop.');

      await Promise.race([
        new Promise<void>((r) => (env.signal.aborted ? r() : env.signal.addEventListener('abort', () => r(), { once: true }))),
        server.done,
        agent.done,
      ]);
    } finally {
      await stopAll();
    }
    println(env.stdout, 'ztwim stopped.');
  },
};
