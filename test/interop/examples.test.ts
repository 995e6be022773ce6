// The examples/ scripts, run as a reader would run them, so CI proves they stay true: each starts
// `ztwim up`, registers spiffe://example.org/ns/demo/sa/client, fetches JWT-SVIDs and runs the
// relying party's checks (Entra ID rules + `ztwim oidc check -for entra`; HashiCorp cap/jwt set up
// like a Vault role), including the refused cases. Ports are free ones, so the defaults (8443,
// 8081) may be busy on the machine.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { REPO_ROOT, requireTool } from './lib/peers.ts';
import { freePort } from './lib/spire-admin.ts';

interface Run {
  status: number | null;
  out: string;
}

async function runExample(name: string): Promise<Run> {
  requireTool('openssl');
  requireTool('go');
  const env = { ...process.env, OIDC_PORT: String(await freePort()), SERVER_PORT: String(await freePort()) };
  const child = spawn('bash', [join(REPO_ROOT, 'examples', name)], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const timer = setTimeout(() => child.kill('SIGTERM'), 240_000);
  const status = await new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  clearTimeout(timer);
  return { status, out };
}

const leftovers = (): string[] => readdirSync(tmpdir()).filter((n) => n.startsWith('ztwim-example-'));

describe('examples/', { timeout: 600_000 }, () => {
  it('entra-federation.sh: the api://AzureADTokenExchange token passes the Entra checks; wrong audience and subject are refused', async () => {
    const before = new Set(leftovers());
    const r = await runExample('entra-federation.sh');
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, /PASS https:\/\/localhost:\d+ for Entra ID: 0 warnings/);
    assert.match(r.out, /claims: \{"sub":"spiffe:\/\/example\.org\/ns\/demo\/sa\/client","aud":\["api:\/\/AzureADTokenExchange"\]/);
    assert.match(r.out, /ok {5}jwt\.signature: verifies with the published key/);
    assert.match(r.out, /ACCEPTED: Entra ID would exchange this assertion/);
    assert.match(r.out, /REFUSE aud: \["client"\] does not contain the FIC audience "api:\/\/AzureADTokenExchange" \(AADSTS700212\)/);
    assert.match(
      r.out,
      /REFUSE sub: "spiffe:\/\/example\.org\/user\/[^"]+" does not equal the FIC subject "spiffe:\/\/example\.org\/ns\/demo\/sa\/client" \(AADSTS70021\)/,
    );
    assert.match(r.out, /^PASS entra-federation: spiffe:\/\/example\.org\/ns\/demo\/sa\/client accepted/m);
    assert.deepEqual(
      leftovers().filter((n) => !before.has(n)),
      [],
      'the script removes its temp dir',
    );
  });

  it('vault-jwt-auth.sh: cap/jwt grants role demo-client to spiffe://example.org/ns/demo/sa/client; wrong audience and unbound identity are refused', async () => {
    const before = new Set(leftovers());
    const r = await runExample('vault-jwt-auth.sh');
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, /PASS http:\/\/localhost:\d+ for Vault \(cap\/jwt\)/);
    assert.match(r.out, /ok: granted: role=demo-client user=spiffe:\/\/example\.org\/ns\/demo\/sa\/client/);
    assert.match(r.out, /"stage":"validate","error":"error validating token: invalid audience \(aud\) claim/);
    assert.match(r.out, /"stage":"bound_claims","error":"error validating claims: claim \\"sub\\" does not match any associated bound claim values"/);
    assert.match(r.out, /^PASS vault-jwt-auth: role demo-client granted to spiffe:\/\/example\.org\/ns\/demo\/sa\/client/m);
    assert.deepEqual(
      leftovers().filter((n) => !before.has(n)),
      [],
      'the script removes its temp dir',
    );
  });
});
