import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';

import { isZtwimError } from '@ztwim/core';
import { FakeClock } from '@ztwim/testkit';

import { K8sWorkloadAttestor, resolveNodeName, type K8sAttestorConfig } from './k8s.ts';
import { containerIdOf } from './k8s-selectors.ts';
import { drive, PODS, withoutBlogContainer } from './testdata/k8s-polling.ts';
import * as S from './testdata/k8s-samples.ts';
import { formatSelector } from './workload-attestor.ts';

const INIT_ID = 'aff34703e5e1f89443e9a1bffcc80f43f74d4808a2dd22c8f88c08547b323934';

/** The selectors of the `blog` container of pod blog-7d9f6c5b8-x2x7q in the recorded list. */
const BLOG_POD_SELECTORS = [
  'k8s:sa:blog-sa',
  'k8s:ns:demo',
  'k8s:node-name:node-1',
  `k8s:pod-uid:${S.POD_UID}`,
  'k8s:pod-name:blog-7d9f6c5b8-x2x7q',
  'k8s:pod-image-count:2',
  'k8s:pod-init-image-count:1',
  'k8s:pod-image:ghcr.io/example/blog@sha256:5b0f1a0d1e7a2a8a7a0d4c3e3c9f1c1d2b3a4f5e6d7c8b9a0f1e2d3c4b5a6978',
  'k8s:pod-image:ghcr.io/example/blog:v1.2.3',
  // The proxy container has not started: its empty image ID is a selector value too, as in SPIRE.
  'k8s:pod-image:',
  'k8s:pod-image:docker.io/envoyproxy/envoy:v1.16.0',
  'k8s:pod-init-image:docker.io/library/busybox@sha256:3fbc632167424a6d997e74f52b878d7cc478225cffac6bc977eedfe51c7f4e79',
  'k8s:pod-init-image:docker.io/library/busybox:1.36',
  'k8s:pod-label:app:blog',
  'k8s:pod-label:pod-template-hash:7d9f6c5b8',
  'k8s:pod-label:tier:web',
  'k8s:pod-owner:ReplicaSet:blog-7d9f6c5b8',
  'k8s:pod-owner-uid:ReplicaSet:8f0e5a7c-3b1d-4e0a-9a55-6f3b7f1c2d90',
];
const BLOG_CONTAINER_SELECTORS = [
  'k8s:container-name:blog',
  'k8s:container-image:ghcr.io/example/blog@sha256:5b0f1a0d1e7a2a8a7a0d4c3e3c9f1c1d2b3a4f5e6d7c8b9a0f1e2d3c4b5a6978',
  'k8s:container-image:ghcr.io/example/blog:v1.2.3',
];

interface Harness {
  readonly attestor: K8sWorkloadAttestor;
  readonly clock: FakeClock;
  fetches: number;
}

/** An attestor over pid 123 with the given cgroup file and a kubelet answering `bodies` in turn. */
function harness(cgroup: string | undefined, bodies: ReadonlyArray<string | Error>, config: K8sAttestorConfig = {}): Harness {
  const clock = new FakeClock();
  const h: { attestor?: K8sWorkloadAttestor; clock: FakeClock; fetches: number } = { clock, fetches: 0 };
  h.attestor = new K8sWorkloadAttestor(config, {
    clock,
    readProcFile: (path) => {
      if (path === '/proc/123/cgroup' && cgroup !== undefined) return cgroup;
      throw Object.assign(new Error(`ENOENT ${path}`), { code: 'ENOENT' });
    },
    fetchPodList: async () => {
      const b = bodies[Math.min(h.fetches, bodies.length - 1)];
      h.fetches++;
      if (b === undefined) throw new Error('no body');
      if (b instanceof Error) throw b;
      return b;
    },
  });
  return h as Harness;
}

const show = async (p: Promise<Array<{ type: string; value: string }>>): Promise<string[]> => (await p).map(formatSelector).sort();
const sorted = (xs: readonly string[]): string[] => [...xs].sort();

