import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { isZtwimError } from '@ztwim/core';

import {
  ContainerLocator,
  extractFromCgroupPath,
  legacyExtractFromCgroupPath,
  parseCgroupPaths,
  parseMountInfo,
  type ContainerLocation,
} from './k8s-container-locator.ts';
import * as S from './testdata/k8s-samples.ts';

const inPod: ContainerLocation = { podUid: S.POD_UID, containerId: S.CONTAINER_ID };

/** A locator over an in-memory /proc holding pid 123's files (absent ones: ENOENT). */
function locatorFor(files: { cgroup?: string; mountinfo?: string }, useNewContainerLocator = true): ContainerLocator {
  return new ContainerLocator({
    procRoot: '/proc',
    useNewContainerLocator,
    readFile: (path) => {
      const name = path === '/proc/123/cgroup' ? 'cgroup' : path === '/proc/123/mountinfo' ? 'mountinfo' : undefined;
      const text = name === undefined ? undefined : files[name];
      if (text === undefined) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
      return text;
    },
  });
}

describe('k8s container locator: /proc/<pid>/cgroup layouts', () => {
  const cases: Array<[string, string, ContainerLocation]> = [
    ['cgroup v1, cgroupfs driver (the test node)', S.CGROUP_V1_CGROUPFS, inPod],
    ['cgroup v1, burstable, docker', S.CGROUP_V1_BURSTABLE_DOCKER, inPod],
    ['cgroup v1, systemd driver, containerd', S.CGROUP_V1_SYSTEMD_CONTAINERD, inPod],
    ['cgroup v2, systemd driver, CRI-O', S.CGROUP_V2_SYSTEMD_CRIO, inPod],
    ['cgroup v2, systemd driver, containerd, guaranteed', S.CGROUP_V2_SYSTEMD_CONTAINERD, inPod],
    ['cgroup v2, cgroupfs driver', S.CGROUP_V2_CGROUPFS, inPod],
    ['systemd colon form', S.CGROUP_SYSTEMD_COLON, inPod],
    ['kind on a docker host: the pod entry wins over the host container', S.CGROUP_KIND_ON_DOCKER, inPod],
    ['cgroup v2 seen from another cgroup namespace', S.CGROUP_V2_NAMESPACED, inPod],
    ['a docker container outside any pod: container only', S.CGROUP_DOCKER_ONLY, { containerId: S.CONTAINER_ID }],
    ['a host process: nothing', S.CGROUP_HOST_PROCESS, {}],
  ];
  for (const [name, cgroup, want] of cases) {
    it(name, () => {
      assert.deepEqual(locatorFor({ cgroup, mountinfo: S.MOUNTINFO_NO_CGROUP }).locate(123), want);
    });
  }

  it('two pod UIDs in the hierarchies: refused', () => {
    assert.throws(
      () => locatorFor({ cgroup: S.CGROUP_POD_CONFLICT }).locate(123),
      (e: unknown) => isZtwimError(e, 'ERR_FAILED_PRECONDITION') && /multiple pod UIDs found/.test(e.message),
    );
  });

  it('two container IDs in the hierarchies: refused', () => {
    assert.throws(
      () => locatorFor({ cgroup: S.CGROUP_CONTAINER_CONFLICT }).locate(123),
      (e: unknown) => isZtwimError(e, 'ERR_FAILED_PRECONDITION') && /multiple container IDs found/.test(e.message),
    );
  });

  it('a malformed cgroup file is a clear error naming the file', () => {
    assert.throws(
      () => locatorFor({ cgroup: 'not a cgroup line\n' }).locate(123),
      (e: unknown) => isZtwimError(e, 'ERR_INTERNAL') && e.message.includes('/proc/123/cgroup'),
    );
  });
});

