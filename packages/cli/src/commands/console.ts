// `ztwim console`: the web console beside a running server, talking to its admin API socket. Its
// settings are the server config's `console { }` block: read from -config (a server.conf, whose
// server.socket_path is then the default socket), each flag overriding the key it names, and
// checked by the same code as `ztwim server validate`.
import {
  createLogger,
  loadConfigFile,
  parseLogLevel,
  problems,
  Section,
  throwIfProblems,
  type ConfigEntry,
  type ConfigObject,
  type Problems,
} from '@ztwim/core';
import { CommandError, type Command } from '../command.ts';
import { configLoadOptions, EXPAND_ENV_FLAG } from '../config-options.ts';
import { println } from '../env.ts';
import type { Flags } from '../flags.ts';
import { DEFAULT_SERVER_SOCKET_PATH } from './server/client.ts';

// Flags become config entries (line 0) so that one reader checks file and flags alike.
const entry = (key: string, value: ConfigEntry['value']): ConfigEntry => ({ key, labels: [], value, line: 0 });
const strEntry = (key: string, value: string): ConfigEntry => entry(key, { kind: 'string', value, line: 0 });
const listEntry = (key: string, values: readonly string[]): ConfigEntry =>
  entry(key, { kind: 'list', items: values.map((value) => ({ kind: 'string' as const, value, line: 0 })), line: 0 });
const block = (key: string, entries: ConfigEntry[]): ConfigEntry => entry(key, { kind: 'object', entries, line: 0 });

/** The flag of each `console { }` key, to name it in a problem with a value the flags gave (line 0). */
const FLAG_OF: Readonly<Record<string, string>> = {
  'console.bind_address': 'host',
  'console.bind_port': 'port',
  'console.serving_cert_file.cert_file_path': 'tlsCert',
  'console.serving_cert_file.key_file_path': 'tlsKey',
  'console.session_lifetime': 'sessionLifetime',
  'console.admin_token_file': 'adminTokenFile',
  'console.viewer_token_file': 'viewerTokenFile',
  'console.token_login_enabled': 'tokenLogin',
  'console.oidc.issuer': 'oidcIssuer',
  'console.oidc.client_id': 'oidcClientId',
  'console.oidc.client_secret_file': 'oidcClientSecretFile',
  'console.oidc.redirect_uri': 'oidcRedirectUri',
  'console.oidc.scopes': 'oidcScope',
  'console.oidc.role_claim': 'oidcRoleClaim',
  'console.oidc.admin_values': 'oidcAdminValue',
  'console.oidc.viewer_values': 'oidcViewerValue',
  'console.oidc.post_logout_redirect_uri': 'oidcPostLogoutRedirectUri',
};

/** Problems where a setting that came from a flag (line 0) is named by its flag, not by a file line. */
function namingFlags(where: string, f: Flags): Problems {
  const p = problems(where);
  return {
    ...p,
    list: p.list,
    warnings: p.warnings,
    add: (path, line, message) => {
      const flag = FLAG_OF[path];
      if (line !== 0 || flag === undefined) return p.add(path, line, message);
      const value = !f.isSet(flag)
        ? ''
        : flag === 'port'
          ? String(f.int(flag))
          : flag === 'tokenLogin'
            ? String(f.bool(flag))
            : /Value$|Scope$/.test(flag)
              ? f.list(flag).join(',')
              : f.string(flag);
      p.flag(flag, value, `${message} (${path})`);
    },
  };
}

/** `over`'s keys replace `base`'s, blocks merged key by key (a flag overrides one setting of the file's block). */
function merge(base: ConfigObject | undefined, over: readonly ConfigEntry[]): ConfigObject {
  const entries = [...(base?.entries ?? [])];
  for (const o of over) {
    const i = entries.findIndex((e) => e.key === o.key && e.labels.length === 0);
    const old = i < 0 ? undefined : entries[i];
    const value = o.value.kind === 'object' && old?.value.kind === 'object' ? merge(old.value, o.value.entries) : o.value;
    const merged: ConfigEntry = { ...o, value, line: old?.line ?? o.line };
    if (i < 0) entries.push(merged);
    else entries[i] = merged;
  }
  return { kind: 'object', entries, line: base?.line ?? 0 };
}

