// `ztwim server ...` admin commands against a real SPIRE v1.13.0 server, side by side with the
// real `spire-server` CLI on the same admin socket: same stdout, stderr and exit status (pretty
// and `-output json`), modulo entry IDs, tokens and timestamps, which are normalised.
// Also: a real spire-agent attesting with a join token (agent list/show/count/ban/evict), and
// minted SVIDs checked with openssl / node:crypto against the bundle.
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, createVerify, X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { rootCommand, runCaptured } from '@ztwim/cli';
import { opensslVerify } from './lib/openssl.ts';
import { startZtwimAdminServer } from './lib/ztwim-server.ts';
import { startSpireAdminServer, startSpireAgent, type AdminServer, type CliResult, type SpireAgent } from './lib/spire-admin.ts';

const TD = 'example.org';

/**
 * The server both CLIs talk to. Today a real SPIRE v1.13.0 server; to run this suite against
 * ztwim's own server, return an AdminServer for it here (spireCli must still run the real
 * spire-server binary, e.g. via runBinary(findSpireBinary('spire-server'), args)).
 */
async function startServerUnderTest(kind: 'spire' | 'ztwim'): Promise<AdminServer> {
  return kind === 'spire' ? await startSpireAdminServer({ trustDomain: TD }) : await startZtwimAdminServer({ trustDomain: TD });
}

/** Runs `ztwim server <args...>` in-process (the same code path as the ztwim binary). */
function ztwim(args: readonly string[], input = '', cwd = process.cwd()): Promise<CliResult> {
  return runCaptured(rootCommand(), ['server', ...args], { input, cwd });
}

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;

/** Replaces entry IDs / join tokens (UUIDs) and creation timestamps. */
function norm(s: string): string {
  return s
    .replace(UUID, '<uuid>')
    .replace(/"created_at":"\d+"/g, '"created_at":"<ts>"')
    .replace(/"expires_at":"\d{10}"/g, '"expires_at":"<ts>"');
}

function normRevision(s: string): string {
  return s.replace(/Revision {9}: \d+/g, 'Revision         : <rev>').replace(/"revision_number":"\d+"/g, '"revision_number":"<rev>"');
}

function show(r: CliResult): string {
  return `status=${r.status}\n--stdout--\n${r.stdout}\n--stderr--\n${r.stderr}`;
}

