// kubernetes-csi's conformance suite, csi-sanity v5.6.0, against `ztwim csi` (a child process,
// real mounts: run as root). A node-only driver has no Controller service, so the specs that need
// one are skipped, as in /work/shared/spec/kubernetes-test-cluster.md §4: the "Controller Server"
// ones and the two Node specs that first create a volume with CreateVolume ("should remove target
// path", and "should fail when volume does not exist on the specified path", which runs because
// the driver offers GET_VOLUME_STATS). Everything else must pass: 0 failed.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readMountInfo } from '@ztwim/csi';
import { cacheDir, PeerMissingError } from './lib/peers.ts';
import { makeTmpDir, type TmpDir } from './lib/tmp.ts';
import { until } from './lib/wait.ts';
import { startZtwim, stopProc, type Proc } from './lib/ztwim-cli.ts';

const CSI_SANITY_VERSION = 'v5.6.0';
/** Specs that need a Controller service (CreateVolume), which a node-only driver does not have. */
const SKIP = ['Controller Server', 'should remove target path', 'should fail when volume does not exist on the specified path'];

/** csi-sanity from scripts/k8s/build.sh or scripts/setup-interop.sh (ZTWIM_K8S_BIN overrides the directory). */
function csiSanityBin(): string {
  const p = join(process.env['ZTWIM_K8S_BIN'] ?? join(cacheDir(), 'k8s-v1.37.2', 'bin'), 'csi-sanity');
  try {
    accessSync(p, constants.X_OK);
  } catch {
    throw new PeerMissingError(`csi-sanity ${CSI_SANITY_VERSION}`, `${p} not found`);
  }
  return p;
}

interface GinkgoSummary {
  ran: number;
  passed: number;
  failed: number;
  pending: number;
  skipped: number;
}

/** Ginkgo's last lines: `Ran 13 of 103 Specs ...` and `SUCCESS! -- 13 Passed | 0 Failed | 1 Pending | 90 Skipped`. */
function summaryOf(out: string): GinkgoSummary | undefined {
  const ran = /Ran (\d+) of \d+ Specs/.exec(out);
  const counts = /(\d+) Passed \| (\d+) Failed \| (\d+) Pending \| (\d+) Skipped/.exec(out);
  if (ran === null || counts === null) return undefined;
  const [passed, failed, pending, skipped] = counts.slice(1).map(Number) as [number, number, number, number];
  return { ran: Number(ran[1]), passed, failed, pending, skipped };
}

describe(`csi-sanity ${CSI_SANITY_VERSION} against ztwim csi`, () => {
  let tmp: TmpDir;
  let driver: Proc;
  let csiSocket: string;

  before(async () => {
    tmp = makeTmpDir('ztwim-csi-sanity-');
    const socketDir = join(tmp.path, 'agent-sockets');
    mkdirSync(socketDir);
    writeFileSync(join(socketDir, 'spire-agent.sock'), '');
    csiSocket = join(tmp.path, 'plugin', 'csi.sock');
    driver = startZtwim(tmp, ['csi', '-workload-api-socket-dir', socketDir, '-csi-socket-path', csiSocket, '-node-id', 'sanity-node', '-log-level', 'debug']);
    await until('the CSI socket', () => (existsSync(csiSocket) ? true : undefined), 20_000);
  });

  after(async () => {
    if (driver !== undefined) await stopProc(driver);
    tmp?.cleanup();
  });

  it('passes every spec a node-only driver can run (0 failed)', async () => {
    const bin = csiSanityBin();
    // csi-sanity creates its mount and staging directories, but not their parent.
    const work = join(tmp.path, 'sanity');
    mkdirSync(work);
    const args = [
      `--csi.endpoint=unix://${csiSocket}`,
      `--csi.mountdir=${join(work, 'mnt')}`,
      `--csi.stagingdir=${join(work, 'stage')}`,
      `-ginkgo.skip=${SKIP.join('|')}`,
      '-ginkgo.no-color',
    ];
    const r = await new Promise<{ code: number; out: string }>((resolve) => {
      execFile(bin, args, { encoding: 'utf8', timeout: 300_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
        resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, out: stdout + stderr });
      });
    });
    const summary = summaryOf(r.out);
    assert.ok(summary !== undefined, `no Ginkgo summary in csi-sanity's output:\n${r.out.slice(-4000)}\ndriver:\n${driver.out().slice(-4000)}`);
    console.log(
      `csi-sanity ${CSI_SANITY_VERSION}: ran ${summary.ran}, ${summary.passed} passed, ${summary.failed} failed, ${summary.pending} pending, ${summary.skipped} skipped`,
    );
    assert.equal(summary.failed, 0, r.out.slice(-8000));
    assert.equal(r.code, 0, r.out.slice(-8000));
    // Identity (3), NodeGetCapabilities, NodeGetInfo, NodePublishVolume (3), NodeUnpublishVolume (2)
    // and NodeGetVolumeStats (3) specs at least.
    assert.ok(summary.passed >= 13, `only ${summary.passed} specs passed`);
    // Nothing left mounted under the test's directory.
    assert.deepEqual(
      (await readMountInfo()).filter((e) => e.mountPoint.startsWith(tmp.path)),
      [],
    );
  });
});
