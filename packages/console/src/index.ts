export { startConsole, defaultStaticDir, consoleOptionsFromConfig, DEFAULT_CONSOLE_PORT } from './console.ts';
export type { ConsoleOptions, RunningConsole } from './console.ts';
export { readConsoleConfig, plaintextRefusal, CONSOLE_DEFAULTS } from './console-config.ts';
export type { ConsoleConfig, ConsoleOidcConfig } from './console-config.ts';
export { CONTENT_SECURITY_POLICY } from './http-api.ts';
export { AdminApi } from './admin.ts';
export type { ServerView, AboutView, LocalAuthorityView } from './admin.ts';
export { explain, formatExplanation, reachableEntries } from './explain.ts';
export type { Explanation, ExplainEntry, ExplainInput, ExplainSelector, NearMiss } from './explain.ts';
