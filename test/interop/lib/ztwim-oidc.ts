// Runs `ztwim oidc run -config FILE` as a child process (the CLI's own entry point, from
// source through tsx, as the test runner does) and talks to it over real HTTP.
import { request } from 'node:http';
import { join } from 'node:path';
import { runBinary, startProc, waitReady, type CliResult, type Proc } from '@ztwim/testkit/procs';
import { REPO_ROOT } from './peers.ts';

export const ZTWIM_MAIN = join(REPO_ROOT, 'packages', 'cli', 'src', 'main.ts');
const NODE_ARGS = ['--conditions=ztwim-source', '--import', 'tsx'];

/**
 * Runs `ztwim <args>` to completion. Asynchronous on purpose: a server started in the test
 * process must keep answering while the command runs. `env` is added to this process's environment.
 */
export function ztwim(args: readonly string[], opts: { cwd?: string; env?: Readonly<Record<string, string>>; timeoutMs?: number } = {}): Promise<CliResult> {
  return runBinary(process.execPath, [...NODE_ARGS, ZTWIM_MAIN, ...args], {
    cwd: opts.cwd ?? REPO_ROOT,
    timeoutMs: opts.timeoutMs ?? 60_000,
    ...(opts.env === undefined ? {} : { env: opts.env }),
  });
}

export interface HttpResult {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/** GET over plain HTTP; `host` sets the Host header (fetch cannot). */
export function httpGet(url: string, headers: Record<string, string> = {}, timeoutMs = 5000): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: timed out`)));
    req.on('error', reject);
    req.end();
  });
}

export interface PublishedKey {
  readonly kid: string;
  readonly kty: string;
  readonly [k: string]: unknown;
}

/** The key set at `base/keys`, or undefined when the provider has none (500/501) or is unreachable. */
export async function fetchKeys(base: string): Promise<PublishedKey[] | undefined> {
  try {
    const r = await httpGet(`${base}/keys`);
    if (r.status !== 200) return undefined;
    return (JSON.parse(r.body) as { keys: PublishedKey[] }).keys;
  } catch {
    return undefined;
  }
}

export interface OidcRun {
  readonly proc: Proc;
  /** `http://127.0.0.1:<port>` (from insecure_addr). */
  readonly base: string;
  /** stdout + stderr so far. */
  out(): string;
  /** Sends the signal (SIGKILL after 15 s) and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Starts `ztwim oidc run -config <configPath>` and waits until it prints that it is running
 * (and, with `waitForKeys`, until /keys serves a key set). `env` is added to this process's environment.
 */
export async function startOidcRun(
  configPath: string,
  port: number,
  opts: { waitForKeys?: boolean; timeoutMs?: number; extraArgs?: readonly string[]; env?: Readonly<Record<string, string>> } = {},
): Promise<OidcRun> {
  const proc = startProc('ztwim oidc run', process.execPath, [...NODE_ARGS, ZTWIM_MAIN, 'oidc', 'run', '-config', configPath, ...(opts.extraArgs ?? [])], {
    cwd: REPO_ROOT,
    ...(opts.env === undefined ? {} : { env: opts.env }),
  });
  const exited = new Promise<void>((resolve) => {
    if (proc.exited()) resolve();
    else proc.child.once('exit', () => resolve());
  });
  const run: OidcRun = {
    proc,
    base: `http://127.0.0.1:${port}`,
    out: () => proc.output(),
    async stop(signal = 'SIGTERM') {
      if (!proc.exited()) {
        proc.child.kill(signal);
        const t = setTimeout(() => proc.child.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(t);
      }
      return proc.exitCode() ?? null;
    },
  };
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  try {
    await waitReady('ztwim oidc run to say it is running', proc, () => proc.output().includes('OIDC discovery provider running'), {
      timeoutMs,
      intervalMs: 50,
    });
    if (opts.waitForKeys === true) {
      await waitReady('ztwim oidc run to serve a key set', proc, async () => (await fetchKeys(run.base)) !== undefined, {
        timeoutMs: Math.max(0, deadline - Date.now()),
        intervalMs: 100,
      });
    }
  } catch (e) {
    await run.stop('SIGKILL');
    throw e;
  }
  return run;
}

/** JWT authorities' kids of a SPIFFE bundle (`bundle show -format spiffe` output). */
export function jwtKidsOfSpiffeBundle(text: string): string[] {
  const doc = JSON.parse(text) as { keys?: Array<{ use?: string; kid?: string }> };
  return (doc.keys ?? []).filter((k) => k.use === 'jwt-svid').map((k) => k.kid ?? '');
}

/** The header and payload of a JWT (no verification). */
export function decodeJwt(token: string): { header: { kid?: string; alg?: string }; payload: { iat?: number; exp?: number; sub?: string } } {
  const [h, p] = token.split('.');
  return {
    header: JSON.parse(Buffer.from(h ?? '', 'base64url').toString('utf8')) as { kid?: string; alg?: string },
    payload: JSON.parse(Buffer.from(p ?? '', 'base64url').toString('utf8')) as { iat?: number; exp?: number; sub?: string },
  };
}
