import { isZtwimError } from '@ztwim/core';
import { isSpiffeError } from '@ztwim/spiffe';
import { println, type Env } from './env.ts';
import { Flags, flagsUsage, goFlagDefaults, HelpRequested, parseFlags, UsageError, type FlagSpecs } from './flags.ts';

/** Exit codes scripts can rely on. */
export const EXIT_OK = 0;
export const EXIT_ERROR = 1;
export const EXIT_USAGE = 2;

export interface Command {
  readonly name: string;
  readonly summary: string;
  /** Extra text for --help. */
  readonly description?: string;
  readonly flags?: FlagSpecs;
  readonly subcommands?: readonly Subcommand[];
  /** Returns an exit code (default 0). */
  run?(flags: Flags, env: Env): Promise<number | void>;
  /**
   * This command and everything under it behave like a Go CLI built on mitchellh/cli + `flag`
   * (spire-server): a flag error prints Go's text and `Usage of <path below this command>:` with
   * the flag defaults, exit 1; a missing or unknown subcommand exits 1, or 127 when it is this
   * command's own (as mitchellh/cli does for the program's commands).
   */
  readonly goCli?: boolean;
  /** The Go flag set's name when it is not the path below the goCli command (`token generate` → "generate"). */
  readonly goFlagSetName?: string;
}

/**
 * A subcommand whose module is imported only when that command is chosen: a command table lists
 * name and summary (all a parent's --help needs), so `ztwim server entry show` never loads the
 * server, agent, OIDC or datastore code. `load` resolves to the command of the same name.
 */
export interface LazyCommand {
  readonly name: string;
  readonly summary: string;
  load(): Promise<Command>;
}

export type Subcommand = Command | LazyCommand;

export function isLazyCommand(c: Subcommand): c is LazyCommand {
  return 'load' in c;
}

/** The command behind a table row (imports its module when it is a LazyCommand). */
export async function resolveCommand(c: Subcommand): Promise<Command> {
  if (!isLazyCommand(c)) return c;
  const cmd = await c.load();
  if (cmd.name !== c.name) throw new Error(`command table: "${c.name}" loaded command "${cmd.name}"`);
  return cmd;
}

/** Exit code of mitchellh/cli for an unknown command at the top level. */
export const EXIT_GO_CLI_UNKNOWN_COMMAND = 127;

/** An error whose message is printed as `Error: <message>` with exit code 1. */
export class CommandError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = EXIT_ERROR) {
    super(message);
    this.exitCode = exitCode;
    this.name = 'CommandError';
  }
}

function help(cmd: Command, path: string[]): string {
  const lines = [`Usage: ${path.join(' ')}${cmd.subcommands ? ' <command>' : ''}${cmd.flags ? ' [flags]' : ''}`, '', cmd.summary];
  if (cmd.description !== undefined) lines.push('', cmd.description);
  if (cmd.subcommands) {
    lines.push('', 'Commands:');
    const w = Math.max(...cmd.subcommands.map((c) => c.name.length));
    for (const c of cmd.subcommands) lines.push(`  ${c.name.padEnd(w)}  ${c.summary}`);
    lines.push('', `Run '${path.join(' ')} <command> --help' for more.`);
  }
  if (cmd.flags && Object.keys(cmd.flags).length > 0) lines.push('', 'Flags:', flagsUsage(cmd.flags));
  return lines.join('\n');
}

/** Dispatches argv through the command tree; returns the exit code. Never throws. */
export async function runCommand(root: Command, argv: readonly string[], env: Env): Promise<number> {
  try {
    return await dispatch(root, argv, env);
  } catch (e) {
    // A command module that fails to load (or an unexpected flag-parsing error) ends here.
    println(env.stderr, `Error: ${e instanceof Error ? e.message : String(e)}`);
    return EXIT_ERROR;
  }
}

async function dispatch(root: Command, argv: readonly string[], env: Env): Promise<number> {
  let cmd = root;
  const path = [root.name];
  let rest = [...argv];
  // Where the Go-CLI-compatible subtree starts (index into path), if we are in one.
  let goCliAt = root.goCli === true ? 0 : -1;
  while (cmd.subcommands) {
    const next = rest[0];
    // A group that also runs on its own (`api fetch` = `api fetch x509`, as in spire-agent).
    if (cmd.run !== undefined && (next === undefined || (next.startsWith('-') && !['-h', '-help', '--help'].includes(next)))) break;
    const usageExit = goCliAt < 0 ? EXIT_USAGE : goCliAt === path.length - 1 ? EXIT_GO_CLI_UNKNOWN_COMMAND : EXIT_ERROR;
    if (next === undefined || next === '-h' || next === '-help' || next === '--help' || next === 'help') {
      println(next === undefined ? env.stderr : env.stdout, help(cmd, path));
      return next === undefined ? usageExit : EXIT_OK;
    }
    const row = cmd.subcommands.find((c) => c.name === next);
    if (row === undefined) {
      println(env.stderr, `Error: unknown command "${next}" for "${path.join(' ')}"`);
      println(env.stderr, `Run '${path.join(' ')} --help' for usage.`);
      return usageExit;
    }
    const sub = await resolveCommand(row);
    cmd = sub;
    path.push(sub.name);
    rest = rest.slice(1);
    if (goCliAt < 0 && sub.goCli === true) goCliAt = path.length - 1;
  }
  let flags: Flags;
  try {
    flags = new Flags(parseFlags(cmd.flags ?? {}, rest));
  } catch (e) {
    if (e instanceof HelpRequested) {
      println(env.stdout, help(cmd, path));
      return EXIT_OK;
    }
    if (e instanceof UsageError) {
      if (goCliAt >= 0) {
        // Go's flag package: the error, then the flag set's usage; mitchellh/cli exits 1.
        println(env.stderr, e.message);
        println(env.stderr, `Usage of ${cmd.goFlagSetName ?? path.slice(goCliAt + 1).join(' ')}:`);
        const defaults = goFlagDefaults(cmd.flags ?? {});
        if (defaults !== '') println(env.stderr, defaults);
        return EXIT_ERROR;
      }
      println(env.stderr, `Error: ${e.message}`);
      println(env.stderr, `Run '${path.join(' ')} --help' for usage.`);
      return EXIT_USAGE;
    }
    throw e;
  }
  try {
    const code = cmd.run ? await cmd.run(flags, env) : EXIT_OK;
    return code ?? EXIT_OK;
  } catch (e) {
    if (e instanceof UsageError) {
      println(env.stderr, `Error: ${e.message}`);
      return goCliAt >= 0 ? EXIT_ERROR : EXIT_USAGE;
    }
    if (e instanceof CommandError) {
      println(env.stderr, `Error: ${e.message}`);
      return e.exitCode;
    }
    if (isZtwimError(e) || isSpiffeError(e)) {
      println(env.stderr, `Error: ${e.message}`);
      return EXIT_ERROR;
    }
    println(env.stderr, `Error: ${e instanceof Error ? e.message : String(e)}`);
    if (env.vars.ZTWIM_DEBUG === '1' && e instanceof Error && e.stack !== undefined) println(env.stderr, e.stack);
    return EXIT_ERROR;
  }
}