describe('k8s workload attestor: selectors from the kubelet pod list', () => {
  it('every k8s selector of a running container (cgroup v1 cgroupfs)', async () => {
    const h = harness(S.CGROUP_V1_CGROUPFS, [PODS]);
    assert.deepEqual(await show(h.attestor.attest(123)), sorted([...BLOG_POD_SELECTORS, ...BLOG_CONTAINER_SELECTORS]));
    assert.equal(h.fetches, 1);
  });

  it('the same from the systemd driver and cgroup v2 layouts', async () => {
    for (const cgroup of [S.CGROUP_V1_SYSTEMD_CONTAINERD, S.CGROUP_V2_SYSTEMD_CRIO, S.CGROUP_V2_NAMESPACED]) {
      const h = harness(cgroup, [PODS]);
      assert.deepEqual(await show(h.attestor.attest(123)), sorted([...BLOG_POD_SELECTORS, ...BLOG_CONTAINER_SELECTORS]));
    }
  });

  it('an init container is matched too', async () => {
    const h = harness(S.CGROUP_V1_CGROUPFS.replaceAll(S.CONTAINER_ID, INIT_ID), [PODS]);
    const got = await show(h.attestor.attest(123));
    assert.ok(got.includes('k8s:container-name:init-config'));
    assert.ok(got.includes('k8s:container-image:docker.io/library/busybox:1.36'));
    assert.ok(!got.includes('k8s:container-name:blog'));
  });

  it('disable_container_selectors: pod selectors only', async () => {
    const h = harness(S.CGROUP_V1_CGROUPFS, [PODS], { disableContainerSelectors: true });
    assert.deepEqual(await show(h.attestor.attest(123)), sorted(BLOG_POD_SELECTORS));
  });

  it('disable_container_selectors: the pod is enough before its container is in the status', async () => {
    const h = harness(S.CGROUP_V1_CGROUPFS, [withoutBlogContainer()], { disableContainerSelectors: true });
    assert.deepEqual(await show(h.attestor.attest(123)), sorted(BLOG_POD_SELECTORS));
    assert.equal(h.fetches, 1);
  });

  it('a container found without a pod UID in its cgroup is looked up in every pod', async () => {
    const h = harness(S.CGROUP_DOCKER_ONLY, [PODS]);
    assert.deepEqual(await show(h.attestor.attest(123)), sorted([...BLOG_POD_SELECTORS, ...BLOG_CONTAINER_SELECTORS]));
  });

  it('two pods holding the same container ID: refused', async () => {
    const doc = JSON.parse(PODS) as { items: Array<{ metadata: { uid: string } }> };
    const copy = JSON.parse(JSON.stringify(doc.items[0])) as { metadata: { uid: string } };
    copy.metadata.uid = '00000000-1111-2222-3333-444444444444';
    doc.items.push(copy);
    const h = harness(S.CGROUP_DOCKER_ONLY, [JSON.stringify(doc)]);
    await assert.rejects(h.attestor.attest(123), (e: unknown) => isZtwimError(e, 'ERR_INTERNAL') && /two pods found with same container id/.test(e.message));
  });
});

describe('k8s workload attestor: processes outside pods', () => {
  it('a host process: no selectors, no error, no kubelet call', async () => {
    const h = harness(S.CGROUP_HOST_PROCESS, [new Error('kubelet must not be asked')]);
    assert.deepEqual(await h.attestor.attest(123), []);
    assert.equal(h.fetches, 0);
  });

  it('a process whose procfs files are gone: no selectors, no error', async () => {
    const h = harness(undefined, [new Error('kubelet must not be asked')]);
    assert.deepEqual(await h.attestor.attest(123), []);
  });

  it('pid must be positive', async () => {
    const h = harness(S.CGROUP_HOST_PROCESS, [PODS]);
    await assert.rejects(h.attestor.attest(0), (e: unknown) => isZtwimError(e, 'ERR_INVALID_ARGUMENT'));
  });
});

