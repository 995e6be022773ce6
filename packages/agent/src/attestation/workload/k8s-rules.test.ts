// Rules of the k8s workload attestor (SPIRE v1.13 pkg/agent/plugin/workloadattestor/k8s) that
// k8s.test.ts does not state: the configuration checks and defaults, the pid check, what an abort
// before or during a fetch returns, the fields and log lines of a refusal, how a known pod UID
// narrows the search, the selectors of a pod with fields missing, the runtime://id form, and how
// a /pods body is read (items that are not pods, pods without a UID). The kubelet is a stand-in
// function, or a plain HTTP server on 127.0.0.1 for the read-only port; no cluster is needed.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';

import { isZtwimError } from '@ztwim/core';
import { captureLogs, eventually, FakeClock } from '@ztwim/testkit';

import { DEFAULT_NODE_NAME_ENV, K8S_SELECTOR_TYPE, K8sWorkloadAttestor, resolveNodeName, type K8sAttestorConfig } from './k8s.ts';
import { PodListCache, parsePodList } from './k8s-pod-list-cache.ts';
import { containerIdOf, containerSelectorValues, findContainerStatus, podSelectorValues, type KubeletPod } from './k8s-selectors.ts';
import { drive, PODS, withoutBlogContainer } from './testdata/k8s-polling.ts';
import * as S from './testdata/k8s-samples.ts';

interface Setup {
  readonly attestor: K8sWorkloadAttestor;
  readonly clock: FakeClock;
  readonly lines: Array<Record<string, unknown>>;
  readonly reads: string[];
  fetches: number;
}

/** An attestor whose pid `pid` has this cgroup file and whose kubelet answers `body` (or runs `fetch`). */
function setup(cgroup: string, body: string | (() => Promise<string>), config: K8sAttestorConfig = {}, pid = 123): Setup {
  const clock = new FakeClock();
  const { log, lines } = captureLogs('debug');
  const s: { attestor?: K8sWorkloadAttestor; clock: FakeClock; lines: Array<Record<string, unknown>>; reads: string[]; fetches: number } = {
    clock,
    lines,
    reads: [],
    fetches: 0,
  };
  s.attestor = new K8sWorkloadAttestor(config, {
    clock,
    logger: log,
    readProcFile: (path) => {
      s.reads.push(path);
      if (path === `/proc/${pid}/cgroup`) return cgroup;
      throw Object.assign(new Error(`ENOENT ${path}`), { code: 'ENOENT' });
    },
    fetchPodList: async () => {
      s.fetches++;
      return typeof body === 'string' ? body : body();
    },
  });
  return s as Setup;
}