/** The `console { }` keys the flags set. */
function flagEntries(f: Flags): ConfigEntry[] {
  const out: ConfigEntry[] = [];
  const s = (flag: string, key: string): void => {
    if (f.isSet(flag)) out.push(strEntry(key, f.string(flag)));
  };
  s('host', 'bind_address');
  if (f.isSet('port')) out.push(entry('bind_port', { kind: 'number', value: f.int('port'), line: 0 }));
  if (f.isSet('tlsCert') || f.isSet('tlsKey')) {
    out.push(block('serving_cert_file', [strEntry('cert_file_path', f.string('tlsCert')), strEntry('key_file_path', f.string('tlsKey'))]));
  }
  s('sessionLifetime', 'session_lifetime');
  s('adminTokenFile', 'admin_token_file');
  s('viewerTokenFile', 'viewer_token_file');
  if (f.isSet('tokenLogin')) out.push(entry('token_login_enabled', { kind: 'bool', value: f.bool('tokenLogin'), line: 0 }));
  const oidc: ConfigEntry[] = [];
  const o = (flag: string, key: string): void => {
    if (f.isSet(flag)) oidc.push(strEntry(key, f.string(flag)));
  };
  const ol = (flag: string, key: string): void => {
    if (f.isSet(flag)) oidc.push(listEntry(key, f.list(flag)));
  };
  o('oidcIssuer', 'issuer');
  o('oidcClientId', 'client_id');
  o('oidcClientSecretFile', 'client_secret_file');
  o('oidcRedirectUri', 'redirect_uri');
  ol('oidcScope', 'scopes');
  o('oidcRoleClaim', 'role_claim');
  ol('oidcAdminValue', 'admin_values');
  ol('oidcViewerValue', 'viewer_values');
  o('oidcPostLogoutRedirectUri', 'post_logout_redirect_uri');
  if (oidc.length > 0) out.push(block('oidc', oidc));
  return out;
}