describe('k8s workload attestor: polling for the container', () => {
  it('retries until the container shows up in the status', async () => {
    const missing = withoutBlogContainer();
    const h = harness(S.CGROUP_V1_CGROUPFS, [missing, missing, PODS]);
    const got = await drive(h.clock, show(h.attestor.attest(123)));
    assert.deepEqual(got, sorted([...BLOG_POD_SELECTORS, ...BLOG_CONTAINER_SELECTORS]));
    assert.equal(h.fetches, 3);
  });

  it('gives up after max_poll_attempts with a clear error', async () => {
    const h = harness(S.CGROUP_V1_CGROUPFS, [withoutBlogContainer()], { maxPollAttempts: 4, pollRetryIntervalMs: 1000 });
    const t0 = h.clock.nowMs();
    await assert.rejects(
      drive(h.clock, h.attestor.attest(123), 1000),
      (e: unknown) =>
        isZtwimError(e, 'ERR_UNAVAILABLE') && /no selectors found after max poll attempts \(4\)/.test(e.message) && e.message.includes(S.CONTAINER_ID),
    );
    assert.equal(h.fetches, 4);
    assert.equal(h.clock.nowMs() - t0, 3000, 'three waits of poll_retry_interval between four attempts');
  });

  it('the default is 60 attempts 500 ms apart', async () => {
    const h = harness(S.CGROUP_V1_CGROUPFS, [withoutBlogContainer()]);
    const t0 = h.clock.nowMs();
    await assert.rejects(drive(h.clock, h.attestor.attest(123)), /max poll attempts \(60\)/);
    assert.equal(h.fetches, 60);
    assert.equal(h.clock.nowMs() - t0, 59 * 500);
  });

  it('an abort while waiting ends the attestation with the signal reason', async () => {
    const h = harness(S.CGROUP_V1_CGROUPFS, [withoutBlogContainer()]);
    const ac = new AbortController();
    const p = h.attestor.attest(123, ac.signal);
    await h.clock.waitForTimers(1);
    ac.abort(new Error('caller went away'));
    await assert.rejects(p, /caller went away/);
    assert.equal(h.fetches, 1);
  });

  it('a kubelet error is returned as is', async () => {
    const h = harness(S.CGROUP_V1_CGROUPFS, [new Error('unexpected status code on pods response: 401')]);
    await assert.rejects(h.attestor.attest(123), /401/);
  });

  it('a kubelet answer that is not JSON: a clear error', async () => {
    const h = harness(S.CGROUP_V1_CGROUPFS, ['<html>']);
    await assert.rejects(h.attestor.attest(123), (e: unknown) => isZtwimError(e, 'ERR_INTERNAL') && /unable to parse kubelet response/.test(e.message));
  });
});

describe('k8s workload attestor: pod list cache', () => {
  it('concurrent attestations share one fetch; the list is kept for half the retry interval', async () => {
    const h = harness(S.CGROUP_V1_CGROUPFS, [PODS]);
    await Promise.all([h.attestor.attest(123), h.attestor.attest(123), h.attestor.attest(123)]);
    assert.equal(h.fetches, 1);
    h.clock.advance(249);
    await h.attestor.attest(123);
    assert.equal(h.fetches, 1, 'still fresh at 249 ms');
    h.clock.advance(1);
    await h.attestor.attest(123);
    assert.equal(h.fetches, 2, 'fetched again at 250 ms');
  });

  it('a failed fetch is not cached', async () => {
    const h = harness(S.CGROUP_V1_CGROUPFS, [new Error('connection refused'), PODS]);
    await assert.rejects(h.attestor.attest(123), /connection refused/);
    assert.equal((await h.attestor.attest(123)).length, BLOG_POD_SELECTORS.length + BLOG_CONTAINER_SELECTORS.length);
  });
});

