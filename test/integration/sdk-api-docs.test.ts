// The SDK's API reference (typedoc, packages/spiffe/typedoc.json, which `npm run build` runs into
// packages/spiffe/docs/api/): generated from the public entry point with no warnings (a public
// signature naming a type the entry point does not export, a broken {@link}, an unknown tag all
// fail), with a page for each main class and function, and nothing from the package internals.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { REPO_ROOT } from '../interop/lib/peers.ts';
import { makeTmpDir } from '../interop/lib/tmp.ts';
import { runCommand } from '../interop/lib/ztwim-cli.ts';

describe('the SDK API reference', { timeout: 600_000 }, () => {
  const tmp = makeTmpDir('ztwim-sdk-docs-');
  after(() => tmp.cleanup());

  it('typedoc documents the public entry point without a warning', async () => {
    const out = join(tmp.path, 'api');
    const typedoc = join(REPO_ROOT, 'node_modules', 'typedoc', 'bin', 'typedoc');
    const r = await runCommand(
      process.execPath,
      [typedoc, '--options', 'typedoc.json', '--out', out, '--logLevel', 'Info'],
      join(REPO_ROOT, 'packages', 'spiffe'),
      {
        timeoutMs: 540_000,
        env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
      },
    );
    const log = r.stdout + r.stderr;
    assert.equal(r.status, 0, log);
    assert.doesNotMatch(log, /\[warning\]|\[error\]/, log);
    for (const page of [
      'classes/X509Source.html',
      'classes/JwtSource.html',
      'classes/SpiffeId.html',
      'classes/SpiffeError.html',
      'functions/parseAndValidateJwtSvid.html',
      'functions/tlsClientOptions.html',
      'interfaces/SourceLifecycleOptions.html',
    ]) {
      assert.ok(existsSync(join(out, page)), `${page} is generated`);
    }
    assert.equal(existsSync(join(out, 'classes', 'SourceLifecycle.html')), false, 'internal classes stay out');
    assert.match(readFileSync(join(out, 'index.html'), 'utf8'), /examples\/sdk/, 'the front page is the README with its examples');
  });
});
