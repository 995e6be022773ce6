import { test } from 'node:test';
import assert from 'node:assert/strict';
import { upBanner, shellWord } from './banner.ts';

const base = {
  pid: 1,
  trustDomain: 'example.org',
  dataDir: '/w/.ztwim',
  datastore: '/w/.ztwim/server/datastore.sqlite3',
  serverSocketPath: '/tmp/spire-server/private/api.sock',
  serverPort: 8081,
  socketPath: '/tmp/spire-agent/public/api.sock',
  nodeAlias: 'spiffe://example.org/host',
  userId: 'spiffe://example.org/user/me',
  uid: 1000,
  nonDefaultDataDir: false,
};
const tries = (lines: string[]): string[] => lines.filter((l) => l.startsWith('  npx ztwim '));

test("default sockets: the commands carry no socket flags; SPIRE's entry create verbatim", () => {
  assert.deepEqual(tries(upBanner(base)), [
    '  npx ztwim api fetch x509',
    '  npx ztwim api fetch jwt -audience test',
    '  npx ztwim server entry show',
    '  npx ztwim status',
    '  npx ztwim server entry create -parentID spiffe://example.org/host -spiffeID spiffe://example.org/myservice -selector unix:uid:$(id -u)',
  ]);
});

test('other sockets and data dir: every command names them, quoted for the shell', () => {
  const lines = tries(
    upBanner({
      ...base,
      trustDomain: 'td.test',
      nodeAlias: 'spiffe://td.test/host',
      socketPath: '/w/my agent.sock',
      serverSocketPath: '/w/s.sock',
      nonDefaultDataDir: true,
    }),
  );
  assert.deepEqual(lines, [
    "  npx ztwim api fetch x509 -socketPath '/w/my agent.sock'",
    "  npx ztwim api fetch jwt -audience test -socketPath '/w/my agent.sock'",
    '  npx ztwim server entry show -socketPath /w/s.sock',
    '  npx ztwim status -dataDir /w/.ztwim',
    '  npx ztwim server entry create -socketPath /w/s.sock -parentID spiffe://td.test/host -spiffeID spiffe://td.test/myservice -selector unix:uid:$(id -u)',
  ]);
  assert.equal(shellWord("it's"), `'it'\\''s'`);
});
