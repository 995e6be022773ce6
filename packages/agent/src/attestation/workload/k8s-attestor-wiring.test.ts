// How the k8s workload attestor hands its configuration to the parts it builds (SPIRE v1.13
// pkg/agent/plugin/workloadattestor/k8s): the procfs root, the locator choice and its verbose
// logs reach the container locator; the node name from the given environment, the credential
// reader and the secure port reach the kubelet client; close() ends the kubelet connection, and
// is harmless without a client. The kubelet is an HTTPS or HTTP server on a loopback address.
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';

import { captureLogs, eventually, issueServerCert, makeCa, makeTmpDir, type TestCert, type TmpDir } from '@ztwim/testkit';

import { K8sWorkloadAttestor } from './k8s.ts';
import { PODS } from './testdata/k8s-polling.ts';
import * as S from './testdata/k8s-samples.ts';

/** Stand-in procfs: these files by full path, ENOENT for the rest; the paths read are recorded. */
function procFiles(files: Record<string, string>): { readProcFile: (path: string) => string; reads: string[] } {
  const reads: string[] = [];
  return {
    reads,
    readProcFile: (path) => {
      reads.push(path);
      const text = files[path];
      if (text === undefined) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
      return text;
    },
  };
}

const values = async (p: Promise<Array<{ value: string }>>): Promise<string[]> => (await p).map((s) => s.value);

describe('k8s attestor wiring: the container locator', () => {
  it('procfs is read under the given root', async () => {
    const proc = procFiles({ '/host/proc/123/cgroup': S.CGROUP_V1_CGROUPFS });
    const a = new K8sWorkloadAttestor({}, { procRoot: '/host/proc', readProcFile: proc.readProcFile, fetchPodList: async () => PODS });
    assert.ok((await values(a.attest(123))).includes('container-name:blog'));
    assert.deepEqual(proc.reads, ['/host/proc/123/cgroup']);
  });

  it('use_new_container_locator: false reads the cgroup file only; true or unset fall back to mountinfo', async () => {
    const files = { '/proc/123/cgroup': S.CGROUP_HOST_PROCESS, '/proc/123/mountinfo': S.MOUNTINFO_V1_POD };
    for (const useNewContainerLocator of [undefined, true]) {
      const proc = procFiles(files);
      const a = new K8sWorkloadAttestor(useNewContainerLocator === undefined ? {} : { useNewContainerLocator }, {
        readProcFile: proc.readProcFile,
        fetchPodList: async () => PODS,
      });
      assert.ok((await values(a.attest(123))).includes('container-name:blog'), String(useNewContainerLocator));
    }
    const proc = procFiles(files);
    const legacy = new K8sWorkloadAttestor({ useNewContainerLocator: false }, { readProcFile: proc.readProcFile, fetchPodList: async () => PODS });
    assert.deepEqual(await legacy.attest(123), []);
    assert.deepEqual(proc.reads, ['/proc/123/cgroup']);
  });

  it('verbose_container_locator_logs: the cgroup paths at debug level; off by default', async () => {
    for (const [verbose, want] of [
      [undefined, 0],
      [false, 0],
      [true, 1],
    ] as const) {
      const { log, lines } = captureLogs('debug');
      const proc = procFiles({ '/proc/123/cgroup': S.CGROUP_V2_CGROUPFS });
      const a = new K8sWorkloadAttestor(verbose === undefined ? {} : { verboseContainerLocatorLogs: verbose }, {
        logger: log,
        readProcFile: proc.readProcFile,
        fetchPodList: async () => PODS,
      });
      await a.attest(123);
      assert.equal(lines.filter((l) => l.msg === 'k8s: PID cgroup enumerated').length, want, String(verbose));
    }
  });
});

describe('k8s attestor wiring: the kubelet client', () => {
  let dir: TmpDir;
  let serving: TestCert;
  before(() => {
    dir = makeTmpDir('ztwim-k8s-wiring-');
    serving = issueServerCert(makeCa(dir.path, 'kubelet ca'), 'kubelet', ['node-1'], ['127.0.0.2']);
  });
  after(() => dir.cleanup());

  it('the node name from the given environment and the token from the given reader reach the secure port', async () => {
    const seen: Array<string | undefined> = [];
    const server = https.createServer({ cert: serving.certPem, key: serving.keyPem }, (req, res) => {
      seen.push(req.headers.authorization);
      res.writeHead(200, { 'content-type': 'application/json' }).end(PODS);
    });
    // Only 127.0.0.2 listens: the default 127.0.0.1 (no node name) would be refused.
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.2', resolve));
    const tokenReads: string[] = [];
    const a = new K8sWorkloadAttestor(
      { securePort: (server.address() as AddressInfo).port, skipKubeletVerification: true, tokenPath: '/sa/token', nodeNameEnv: 'ZTWIM_WIRING_NODE' },
      {
        env: { ZTWIM_WIRING_NODE: '127.0.0.2' },
        readFile: (path) => {
          tokenReads.push(path);
          return Buffer.from('wired-token\n');
        },
        readProcFile: procFiles({ '/proc/123/cgroup': S.CGROUP_V1_CGROUPFS }).readProcFile,
      },
    );
    try {
      assert.ok((await values(a.attest(123))).includes('container-name:blog'));
      assert.deepEqual(tokenReads, ['/sa/token']);
      assert.deepEqual(seen, ['Bearer wired-token']);
    } finally {
      a.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('close() ends the kept-alive kubelet connection at once', async () => {
    const server = http.createServer((_req, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end(PODS));
    // The server would close an idle connection after its own keep-alive timeout: make that
    // longer than the wait below, so that only the attestor can close it.
    server.keepAliveTimeout = 120_000;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const open = (): Promise<number> => new Promise((resolve, reject) => server.getConnections((err, n) => (err ? reject(err) : resolve(n))));
    try {
      const a = new K8sWorkloadAttestor(
        { readOnlyPort: (server.address() as AddressInfo).port },
        { env: {}, readProcFile: procFiles({ '/proc/123/cgroup': S.CGROUP_V1_CGROUPFS }).readProcFile },
      );
      await a.attest(123);
      assert.equal(await open(), 1);
      a.close();
      await eventually('the kubelet connection closed', async () => (await open()) === 0, { timeoutMs: 3000 });
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('close() without a kubelet client (a pod list stand-in) does nothing', () => {
    const a = new K8sWorkloadAttestor({}, { fetchPodList: async () => PODS });
    assert.doesNotThrow(() => a.close());
    assert.doesNotThrow(() => a.close());
  });
});
