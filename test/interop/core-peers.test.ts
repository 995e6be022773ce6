// The interop peers are installed (scripts/setup-interop.sh) and are the versions we test
// against. A missing peer fails here with an explicit message, as in every interop test.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { python, requireTool, spiffecheckBin, spireAgentBin, spireServerBin, SPIRE_VERSION } from './lib/peers.ts';
import { check } from './lib/spiffecheck.ts';

function out(bin: string, args: string[]): string {
  const r = spawnSync(bin, args, { encoding: 'utf8' });
  assert.equal(r.status, 0, `${bin} ${args.join(' ')}: ${r.stderr}`);
  return `${r.stdout}${r.stderr}`;
}

describe('interop peers', () => {
  it('openssl 3.x', () => {
    assert.match(out(requireTool('openssl'), ['version']), /^OpenSSL 3\./);
  });

  it(`SPIRE ${SPIRE_VERSION} server and agent`, () => {
    const v = SPIRE_VERSION.slice(1);
    assert.match(out(spireServerBin(), ['--version']), new RegExp(`^${v.replace(/\./g, '\\.')}`));
    assert.match(out(spireAgentBin(), ['--version']), new RegExp(`^${v.replace(/\./g, '\\.')}`));
  });

  it('python with py-spiffe, PyJWT and cryptography', () => {
    const versions = out(python(), ['-c', 'import importlib.metadata as m; print(m.version("spiffe"), m.version("PyJWT"))']);
    assert.match(versions, /^\d+\.\d+\.\d+ 2\.\d+/);
  });

  it('the go-spiffe oracle builds and answers', () => {
    assert.ok(spiffecheckBin().includes('go-bin'));
    assert.deepEqual(check('id', 'spiffe://example.org/a'), { ok: true, id: 'spiffe://example.org/a', trustDomain: 'example.org', path: '/a' });
    assert.equal(check('id', 'spiffe://Example.org/a').ok, false);
  });
});
