import { useLightHeaders } from './light-headers.ts';
import { runCommand, type Command } from './command.ts';
import type { Env } from './env.ts';

/**
 * Runs `root` on this process's arguments and exits with its status: what both entry points of
 * the `ztwim` command do (main.ts, and server-run-main.ts for `ztwim server run`).
 * `started` is passed on to the command (Env.started).
 */
export async function runMain(root: Command, started?: () => void): Promise<never> {
  // Before any command module is loaded (light-headers.ts: undici costs 13 MiB).
  useLightHeaders();

  const ctl = new AbortController();
  let signals = 0;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      signals++;
      if (signals > 1) process.exit(130);
      ctl.abort(new Error(`received ${sig}`));
    });
  }

  const env: Env = {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    cwd: process.cwd(),
    vars: process.env,
    signal: ctl.signal,
    ...(started === undefined ? {} : { started }),
  };

  const code = await runCommand(root, process.argv.slice(2), env);
  // Every command has released what it opened by now; exit without waiting for stray timers
  // (e.g. RPC deadline timers of connections that are already closed).
  process.exit(code);
}
