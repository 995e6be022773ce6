// @ztwim/spiffe as a user outside the repository gets it: `npm pack -w @ztwim/spiffe`, the tarball
// installed into an empty project (the registry, or the npm cache, for its dependencies), a small
// program compiled there with `tsc --strict` against the installed types (no skipLibCheck), then run
// against `ztwim up`: an X509-SVID and a JWT-SVID fetched and validated through the installed package.
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { freePort } from '../interop/lib/net.ts';
import { REPO_ROOT } from '../interop/lib/peers.ts';
import { makeTmpDir } from '../interop/lib/tmp.ts';
import { runCommand, type CliRun } from '../interop/lib/ztwim-cli.ts';
import { startUp, stopUp, type Up } from '../interop/lib/ztwim-up.ts';

const run = (cmd: string, args: string[], cwd: string, timeoutMs = 600_000, env: NodeJS.ProcessEnv = process.env): Promise<CliRun> =>
  runCommand(cmd, args, cwd, { env, timeoutMs });

const versionOf = (pkg: string): string =>
  (JSON.parse(readFileSync(join(REPO_ROOT, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version;

interface PackedManifest {
  name: string;
  version: string;
  private?: boolean;
  license?: string;
  exports: Record<string, Record<string, string>>;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
}

describe('@ztwim/spiffe packed and installed into an empty project', { timeout: 900_000 }, () => {
  const tmp = makeTmpDir('ztwim-sdk-pkg-');
  let up: Up | undefined;
  after(async () => {
    if (up !== undefined) await stopUp(up);
    tmp.cleanup();
  });
  const packs = join(tmp.path, 'packs');
  const consumer = join(tmp.path, 'consumer');
  let tarball = '';

  it('npm pack gives one tarball: compiled code, types, README and CHANGELOG; no tests, fixtures or sources', async () => {
    mkdirSync(packs);
    const r = await run('npm', ['pack', '-w', '@ztwim/spiffe', '--pack-destination', packs], REPO_ROOT);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(readdirSync(packs), ['ztwim-spiffe-0.1.0.tgz']);
    tarball = join(packs, 'ztwim-spiffe-0.1.0.tgz');
    const files = (await run('tar', ['tzf', tarball], tmp.path)).stdout.split('\n').filter((l) => l !== '');
    for (const f of ['package/package.json', 'package/README.md', 'package/CHANGELOG.md', 'package/dist/index.js', 'package/dist/index.d.ts']) {
      assert.ok(files.includes(f), `${f} is in the tarball`);
    }
    const unwanted = files.filter((f) => /\.test\.|\.test-suite\.|\.test-util\.|testdata|fixture|\.tsbuildinfo|^package\/src\//.test(f));
    assert.deepEqual(unwanted, [], 'no tests, test helpers, fixtures or sources');

    const manifest = JSON.parse((await run('tar', ['xzfO', tarball, 'package/package.json'], tmp.path)).stdout) as PackedManifest;
    assert.equal(manifest.name, '@ztwim/spiffe');
    assert.match(manifest.version, /^\d+\.\d+\.\d+$/);
    assert.notEqual(manifest.private, true, 'publishable');
    assert.equal(manifest.license, 'Apache-2.0');
    const ours = Object.keys({ ...manifest.dependencies, ...manifest.peerDependencies }).filter((d) => d.startsWith('@ztwim/'));
    assert.deepEqual(ours, [], 'no dependency on the other @ztwim packages');
    assert.deepEqual(Object.keys(manifest.dependencies ?? {}).sort(), ['@bufbuild/protobuf']);
    for (const p of Object.keys(manifest.peerDependencies ?? {})) assert.equal(manifest.peerDependenciesMeta?.[p]?.optional, true, `${p} is an optional peer`);
    assert.deepEqual(Object.keys(manifest.exports['./testing'] ?? {}), ['ztwim-source'], 'the test helpers resolve only inside the repository');
  });

  it('installs into an empty project; a --strict consumer compiles against its types; ESM import works; test helpers are not exported', async () => {
    mkdirSync(consumer);
    writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'sdk-consumer', version: '1.0.0', private: true, type: 'module' }, null, 2));
    writeFileSync(
      join(consumer, 'tsconfig.json'),
      JSON.stringify(
        {
          compilerOptions: {
            strict: true,
            target: 'ES2022',
            module: 'NodeNext',
            moduleResolution: 'NodeNext',
            types: ['node'],
            outDir: 'out',
            noUncheckedIndexedAccess: true,
            exactOptionalPropertyTypes: true,
          },
          files: ['main.ts'],
        },
        null,
        2,
      ),
    );
    copyFileSync(join(REPO_ROOT, 'test', 'integration', 'fixtures', 'sdk-consumer', 'main.ts'), join(consumer, 'main.ts'));
    const inst = await run(
      'npm',
      ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball, `typescript@${versionOf('typescript')}`, `@types/node@${versionOf('@types/node')}`],
      consumer,
    );
    assert.equal(inst.status, 0, inst.stderr);
    assert.deepEqual(readdirSync(join(consumer, 'node_modules', '@ztwim')), ['spiffe'], 'only the SDK from our packages');
    assert.equal(existsSync(join(consumer, 'node_modules', '@peculiar')), false, '@peculiar/x509 (createSvidCsr only) is an optional peer, not installed');

    const tsc = await run(process.execPath, [join(consumer, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', consumer], consumer);
    assert.equal(tsc.status, 0, tsc.stdout + tsc.stderr);
    assert.ok(existsSync(join(consumer, 'out', 'main.js')));

    const esm = await run(
      process.execPath,
      ['--input-type=module', '-e', "const m = await import('@ztwim/spiffe'); console.log(m.SpiffeId.parse('spiffe://example.org/a').path)"],
      consumer,
      30_000,
    );
    assert.equal(esm.status, 0, esm.stderr);
    assert.equal(esm.stdout, '/a\n');
    // createSvidCsr needs the optional peers, which the install left out: a clear module error.
    const csr = await run(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        "const m = await import('@ztwim/spiffe'); await m.createSvidCsr('spiffe://example.org/a', []).catch((e) => console.log(e.code))",
      ],
      consumer,
      30_000,
    );
    assert.equal(csr.stdout, 'ERR_MODULE_NOT_FOUND\n', csr.stderr);
    const testing = await run(process.execPath, ['--input-type=module', '-e', "await import('@ztwim/spiffe/testing')"], consumer, 30_000);
    assert.notEqual(testing.status, 0);
    assert.match(testing.stderr, /ERR_PACKAGE_PATH_NOT_EXPORTED/);
  });

  it('the compiled consumer fetches and validates an X509-SVID and a JWT-SVID from `ztwim up`', async () => {
    up = await startUp(tmp, { server: await freePort(), oidc: await freePort() });
    const env = { ...process.env, SPIFFE_ENDPOINT_SOCKET: `unix://${join(tmp.path, 'agent.sock')}` };
    const r = await run(process.execPath, [join(consumer, 'out', 'main.js')], consumer, 60_000, env);
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}\n--- ztwim up ---\n${up.out()}`);
    assert.match(r.stdout, /^x509-svid spiffe:\/\/example\.org\/user\/\S+ chain 1 bundle [1-9]\d* expires \d{4}-/m);
    assert.match(r.stdout, /^jwt-svid spiffe:\/\/example\.org\/user\/\S+ aud sdk-package-test validated$/m);
    assert.match(r.stdout, /^typed error ERR_SPIFFEID_INVALID$/m);
  });
});