describe('k8s container locator: mountinfo', () => {
  it('parses root and fs type, an empty mount source included', () => {
    const m = parseMountInfo(S.MOUNTINFO_V1_POD);
    assert.equal(m.length, 10);
    assert.deepEqual(m[5], { root: `/kubepods/besteffort/pod${S.POD_UID}/${S.CONTAINER_ID}`, fsType: 'cgroup' });
    assert.deepEqual(m[9], { root: '/', fsType: 'tmpfs' });
  });

  it('a line without the separator is refused', () => {
    assert.throws(() => parseMountInfo('22 1 8:1 / / rw,relatime ext4 /dev/sda1 rw\n'), /missing separator/);
  });

  const cases: Array<[string, { cgroup?: string; mountinfo?: string }, ContainerLocation]> = [
    ['cgroup v1 mounts, used when the cgroup file has no container', { cgroup: S.CGROUP_HOST_PROCESS, mountinfo: S.MOUNTINFO_V1_POD }, inPod],
    ['cgroup2 mount in a private cgroup namespace', { cgroup: '0::/\n', mountinfo: S.MOUNTINFO_V2_POD }, inPod],
    ['no cgroup file at all', { mountinfo: S.MOUNTINFO_V1_POD }, inPod],
    [
      'the cgroup file wins over a mountinfo naming another container',
      { cgroup: S.CGROUP_V2_CGROUPFS, mountinfo: S.MOUNTINFO_V1_POD.replaceAll(S.CONTAINER_ID, S.OTHER_CONTAINER_ID) },
      inPod,
    ],
    ['neither names a container', { cgroup: S.CGROUP_HOST_PROCESS, mountinfo: S.MOUNTINFO_NO_CGROUP }, {}],
    ['the process is gone (both files missing): nothing, no error', {}, {}],
  ];
  for (const [name, files, want] of cases) {
    it(name, () => assert.deepEqual(locatorFor(files).locate(123), want));
  }

  it('a malformed mountinfo is a clear error naming the file', () => {
    assert.throws(
      () => locatorFor({ cgroup: S.CGROUP_HOST_PROCESS, mountinfo: 'garbage\n' }).locate(123),
      (e: unknown) => isZtwimError(e, 'ERR_INTERNAL') && e.message.includes('/proc/123/mountinfo'),
    );
  });
});

describe('k8s container locator: path extraction', () => {
  it('finds the container ID in a middle segment and the pod before it', () => {
    assert.deepEqual(extractFromCgroupPath(`/kubepods/pod${S.POD_UID}/${S.CONTAINER_ID}/extra/segment`), inPod);
  });
  it('stops at 64 hex: 63 or 65 characters are no container ID', () => {
    assert.deepEqual(extractFromCgroupPath(`/kubepods/pod${S.POD_UID}/${S.CONTAINER_ID.slice(1)}`), {});
    assert.deepEqual(extractFromCgroupPath(`/kubepods/pod${S.POD_UID}/${S.CONTAINER_ID}a`), {});
  });
  it('without wanting the pod UID returns the container only', () => {
    assert.deepEqual(extractFromCgroupPath(`/kubepods/pod${S.POD_UID}/${S.CONTAINER_ID}`, false), { containerId: S.CONTAINER_ID });
  });
  it('parseCgroupPaths keeps colons inside the path', () => {
    assert.deepEqual(parseCgroupPaths(S.CGROUP_SYSTEMD_COLON), [`/kubepods-besteffort-pod${S.POD_UID_SYSTEMD}.slice:cri-containerd:${S.CONTAINER_ID}`]);
  });
});

describe('k8s container locator: legacy (use_new_container_locator = false)', () => {
  const cases: Array<[string, string, ContainerLocation]> = [
    ['cgroupfs', `/kubepods/burstable/pod${S.POD_UID}/${S.CONTAINER_ID}`, inPod],
    ['systemd docker scope', `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${S.POD_UID_SYSTEMD}.slice/docker-${S.CONTAINER_ID}.scope`, inPod],
    ['systemd colon form', `/kubepods-besteffort-pod${S.POD_UID_SYSTEMD}.slice:cri-containerd:${S.CONTAINER_ID}`, inPod],
    ['cgroup namespace', `/../../pod${S.POD_UID}/${S.CONTAINER_ID}`, inPod],
    ['no pod', `/system.slice/docker-${S.CONTAINER_ID}.scope`, {}],
  ];
  for (const [name, path, want] of cases) {
    it(name, () => assert.deepEqual(legacyExtractFromCgroupPath(path), want));
  }
  it('reads only the cgroup file', () => {
    assert.deepEqual(locatorFor({ cgroup: S.CGROUP_V1_CGROUPFS, mountinfo: 'garbage\n' }, false).locate(123), inPod);
    assert.deepEqual(locatorFor({ cgroup: S.CGROUP_HOST_PROCESS, mountinfo: S.MOUNTINFO_V1_POD }, false).locate(123), {});
  });
  it('conflicting pods refused', () => {
    assert.throws(() => locatorFor({ cgroup: S.CGROUP_POD_CONFLICT }, false).locate(123), /multiple pod UIDs found in cgroups/);
  });
});
