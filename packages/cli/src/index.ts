export { runCommand, CommandError, EXIT_OK, EXIT_ERROR, EXIT_USAGE } from './command.ts';
export type { Command } from './command.ts';
export { runCaptured } from './capture.ts';
export type { CapturedRun } from './capture.ts';
export { rootCommand } from './root.ts';
export { parseFlags, parseGoDuration, Flags, UsageError } from './flags.ts';
export type { FlagSpec, FlagSpecs } from './flags.ts';
export type { Env } from './env.ts';
export { serverBundleJwksSource, SERVER_BUNDLE_POLL_MS } from './server-jwks-source.ts';
