import { createLogger, type Logger } from '@ztwim/core';
import type { ConsoleConfig } from '@ztwim/console/config';
import { loadServerConfig, startServer, type ServerConfig, type ServerConfigOverrides } from '@ztwim/server';
import { CommandError, type Command } from '../command.ts';
import type { Env } from '../env.ts';
import type { FlagSpecs } from '../flags.ts';
import type { Flags } from '../flags.ts';
import { configLoadOptions, EXPAND_ENV_FLAG, printValidated } from '../config-options.ts';
import { tuneForDaemon } from '../daemon-tuning.ts';
import { MEMORY_BUDGET_FLAG, memoryBudgetOf } from '../memory-budget.ts';

const CONFIG_FLAGS: FlagSpecs = {
  expandEnv: EXPAND_ENV_FLAG,
  config: {
    kind: 'string',
    usage: 'Path to a server config file (HCL like SPIRE server.conf; .yaml/.json also accepted)',
    default: 'conf/server/server.conf',
    arg: 'FILE',
  },
  trustDomain: { kind: 'string', usage: 'The trust domain that this server belongs to', arg: 'TD' },
  bindAddress: { kind: 'string', usage: 'IP address or DNS name of the ztwim server', arg: 'ADDR' },
  serverPort: { kind: 'int', usage: 'Port number of the ztwim server', arg: 'PORT' },
  socketPath: { kind: 'string', usage: 'Path to bind the admin API socket to', arg: 'PATH' },
  dataDir: { kind: 'string', usage: 'Directory to store runtime data to', arg: 'DIR' },
  logLevel: { kind: 'string', usage: "'debug', 'info', 'warn', or 'error'", arg: 'LEVEL' },
};

function overrides(f: Flags): ServerConfigOverrides {
  const o: { -readonly [K in keyof ServerConfigOverrides]: ServerConfigOverrides[K] } = {};
  if (f.isSet('trustDomain')) o.trustDomain = f.string('trustDomain');
  if (f.isSet('bindAddress')) o.bindAddress = f.string('bindAddress');
  if (f.isSet('serverPort')) o.bindPort = f.int('serverPort');
  if (f.isSet('socketPath')) o.socketPath = f.string('socketPath');
  if (f.isSet('dataDir')) o.dataDir = f.string('dataDir');
  if (f.isSet('logLevel')) o.logLevel = f.string('logLevel');
  return o;
}

/** The server's config with its `console { }` block (read by @ztwim/console's small config module). */
async function loadWithConsole(flags: Flags, env: Env): Promise<{ cfg: ServerConfig; console?: ConsoleConfig }> {
  const { readConsoleConfig } = await import('@ztwim/console/config');
  let consoleCfg: ConsoleConfig | undefined;
  const cfg = loadServerConfig(flags.string('config'), overrides(flags), await configLoadOptions(flags, env), (root, baseDir) => {
    consoleCfg = readConsoleConfig(root, baseDir);
  });
  return consoleCfg === undefined ? { cfg } : { cfg, console: consoleCfg };
}

/** The web console of a `console { }` block, beside the server in this process; its generated login tokens logged once. */
async function startWebConsole(c: ConsoleConfig, cfg: ServerConfig, log: Logger): Promise<{ close(): Promise<void> }> {
  const { consoleOptionsFromConfig, startConsole } = await import('@ztwim/console');
  const opts = await consoleOptionsFromConfig(c, cfg.socketPath);
  let running;
  try {
    running = await startConsole({ ...opts, logger: log });
  } catch (e) {
    throw new CommandError((e as Error).message.replace('its port setting', 'console { bind_port bind_address }'));
  }
  if (c.tokenLogin && opts.adminToken === undefined)
    log.info({ url: `${running.url}#token=${running.adminToken}` }, 'console: Admin login link (its token is not logged again)');
  if (c.tokenLogin && opts.viewerToken === undefined) log.info({ url: `${running.url}#token=${running.viewerToken}` }, 'console: Read-only login link');
  return running;
}

export const serverRunCommand: Command = {
  name: 'run',
  summary: 'Runs the server',
  flags: { ...CONFIG_FLAGS, memoryBudget: MEMORY_BUDGET_FLAG },
  async run(flags, env) {
    const { cfg, console: consoleCfg } = await loadWithConsole(flags, env);
    const log = createLogger({ level: cfg.logLevel, name: 'server', ...(cfg.logFormat === undefined ? {} : { format: cfg.logFormat }) });
    const server = await startServer(cfg, { log });
    // After the start: --interrupt-budget (tuneForDaemon) would have V8 optimise start-up code
    // that runs once, and a V8 flag set before `started` would make the code cache it saves
    // useless (V8 accepts a cache only under the flags it was made with).
    env.started?.();
    tuneForDaemon({ memoryBudgetMiB: memoryBudgetOf(flags) });
    let webConsole: { close(): Promise<void> } | undefined;
    if (consoleCfg !== undefined) {
      try {
        webConsole = await startWebConsole(consoleCfg, cfg, log.child({ subsystem: 'console' }));
      } catch (e) {
        await server.close();
        throw e;
      }
    }
    const onAbort = (): void => {
      void (webConsole?.close() ?? Promise.resolve()).finally(() => void server.close());
    };
    env.signal.addEventListener('abort', onAbort, { once: true });
    await server.done;
    env.signal.removeEventListener('abort', onAbort);
    await webConsole?.close();
  },
};

export const serverValidateCommand: Command = {
  name: 'validate',
  summary: 'Validates a server configuration file',
  flags: CONFIG_FLAGS,
  async run(flags, env) {
    printValidated(env, (await loadWithConsole(flags, env)).cfg.warnings);
  },
};
