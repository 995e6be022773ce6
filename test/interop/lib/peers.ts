// Locates the external peers the interop tests talk to (openssl, Go, Python packages, SPIRE binaries).
// Every function throws a PeerMissingError naming the fix when its peer is absent, so the test
// that needs it FAILS (interop tests never skip). `scripts/setup-interop.sh` installs them all.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, constants, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, delimiter, join, resolve } from 'node:path';

export const SPIRE_VERSION = 'v1.13.0';
const SETUP_HINT = 'run `scripts/setup-interop.sh` (as root) to install the interop peers';

export class PeerMissingError extends Error {
  constructor(peer: string, detail: string) {
    super(`interop peer missing: ${peer}: ${detail}; ${SETUP_HINT}`);
    this.name = 'PeerMissingError';
  }
}

/** Root of our caches: $ZTWIM_CACHE or ~/.cache/ztwim. */
export function cacheDir(): string {
  return process.env['ZTWIM_CACHE'] ?? join(homedir(), '.cache', 'ztwim');
}

/** Repository root (`/work/main` in dev). */
export const REPO_ROOT = resolve(new URL('../../..', import.meta.url).pathname);
/** `test/interop` directory. */
export const INTEROP_DIR = join(REPO_ROOT, 'test', 'interop');

/** The `ztwim` command (its shebang carries the node flags the daemons run with). */
export const ZTWIM_BIN = join(REPO_ROOT, 'packages', 'cli', 'bin', 'ztwim.js');

/**
 * The node flags on the first line of the `ztwim` command (`#!/usr/bin/env node` or `#!/usr/bin/env -S node FLAGS`), for
 * callers that start node themselves (benchmarks, `node … main.ts` from source) and must run ztwim
 * as `npx ztwim` would.
 */
export function ztwimNodeFlags(): string[] {
  const first = readFileSync(ZTWIM_BIN, 'utf8').split('\n', 1)[0] ?? '';
  const m = /^#!\/usr\/bin\/env(?: -S)? node((?: --?[\w-]+(?:=\S+)?)*)$/.exec(first);
  if (m === null) throw new Error(`unexpected first line in ${ZTWIM_BIN}: ${first}`);
  return (m[1] ?? '').split(' ').filter((f) => f !== '');
}

function isExecutable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

const toolCache = new Map<string, string>();

/** Absolute path of an executable on PATH (or an absolute path), else throws PeerMissingError. */
export function requireTool(name: string): string {
  const hit = toolCache.get(name);
  if (hit !== undefined) return hit;
  let found: string | undefined;
  if (name.includes('/')) {
    if (isExecutable(name)) found = resolve(name);
  } else {
    const dirs = (process.env['PATH'] ?? '').split(delimiter).filter(Boolean);
    dirs.push('/usr/local/go/bin', '/usr/local/bin', '/usr/bin', '/usr/sbin');
    for (const d of dirs) {
      const p = join(d, name);
      if (isExecutable(p)) {
        found = p;
        break;
      }
    }
  }
  if (found === undefined) throw new PeerMissingError(name, `\`${name}\` not found on PATH`);
  toolCache.set(name, found);
  return found;
}

/**
 * Path of a real SPIRE binary: $ZTWIM_SPIRE_SERVER / $ZTWIM_SPIRE_AGENT if set, else
 * ~/.cache/ztwim/spire-v1.13.0/bin (scripts/setup-interop.sh), then /tmp/spirebuild/bin.
 */
export function findSpireBinary(name: 'spire-server' | 'spire-agent'): string {
  const fromEnv = process.env[name === 'spire-server' ? 'ZTWIM_SPIRE_SERVER' : 'ZTWIM_SPIRE_AGENT'];
  const candidates =
    fromEnv !== undefined && fromEnv !== '' ? [fromEnv] : [join(cacheDir(), `spire-${SPIRE_VERSION}`, 'bin', name), join('/tmp/spirebuild/bin', name)];
  for (const c of candidates) if (isExecutable(c)) return c;
  throw new PeerMissingError(`SPIRE ${SPIRE_VERSION} ${name}`, `no executable at ${candidates.join(' or ')}`);
}

/** Real SPIRE v1.13.0 `spire-server` built by setup-interop.sh (override: $ZTWIM_SPIRE_SERVER). */
export function spireServerBin(): string {
  return findSpireBinary('spire-server');
}

/** Real SPIRE v1.13.0 `spire-agent` built by setup-interop.sh (override: $ZTWIM_SPIRE_AGENT). */
export function spireAgentBin(): string {
  return findSpireBinary('spire-agent');
}

