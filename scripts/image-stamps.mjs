// The stamp directory of one test or bench run (test/k8s/lib/image.ts): the first suite that needs
// a test image builds and imports it and leaves a stamp there, the later ones reuse it. A fresh
// directory under our cache dir per run, removed when the run ends; an outer run's
// ZTWIM_IMAGE_STAMPS is kept (scripts/test-all.sh's tests and bench smoke share one).
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** Runs `fn(env)` with ZTWIM_IMAGE_STAMPS set in `env`, and returns what it returns. */
export function withImageStamps(fn) {
  if (process.env.ZTWIM_IMAGE_STAMPS) return fn(process.env);
  const parent = join(process.env.ZTWIM_CACHE ?? join(homedir(), '.cache', 'ztwim'), 'images', 'run-stamps');
  mkdirSync(parent, { recursive: true });
  const dir = mkdtempSync(join(parent, 'run-'));
  try {
    return fn({ ...process.env, ZTWIM_IMAGE_STAMPS: dir });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
