// The systemd units shipped under deploy/systemd/ pass `systemd-analyze verify` (installed by
// scripts/setup-interop.sh; a missing tool fails the test). The units name /usr/local/bin/ztwim,
// which verify requires to exist, so a copy pointing at this clone's ztwim is verified.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { REPO_ROOT, ZTWIM_BIN } from '../interop/lib/peers.ts';
import { makeTmpDir } from '../interop/lib/tmp.ts';

function verify(file: string): { status: number; output: string } {
  const r = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8', timeout: 60_000 });
  if (r.error !== undefined) throw new Error(`systemd-analyze is not installed (scripts/setup-interop.sh installs it): ${r.error.message}`);
  return { status: r.status ?? -1, output: `${r.stdout}${r.stderr}`.trim() };
}

describe('deploy/systemd units', () => {
  const tmp = makeTmpDir('ztwim-units-');
  after(() => tmp.cleanup());

  for (const unit of ['ztwim-server.service', 'ztwim-agent.service']) {
    it(`${unit}: systemd-analyze verify reports nothing`, () => {
      const text = readFileSync(join(REPO_ROOT, 'deploy', 'systemd', unit), 'utf8');
      assert.match(text, /^ExecStart=.*\/usr\/local\/bin\/ztwim (server|agent) run -config \/etc\/ztwim\/(server|agent)\.conf/m);
      const copy = join(tmp.path, unit);
      writeFileSync(copy, text.replaceAll('/usr/local/bin/ztwim', ZTWIM_BIN));
      const r = verify(copy);
      assert.equal(r.output, '', r.output);
      assert.equal(r.status, 0);
    });
  }

  it('the check catches a broken unit (so a clean pass means something)', () => {
    const copy = join(tmp.path, 'broken.service');
    const text = readFileSync(join(REPO_ROOT, 'deploy', 'systemd', 'ztwim-server.service'), 'utf8');
    writeFileSync(
      copy,
      text.replaceAll('/usr/local/bin/ztwim', ZTWIM_BIN).replace('Restart=on-failure', 'Restart=sometimes').replace('RestartSec=5s', 'RestartSek=5s'),
    );
    const r = verify(copy);
    assert.match(r.output, /restart specifier/);
    assert.match(r.output, /Unknown key 'RestartSek'/);
  });

  it('the ztwim commands the units run exist with those flags', () => {
    const help = execFileSync(process.execPath, [ZTWIM_BIN, 'server', 'run', '--help'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    assert.match(help, /-config/);
  });
});
