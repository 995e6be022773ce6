// Runs `ztwim oidc run -config FILE` as a child process (the CLI's own entry point, from
// source through tsx, as the test runner does) and talks to it over real HTTP.
import { spawn, type ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { REPO_ROOT } from './peers.ts';

export const ZTWIM_MAIN = join(REPO_ROOT, 'packages', 'cli', 'src', 'main.ts');
const NODE_ARGS = ['--conditions=ztwim-source', '--import', 'tsx'];

/**
 * Runs `ztwim <args>` to completion. Asynchronous on purpose: a server started in the test
 * process must keep answering while the command runs.
 */
export function ztwim(
  args: readonly string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...NODE_ARGS, ZTWIM_MAIN, ...args], {
      cwd: opts.cwd ?? REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(opts.env === undefined ? {} : { env: opts.env }),
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const t = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.once('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
    child.once('close', (code) => {
      clearTimeout(t);
      resolve({ status: code, stdout, stderr });
    });
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
  readonly child: ChildProcess;
  /** `http://127.0.0.1:<port>` (from insecure_addr). */
  readonly base: string;
  /** stdout + stderr so far. */
  out(): string;
  /** Sends the signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Starts `ztwim oidc run -config <configPath>` and waits until it prints that it is running
 * (and, with `waitForKeys`, until /keys serves a key set).
 */
export async function startOidcRun(
  configPath: string,
  port: number,
  opts: { waitForKeys?: boolean; timeoutMs?: number; extraArgs?: readonly string[]; env?: NodeJS.ProcessEnv } = {},
): Promise<OidcRun> {
  const child = spawn(process.execPath, [...NODE_ARGS, ZTWIM_MAIN, 'oidc', 'run', '-config', configPath, ...(opts.extraArgs ?? [])], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(opts.env === undefined ? {} : { env: opts.env }),
  });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      exitCode = code;
      resolve(code);
    });
  });
  // never leave a provider behind if the test process dies
  const kill = (): void => {
    if (exitCode === undefined) child.kill('SIGKILL');
  };
  process.once('exit', kill);
  void exited.then(() => process.removeListener('exit', kill));
  const run: OidcRun = {
    child,
    base: `http://127.0.0.1:${port}`,
    out: () => output,
    async stop(signal = 'SIGTERM') {
      if (exitCode !== undefined) return exitCode;
      child.kill(signal);
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
  };
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  while (!output.includes('OIDC discovery provider running')) {
    if (exitCode !== undefined) throw new Error(`ztwim oidc run exited with ${String(exitCode)}:\n${output}`);
    if (Date.now() > deadline) {
      await run.stop('SIGKILL');
      throw new Error(`ztwim oidc run not running after ${opts.timeoutMs ?? 30_000} ms:\n${output}`);
    }
    await delay(50);
  }
  if (opts.waitForKeys === true) {
    while ((await fetchKeys(run.base)) === undefined) {
      if (exitCode !== undefined) throw new Error(`ztwim oidc run exited with ${String(exitCode)}:\n${output}`);
      if (Date.now() > deadline) {
        await run.stop('SIGKILL');
        throw new Error(`ztwim oidc run served no keys within ${opts.timeoutMs ?? 30_000} ms:\n${output}`);
      }
      await delay(100);
    }
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