describe('k8s attestor: configuration', () => {
  it('max_poll_attempts must be an integer and poll_retry_interval a finite duration', () => {
    for (const maxPollAttempts of [1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.throws(
        () => new K8sWorkloadAttestor({ maxPollAttempts }, { fetchPodList: async () => PODS }),
        (e: unknown) => isZtwimError(e, 'ERR_CONFIG') && e.message === 'k8s: max_poll_attempts must be an integer',
      );
    }
    for (const pollRetryIntervalMs of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      assert.throws(
        () => new K8sWorkloadAttestor({ pollRetryIntervalMs }, { fetchPodList: async () => PODS }),
        (e: unknown) => isZtwimError(e, 'ERR_CONFIG') && e.message === 'k8s: poll_retry_interval must be a duration',
      );
    }
  });

  it('zero or negative poll settings mean the defaults (60 attempts, 500 ms)', async () => {
    for (const config of [
      { maxPollAttempts: 0, pollRetryIntervalMs: 0 },
      { maxPollAttempts: -3, pollRetryIntervalMs: -1 },
    ]) {
      const s = setup(S.CGROUP_V1_CGROUPFS, withoutBlogContainer(), config);
      const t0 = s.clock.nowMs();
      await assert.rejects(drive(s.clock, s.attestor.attest(123), 500), { code: 'ERR_UNAVAILABLE', message: /max poll attempts \(60\)/ });
      assert.equal(s.fetches, 60);
      assert.equal(s.clock.nowMs() - t0, 59 * 500);
    }
  });

  it('one attempt: refused at once, without waiting', async () => {
    const s = setup(S.CGROUP_V1_CGROUPFS, withoutBlogContainer(), { maxPollAttempts: 1 });
    await assert.rejects(s.attestor.attest(123), { code: 'ERR_UNAVAILABLE', message: /max poll attempts \(1\)/ });
    assert.equal(s.fetches, 1);
  });

  it('the attestor and its selectors are named "k8s"', async () => {
    const s = setup(S.CGROUP_V1_CGROUPFS, PODS);
    assert.equal(s.attestor.name, 'k8s');
    assert.equal(K8S_SELECTOR_TYPE, 'k8s');
    const got = await s.attestor.attest(123);
    assert.ok(got.length > 0);
    for (const sel of got) assert.equal(sel.type, 'k8s');
  });

  it('node name: an empty node_name or node_name_env counts as unset', () => {
    const env = { [DEFAULT_NODE_NAME_ENV]: 'from-default', OTHER: 'from-other' };
    assert.equal(DEFAULT_NODE_NAME_ENV, 'MY_NODE_NAME');
    assert.equal(resolveNodeName({ nodeName: '', nodeNameEnv: 'OTHER' }, env), 'from-other');
    assert.equal(resolveNodeName({ nodeName: '', nodeNameEnv: '' }, env), 'from-default');
    assert.equal(resolveNodeName({ nodeNameEnv: 'UNSET' }, env), '');
  });
});

describe('k8s attestor: the call', () => {
  it('a pid that is not a positive integer is an invalid argument; nothing is read', async () => {
    const s = setup(S.CGROUP_V1_CGROUPFS, PODS);
    for (const pid of [0, -1, 1.5, Number.NaN, 2 ** 53]) {
      await assert.rejects(s.attestor.attest(pid), { code: 'ERR_INVALID_ARGUMENT', message: 'k8s: pid must be a positive integer' });
    }
    assert.deepEqual(s.reads, []);
    const one = setup(S.CGROUP_V1_CGROUPFS, PODS, {}, 1);
    assert.ok((await one.attestor.attest(1)).length > 0, 'pid 1 is a pid');
  });

  it('a call aborted before it starts rejects with the reason and reads nothing', async () => {
    const s = setup(S.CGROUP_V1_CGROUPFS, PODS);
    const ac = new AbortController();
    const reason = new Error('caller went away');
    ac.abort(reason);
    await assert.rejects(s.attestor.attest(123, ac.signal), (e: unknown) => e === reason);
    assert.deepEqual(s.reads, []);
    assert.equal(s.fetches, 0);
  });

  it('a call aborted while the pod list is fetched rejects with the reason, not with the selectors', async () => {
    const ac = new AbortController();
    const reason = new Error('caller went away');
    const s = setup(S.CGROUP_V1_CGROUPFS, async () => {
      ac.abort(reason);
      return PODS;
    });
    await assert.rejects(s.attestor.attest(123, ac.signal), (e: unknown) => e === reason);
    assert.equal(s.fetches, 1);
  });

  it('giving up: the error carries pid, pod UID and container ID; each miss is logged at debug, the last at warn', async () => {
    const s = setup(S.CGROUP_V1_CGROUPFS, withoutBlogContainer(), { maxPollAttempts: 3, pollRetryIntervalMs: 200 });
    await assert.rejects(drive(s.clock, s.attestor.attest(123), 200), {
      code: 'ERR_UNAVAILABLE',
      message: `k8s: no selectors found after max poll attempts (3): container ${S.CONTAINER_ID} not in the kubelet's pod list`,
      fields: { pid: 123, pod_uid: S.POD_UID, container_id: S.CONTAINER_ID },
    });
    const misses = s.lines.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('k8s: Container id not found'));
    assert.deepEqual(
      misses.map((l) => [l.level, l.msg, l.attempt, l.pid, l.pod_uid, l.container_id, l.retry_interval_ms]),
      [
        ['debug', 'k8s: Container id not found', 1, 123, S.POD_UID, S.CONTAINER_ID, 200],
        ['debug', 'k8s: Container id not found', 2, 123, S.POD_UID, S.CONTAINER_ID, 200],
        ['warn', 'k8s: Container id not found; giving up', 3, 123, S.POD_UID, S.CONTAINER_ID, undefined],
      ],
    );
  });

  it('two pods with the container: ERR_INTERNAL naming the container, with the pid, logged at warn', async () => {
    const doc = JSON.parse(PODS) as { items: Array<{ metadata: { uid: string } }> };
    const copy = JSON.parse(JSON.stringify(doc.items[0])) as { metadata: { uid: string } };
    copy.metadata.uid = S.OTHER_POD_UID;
    doc.items.push(copy);
    const s = setup(S.CGROUP_DOCKER_ONLY, JSON.stringify(doc));
    await assert.rejects(s.attestor.attest(123), {
      code: 'ERR_INTERNAL',
      message: `k8s: two pods found with same container id ${S.CONTAINER_ID}`,
      fields: { pid: 123 },
    });
    const warned = s.lines.filter((l) => l.level === 'warn' && l.msg !== 'k8s: Pod has no UID');
    assert.deepEqual(
      warned.map((l) => [l.msg, l.pid, l.container_id]),
      [['k8s: Two pods found with same container id', 123, S.CONTAINER_ID]],
    );
  });

  it('a pod UID from the cgroup limits the search to that pod: the same container in another pod is not taken', async () => {
    const doc = JSON.parse(PODS) as { items: Array<{ metadata: { uid: string } }> };
    for (const item of doc.items) if (item.metadata.uid === S.POD_UID) item.metadata.uid = S.OTHER_POD_UID;
    for (const disableContainerSelectors of [false, true]) {
      const s = setup(S.CGROUP_V1_CGROUPFS, JSON.stringify(doc), { maxPollAttempts: 1, disableContainerSelectors });
      await assert.rejects(s.attestor.attest(123), { code: 'ERR_UNAVAILABLE', message: /max poll attempts \(1\)/ });
    }
  });

  it('disable_container_selectors without a pod UID still needs the container in a status', async () => {
    const s = setup(S.CGROUP_DOCKER_ONLY, withoutBlogContainer(), { maxPollAttempts: 1, disableContainerSelectors: true });
    await assert.rejects(s.attestor.attest(123), { code: 'ERR_UNAVAILABLE', fields: { pid: 123, pod_uid: undefined, container_id: S.CONTAINER_ID } });
  });
});

