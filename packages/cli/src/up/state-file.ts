// `<dataDir>/up.json`: where a running `ztwim up` serves, for `ztwim status`. Written once the
// system is up, removed when it stops; the data dir lock (ztwim.lock) says whether it still runs.
import * as fs from 'node:fs';
import { join } from 'node:path';

export const UP_STATE_FILE = 'up.json';

export interface UpState {
  readonly pid: number;
  readonly trustDomain: string;
  readonly dataDir: string;
  readonly datastore: string;
  readonly serverSocketPath: string;
  readonly serverPort: number;
  readonly socketPath: string;
  readonly nodeAlias: string;
  readonly oidcIssuer?: string;
  readonly serverMetricsUrl?: string;
  readonly agentMetricsUrl?: string;
  /** The web console (log in with the token the banner printed). */
  readonly consoleUrl?: string;
}

export function writeUpState(dataDir: string, state: UpState): void {
  const file = join(dataDir, UP_STATE_FILE);
  fs.writeFileSync(`${file}.tmp`, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  fs.renameSync(`${file}.tmp`, file);
}

export function removeUpState(dataDir: string): void {
  fs.rmSync(join(dataDir, UP_STATE_FILE), { force: true });
}

/** The state a `ztwim up` wrote in `dataDir`, or undefined (none, or unreadable). */
export function readUpState(dataDir: string): UpState | undefined {
  try {
    const s = JSON.parse(fs.readFileSync(join(dataDir, UP_STATE_FILE), 'utf8')) as UpState;
    return typeof s === 'object' && s !== null && typeof s.socketPath === 'string' ? s : undefined;
  } catch {
    return undefined;
  }
}
