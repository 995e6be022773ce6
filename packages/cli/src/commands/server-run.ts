import { loadServerConfig, startServer, type ServerConfigOverrides } from '@ztwim/server';
import type { Command } from '../command.ts';
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

export const serverRunCommand: Command = {
  name: 'run',
  summary: 'Runs the server',
  flags: { ...CONFIG_FLAGS, memoryBudget: MEMORY_BUDGET_FLAG },
  async run(flags, env) {
    const cfg = loadServerConfig(flags.string('config'), overrides(flags), await configLoadOptions(flags, env));
    tuneForDaemon({ memoryBudgetMiB: memoryBudgetOf(flags) });
    const server = await startServer(cfg);
    const onAbort = (): void => {
      void server.close();
    };
    env.signal.addEventListener('abort', onAbort, { once: true });
    await server.done;
    env.signal.removeEventListener('abort', onAbort);
  },
};

export const serverValidateCommand: Command = {
  name: 'validate',
  summary: 'Validates a server configuration file',
  flags: CONFIG_FLAGS,
  async run(flags, env) {
    printValidated(env, loadServerConfig(flags.string('config'), overrides(flags), await configLoadOptions(flags, env)).warnings);
  },
};