export const consoleCommand: Command = {
  name: 'console',
  summary: 'Run the web console: server, agents, entries, bundles, federation, and why a workload has no identity',
  description: [
    'Serves the console on 127.0.0.1 unless -host says otherwise (another address needs -tlsCert/-tlsKey),',
    'and prints its URL with the admin login token (random at each start unless -adminTokenFile is given)',
    'and a read-only login token. -config reads the console { } block of a server config (its',
    'server.socket_path is the default -serverSocketPath); each flag overrides the key it names.',
    'With -oidcIssuer and -oidcClientId, "Log in with OIDC" logs in at that OpenID Provider.',
  ].join('\n'),
  flags: {
    config: { kind: 'string', usage: 'A config file whose console { } block (and server.socket_path) to use', arg: 'FILE' },
    expandEnv: EXPAND_ENV_FLAG,
    serverSocketPath: { kind: 'string', usage: "The server's admin API socket", default: DEFAULT_SERVER_SOCKET_PATH, arg: 'PATH' },
    host: { kind: 'string', usage: 'Address to listen on (bind_address)', default: '127.0.0.1', arg: 'ADDR' },
    port: { kind: 'int', usage: 'Port to listen on, 0: a free one (bind_port)', default: 8090, arg: 'PORT' },
    adminTokenFile: { kind: 'string', usage: 'File holding the admin login token (default: a random one, printed)', arg: 'FILE' },
    viewerTokenFile: { kind: 'string', usage: 'File holding the read-only login token (default: a random one, printed)', arg: 'FILE' },
    tokenLogin: { kind: 'bool', usage: 'Accept login tokens (token_login_enabled); -tokenLogin=false leaves OIDC as the only login', default: true },
    sessionLifetime: { kind: 'string', usage: 'A login lasts this long, e.g. 12h (session_lifetime)', arg: 'DURATION' },
    tlsCert: { kind: 'string', usage: 'Serve https with this PEM certificate (with -tlsKey); the session cookie is then Secure', arg: 'FILE' },
    tlsKey: { kind: 'string', usage: 'PEM private key for -tlsCert', arg: 'FILE' },
    oidcIssuer: { kind: 'string', usage: "OpenID Provider's issuer URL (oidc.issuer)", arg: 'URL' },
    oidcClientId: { kind: 'string', usage: "The console's client ID at the provider (oidc.client_id)", arg: 'ID' },
    oidcClientSecretFile: { kind: 'string', usage: 'File holding the client secret; none: a public client (oidc.client_secret_file)', arg: 'FILE' },
    oidcRedirectUri: { kind: 'string', usage: 'Redirect URI registered at the provider, ending in /oidc/callback (oidc.redirect_uri)', arg: 'URL' },
    oidcScope: { kind: 'list', usage: 'Scope to ask for (oidc.scopes; default openid, profile)', arg: 'SCOPE' },
    oidcRoleClaim: { kind: 'string', usage: 'ID token claim holding the role values, a dotted path (oidc.role_claim; default groups)', arg: 'CLAIM' },
    oidcAdminValue: { kind: 'list', usage: 'Claim value that makes an admin (oidc.admin_values; default ztwim-admins)', arg: 'VALUE' },
    oidcViewerValue: { kind: 'list', usage: 'Claim value that makes a read-only login (oidc.viewer_values; default ztwim-viewers)', arg: 'VALUE' },
    oidcPostLogoutRedirectUri: { kind: 'string', usage: 'Where the provider sends the browser after logout (oidc.post_logout_redirect_uri)', arg: 'URL' },
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
    if (f.isSet('tlsCert') !== f.isSet('tlsKey')) throw new CommandError('-tlsCert and -tlsKey go together');
    const path = f.string('config');
    const where = path === '' ? 'flags' : `${path} (with flags)`;
    let fileBlock: ConfigObject | undefined;
    let socketPath = DEFAULT_SERVER_SOCKET_PATH;
    if (path !== '') {
      const doc = loadConfigFile(path, await configLoadOptions(f, env));
      const c = doc.entries.find((e) => e.key === 'console' && e.labels.length === 0)?.value;
      if (c !== undefined && c.kind !== 'object') throw new CommandError(`${path}: console must be a block`);
      fileBlock = c;
      const server = doc.entries.find((e) => e.key === 'server')?.value;
      const sp = server?.kind === 'object' ? server.entries.find((e) => e.key === 'socket_path')?.value : undefined;
      if (sp?.kind === 'string') socketPath = sp.value;
    }
    if (f.isSet('serverSocketPath')) socketPath = f.string('serverSocketPath');
    const p = namingFlags(where, f);
    const root = new Section({ kind: 'object', entries: [entry('console', merge(fileBlock, flagEntries(f)))], line: 0 }, '', p);
    const { readConsoleConfig } = await import('@ztwim/console/config');
    const cfg = readConsoleConfig(root, process.cwd());
    throwIfProblems(p);
    if (cfg === undefined) throw new CommandError('no console settings');
    const { consoleOptionsFromConfig, startConsole } = await import('@ztwim/console');
    let c;
    let opts;
    try {
      opts = await consoleOptionsFromConfig(cfg, socketPath);
      c = await startConsole({
        ...opts,
        logger: createLogger({ level, name: 'ztwim-console' }),
        ...(f.string('metricsURL') === '' ? {} : { metricsUrl: f.string('metricsURL') }),
      });
    } catch (e) {
      throw new CommandError(`${(e as Error).message.replace('its port setting', '-port or -host')}`);
    }
    if (cfg.tokenLogin) {
      println(env.stdout, `Console: ${c.url}${opts.adminToken === undefined ? `#token=${c.adminToken}` : ' (log in with the admin token file)'}`);
      if (opts.viewerToken === undefined) println(env.stdout, `Read-only login token: ${c.viewerToken}`);
    } else {
      println(env.stdout, `Console: ${c.url} (log in with OIDC)`);
    }
    if (cfg.oidc !== undefined) println(env.stdout, `OIDC login at ${cfg.oidc.issuer} (client ${cfg.oidc.clientId})`);
    println(env.stdout, 'Press Ctrl-C to stop.');
    await new Promise<void>((r) => (env.signal.aborted ? r() : env.signal.addEventListener('abort', () => r(), { once: true })));
    await c.close();
  },
};