describe('k8s attestor: the kubelet client it builds', () => {
  it('without a pod list stand-in it asks the kubelet (read-only port) and close() ends the connection', async () => {
    const server = http.createServer((req, res) => {
      res.writeHead(req.url === '/pods' ? 200 : 404, { 'content-type': 'application/json' });
      res.end(PODS);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const port = (server.address() as AddressInfo).port;
      const attestor = new K8sWorkloadAttestor(
        { readOnlyPort: port },
        { readProcFile: (path) => (path === '/proc/123/cgroup' ? S.CGROUP_V1_CGROUPFS : ''), env: {} },
      );
      const got = (await attestor.attest(123)).map((s) => s.value);
      assert.ok(got.includes('container-name:blog'), got.join(' '));
      const open = (): Promise<number> => new Promise((resolve, reject) => server.getConnections((err, n) => (err ? reject(err) : resolve(n))));
      assert.equal(await open(), 1, 'the keep-alive connection is open');
      attestor.close();
      await eventually('the kubelet connection closed', async () => (await open()) === 0);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('k8s selectors: a pod with fields missing', () => {
  it('an empty pod still has every pod selector, with empty values and zero counts', () => {
    assert.deepEqual(podSelectorValues({}), ['sa:', 'ns:', 'node-name:', 'pod-uid:', 'pod-name:', 'pod-image-count:0', 'pod-init-image-count:0']);
    assert.deepEqual(podSelectorValues({ metadata: {}, spec: {}, status: {} }), podSelectorValues({}));
  });

  it('images: a status without image and image ID gives one empty value; the same name twice is one selector', () => {
    const pod: KubeletPod = {
      status: {
        containerStatuses: [{}, { image: 'img:1', imageID: 'img:1' }, { image: 'img:1', imageID: 'sha' }],
        initContainerStatuses: [{ image: 'init:1' }],
      },
    };
    assert.deepEqual(podSelectorValues(pod).slice(5), [
      'pod-image-count:3',
      'pod-init-image-count:1',
      'pod-image:',
      'pod-image:img:1',
      'pod-image:sha',
      'pod-init-image:',
      'pod-init-image:init:1',
    ]);
  });

  it('owners without kind, name or uid keep their place with empty parts', () => {
    const pod: KubeletPod = { metadata: { ownerReferences: [{}, { kind: 'Job', name: 'j', uid: 'u' }] } };
    assert.deepEqual(podSelectorValues(pod).slice(7), ['pod-owner::', 'pod-owner-uid::', 'pod-owner:Job:j', 'pod-owner-uid:Job:u']);
  });

  it('a container status without name or images gives empty container selectors', () => {
    assert.deepEqual(containerSelectorValues({}), ['container-name:', 'container-image:']);
    assert.deepEqual(containerSelectorValues({ name: 'c', image: 'i', imageID: 'i' }), ['container-name:c', 'container-image:i']);
  });
});

describe('k8s selectors: finding the container', () => {
  const id = S.CONTAINER_ID;

  it('runtime://id: the id is the URL host, up to the first /, ? or #', () => {
    assert.equal(containerIdOf(`containerd://${id}/rest`), id);
    assert.equal(containerIdOf(`containerd://${id}?q`), id);
    assert.equal(containerIdOf(`containerd://${id}#f`), id);
    assert.equal(containerIdOf(`a1+b.c-d://${id}`), id);
    assert.equal(containerIdOf('docker://'), '');
  });

  it('runtime://id: the scheme starts with a letter, at the start, and is followed by ://', () => {
    for (const bad of [`1docker://${id}`, ` docker://${id}`, `-docker://${id}`, `docker:/${id}`, `docker:${id}`, `://${id}`, `x/docker://${id}`]) {
      assert.equal(containerIdOf(bad), undefined, bad);
    }
  });

  it('containers are searched before init containers; statuses without a container ID are skipped', () => {
    const pod: KubeletPod = {
      status: {
        containerStatuses: [{ name: 'not-started' }, { name: 'empty', containerID: '' }, { name: 'main', containerID: `containerd://${id}` }],
        initContainerStatuses: [{ name: 'init', containerID: `containerd://${id}` }],
      },
    };
    assert.equal(findContainerStatus(pod, id)?.name, 'main');
    assert.equal(findContainerStatus({ status: { initContainerStatuses: [{ name: 'init', containerID: `containerd://${id}` }] } }, id)?.name, 'init');
    assert.equal(findContainerStatus(pod, S.OTHER_CONTAINER_ID), undefined);
    assert.equal(findContainerStatus({}, id), undefined);
  });
});

describe('k8s pod list: reading /pods', () => {
  it('a body that is not JSON: ERR_INTERNAL with the parse error as its cause', () => {
    for (const body of ['<html>', Buffer.from('{')]) {
      assert.throws(
        () => parsePodList(body),
        (e: unknown) => isZtwimError(e, 'ERR_INTERNAL') && e.message === 'k8s: unable to parse kubelet response' && e.cause instanceof SyntaxError,
      );
    }
  });

  it('no items, null items or a document that is no object: no pods', () => {
    for (const body of ['{}', '{"items":null}', 'null', '[]', '"text"', '{"kind":"PodList"}']) assert.equal(parsePodList(body).size, 0, body);
  });

  it('items that are not a list are refused', () => {
    for (const body of ['{"items":{}}', '{"items":"pods"}', '{"items":1}']) {
      assert.throws(
        () => parsePodList(body),
        (e: unknown) => isZtwimError(e, 'ERR_INTERNAL') && e.message === 'k8s: unable to parse kubelet response: items is not a list',
        body,
      );
    }
  });

  it('items that are not objects are skipped; pods without a string UID are skipped with a warning', () => {
    const { log, lines } = captureLogs('debug');
    const body = JSON.stringify({
      items: [
        null,
        1,
        'pod',
        { metadata: { uid: '', name: 'a', namespace: 'n1' } },
        { metadata: { uid: 7, name: 'b' } },
        {},
        { metadata: { uid: 'u1', name: 'c' } },
      ],
    });
    const pods = parsePodList(Buffer.from(body), log);
    assert.deepEqual([...pods.keys()], ['u1']);
    assert.equal(pods.get('u1')?.metadata?.name, 'c');
    assert.deepEqual(
      lines.map((l) => [l.level, l.msg, l.pod_name, l.pod_namespace]),
      [
        ['warn', 'k8s: Pod has no UID', 'a', 'n1'],
        ['warn', 'k8s: Pod has no UID', 'b', undefined],
        ['warn', 'k8s: Pod has no UID', undefined, undefined],
      ],
    );
  });

  it('the cache: a list is fresh until its time is up, and a fetch in flight is shared', async () => {
    const clock = new FakeClock();
    let fetches = 0;
    let release: (() => void) | undefined;
    const cache = new PodListCache(
      () =>
        new Promise<string>((resolve) => {
          fetches++;
          release = () => resolve(PODS);
        }),
      { clock },
    );
    const a = cache.get(100);
    const b = cache.get(100);
    assert.equal(a, b, 'one fetch for both');
    release?.();
    assert.equal((await a).size, (await b).size);
    clock.advance(99);
    assert.equal(await cache.get(100), await a, 'the same list while fresh');
    clock.advance(1);
    const c = cache.get(100);
    assert.equal(fetches, 2);
    release?.();
    assert.notEqual(await c, await a, 'parsed anew');
    clock.advance(100);
    const d = cache.get(0);
    assert.equal(fetches, 3);
    release?.();
    await d;
    const e = cache.get(0);
    assert.equal(fetches, 4, 'kept for 0 ms: fetched again at once');
    release?.();
    await e;
  });
});
