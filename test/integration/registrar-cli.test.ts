// `ztwim registrar` as a user runs it (the built command, a child process): a bad config is one
// clear error naming the key; with staticManifestPath (no Kubernetes) the ClusterStaticEntries of
// a directory become entries on a ztwim server, follow edits at the next idle tick, and go when
// their file goes; SIGTERM stops it cleanly.
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { dialEntryClient, type RegEntry } from '@ztwim/registrar';
import { makeTmpDir } from '../interop/lib/tmp.ts';
import { runZtwim, startZtwim, stopProc, type Proc } from '../interop/lib/ztwim-cli.ts';
import { until as waitFor } from '../interop/lib/wait.ts';
import { startZtwimAdminServer, type ZtwimAdminServer } from '../interop/lib/ztwim-server.ts';

const TD = 'example.org';

describe('ztwim registrar (CLI)', () => {
  const tmp = makeTmpDir('ztwim-registrar-cli-');
  let srv: ZtwimAdminServer;
  let proc: Proc | undefined;

  before(async () => {
    srv = await startZtwimAdminServer({ trustDomain: TD });
  });
  after(async () => {
    if (proc !== undefined) await stopProc(proc);
    await srv?.stop();
    tmp.cleanup();
  });

  it('refuses a bad config naming the key', async () => {
    const cfg = tmp.write('bad.yaml', 'trustDomain: example.org\nclusterName: c\ngcInterval: often\n');
    const r = await runZtwim(tmp.path, ['registrar', '-config', cfg]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /gcInterval: invalid duration "often"/);
    const none = await runZtwim(tmp.path, ['registrar']);
    assert.notEqual(none.status, 0);
    assert.match(none.stderr, /-config is required/);
  });

  it('reconciles ClusterStaticEntries from staticManifestPath without Kubernetes', async () => {
    const dir = join(tmp.path, 'manifests');
    mkdirSync(dir);
    const entry = (name: string, uid: number, hint: string): string => `apiVersion: spire.spiffe.io/v1alpha1
kind: ClusterStaticEntry
metadata:
  name: ${name}
spec:
  spiffeID: spiffe://${TD}/static/${name}
  parentID: spiffe://${TD}/host
  selectors: ["unix:uid:${uid}"]
  hint: ${hint}
`;
    writeFileSync(join(dir, 'a.yaml'), `${entry('a', 1, 'one')}---\n${entry('b', 2, 'two')}`);
    const cfg = tmp.write(
      'static.yaml',
      `apiVersion: spire.spiffe.io/v1alpha1
kind: ControllerManagerConfig
clusterName: c
trustDomain: ${TD}
gcInterval: 200ms
spireServerSocketPath: ${srv.socketPath}
staticManifestPath: ${dir}
entryIDPrefix: static
logEncoding: json
`,
    );
    proc = startZtwim(tmp, ['registrar', '-config', cfg]);
    const client = dialEntryClient(srv.socketPath);
    try {
      const ours = async (): Promise<RegEntry[]> => (await client.listEntries()).filter((e) => e.id.startsWith('static.'));
      await waitFor('two static entries', async () => ((await ours()).length === 2 ? true : undefined), 20_000);
      writeFileSync(join(dir, 'a.yaml'), entry('a', 1, 'edited'));
      await waitFor(
        `entry a edited, b gone ${proc?.out() ?? ''}`,
        async () => {
          const es = await ours();
          return es.length === 1 && es[0]?.hint === 'edited' ? true : undefined;
        },
        20_000,
      );
      rmSync(join(dir, 'a.yaml'));
      await waitFor('no static entries', async () => ((await ours()).length === 0 ? true : undefined), 20_000);
    } finally {
      client.close();
    }
    const stopped = await stopProc(proc);
    proc = undefined;
    assert.equal(stopped.code, 0, 'clean exit on SIGTERM');
  });
});
