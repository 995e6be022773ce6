// `ztwim oidc check ISSUER_URL -for T -caFile F`: the flags are read after the URL too, as the
// command's usage line writes them (a -caFile there was ignored and the issuer fetched without it).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runCaptured } from '../capture.ts';
import { rootCommand } from '../root.ts';

const run = (args: string[]) => runCaptured(rootCommand(), ['oidc', 'check', ...args], { vars: {} });
// Nothing listens on port 1: the check could only fail at the fetch, after the flags are read.
const ISSUER = 'https://127.0.0.1:1';

describe('ztwim oidc check flags', () => {
  it('reads -caFile after the URL (a missing file is reported before any fetch)', async () => {
    const r = await run([ISSUER, '-for', 'vault', '-caFile', '/nonexistent/ca.pem']);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /\/nonexistent\/ca\.pem/);
  });

  it('reads -for after the URL, and refuses a bad value naming the choices', async () => {
    const r = await run([ISSUER, '-for', 'nobody']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /-for must be one of vault/);
  });

  it('a second positional argument is a usage error naming it', async () => {
    const r = await run([ISSUER, 'extra', '-for', 'vault']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /unexpected argument "extra"/);
  });

  it('an unknown flag after the URL is a usage error naming it', async () => {
    const r = await run([ISSUER, '-for', 'vault', '-bogus']);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /flag provided but not defined: -bogus/);
  });
});