describe('k8s workload attestor: helpers', () => {
  it('containerIdOf takes the host of runtime://id', () => {
    assert.equal(containerIdOf(`containerd://${S.CONTAINER_ID}`), S.CONTAINER_ID);
    assert.equal(containerIdOf(`cri-o://${S.CONTAINER_ID}`), S.CONTAINER_ID);
    assert.equal(containerIdOf(S.CONTAINER_ID), undefined);
  });

  it('node name: node_name, else the named variable, else MY_NODE_NAME', () => {
    const env = { MY_NODE_NAME: 'from-default', OTHER: 'from-other' };
    assert.equal(resolveNodeName({ nodeName: 'n', nodeNameEnv: 'OTHER' }, env), 'n');
    assert.equal(resolveNodeName({ nodeNameEnv: 'OTHER' }, env), 'from-other');
    assert.equal(resolveNodeName({}, env), 'from-default');
    assert.equal(resolveNodeName({}, {}), '');
  });
});

describe('k8s workload attestor: samples recorded on the test node (cgroup v1, cgroupfs, containerd)', () => {
  const dir = new URL('./testdata/k8s/', import.meta.url);
  const cgroup = readFileSync(new URL('node-cgroup-v1-cgroupfs.txt', dir), 'utf8');
  const mountinfo = readFileSync(new URL('node-mountinfo-v1.txt', dir), 'utf8');
  const pods = readFileSync(new URL('node-pods.json', dir), 'utf8');
  const uid = '61d2380a-7c77-41a5-a1fc-89b672fa61a1';
  const app = 'd44efff2d6b883987560054a072447b57108b95bf6166f75c3e3032ae034a318';
  const image = 'docker.io/library/busybox:local';
  const imageId = 'sha256:c3cabbe0e8da566fdb6f363fff08e65ea40ab865417133b6d3f39982c963a7b5';
  const expected = sorted([
    'k8s:sa:default',
    'k8s:ns:ztwim-k8sw-rec',
    'k8s:node-name:localhost',
    `k8s:pod-uid:${uid}`,
    'k8s:pod-name:web-5c6bd7fd4b-cbhmr',
    'k8s:pod-image-count:2',
    'k8s:pod-init-image-count:1',
    `k8s:pod-image:${imageId}`,
    `k8s:pod-image:${image}`,
    `k8s:pod-init-image:${imageId}`,
    `k8s:pod-init-image:${image}`,
    'k8s:pod-label:app:web',
    'k8s:pod-label:pod-template-hash:5c6bd7fd4b',
    'k8s:pod-label:tier:frontend',
    'k8s:pod-owner:ReplicaSet:web-5c6bd7fd4b',
    'k8s:pod-owner-uid:ReplicaSet:038e8f77-9571-4848-a090-291222421a2a',
    'k8s:container-name:app',
    `k8s:container-image:${imageId}`,
    `k8s:container-image:${image}`,
  ]);

  function nodeHarness(files: { cgroup?: string; mountinfo?: string }): K8sWorkloadAttestor {
    return new K8sWorkloadAttestor(
      {},
      {
        clock: new FakeClock(),
        readProcFile: (path) => {
          const text = path === '/proc/7/cgroup' ? files.cgroup : path === '/proc/7/mountinfo' ? files.mountinfo : undefined;
          if (text === undefined) throw Object.assign(new Error(`ENOENT ${path}`), { code: 'ENOENT' });
          return text;
        },
        fetchPodList: async () => pods,
      },
    );
  }

  it('the container process: every selector, from its cgroup file', async () => {
    assert.deepEqual(await show(nodeHarness({ cgroup, mountinfo }).attest(7)), expected);
  });

  it('the same from its mountinfo alone', async () => {
    assert.deepEqual(await show(nodeHarness({ mountinfo }).attest(7)), expected);
  });

  it('the sidecar container of the same pod gets its own container selectors', async () => {
    const sidecar = 'c3d166fa574b8230ea9b0c35915f5c48f5d334d51af3ffc90e04ba62ac9cd2b0';
    const got = await show(nodeHarness({ cgroup: cgroup.replaceAll(app, sidecar) }).attest(7));
    assert.ok(got.includes('k8s:container-name:sidecar'));
    assert.ok(!got.includes('k8s:container-name:app'));
  });
});