function hashModule(moduleDir: string, pkg: string, goVersion: string): string {
  const h = createHash('sha256');
  h.update(`${goVersion}\0${pkg}\0`);
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      if (name.startsWith('.') || name === 'testdata' || name === 'node_modules') continue;
      const p = join(dir, name);
      const st = statSync(p);
      if (st.isDirectory()) walk(p);
      else if (name.endsWith('.go') || name === 'go.mod' || name === 'go.sum') {
        h.update(p.slice(moduleDir.length));
        h.update('\0');
        h.update(readFileSync(p));
        h.update('\0');
      }
    }
  };
  walk(moduleDir);
  return h.digest('hex').slice(0, 16);
}

const goBuildCache = new Map<string, string>();

/**
 * Builds the Go main package `pkg` (default `.`) of the module in `moduleDir` and returns the
 * binary path. Binaries are cached in ~/.cache/ztwim/go-bin keyed by a hash of the module's Go
 * sources, go.mod, go.sum and `go version`, so only the first run pays for the build. Safe when
 * several test processes build at once (build to a temp name, then rename).
 */
export function goBuild(moduleDir: string, pkg = '.'): string {
  const dir = resolve(moduleDir);
  const key = `${dir}\0${pkg}`;
  const hit = goBuildCache.get(key);
  if (hit !== undefined) return hit;
  const go = requireTool('go');
  const goVersion = execFileSync(go, ['version'], { encoding: 'utf8' }).trim();
  const name = `${basename(pkg === '.' ? dir : pkg)}-${hashModule(dir, pkg, goVersion)}`;
  const binDir = join(cacheDir(), 'go-bin');
  const out = join(binDir, name);
  if (!isExecutable(out)) {
    mkdirSync(binDir, { recursive: true });
    const tmp = `${out}.tmp-${process.pid}`;
    const env = { ...process.env, GOSUMDB: 'off', GOFLAGS: `${process.env['GOFLAGS'] ?? ''} -mod=mod`.trim() };
    const r = spawnSync(go, ['build', '-o', tmp, pkg], { cwd: dir, env, encoding: 'utf8' });
    if (r.status !== 0) {
      throw new Error(`go build ${pkg} in ${dir} failed (status ${r.status}):\n${r.stderr}${r.stdout}`);
    }
    renameSync(tmp, out);
  }
  goBuildCache.set(key, out);
  return out;
}

/** The spiffecheck (go-spiffe oracle) binary, built on first use. */
export function spiffecheckBin(): string {
  return goBuild(join(INTEROP_DIR, 'spiffecheck'));
}

let pythonPath: string | undefined;

/**
 * A python3 that can `import spiffe, jwt, cryptography` (py-spiffe, PyJWT). Override with $PYTHON.
 */
export function python(): string {
  if (pythonPath !== undefined) return pythonPath;
  const py = requireTool(process.env['PYTHON'] ?? 'python3');
  const r = spawnSync(py, ['-c', 'import spiffe, jwt, cryptography'], { encoding: 'utf8' });
  if (r.status !== 0) {
    throw new PeerMissingError('python packages spiffe/PyJWT/cryptography', `${py}: ${r.stderr.trim().split('\n').pop() ?? ''}`);
  }
  pythonPath = py;
  return py;
}

/** Path of a helper file in test/interop/lib. */
export function libFile(name: string): string {
  const p = join(INTEROP_DIR, 'lib', name);
  if (!existsSync(p)) throw new Error(`missing interop helper ${p}`);
  return p;
}

/** Files under `dir` (relative, `/`-separated), recursively. */
function filesUnder(root: string, rel: string): string[] {
  const p = join(root, rel);
  if (!statSync(p).isDirectory()) return [rel];
  return readdirSync(p).flatMap((n) => filesUnder(root, `${rel}/${n}`));
}

/**
 * The java-spiffe probe (test/interop/java) built by scripts/setup-interop.sh: its class path and
 * main class, for `java -cp`. The build is keyed by a hash of pom.xml and src/ (the same key the
 * script computes), so a changed probe is never run stale. Throws PeerMissingError when java or
 * the build is missing.
 */
export function javaProbe(): { java: string; classPath: string; mainClass: string } {
  const java = requireTool('java');
  const dir = join(INTEROP_DIR, 'java');
  const files = ['pom.xml', ...filesUnder(dir, 'src')].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const h = createHash('sha256');
  for (const f of files) {
    h.update(f);
    h.update(Buffer.from([0]));
    h.update(readFileSync(join(dir, f)));
  }
  const out = join(cacheDir(), 'java-probe', h.digest('hex').slice(0, 16));
  const jar = join(out, 'java-spiffe-probe.jar');
  if (!existsSync(jar) || !existsSync(join(out, 'lib'))) {
    throw new PeerMissingError('java-spiffe probe', `${jar} (with lib/) not built`);
  }
  return { java, classPath: `${jar}:${join(out, 'lib', '*')}`, mainClass: 'ztwim.interop.Probe' };
}
