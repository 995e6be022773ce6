// SPIRE's LocalAuthority API served by ztwim: the real `spire-server localauthority x509|jwt
// show|prepare|activate` (SPIRE v1.13.0) against a ztwim server's admin socket. What it prints is
// checked against what the server does (the CA certificates in `bundle show`, the issuer of a
// minted X509-SVID, the key ID of a minted JWT-SVID), and `ztwim server localauthority ...` must
// print the same as spire-server on the same server (pretty and json; errors too).
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AuthorityKeyIdentifierExtension, SubjectKeyIdentifierExtension, X509Certificate } from '@peculiar/x509';
import { rootCommand, runCaptured } from '@ztwim/cli';
import { startZtwimAdminServer, type ZtwimAdminServer } from './lib/ztwim-server.ts';
import type { CliResult } from './lib/spire-admin.ts';

const show = (r: CliResult): string => `status=${r.status}\n--stdout--\n${r.stdout}\n--stderr--\n${r.stderr}`;

type Block = Record<string, string> | 'none';

/** spire-server's pretty blocks: `Active X.509 authority:` + `  Authority ID: x` → { Active: { 'Authority ID': 'x' } }. */
function blocks(stdout: string): Record<string, Block> {
  const out: Record<string, Block> = {};
  let cur: Record<string, string> | undefined;
  for (const line of stdout.split('\n')) {
    const head = /^(\w+) (X\.509|JWT) authority:$/.exec(line);
    if (head) {
      cur = {};
      out[head[1]!] = cur;
    } else if (/^ {2}No \w+ (X\.509|JWT) authority found$/.test(line)) {
      out[Object.keys(out).at(-1)!] = 'none';
      cur = undefined;
    } else {
      const kv = /^ {2}([^:]+): (.*)$/.exec(line);
      if (kv && cur) cur[kv[1]!] = kv[2]!;
    }
  }
  return out;
}

const field = (b: Block | undefined, k: string): string => {
  assert.ok(b !== undefined && b !== 'none', `no block: ${JSON.stringify(b)}`);
  const v = b[k];
  assert.ok(v !== undefined, `no ${k} in ${JSON.stringify(b)}`);
  return v;
};

const hex = (b: ArrayBuffer | string): string => (typeof b === 'string' ? b.toLowerCase() : Buffer.from(b).toString('hex'));
/** Go's time.Unix(s, 0).UTC().String(). */
const goUtc = (d: Date): string => `${d.toISOString().slice(0, 19).replace('T', ' ')} +0000 UTC`;

