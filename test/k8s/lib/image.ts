// The container images the Kubernetes tests and benches run, built from this tree by
// scripts/k8s/image.sh and imported into the test node: one tag for every suite, so a test run
// builds and imports each image once, not once per suite.
//
// image.sh caches the tarball by a hash of its inputs, but even a cache hit re-bundles the CLI and
// hashes every input (seconds under load). A test run (scripts/test.mjs, scripts/bench-smoke.mjs)
// sets ZTWIM_IMAGE_STAMPS to a fresh directory in our cache dir: the first suite that needs an
// image builds and imports it under a lock and leaves a stamp there (the image.sh result and the
// digest); the next ones only check that the node still has that digest. Without the variable
// (a single file run by hand) every call runs image.sh.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../../interop/lib/peers.ts';
import { holdFileLock, run, type ClusterEnv } from './cluster.ts';

/** The tag of the test images: $ZTWIM_IMAGE_TAG (a branch's images beside main's), else the root package.json's version. */
export const IMAGE_TAG = process.env['ZTWIM_IMAGE_TAG'] || (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
/** The ztwim image. */
export const ZTWIM_IMAGE = `ztwim:${IMAGE_TAG}`;
/** The test-only image: ours plus SPIRE v1.13.0's spire-agent and spire-server (image.sh --spire). */
export const SPIRE_TEST_IMAGE = `ztwim-spire-test:${IMAGE_TAG}`;

/** What `image.sh --import` prints, and the image's manifest digest. */
export interface ImportedImage {
  name: string;
  tarball: string;
  cached: boolean;
  imported: boolean;
  seconds: number;
  digest: string;
}

/**
 * The ztwim image (or with `spire` the SPIRE test image) of this tree on the test node: built and
 * imported by `scripts/k8s/image.sh [--spire] --import`, or found by this run's stamp.
 */
export async function importTestImage(env: ClusterEnv, opts: { spire?: boolean } = {}): Promise<ImportedImage> {
  const spire = opts.spire === true;
  const stamps = process.env['ZTWIM_IMAGE_STAMPS'];
  if (stamps === undefined || stamps === '') return await buildAndImport(env, spire);
  const name = spire ? SPIRE_TEST_IMAGE : ZTWIM_IMAGE;
  const stamp = join(stamps, `${name.replace(':', '-')}.json`);
  const release = await holdFileLock(stamps, `${name.replace(':', '-')}.lock`, `the build of image ${name}`, 900_000);
  try {
    if (existsSync(stamp)) {
      const done = JSON.parse(readFileSync(stamp, 'utf8')) as ImportedImage;
      if ((await nodeDigest(env, done.name)) === done.digest) return { ...done, cached: true, imported: false, seconds: 0 };
    }
    const img = await buildAndImport(env, spire);
    writeFileSync(stamp, JSON.stringify(img));
    return img;
  } finally {
    release();
  }
}

async function buildAndImport(env: ClusterEnv, spire: boolean): Promise<ImportedImage> {
  const r = await run('bash', [join(REPO_ROOT, 'scripts', 'k8s', 'image.sh'), ...(spire ? ['--spire'] : []), '--import'], {
    env: { ...process.env, ...env.vars, ZTWIM_IMAGE_TAG: IMAGE_TAG },
    timeoutMs: 900_000,
  });
  const img = JSON.parse(r.stdout) as Omit<ImportedImage, 'digest'>;
  const index = await run('tar', ['-xOf', img.tarball, 'index.json']);
  const digest = (JSON.parse(index.stdout) as { manifests: Array<{ digest: string }> }).manifests[0]?.digest ?? '';
  return { ...img, digest };
}

/** The digest the node's containerd holds for `name` ('' when it has none). */
async function nodeDigest(env: ClusterEnv, name: string): Promise<string> {
  const r = await run('ctr', ['-a', env.containerdSock, '-n', 'k8s.io', 'image', 'ls', `name==${name}`]).catch(() => ({ stdout: '' }));
  return (
    r.stdout
      .split('\n')
      .slice(1)
      .map((l) => l.split(/\s+/)[2])
      .find((d) => d !== undefined && d !== '') ?? ''
  );
}
