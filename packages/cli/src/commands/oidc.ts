import { createWriteStream, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createLogger, untilAborted } from '@ztwim/core';
import {
  checkIssuer,
  checkPassed,
  createJwksSource,
  formatFindings,
  loadOidcConfigFile,
  startOidcProvider,
  CHECK_TARGETS,
  DEFAULT_OIDC_CONFIG_PATH,
  type OidcFileConfig,
  type OidcProvider,
} from '@ztwim/oidc';
import { CommandError, EXIT_USAGE, type Command } from '../command.ts';
import { print, println, type Env } from '../env.ts';
import { Flags, parseFlags, type FlagSpecs } from '../flags.ts';
import { configLoadOptions, EXPAND_ENV_FLAG, printValidated } from '../config-options.ts';
import { tuneForDaemon } from '../daemon-tuning.ts';

type Target = (typeof CHECK_TARGETS)[number];

const checkCommand: Command = {
  name: 'check',
  summary: "Lint a live OIDC issuer against a relying party's rules (exit 1 on any error)",
  description: 'Usage: ztwim oidc check ISSUER_URL -for vault|entra|aws|gcp [-caFile PEM]',
  flags: {
    for: { kind: 'string', usage: `Relying party: ${CHECK_TARGETS.join(', ')}`, arg: 'TARGET' },
    caFile: { kind: 'string', usage: 'Extra CA certificates (PEM) to trust for the issuer', arg: 'FILE' },
  },
  async run(f, env) {
    const [url, ...rest] = f.args;
    if (url === undefined) throw new CommandError('missing ISSUER_URL', EXIT_USAGE);
    // Flags after the URL too (`check URL -for entra -caFile ca.pem`), as the usage line writes them.
    const after = new Flags(parseFlags(checkCommand.flags ?? {}, rest));
    if (after.args.length > 0) throw new CommandError(`unexpected argument ${JSON.stringify(after.args[0])}: give one ISSUER_URL`, EXIT_USAGE);
    const flag = (name: string): string | undefined => (after.isSet(name) ? after.optString(name) : f.optString(name));
    const target = flag('for') ?? '';
    if (!(CHECK_TARGETS as readonly string[]).includes(target)) throw new CommandError(`-for must be one of ${CHECK_TARGETS.join(', ')}`, EXIT_USAGE);
    const ca = flag('caFile');
    const findings = await checkIssuer(url, target as Target, ca === undefined ? {} : { ca: readFileSync(ca, 'utf8') });
    print(env.stdout, formatFindings(findings, { url, target: target as Target }));
    if (!checkPassed(findings)) return 1;
    println(env.stdout);
    return 0;
  },
};

const CONFIG_FLAGS: FlagSpecs = {
  config: {
    kind: 'string',
    usage: 'Path to the provider config (HCL like SPIRE oidc-discovery-provider.conf; .yaml/.json also accepted)',
    default: DEFAULT_OIDC_CONFIG_PATH,
    arg: 'FILE',
  },
  expandEnv: EXPAND_ENV_FLAG,
};

async function loadConfig(f: Flags, env: Env): Promise<OidcFileConfig> {
  return loadOidcConfigFile(resolve(env.cwd, f.string('config')), { ...(await configLoadOptions(f, env)), baseDir: env.cwd });
}

function whereServed(p: OidcProvider): string[] {
  const lines: string[] = [];
  const base = p.urls.https ?? p.urls.http;
  const prefix = p.config.serverPathPrefix.replace(/\/+$/, '');
  if (base !== undefined) {
    lines.push(`  discovery: ${base}${prefix}/.well-known/openid-configuration`);
    lines.push(`  keys:      ${base}${prefix}/keys`);
  }
  if (p.urls.socketPath !== undefined) lines.push(`  socket:    ${p.urls.socketPath}`);
  if (p.urls.health !== undefined) lines.push(`  health:    ${p.urls.health}`);
  return lines;
}

const runCommand: Command = {
  name: 'run',
  summary: 'Runs the OIDC discovery provider (keys from the Workload API, the server API or a bundle file)',
  description: 'Usage: ztwim oidc run [-config oidc-discovery-provider.conf] [-expandEnv]',
  flags: CONFIG_FLAGS,
  async run(f, env) {
    const cfg = await loadConfig(f, env);
    const logger = createLogger({
      level: cfg.logLevel,
      name: 'oidc-discovery-provider',
      ...(cfg.logPath === undefined ? {} : { destination: createWriteStream(cfg.logPath, { flags: 'a' }) }),
    });
    tuneForDaemon();
    for (const warning of cfg.warnings) logger.warn({ warning }, 'Configuration not fully applied');
    const source = createJwksSource(cfg.keySource, { logger });
    let provider: OidcProvider;
    try {
      provider = await startOidcProvider(cfg.oidc, { source, logger, logRequests: cfg.logRequests });
    } catch (e) {
      source.close();
      throw e;
    }
    const ks = cfg.keySource;
    const from =
      ks.kind === 'workload_api'
        ? `Workload API ${ks.socketPath} (trust domain ${ks.trustDomain})`
        : ks.kind === 'server_api'
          ? `server API ${ks.socketPath}`
          : `bundle file ${ks.path}`;
    println(env.stdout, `OIDC discovery provider running; keys from the ${from}`);
    for (const l of whereServed(provider)) println(env.stdout, l);
    // Runs until a signal, or until one of the provider's tasks fails (it has logged why).
    await Promise.race([untilAborted(env.signal), provider.done]);
    await provider.close();
    source.close();
    if (!env.signal.aborted) {
      println(env.stderr, 'OIDC discovery provider stopped on a failed task (see its log).');
      return 1;
    }
    println(env.stdout, 'OIDC discovery provider stopped.');
    return 0;
  },
};

const validateCommand: Command = {
  name: 'validate',
  summary: 'Validates an OIDC discovery provider config file',
  flags: CONFIG_FLAGS,
  async run(f, env) {
    printValidated(env, (await loadConfig(f, env)).warnings);
  },
};

export const oidcCommand: Command = {
  name: 'oidc',
  summary: 'OIDC discovery provider: run it, validate its config, lint a live issuer',
  subcommands: [runCommand, validateCommand, checkCommand],
};
