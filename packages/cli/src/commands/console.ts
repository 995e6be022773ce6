// `ztwim console`: the web console beside a running server, talking to its admin API socket.
import { readFile } from 'node:fs/promises';
import { createLogger, parseLogLevel } from '@ztwim/core';
import { CommandError, type Command } from '../command.ts';
import { println } from '../env.ts';
import { DEFAULT_SERVER_SOCKET_PATH } from './server/client.ts';

async function tokenFrom(path: string, flag: string): Promise<string | undefined> {
  if (path === '') return undefined;
  try {
    const t = (await readFile(path, 'utf8')).trim();
    if (t.length < 16) throw new CommandError(`${flag} ${path}: the token must have at least 16 characters`);
    return t;
  } catch (e) {
    if (e instanceof CommandError) throw e;
    throw new CommandError(`${flag} ${path}: ${(e as Error).message}`);
  }
}

export const consoleCommand: Command = {
  name: 'console',
  summary: 'Run the web console: server, agents, entries, bundles, federation, and why a workload has no identity',
  description: [
    'Serves the console on 127.0.0.1 unless -host says otherwise, and prints its URL with the admin',
    'login token (random at each start unless -adminTokenFile is given) and a read-only login token.',
  ].join('\n'),
  flags: {
    serverSocketPath: { kind: 'string', usage: "The server's admin API socket", default: DEFAULT_SERVER_SOCKET_PATH, arg: 'PATH' },
    host: { kind: 'string', usage: 'Address to listen on', default: '127.0.0.1', arg: 'ADDR' },
    port: { kind: 'int', usage: 'Port to listen on (0: a free one)', default: 8090, arg: 'PORT' },
    adminTokenFile: { kind: 'string', usage: 'File holding the admin login token (default: a random one, printed)', arg: 'FILE' },
    viewerTokenFile: { kind: 'string', usage: 'File holding the read-only login token (default: a random one, printed)', arg: 'FILE' },
    tlsCert: { kind: 'string', usage: 'Serve https with this PEM certificate (with -tlsKey); the session cookie is then Secure', arg: 'FILE' },
    tlsKey: { kind: 'string', usage: 'PEM private key for -tlsCert', arg: 'FILE' },
    metricsURL: {
      kind: 'string',
      usage: "The server's Prometheus endpoint (http://HOST:PORT/metrics): the dashboard's SVIDs per minute and signing times",
      arg: 'URL',
    },
    logLevel: { kind: 'string', usage: "'debug', 'info', 'warn' or 'error'", default: 'info', arg: 'LEVEL' },
  },
  async run(f, env) {
    const level = parseLogLevel(f.string('logLevel'));
    if (level === undefined) throw new CommandError(`unknown log level "${f.string('logLevel')}" (-logLevel)`);
    const tlsCert = f.string('tlsCert');
    const tlsKey = f.string('tlsKey');
    if ((tlsCert === '') !== (tlsKey === '')) throw new CommandError('-tlsCert and -tlsKey go together');
    const adminToken = await tokenFrom(f.string('adminTokenFile'), '-adminTokenFile');
    const viewerToken = await tokenFrom(f.string('viewerTokenFile'), '-viewerTokenFile');
    const { startConsole } = await import('@ztwim/console');
    let c;
    try {
      c = await startConsole({
        serverSocketPath: f.string('serverSocketPath'),
        host: f.string('host'),
        port: f.int('port'),
        logger: createLogger({ level, name: 'ztwim-console' }),
        ...(adminToken === undefined ? {} : { adminToken }),
        ...(viewerToken === undefined ? {} : { viewerToken }),
        ...(tlsCert === '' ? {} : { tls: { certFile: tlsCert, keyFile: tlsKey } }),
        ...(f.string('metricsURL') === '' ? {} : { metricsUrl: f.string('metricsURL') }),
      });
    } catch (e) {
      throw new CommandError(`${(e as Error).message.replace('its port setting', '-port or -host')}`);
    }
    println(env.stdout, `Console: ${c.url}${adminToken === undefined ? `#token=${c.adminToken}` : ' (log in with the -adminTokenFile token)'}`);
    if (viewerToken === undefined) println(env.stdout, `Read-only login token: ${c.viewerToken}`);
    println(env.stdout, 'Press Ctrl-C to stop.');
    await new Promise<void>((r) => (env.signal.aborted ? r() : env.signal.addEventListener('abort', () => r(), { once: true })));
    await c.close();
  },
};