for (const kind of ['spire', 'ztwim'] as const) {
  describe(`ztwim server CLI vs spire-server CLI (${kind === 'spire' ? 'real SPIRE v1.13.0 server' : 'ztwim server'})`, () => {
    let srv: AdminServer;
    let sock: string;

    const real = (args: readonly string[], input?: string): Promise<CliResult> => srv.spireCli([...args, '-socketPath', sock], input);
    const ours = (args: readonly string[], input?: string): Promise<CliResult> => ztwim([...args, '-socketPath', sock], input);

    /** Runs both on the current state (read-only commands): outputs must be identical. */
    async function same(args: readonly string[], input?: string, f: (s: string) => string = (s) => s): Promise<CliResult> {
      const r = await real(args, input);
      const o = await ours(args, input);
      assert.equal(
        show({ ...o, stdout: f(o.stdout), stderr: f(o.stderr) }),
        show({ ...r, stdout: f(r.stdout), stderr: f(r.stderr) }),
        `ztwim server ${args.join(' ')}`,
      );
      return o;
    }

    async function entryIds(spiffeId: string): Promise<string[]> {
      const r = await real(['entry', 'show', '-spiffeID', spiffeId, '-output', 'json']);
      assert.equal(r.status, 0, r.stderr);
      const doc = JSON.parse(r.stdout) as { entries: { id: string }[] };
      return doc.entries.map((e) => e.id);
    }

    async function deleteAll(spiffeId: string): Promise<void> {
      for (const id of await entryIds(spiffeId)) assert.equal((await real(['entry', 'delete', '-entryID', id])).status, 0);
    }

    /**
     * A mutating command: ours runs first, the created state is undone by `reset`, then the real
     * CLI runs the same command; outputs must match after `f`.
     */
    async function sameMutation(args: readonly string[], reset: () => Promise<void>, f: (s: string) => string = norm, input?: string): Promise<void> {
      const o = await ours(args, input);
      await reset();
      const r = await real(args, input);
      assert.equal(
        show({ ...o, stdout: f(o.stdout), stderr: f(o.stderr) }),
        show({ ...r, stdout: f(r.stdout), stderr: f(r.stderr) }),
        `ztwim server ${args.join(' ')}`,
      );
    }

    before(async () => {
      srv = await startServerUnderTest(kind);
      sock = srv.socketPath;
    });

    after(async () => {
      await srv?.stop();
    });

    it('healthcheck (plain, -verbose, -shallow)', async () => {
      const o = await same(['healthcheck']);
      assert.equal(o.stdout, 'Server is healthy.\n');
      await same(['healthcheck', '-verbose']);
      await same(['healthcheck', '-shallow']);
    });

    it('a missing or dead socket is a clear error, exit 1, same text as spire-server', async () => {
      const missing = join(srv.dir.path, 'nope.sock');
      const notSock = srv.dir.write('not-a-socket', '');
      for (const path of [missing, notSock]) {
        for (const args of [['entry', 'show'], ['entry', 'count'], ['bundle', 'show'], ['agent', 'list'], ['healthcheck'], ['healthcheck', '-verbose']]) {
          const r = await srv.spireCli([...args, '-socketPath', path]);
          const o = await ztwim([...args, '-socketPath', path]);
          assert.equal(show(o), show(r), args.join(' '));
          assert.equal(o.status, 1);
        }
      }
    });

    it('client-side validation errors match', async () => {
      for (const args of [
        ['entry', 'create'],
        ['entry', 'create', '-selector', 'unix:uid:1'],
        ['entry', 'create', '-selector', 'unix:uid:1', '-parentID', 'spiffe://example.org/p'],
        ['entry', 'create', '-selector', 'unix', '-parentID', 'spiffe://example.org/p', '-spiffeID', 'spiffe://example.org/w'],
        ['entry', 'create', '-selector', 'unix:1', '-parentID', 'bad', '-spiffeID', 'spiffe://example.org/w'],
        ['entry', 'create', '-selector', 'unix:1', '-parentID', 'spiffe://example.org/p', '-spiffeID', 'spiffe://Example.org/w'],
        ['entry', 'create', '-selector', 'unix:1', '-node', '-federatesWith', 'x.org', '-spiffeID', 'spiffe://example.org/w'],
        ['entry', 'create', '-selector', 'unix:1', '-parentID', 'spiffe://example.org/p', '-spiffeID', 'spiffe://example.org/w', '-x509SVIDTTL', '-1'],
        ['entry', 'create', '-selector', 'unix:1', '-parentID', 'spiffe://example.org/p', '-spiffeID', 'spiffe://example.org/w', '-jwtSVIDTTL', '-1'],
        ['entry', 'update'],
        ['entry', 'update', '-entryID', 'x'],
        ['entry', 'update', '-entryID', 'x', '-selector', 'a:b'],
        ['entry', 'update', '-entryID', 'x', '-selector', 'a:b', '-parentID', 'spiffe://example.org/p'],
        ['entry', 'show', '-entryID', 'x', '-spiffeID', 'spiffe://example.org/a'],
        ['entry', 'show', '-spiffeID', 'nope'],
        ['entry', 'show', '-parentID', 'spiffe://a/b/'],
        ['entry', 'show', '-selector', 'a:b', '-matchSelectorsOn', 'weird'],
        ['entry', 'show', '-federatesWith', 'a.org', '-matchFederatesWithOn', 'weird'],
        ['entry', 'count', '-selector', 'nocolon'],
        ['entry', 'delete'],
        ['agent', 'show'],
        ['agent', 'show', '-spiffeID', 'bad'],
        ['agent', 'evict'],
        ['agent', 'ban'],
        ['agent', 'list', '-matchSelectorsOn', 'bad', '-selector', 'a:b'],
        ['agent', 'list', '-selector', 'nocolon'],
        ['bundle', 'set'],
        ['bundle', 'set', '-id', 'spiffe://other.org', '-format', 'xml'],
        ['bundle', 'delete'],
        ['bundle', 'delete', '-id', 'other.org', '-mode', 'bogus'],
        ['bundle', 'show', '-format', 'der'],
        ['jwt', 'mint'],
        ['jwt', 'mint', '-spiffeID', 'spiffe://example.org/w'],
        ['jwt', 'mint', '-spiffeID', 'bad', '-audience', 'a'],
        ['x509', 'mint'],
        ['x509', 'mint', '-spiffeID', 'bad'],
        ['token', 'generate', '-spiffeID', 'bad'],
      ]) {
        await same(args);
      }
    });

    it('flag parse errors: same Go flag text, usage listing and exit status 1 for every admin command', async () => {
      const commands = [
        ['agent', 'ban'],
        ['agent', 'count'],
        ['agent', 'evict'],
        ['agent', 'list'],
        ['agent', 'purge'],
        ['agent', 'show'],
        ['bundle', 'count'],
        ['bundle', 'delete'],
        ['bundle', 'list'],
        ['bundle', 'set'],
        ['bundle', 'show'],
        ['entry', 'count'],
        ['entry', 'create'],
        ['entry', 'delete'],
        ['entry', 'show'],
        ['entry', 'update'],
        ['healthcheck'],
        ['jwt', 'mint'],
        ['token', 'generate'],
        ['x509', 'mint'],
      ];
      for (const c of commands) {
        const r = await same([...c, '-bogus']);
        assert.equal(r.status, 1);
        assert.match(r.stderr, new RegExp(`^flag provided but not defined: -bogus\\nUsage of (${c.join(' ')}|generate):\\n`));
      }
      for (const args of [
        ['entry', 'create', '-x509SVIDTTL', 'abc'],
        ['entry', 'create', '-entryExpiry', '99999999999999999999'],
        ['entry', 'create', '-node=maybe'],
        ['entry', 'show', '-spiffeID'],
        ['agent', 'purge', '-expiredFor', '5'],
        ['token', 'generate', '-ttl', 'x'],
        ['healthcheck', '-shallow=x'],
        ['bundle', 'delete', '-mode'],
        ['entry', 'show', '--bogus'],
        ['entry', 'show', '---x'],
      ]) {
        assert.equal((await same(args)).status, 1, args.join(' '));
      }
      // unknown commands: 127 at the top (spire-server's own commands), 1 below
      assert.equal((await srv.spireCli(['bogus'])).status, 127);
      assert.equal((await ztwim(['bogus'])).status, 127);
      assert.equal((await srv.spireCli(['entry', 'bogus'])).status, 1);
      assert.equal((await ztwim(['entry', 'bogus'])).status, 1);
    });

    it('entry create: workload entry with every field, pretty and json', async () => {
      const sid = 'spiffe://example.org/full';
      const args = [
        'entry',
        'create',
        '-parentID',
        'spiffe://example.org/spire/agent/join_token/abc',
        '-spiffeID',
        sid,
        '-selector',
        'unix:uid:1000',
        '-selector',
        'k8s:ns:a<b>&c',
        '-dns',
        'a.example.org',
        '-dns',
        'b.example.org',
        '-x509SVIDTTL',
        '3600',
        '-jwtSVIDTTL',
        '300',
        '-admin',
        '-downstream',
        '-entryExpiry',
        '1999999999',
        '-hint',
        'hint "quoted" <x>',
      ];
      await sameMutation(args, () => deleteAll(sid));
      await deleteAll(sid);
      await sameMutation([...args, '-output', 'json'], () => deleteAll(sid));
      await deleteAll(sid);
    });

    it('entry create: -node entry and custom -entryID, -storeSVID', async () => {
      const sid = 'spiffe://example.org/node-group';
      await sameMutation(['entry', 'create', '-node', '-spiffeID', sid, '-selector', 'join_token:abc'], () => deleteAll(sid));
      await deleteAll(sid);
      await sameMutation(['entry', 'create', '-node', '-spiffeID', sid, '-selector', 'join_token:abc', '-output', 'json'], () => deleteAll(sid));
      await deleteAll(sid);
      const cid = 'spiffe://example.org/custom';
      const args = [
        'entry',
        'create',
        '-entryID',
        'my-entry.1',
        '-parentID',
        'spiffe://example.org/p',
        '-spiffeID',
        cid,
        '-selector',
        'unix:uid:1',
        '-storeSVID',
      ];
      await sameMutation(
        args,
        () => deleteAll(cid),
        (s) => s,
      );
      // custom ID taken now: both fail the same way
      await same(args, undefined, (s) => s);
      await deleteAll(cid);
    });

    it('entry create: duplicate ⇒ AlreadyExists (stderr, exit 1; json exit 0), invalid ⇒ InvalidArgument', async () => {
      const sid = 'spiffe://example.org/dup';
      const args = ['entry', 'create', '-parentID', 'spiffe://example.org/p', '-spiffeID', sid, '-selector', 'unix:uid:5', '-selector', 'unix:gid:5'];
      assert.equal((await real(args)).status, 0);
      const o = await same(args);
      assert.equal(o.status, 1);
      assert.match(
        o.stderr,
        /^Failed to create the following entry \(code: AlreadyExists, msg: "similar entry already exists"\):\nEntry ID         : \(none\)\n/,
      );
      assert.match(o.stderr, /Error: failed to create one or more entries\n$/);
      const j = await same([...args, '-output', 'json']);
      assert.equal(j.status, 0);
      await same(['entry', 'create', '-parentID', 'spiffe://example.org/p', '-spiffeID', 'spiffe://example.org/spire/x', '-selector', 'a:b']);
      await same([
        'entry',
        'create',
        '-parentID',
        'spiffe://example.org/p',
        '-spiffeID',
        'spiffe://example.org/s',
        '-selector',
        'a:b',
        '-selector',
        'c:d',
        '-storeSVID',
      ]);
      await same([
        'entry',
        'create',
        '-parentID',
        'spiffe://example.org/p',
        '-spiffeID',
        'spiffe://example.org/f',
        '-selector',
        'a:b',
        '-federatesWith',
        'spiffe://unknown.org',
        '-output',
        'json',
      ]);
      await deleteAll(sid);
    });

    it('entry create/update -data FILE and -data - (batch)', async () => {
      const data = JSON.stringify({
        entries: [
          {
            spiffe_id: 'spiffe://example.org/Blog',
            parent_id: 'spiffe://example.org/spire/agent/x',
            selectors: [{ type: 'unix', value: 'uid:1111' }],
            x509_svid_ttl: 200,
          },
          {
            SPIFFE_ID: 'spiffe://example.org/Database',
            Parent_Id: 'spiffe://example.org/spire/agent/x',
            selectors: [{ type: 'unix', value: 'uid:1112' }],
            dns_names: ['db.example.org'],
            admin: true,
            entryExpiry: 1999999999,
            hint: 'db',
            jwt_svid_ttl: 30,
            store_svid: true,
          },
          { spiffe_id: 'spiffe://example.org/spire/bad', parent_id: 'spiffe://example.org/spire/agent/x', selectors: [{ type: 'unix', value: 'uid:1' }] },
        ],
      });
      const file = srv.dir.write('entries.json', data);
      const reset = async (): Promise<void> => {
        await deleteAll('spiffe://example.org/Blog');
        await deleteAll('spiffe://example.org/Database');
      };
      await sameMutation(['entry', 'create', '-data', file], reset);
      await reset();
      await sameMutation(['entry', 'create', '-data', '-', '-output', 'json'], reset, norm, data);
      // update by file: set IDs of the two existing entries
      const blog = (await entryIds('spiffe://example.org/Blog'))[0] as string;
      const db = (await entryIds('spiffe://example.org/Database'))[0] as string;
      const upd = JSON.stringify({
        entries: [
          {
            entry_id: blog,
            spiffe_id: 'spiffe://example.org/Blog',
            parent_id: 'spiffe://example.org/spire/agent/y',
            selectors: [{ type: 'unix', value: 'uid:2222' }],
          },
          {
            entry_id: 'missing',
            spiffe_id: 'spiffe://example.org/Nope',
            parent_id: 'spiffe://example.org/spire/agent/y',
            selectors: [{ type: 'unix', value: 'uid:1' }],
          },
          {
            entry_id: db,
            spiffe_id: 'spiffe://example.org/Database',
            parent_id: 'spiffe://example.org/spire/agent/y',
            selectors: [{ type: 'unix', value: 'uid:3333' }],
            hint: 'h2',
          },
        ],
      });
      const updFile = srv.dir.write('update.json', upd);
      const o = await ours(['entry', 'update', '-data', updFile]);
      const r = await real(['entry', 'update', '-data', updFile]);
      assert.equal(normRevision(show(o)), normRevision(show(r)));
      assert.equal(o.status, 1);
      await same(['entry', 'create', '-data', join(srv.dir.path, 'missing.json')]);
      await same(['entry', 'create', '-data', srv.dir.write('bad-id.json', '{"entries":[{"spiffe_id":"bad","parent_id":"spiffe://example.org/x"}]}')]);
      await same(['entry', 'create', '-data', srv.dir.write('bad-parent.json', '{"entries":[{"spiffe_id":"spiffe://example.org/x","parent_id":"x"}]}')]);
      await reset();
    });

    it('entry show / count with filters (pretty and json)', async () => {
      const mk = async (args: string[]): Promise<void> => {
        const r = await real(['entry', 'create', ...args]);
        assert.equal(r.status, 0, r.stderr);
      };
      await mk([
        '-parentID',
        'spiffe://example.org/spire/agent/a',
        '-spiffeID',
        'spiffe://example.org/show/1',
        '-selector',
        'unix:uid:1',
        '-selector',
        'unix:gid:1',
      ]);
      await mk(['-parentID', 'spiffe://example.org/spire/agent/a', '-spiffeID', 'spiffe://example.org/show/2', '-selector', 'unix:uid:1', '-hint', 'two']);
      await mk(['-parentID', 'spiffe://example.org/spire/agent/b', '-spiffeID', 'spiffe://example.org/show/3', '-selector', 'k8s:ns:x', '-downstream']);
      await mk(['-parentID', 'spiffe://example.org/spire/agent/b', '-spiffeID', 'spiffe://example.org/show/1', '-selector', 'k8s:ns:y', '-x509SVIDTTL', '10']);
      await mk(['-node', '-spiffeID', 'spiffe://example.org/show/node', '-selector', 'join_token:zz']);
      const filters: string[][] = [
        [],
        ['-spiffeID', 'spiffe://example.org/show/1'],
        ['-parentID', 'spiffe://example.org/spire/agent/a'],
        ['-parentID', 'spiffe://example.org/spire/agent/a', '-spiffeID', 'spiffe://example.org/show/2'],
        ['-selector', 'unix:uid:1'],
        ['-selector', 'unix:uid:1', '-matchSelectorsOn', 'exact'],
        ['-selector', 'unix:uid:1', '-selector', 'unix:gid:1', '-matchSelectorsOn', 'subset'],
        ['-selector', 'unix:uid:1', '-selector', 'k8s:ns:x', '-matchSelectorsOn', 'any'],
        ['-selector', 'unix:uid:1', '-matchSelectorsOn', 'superset'],
        ['-hint', 'two'],
        ['-downstream'],
        ['-federatesWith', 'spiffe://nowhere.org'],
        ['-spiffeID', 'spiffe://example.org/none'],
      ];
      for (const f of filters) {
        await same(['entry', 'show', ...f]);
        await same(['entry', 'show', ...f, '-output', 'json']);
        await same(['entry', 'count', ...f]);
        await same(['entry', 'count', ...f, '-output', 'json']);
      }
      const id = (await entryIds('spiffe://example.org/show/2'))[0] as string;
      await same(['entry', 'show', '-entryID', id]);
      await same(['entry', 'show', '-entryID', id, '-output', 'json']);
      await same(['entry', 'show', '-entryID', 'does-not-exist']);
      await same(['entry', 'show', '-entryID', 'does-not-exist', '-output', 'json']);
      const one = await same(['entry', 'count', '-spiffeID', 'spiffe://example.org/show/2']);
      assert.equal(one.stdout, '1 registration entry\n');
    });

    it('entry update (pretty and json), failures', async () => {
      const sid = 'spiffe://example.org/upd';
      assert.equal((await real(['entry', 'create', '-parentID', 'spiffe://example.org/p', '-spiffeID', sid, '-selector', 'unix:uid:1'])).status, 0);
      const id = (await entryIds(sid))[0] as string;
      const args = [
        'entry',
        'update',
        '-entryID',
        id,
        '-parentID',
        'spiffe://example.org/q',
        '-spiffeID',
        sid,
        '-selector',
        'unix:uid:2',
        '-selector',
        'unix:gid:2',
        '-dns',
        'x.example.org',
        '-x509SVIDTTL',
        '60',
        '-hint',
        'h',
        '-admin',
      ];
      for (const extra of [[], ['-output', 'json']]) {
        const o = await ours([...args, ...extra]);
        const r = await real([...args, ...extra]);
        assert.equal(normRevision(norm(show(o))), normRevision(norm(show(r))));
        assert.equal(o.status, 0);
      }
      await same(['entry', 'update', '-entryID', 'missing', '-parentID', 'spiffe://example.org/q', '-spiffeID', sid, '-selector', 'unix:uid:2']);
      await same([
        'entry',
        'update',
        '-entryID',
        'missing',
        '-parentID',
        'spiffe://example.org/q',
        '-spiffeID',
        sid,
        '-selector',
        'unix:uid:2',
        '-output',
        'json',
      ]);
      await deleteAll(sid);
    });

    it('entry delete: -entryID and -file batches, pretty and json', async () => {
      const mk = async (n: string): Promise<string> => {
        assert.equal(
          (await real(['entry', 'create', '-parentID', 'spiffe://example.org/p', '-spiffeID', `spiffe://example.org/del/${n}`, '-selector', `unix:uid:${n}`]))
            .status,
          0,
        );
        return (await entryIds(`spiffe://example.org/del/${n}`))[0] as string;
      };
      const norm2 = (s: string): string => s.replace(UUID, '<uuid>');
      {
        const o = await ours(['entry', 'delete', '-entryID', await mk('1')]);
        const r = await real(['entry', 'delete', '-entryID', await mk('1')]);
        assert.equal(norm2(show(o)), norm2(show(r)));
        assert.equal(o.stdout.replace(UUID, '<uuid>'), 'Deleted entry with ID: <uuid>\n\n\nDeleted 1 entries successfully, but failed to delete 0 entries');
      }
      {
        const o = await ours(['entry', 'delete', '-entryID', await mk('2'), '-output', 'json']);
        const r = await real(['entry', 'delete', '-entryID', await mk('2'), '-output', 'json']);
        assert.equal(norm2(show(o)), norm2(show(r)));
      }
      await same(['entry', 'delete', '-entryID', 'nope']);
      await same(['entry', 'delete', '-entryID', 'nope', '-output', 'json']);
      for (const json of [false, true]) {
        const mkFile = async (): Promise<string> => srv.dir.write(`del-${json}.json`, JSON.stringify({ ids: [await mk('3'), 'missing-1', await mk('4')] }));
        const extra = json ? ['-output', 'json'] : [];
        const o = await ours(['entry', 'delete', '-file', await mkFile(), ...extra]);
        const r = await real(['entry', 'delete', '-file', await mkFile(), ...extra]);
        assert.equal(norm2(show(o)), norm2(show(r)));
        const ids = JSON.stringify({ IDS: ['a-missing', 'b-missing'] });
        await same(['entry', 'delete', '-file', '-', ...extra], ids);
      }
    });

    it('token generate (with and without -spiffeID, json)', async () => {
      for (const args of [
        ['token', 'generate'],
        ['token', 'generate', '-ttl', '60'],
        ['token', 'generate', '-spiffeID', 'spiffe://example.org/host1'],
        ['token', 'generate', '-output', 'json', '-ttl', '100'],
        ['token', 'generate', '-ttl', '0'],
      ]) {
        const o = await ours(args);
        const r = await real(args);
        assert.equal(norm(show(o)), norm(show(r)), args.join(' '));
      }
      const o = await ours(['token', 'generate']);
      assert.match(o.stdout, /^Token: [0-9a-f-]{36}\nWarning: Missing SPIFFE ID\.\n$/);
      // -spiffeID created an entry for the token's agent ID: same `entry show` both ways
      await same(['entry', 'show', '-spiffeID', 'spiffe://example.org/host1'], undefined, norm);
    });

    it('bundle show (pem, spiffe, json) and count', async () => {
      const pem = await same(['bundle', 'show']);
      assert.match(pem.stdout, /^-----BEGIN CERTIFICATE-----\n/);
      const spiffe = await same(['bundle', 'show', '-format', 'spiffe']);
      const doc = JSON.parse(spiffe.stdout) as { keys: { use: string }[] };
      assert.ok(doc.keys.some((k) => k.use === 'x509-svid'));
      assert.ok(doc.keys.some((k) => k.use === 'jwt-svid'));
      await same(['bundle', 'show', '-format', 'SPIFFE']);
      await same(['bundle', 'show', '-output', 'json']);
      await same(['bundle', 'show', '-output', 'json', '-format', 'spiffe']);
      await same(['bundle', 'count']);
      await same(['bundle', 'count', '-output', 'json']);
    });

    it('bundle set / list / delete (pem and spiffe formats)', async () => {
      // a federated trust domain's bundle: reuse our own CA certificate as its authority
      const ownPem = (await real(['bundle', 'show'])).stdout;
      const ownSpiffe = (await real(['bundle', 'show', '-format', 'spiffe'])).stdout;
      const pemFile = srv.dir.write('fed.pem', ownPem);
      const deleteFed = async (td: string): Promise<void> => {
        await real(['bundle', 'delete', '-id', td]);
      };
      await sameMutation(
        ['bundle', 'set', '-id', 'spiffe://fed1.org', '-path', pemFile],
        () => deleteFed('spiffe://fed1.org'),
        (s) => s,
      );
      await sameMutation(
        ['bundle', 'set', '-id', 'fed2.org', '-format', 'spiffe'],
        () => deleteFed('fed2.org'),
        (s) => s,
        ownSpiffe,
      );
      await same(['bundle', 'set', '-id', 'spiffe://fed1.org', '-path', pemFile, '-output', 'json']);
      await same(['bundle', 'set', '-id', 'spiffe://fed3.org', '-path', join(srv.dir.path, 'missing.pem')]);
      await same(['bundle', 'set', '-id', 'spiffe://fed3.org'], 'not a pem');
      await same(['bundle', 'set', '-id', 'spiffe://fed3.org', '-format', 'spiffe'], '{"keys":[{"use":"x509-svid"}]}');
      await same(['bundle', 'set', '-id', 'spiffe://example.org', '-path', pemFile]);
      for (const f of [[], ['-format', 'spiffe'], ['-output', 'json']]) {
        await same(['bundle', 'list', ...f]);
        await same(['bundle', 'list', '-id', 'spiffe://fed1.org', ...f]);
        await same(['bundle', 'list', '-id', 'spiffe://missing.org', ...f]);
      }
      await same(['bundle', 'count']);
      await sameMutation(
        ['bundle', 'delete', '-id', 'spiffe://fed1.org'],
        async () => {
          assert.equal((await real(['bundle', 'set', '-id', 'spiffe://fed1.org', '-path', pemFile])).status, 0);
        },
        (s) => s,
      );
      await sameMutation(
        ['bundle', 'delete', '-id', 'fed2.org', '-mode', 'delete', '-output', 'json'],
        async () => {
          assert.equal((await real(['bundle', 'set', '-id', 'fed2.org', '-format', 'spiffe'], ownSpiffe)).status, 0);
        },
        (s) => s,
      );
      await same(['bundle', 'delete', '-id', 'spiffe://fed1.org']);
      await same(['bundle', 'delete', '-id', 'spiffe://example.org', '-mode', 'dissociate']);
      await same(['bundle', 'list']);
    });

    it("federating with a trust domain without a bundle: spire-server's texts, no datastore layer name", async () => {
      const sid = 'spiffe://example.org/nofed';
      const base = ['-parentID', 'spiffe://example.org/p', '-spiffeID', sid, '-selector', 'unix:uid:91'];
      const c = await ours(['entry', 'create', ...base, '-federatesWith', 'spiffe://other.org']);
      assert.equal(c.status, 1);
      assert.match(c.stderr, /msg: "failed to create entry: unable to find federated bundle \\?"spiffe:\/\/other\.org\\?""\)/, c.stderr);
      assert.equal((await real(['entry', 'create', ...base])).status, 0);
      const id = (await entryIds(sid))[0] as string;
      const u = await same(['entry', 'update', '-entryID', id, ...base, '-federatesWith', 'spiffe://other.org'], undefined, normRevision);
      assert.equal(u.status, 1);
      assert.match(u.stderr, /msg: "failed to update entry: unable to find federated bundle \\?"spiffe:\/\/other\.org\\?""\)/, u.stderr);
      await deleteAll(sid);
    });

    it('bundle delete -mode restrict|dissociate|delete with entries federating with the bundle', async () => {
      const pemFile = srv.dir.write('fedmode.pem', (await real(['bundle', 'show'])).stdout);
      const fed = 'spiffe://fedmode.org';
      const users = ['spiffe://example.org/fedmode/a', 'spiffe://example.org/fedmode/b'];
      /** The federated bundle plus two entries federating with it (b also with fedmode2.org). */
      const setup = async (): Promise<void> => {
        for (const td of [fed, 'spiffe://fedmode2.org']) assert.equal((await real(['bundle', 'set', '-id', td, '-path', pemFile])).status, 0);
        for (const sid of users) {
          await deleteAll(sid);
          const extra = sid.endsWith('/b') ? ['-federatesWith', 'spiffe://fedmode2.org'] : [];
          const r = await real([
            'entry',
            'create',
            '-parentID',
            'spiffe://example.org/p',
            '-spiffeID',
            sid,
            '-selector',
            'unix:uid:77',
            '-federatesWith',
            fed,
            ...extra,
          ]);
          assert.equal(r.status, 0, r.stderr);
        }
      };
      const state = async (): Promise<string> => {
        const out = [];
        for (const sid of users) out.push(normRevision(norm((await real(['entry', 'show', '-spiffeID', sid])).stdout)));
        out.push((await real(['bundle', 'list', '-id', fed])).stderr);
        return out.join('\n');
      };
      await setup();
      // restrict (explicit and default): refused, nothing changes
      for (const mode of [['-mode', 'restrict'], []]) {
        const o = await same(['bundle', 'delete', '-id', fed, ...mode]);
        assert.equal(o.status, 1);
        // the same text from the real SPIRE server and from ztwim's
        assert.equal(
          o.stderr,
          'Error: failed to delete federated bundle "spiffe://fedmode.org": failed to delete federated bundle: ' +
            'datastore-sql: cannot delete bundle; federated with 2 registration entries\n',
        );
      }
      await same(['bundle', 'delete', '-id', fed, '-output', 'json']);
      assert.match(await state(), /fedmode\.org/);
      // dissociate: the bundle goes, the entries stay without that trust domain
      await sameMutation(['bundle', 'delete', '-id', fed, '-mode', 'dissociate'], setup, (s) => s);
      const dissociated = await state();
      assert.doesNotMatch(
        dissociated
          .split('\n')
          .filter((l) => l.startsWith('FederatesWith'))
          .join('\n'),
        /fedmode\.org\b/,
      );
      assert.match(dissociated, /FederatesWith\s+: fedmode2\.org/);
      assert.equal((await real(['entry', 'count', '-federatesWith', fed, '-matchFederatesWithOn', 'any'])).stdout, '0 registration entries\n');
      // delete: the bundle and the entries go
      await setup();
      await sameMutation(['bundle', 'delete', '-id', fed, '-mode', 'delete', '-output', 'json'], setup, (s) => s);
      for (const sid of users) assert.equal((await entryIds(sid)).length, 0, sid);
      await same(['bundle', 'list', '-id', fed]);
      await real(['bundle', 'delete', '-id', 'spiffe://fedmode2.org', '-mode', 'dissociate']);
      // the server's answers to a malformed, the own and an unknown trust domain
      for (const [id, msg] of [
        [
          'spiffe://Bad Domain',
          'trust domain argument is not valid: trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores',
        ],
        [`spiffe://${TD}`, 'removing the bundle for the server trust domain is not allowed'],
        [fed, 'bundle not found'],
      ] as const) {
        const o = await same(['bundle', 'delete', '-id', id, '-mode', 'delete']);
        assert.equal(o.stderr, `Error: failed to delete federated bundle ${JSON.stringify(id)}: ${msg}\n`);
      }
    });

    it('jwt mint: token verifies against the bundle JWT authority; -write; json', async () => {
      const o = await ours(['jwt', 'mint', '-spiffeID', 'spiffe://example.org/jwt', '-audience', 'aud1', '-audience', 'aud2', '-ttl', '90s']);
      assert.equal(o.status, 0, o.stderr);
      // exp is whole seconds, so spire-server itself warns that the 90s were "capped"
      assert.match(o.stderr, /^(JWT-SVID lifetime was capped shorter than specified ttl; expires "[^"]+"\n)?$/);
      const token = o.stdout.trim();
      assert.equal(o.stdout, token + '\n');
      const [h, p, sig] = token.split('.') as [string, string, string];
      const header = JSON.parse(Buffer.from(h, 'base64url').toString()) as { kid: string; alg: string };
      const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as { sub: string; aud: string[]; exp: number; iat: number };
      assert.equal(claims.sub, 'spiffe://example.org/jwt');
      assert.deepEqual(claims.aud, ['aud1', 'aud2']);
      assert.ok(Math.abs(claims.exp - claims.iat - 90) <= 1);
      const jwks = JSON.parse((await real(['bundle', 'show', '-format', 'spiffe'])).stdout) as { keys: (Record<string, string> & { kid?: string })[] };
      const jwk = jwks.keys.find((k) => k.kid === header.kid);
      assert.ok(jwk !== undefined, 'signing key published in the bundle');
      assert.equal(header.alg, 'ES256');
      const v = createVerify('SHA256');
      v.update(`${h}.${p}`);
      assert.ok(
        v.verify(
          {
            key: createPublicKey({ key: { kty: jwk['kty'] ?? '', crv: jwk['crv'] ?? '', x: jwk['x'] ?? '', y: jwk['y'] ?? '' }, format: 'jwk' }),
            dsaEncoding: 'ieee-p1363',
          },
          Buffer.from(sig, 'base64url'),
        ),
      );
      // json: same shape as spire-server's, modulo token and times
      const normJwt = (s: string): string => s.replace(/"token":"[^"]+"/, '"token":"<jwt>"').replace(/"(expires_at|issued_at)":"\d+"/g, '"$1":"<ts>"');
      const oj = await ours(['jwt', 'mint', '-spiffeID', 'spiffe://example.org/jwt', '-audience', 'a', '-output', 'json']);
      const rj = await real(['jwt', 'mint', '-spiffeID', 'spiffe://example.org/jwt', '-audience', 'a', '-output', 'json']);
      assert.equal(normJwt(show(oj)), normJwt(show(rj)));
      // a ttl beyond the CA lifetime is capped: both warn on stderr
      const oc = await ours(['jwt', 'mint', '-spiffeID', 'spiffe://example.org/jwt', '-audience', 'a', '-ttl', '1000h']);
      const rc = await real(['jwt', 'mint', '-spiffeID', 'spiffe://example.org/jwt', '-audience', 'a', '-ttl', '1000h']);
      const normCap = (s: string): string => s.replace(/expires "[^"]+"/, 'expires "<t>"');
      assert.equal(normCap(oc.stderr), normCap(rc.stderr));
      assert.match(oc.stderr, /^JWT-SVID lifetime was capped shorter than specified ttl; expires "\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"\n$/);
      // -write
      const file = join(srv.dir.path, 'token.jwt');
      const ow = await ours(['jwt', 'mint', '-spiffeID', 'spiffe://example.org/jwt', '-audience', 'a', '-write', file]);
      assert.equal(ow.stdout, `JWT-SVID written to ${file}\n`);
      assert.equal(statSync(file).mode & 0o777, 0o600);
      assert.equal(readFileSync(file, 'utf8').split('.').length, 3);
      await same(['jwt', 'mint', '-spiffeID', 'spiffe://example.org/spire/agent/x', '-audience', 'a']);
      await same(['jwt', 'mint', '-spiffeID', 'spiffe://other.org/x', '-audience', 'a']);
    });

    it('x509 mint: SVID verifies with openssl against the root CAs; json; -write', async () => {
      const o = await ours(['x509', 'mint', '-spiffeID', 'spiffe://example.org/x509', '-dns', 'svc.example.org', '-ttl', '30m']);
      assert.equal(o.status, 0, o.stderr);
      assert.match(o.stderr, /^(X509-SVID lifetime was capped shorter than specified ttl; expires "[^"]+"\n)?$/);
      const m =
        /^X509-SVID:\n(-----BEGIN CERTIFICATE-----\n[\s\S]+?-----END CERTIFICATE-----\n)\nPrivate key:\n(-----BEGIN PRIVATE KEY-----\n[\s\S]+?-----END PRIVATE KEY-----\n)\nRoot CAs:\n((?:-----BEGIN CERTIFICATE-----\n[\s\S]+?-----END CERTIFICATE-----\n)+)\n$/.exec(
          o.stdout,
        );
      assert.ok(m, o.stdout);
      const [, svidPem, keyPem, rootsPem] = m as unknown as [string, string, string, string];
      assert.equal(rootsPem, (await real(['bundle', 'show'])).stdout);
      const dir = join(srv.dir.path, 'x509-pretty');
      mkdirSync(dir);
      writeFileSync(join(dir, 'svid.pem'), svidPem);
      writeFileSync(join(dir, 'roots.pem'), rootsPem);
      const v = opensslVerify(join(dir, 'svid.pem'), { trusted: join(dir, 'roots.pem') });
      assert.ok(v.ok, v.output);
      const cert = new X509Certificate(svidPem);
      assert.deepEqual(cert.subjectAltName?.split(', ').sort(), ['DNS:svc.example.org', 'URI:spiffe://example.org/x509']);
      assert.ok(cert.checkPrivateKey(createPrivateKey(keyPem)));
      const lifetime = (Date.parse(cert.validTo) - Date.parse(cert.validFrom)) / 1000;
      assert.ok(Math.abs(lifetime - 1800 - 10) <= 2, `lifetime ${lifetime}`);

      // json: [{"x509_svid":[b64],"private_key":b64,"root_cas":[b64]}] in that key order
      const oj = await ours(['x509', 'mint', '-spiffeID', 'spiffe://example.org/x509', '-output', 'json']);
      const rj = await real(['x509', 'mint', '-spiffeID', 'spiffe://example.org/x509', '-output', 'json']);
      const shape = (s: string): string => s.replace(/"[A-Za-z0-9+/=]{40,}"/g, '"<b64>"');
      assert.equal(shape(show(oj)), shape(show(rj)));
      const parsed = JSON.parse(oj.stdout) as { x509_svid: string[]; private_key: string; root_cas: string[] }[];
      assert.equal(parsed.length, 1);
      const leaf = new X509Certificate(Buffer.from(parsed[0]!.x509_svid[0]!, 'base64'));
      assert.ok(leaf.verify(new X509Certificate(Buffer.from(parsed[0]!.root_cas[0]!, 'base64')).publicKey));

      // -write DIR: files, modes and messages like spire-server's
      const wo = join(srv.dir.path, 'x509-ours');
      const wr = join(srv.dir.path, 'x509-real');
      mkdirSync(wo);
      mkdirSync(wr);
      const ow = await ours(['x509', 'mint', '-spiffeID', 'spiffe://example.org/x509', '-write', wo]);
      const rw = await real(['x509', 'mint', '-spiffeID', 'spiffe://example.org/x509', '-write', wr]);
      assert.equal(show(ow).replaceAll(wo, '<dir>'), show(rw).replaceAll(wr, '<dir>'));
      for (const [name, mode] of [
        ['svid.pem', 0o644],
        ['key.pem', 0o600],
        ['bundle.pem', 0o644],
      ] as const) {
        assert.equal(statSync(join(wo, name)).mode & 0o777, statSync(join(wr, name)).mode & 0o777, name);
        assert.equal(statSync(join(wo, name)).mode & 0o777, mode & ~process.umask(), name);
      }
      const vw = opensslVerify(join(wo, 'svid.pem'), { trusted: join(wo, 'bundle.pem') });
      assert.ok(vw.ok, vw.output);
      // capped ttl warning, server-side errors
      const oc = await ours(['x509', 'mint', '-spiffeID', 'spiffe://example.org/x509', '-ttl', '1000h']);
      assert.match(oc.stderr, /^X509-SVID lifetime was capped shorter than specified ttl; expires "[^"]+"\n$/);
      await same(['x509', 'mint', '-spiffeID', 'spiffe://example.org/spire/agent/x']);
      await same(['x509', 'mint', '-spiffeID', 'spiffe://other.org/x']);
    });

    describe('agents (a real spire-agent attests with a join token)', () => {
      let agent: SpireAgent | undefined;
      let agentId = '';

      after(async () => {
        await agent?.stop();
      });

      it('agent list / count / purge when no agent has attested', async () => {
        await same(['agent', 'list']);
        await same(['agent', 'list', '-output', 'json']);
        await same(['agent', 'count']);
        await same(['agent', 'count', '-output', 'json']);
        const o = await ours(['agent', 'list']);
        assert.equal(o.stdout, 'No attested agents found\n');
        const p = await same(['agent', 'purge']);
        assert.equal(p.stdout, 'No agents to purge.\n');
        const pj = await same(['agent', 'purge', '-dryRun', '-expiredFor', '1h', '-output', 'json']);
        assert.equal(pj.stdout, '[{"expired_agents":[]}]\n');
        await same(['agent', 'show', '-spiffeID', 'spiffe://example.org/spire/agent/join_token/none']);
        await same(['agent', 'evict', '-spiffeID', 'spiffe://example.org/spire/agent/join_token/none']);
        await same(['agent', 'ban', '-spiffeID', 'spiffe://example.org/not-an-agent']);
      });

      it('after attestation: list / show / count with filters, pretty and json', async () => {
        const tok = await ours(['token', 'generate', '-output', 'json']);
        assert.equal(tok.status, 0, tok.stderr);
        const token = (JSON.parse(tok.stdout) as { value: string }).value;
        agent = await startSpireAgent(srv, token);
        agentId = `spiffe://example.org/spire/agent/join_token/${token}`;
        for (const f of [
          [],
          ['-attestationType', 'join_token'],
          ['-attestationType', 'x509pop'],
          ['-selector', `join_token:${token}`],
          ['-selector', 'join_token:other', '-matchSelectorsOn', 'any'],
          ['-banned', 'false'],
          ['-banned', 'true'],
          ['-banned', 'whatever'],
          ['-canReattest', 'false'],
          ['-expiresBefore', '2999-01-01 00:00:00 +0000 +00'],
        ]) {
          await same(['agent', 'list', ...f]);
          await same(['agent', 'list', ...f, '-output', 'json']);
          await same(['agent', 'count', ...f]);
          await same(['agent', 'count', ...f, '-output', 'json']);
        }
        await same(['agent', 'list', '-expiresBefore', 'tomorrow']);
        const shown = await same(['agent', 'show', '-spiffeID', agentId]);
        assert.match(shown.stdout, /^Found an attested agent given its SPIFFE ID\n\nSPIFFE ID         : spiffe:\/\/example\.org\/spire\/agent\/join_token\//);
        await same(['agent', 'show', '-spiffeID', agentId, '-output', 'json']);
        // join_token agents cannot re-attest, so purge never selects them
        await same(['agent', 'purge', '-expiredFor', '0s']);
        await same(['agent', 'purge', '-expiredFor', '0s', '-output', 'json']);
        const listed = await ours(['agent', 'list']);
        assert.match(listed.stdout, /^Found 1 attested agent:\n\n/);
      });

      it('ban, then evict', async () => {
        assert.ok(agentId !== '');
        const b = await ours(['agent', 'ban', '-spiffeID', agentId]);
        assert.equal(show(b), show({ status: 0, stdout: 'Agent banned successfully\n', stderr: '' }));
        await same(['agent', 'list']);
        await same(['agent', 'show', '-spiffeID', agentId]);
        await same(['agent', 'show', '-spiffeID', agentId, '-output', 'json']);
        await same(['agent', 'count', '-banned', 'true']);
        const bj = await same(['agent', 'ban', '-spiffeID', agentId, '-output', 'json']);
        assert.equal(bj.stdout, '{}\n');
        const e = await ours(['agent', 'evict', '-spiffeID', agentId]);
        assert.equal(show(e), show({ status: 0, stdout: 'Agent evicted successfully\n', stderr: '' }));
        await same(['agent', 'evict', '-spiffeID', agentId]);
        await same(['agent', 'list']);
      });
    });
  });
}