describe('spire-server localauthority (SPIRE v1.13.0) against a ztwim server', () => {
  let srv: ZtwimAdminServer;
  const spire = (args: readonly string[]): Promise<CliResult> => srv.spireCli([...args, '-socketPath', srv.socketPath]);
  const ours = (args: readonly string[]): Promise<CliResult> =>
    runCaptured(rootCommand(), ['server', ...args, '-socketPath', srv.socketPath], { input: '', cwd: process.cwd() });
  /** Both CLIs on the current state: the same output, byte for byte; returns spire-server's. */
  async function same(args: readonly string[]): Promise<CliResult> {
    const r = await spire(args);
    const o = await ours(args);
    assert.equal(show(o), show(r), args.join(' '));
    return r;
  }
  const ok = (r: CliResult): string => {
    assert.equal(r.status, 0, show(r));
    return r.stdout;
  };

  /** The X.509 CA certificates in the bundle, by subject key ID (hex). */
  async function bundleCas(): Promise<Map<string, X509Certificate>> {
    const pem = ok(await spire(['bundle', 'show']));
    const certs = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
    return new Map(certs.map((p) => new X509Certificate(p)).map((c) => [hex(c.getExtension(SubjectKeyIdentifierExtension)!.keyId), c]));
  }
  /** The authority key ID of an X509-SVID minted now: the subject key ID of the CA that signs. */
  async function signingCa(): Promise<string> {
    const out = ok(await spire(['x509', 'mint', '-spiffeID', 'spiffe://example.org/la']));
    const leaf = new X509Certificate(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(out)![0]);
    return hex(leaf.getExtension(AuthorityKeyIdentifierExtension)!.keyId!);
  }
  async function jwtKids(): Promise<string[]> {
    const doc = JSON.parse(ok(await spire(['bundle', 'show', '-format', 'spiffe']))) as { keys: Array<{ use: string; kid: string }> };
    return doc.keys.filter((k) => k.use === 'jwt-svid').map((k) => k.kid);
  }
  async function mintedKid(): Promise<string> {
    const token = ok(await spire(['jwt', 'mint', '-spiffeID', 'spiffe://example.org/la', '-audience', 'rp'])).trim();
    return (JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()) as { kid: string }).kid;
  }

  before(async () => {
    srv = await startZtwimAdminServer({ trustDomain: 'example.org' });
  });
  after(async () => {
    await srv?.stop();
  });

  it('x509 show / prepare / activate: what spire-server prints is what the server does', async () => {
    // a fresh server: one CA, active, signing
    let b = blocks(ok(await same(['localauthority', 'x509', 'show'])));
    const first = field(b['Active'], 'Authority ID');
    assert.match(first, /^[0-9a-f]{40}$/);
    const cas = await bundleCas();
    assert.ok(cas.has(first), `the active authority ${first} is a CA in the bundle (${[...cas.keys()].join(', ')})`);
    assert.equal(field(b['Active'], 'Expires at'), goUtc(cas.get(first)!.notAfter));
    assert.equal(field(b['Active'], 'Upstream authority ID'), 'No upstream authority');
    assert.equal(b['Prepared'], 'none');
    assert.equal(b['Old'], 'none');
    assert.equal(await signingCa(), first);
    await same(['localauthority', 'x509', 'show', '-output', 'json']);

    // activate needs the prepared authority's ID
    const noneYet = await same(['localauthority', 'x509', 'activate', '-authorityID', first]);
    assert.equal(noneYet.status, 1);
    assert.match(noneYet.stderr, /could not activate X\.509 authority: rpc error: code = InvalidArgument desc = unexpected authority ID/);
    assert.match((await same(['localauthority', 'x509', 'activate'])).stderr, /an authority ID is required/);

    // prepare: a new CA in the bundle, not signing yet
    const prepared = blocks(ok(await spire(['localauthority', 'x509', 'prepare'])));
    const second = field(prepared['Prepared'], 'Authority ID');
    assert.notEqual(second, first);
    assert.ok((await bundleCas()).has(second), 'the prepared CA is published in the bundle');
    assert.equal(await signingCa(), first, 'the prepared CA does not sign yet');
    b = blocks(ok(await same(['localauthority', 'x509', 'show'])));
    assert.equal(field(b['Active'], 'Authority ID'), first);
    assert.equal(field(b['Prepared'], 'Authority ID'), second);
    assert.equal(b['Old'], 'none');

    // activate it: it signs, the first is old
    const activated = blocks(ok(await spire(['localauthority', 'x509', 'activate', '-authorityID', second])));
    assert.equal(field(activated['Activated'], 'Authority ID'), second);
    assert.equal(await signingCa(), second, 'X509-SVIDs are signed by the activated CA');
    b = blocks(ok(await same(['localauthority', 'x509', 'show'])));
    assert.equal(field(b['Active'], 'Authority ID'), second);
    assert.equal(b['Prepared'], 'none');
    assert.equal(field(b['Old'], 'Authority ID'), first);
    await same(['localauthority', 'x509', 'show', '-output', 'json']);
    const again = await same(['localauthority', 'x509', 'activate', '-authorityID', first]);
    assert.match(again.stderr, /code = Internal desc = only Prepared authorities can be activated/);

    // ours prepares and activates the same way
    const third = field(blocks(ok(await ours(['localauthority', 'x509', 'prepare'])))['Prepared'], 'Authority ID');
    assert.equal(field(blocks(ok(await ours(['localauthority', 'x509', 'activate', '-authorityID', third])))['Activated'], 'Authority ID'), third);
    assert.equal(await signingCa(), third);
  });

  it('jwt show / prepare / activate: the key IDs are those of the bundle and of minted tokens', async () => {
    let b = blocks(ok(await same(['localauthority', 'jwt', 'show'])));
    const first = field(b['Active'], 'Authority ID');
    assert.deepEqual(await jwtKids(), [first]);
    assert.equal(await mintedKid(), first);
    assert.equal(b['Prepared'], 'none');
    await same(['localauthority', 'jwt', 'show', '-output', 'json']);

    const second = field(blocks(ok(await spire(['localauthority', 'jwt', 'prepare'])))['Prepared'], 'Authority ID');
    assert.deepEqual((await jwtKids()).sort(), [first, second].sort(), 'the prepared key is published');
    assert.equal(await mintedKid(), first);
    assert.equal(field(blocks(ok(await same(['localauthority', 'jwt', 'show'])))['Prepared'], 'Authority ID'), second);

    assert.match((await same(['localauthority', 'jwt', 'activate', '-authorityID', 'nope'])).stderr, /desc = unexpected authority ID/);
    ok(await spire(['localauthority', 'jwt', 'activate', '-authorityID', second]));
    assert.equal(await mintedKid(), second, 'JWT-SVIDs are signed with the activated key');
    b = blocks(ok(await same(['localauthority', 'jwt', 'show'])));
    assert.equal(field(b['Active'], 'Authority ID'), second);
    assert.equal(field(b['Old'], 'Authority ID'), first);
    await same(['localauthority', 'jwt', 'show', '-output', 'json']);
  });

  it('taint and revoke are refused as not implemented, the same through both CLIs', async () => {
    const r = await same(['localauthority', 'x509', 'taint', '-authorityID', 'abc']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /code = Unimplemented/);
  });
});
