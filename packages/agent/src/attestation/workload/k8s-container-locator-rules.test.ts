// Rules of the container locator (SPIRE v1.13 pkg/common/containerinfo and the legacy cgroup
// regex) that k8s-container-locator.test.ts does not state: the mountinfo and cgroup line checks
// with their exact texts, the shapes of a pod UID and a container ID (case, `_`, word
// boundaries), which findings the accumulator keeps, the conflict errors and their fields, the
// default procfs root, the verbose debug lines, and which read errors mean "not found".
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { isZtwimError } from '@ztwim/core';
import { captureLogs } from '@ztwim/testkit';

import {
  ContainerLocator,
  extractFromCgroupPath,
  legacyExtractFromCgroupPath,
  legacyLocate,
  LocationAccumulator,
  parseCgroupPaths,
  parseMountInfo,
  type ContainerLocation,
} from './k8s-container-locator.ts';
import * as S from './testdata/k8s-samples.ts';

const inPod: ContainerLocation = { podUid: S.POD_UID, containerId: S.CONTAINER_ID };
const ENOENT = (path: string): Error => Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });

/** A locator over stand-in procfs files of any pid, keyed by full path. */
function locator(files: Record<string, string | Error>, opts: { verbose?: boolean; procRoot?: string } = {}) {
  const { log, lines } = captureLogs('debug');
  const reads: string[] = [];
  const l = new ContainerLocator({
    ...opts,
    logger: log,
    readFile: (path) => {
      reads.push(path);
      const f = files[path];
      if (f === undefined) throw ENOENT(path);
      if (f instanceof Error) throw f;
      return f;
    },
  });
  return { l, lines, reads };
}

describe('k8s locator rules: mountinfo lines', () => {
  it('six fields before the separator are enough, five are refused with the line', () => {
    assert.deepEqual(parseMountInfo('1 2 0:3 /r /m rw - cgroup2 none rw\n'), [{ root: '/r', fsType: 'cgroup2' }]);
    assert.throws(
      () => parseMountInfo('1 2 0:3 /r /m - cgroup2 none rw'),
      (e: unknown) =>
        isZtwimError(e, 'ERR_INTERNAL') && e.message === 'expected at least 6 fields before separator in mountinfo line: 1 2 0:3 /r /m - cgroup2 none rw',
    );
  });
  it('a separator with no filesystem type after it is refused', () => {
    for (const line of ['1 2 0:3 /r /m rw -', '1 2 0:3 /r /m rw - ']) {
      assert.throws(
        () => parseMountInfo(line),
        (e: unknown) => isZtwimError(e, 'ERR_INTERNAL') && e.message === `missing filesystem type in mountinfo line: ${line}`,
      );
    }
  });
  it('the separator text names the line', () => {
    assert.throws(
      () => parseMountInfo('1 2 0:3 /r /m rw cgroup2'),
      (e: unknown) => isZtwimError(e, 'ERR_INTERNAL') && e.message === 'missing separator in mountinfo line: 1 2 0:3 /r /m rw cgroup2',
    );
  });
  it('empty lines anywhere are skipped', () => {
    assert.deepEqual(parseMountInfo('\n1 2 0:3 /a /m rw - cgroup x rw\n\n1 2 0:3 /b /m rw - tmpfs x rw\n'), [
      { root: '/a', fsType: 'cgroup' },
      { root: '/b', fsType: 'tmpfs' },
    ]);
  });
});

describe('k8s locator rules: cgroup lines', () => {
  it('lines are trimmed and blank ones skipped', () => {
    assert.deepEqual(parseCgroupPaths('  \n 3:cpu:/a \n\n0::/b\n'), ['/a', '/b']);
  });
  it('a line with fewer than two colons is refused, counting its colons', () => {
    assert.throws(
      () => parseCgroupPaths('0::/ok\n3:cpu'),
      (e: unknown) => isZtwimError(e, 'ERR_INTERNAL') && e.message === 'invalid cgroup entry, contains 1 colon separators: 3:cpu',
    );
    assert.throws(
      () => parseCgroupPaths('nocolon'),
      (e: unknown) => isZtwimError(e, 'ERR_INTERNAL') && e.message === 'invalid cgroup entry, contains 0 colon separators: nocolon',
    );
  });
  it('an empty path after the second colon is kept', () => {
    assert.deepEqual(parseCgroupPaths('0::'), ['']);
  });
});

describe('k8s locator rules: pod UID and container ID shapes', () => {
  const upperId = S.CONTAINER_ID.toUpperCase();
  const upperUid = S.POD_UID.toUpperCase();
  it('upper-case hex is a pod UID and a container ID, kept as written', () => {
    assert.deepEqual(extractFromCgroupPath(`/kubepods/pod${upperUid}/${upperId}`), { podUid: upperUid, containerId: upperId });
  });
  it('the systemd form: every `_` of the UID becomes `-`', () => {
    assert.deepEqual(extractFromCgroupPath(`/kubepods-pod${S.POD_UID_SYSTEMD}.slice/cri-containerd-${S.CONTAINER_ID}.scope`), inPod);
  });
  it('`pod` glued to a word is no pod UID; a UID with a wrong group length is none', () => {
    assert.deepEqual(extractFromCgroupPath(`/kubepods/xpod${S.POD_UID}/${S.CONTAINER_ID}`), { containerId: S.CONTAINER_ID });
    assert.deepEqual(extractFromCgroupPath(`/kubepods/pod${S.POD_UID}0/${S.CONTAINER_ID}`), { containerId: S.CONTAINER_ID });
    assert.deepEqual(extractFromCgroupPath(`/kubepods/pod${S.POD_UID.slice(1)}/${S.CONTAINER_ID}`), { containerId: S.CONTAINER_ID });
    assert.deepEqual(extractFromCgroupPath(`/kubepods/pod${S.POD_UID.replace('-', 'g')}/${S.CONTAINER_ID}`), { containerId: S.CONTAINER_ID });
  });
  it('a container ID glued to a word character is none; one after punctuation is', () => {
    assert.deepEqual(extractFromCgroupPath(`/kubepods/pod${S.POD_UID}/x${S.CONTAINER_ID}`), {});
    assert.deepEqual(extractFromCgroupPath(`/kubepods/pod${S.POD_UID}/${S.CONTAINER_ID}x`), {});
    assert.deepEqual(extractFromCgroupPath(`/kubepods/pod${S.POD_UID}/docker-${S.CONTAINER_ID}.scope`), inPod);
    assert.deepEqual(extractFromCgroupPath(`/kubepods/pod${S.POD_UID}/${S.CONTAINER_ID.slice(0, 63)}g`), {});
  });
  it('the pod UID is searched before the container ID in the same segment, then in earlier segments', () => {
    assert.deepEqual(extractFromCgroupPath(`/x/pod${S.OTHER_POD_UID}/a-pod${S.POD_UID}-${S.CONTAINER_ID}`), inPod);
    // A UID after the container ID in its segment is not the container's pod.
    assert.deepEqual(extractFromCgroupPath(`/x/pod${S.OTHER_POD_UID}/${S.CONTAINER_ID}-pod${S.POD_UID}`), {
      podUid: S.OTHER_POD_UID,
      containerId: S.CONTAINER_ID,
    });
  });
  it('the last segment holding a container ID wins; repeated slashes are one separator', () => {
    assert.deepEqual(extractFromCgroupPath(`/pod${S.POD_UID}/${S.OTHER_CONTAINER_ID}/${S.CONTAINER_ID}`), inPod);
    assert.deepEqual(extractFromCgroupPath(`/pod${S.POD_UID}//${S.CONTAINER_ID}//`), {});
    assert.deepEqual(extractFromCgroupPath(`/pod${S.POD_UID}///${S.CONTAINER_ID}`), inPod);
    assert.deepEqual(extractFromCgroupPath(`pod${S.POD_UID}/${S.CONTAINER_ID}`), inPod);
    assert.deepEqual(extractFromCgroupPath(S.CONTAINER_ID), { containerId: S.CONTAINER_ID });
  });
});

describe('k8s locator rules: combining paths', () => {
  const noPod: ContainerLocation = { containerId: S.CONTAINER_ID };
  it('a path without a container ID says nothing, even with a pod UID', () => {
    const acc = new LocationAccumulator();
    acc.add({ podUid: S.OTHER_POD_UID }, 'a');
    acc.add(inPod, 'b');
    assert.deepEqual(acc.result(), inPod);
  });
  it('once a pod is known, entries without a pod UID are ignored, whatever their container', () => {
    const acc = new LocationAccumulator();
    acc.add(inPod, 'a');
    acc.add({ containerId: S.OTHER_CONTAINER_ID }, 'b');
    assert.deepEqual(acc.result(), inPod);
  });
  it('an entry with a pod UID replaces earlier ones without, their container included', () => {
    const acc = new LocationAccumulator();
    acc.add({ containerId: S.OTHER_CONTAINER_ID }, 'a');
    acc.add(inPod, 'b');
    assert.deepEqual(acc.result(), inPod);
  });
  it('entries without pod UIDs must agree on the container', () => {
    const acc = new LocationAccumulator();
    acc.add(noPod, 'a');
    acc.add(noPod, 'b');
    assert.deepEqual(acc.result(), noPod);
    assert.throws(
      () => acc.add({ containerId: S.OTHER_CONTAINER_ID }, '/where'),
      (e: unknown) =>
        isZtwimError(e, 'ERR_FAILED_PRECONDITION') &&
        e.message === `k8s: multiple container IDs found ("${S.CONTAINER_ID}", "${S.OTHER_CONTAINER_ID}")` &&
        e.fields.cgroup_path === '/where',
    );
  });
  it('two pod UIDs: refused, both named, the path as a field', () => {
    const acc = new LocationAccumulator();
    acc.add(inPod, 'a');
    assert.throws(
      () => acc.add({ podUid: S.OTHER_POD_UID, containerId: S.CONTAINER_ID }, '/second'),
      (e: unknown) =>
        isZtwimError(e, 'ERR_FAILED_PRECONDITION') &&
        e.message === `k8s: multiple pod UIDs found ("${S.POD_UID}", "${S.OTHER_POD_UID}")` &&
        e.fields.cgroup_path === '/second',
    );
  });
  it('nothing added: an empty result', () => {
    assert.deepEqual(new LocationAccumulator().result(), {});
  });
});

describe('k8s locator rules: legacy', () => {
  it('`.scope` is trimmed only at the end; any punctuation in the UID becomes `-`', () => {
    assert.deepEqual(legacyExtractFromCgroupPath(`/kubepods/pod${S.POD_UID_SYSTEMD}/${S.CONTAINER_ID}.scope`), inPod);
    assert.deepEqual(legacyExtractFromCgroupPath(`/kubepods/pod${S.POD_UID.replaceAll('-', '.')}/${S.CONTAINER_ID}`), inPod);
    // Not trimmed: the text after the last punctuation is taken as it is.
    assert.deepEqual(legacyExtractFromCgroupPath(`/kubepods/pod${S.POD_UID}/${S.CONTAINER_ID}.scopex`), { podUid: S.POD_UID, containerId: 'scopex' });
  });
  it('the container part is the last segment, whatever it holds; the UID needs punctuation around it', () => {
    assert.deepEqual(legacyExtractFromCgroupPath(`/kubepods/pod${S.POD_UID}/a/b/short`), { podUid: S.POD_UID, containerId: 'short' });
    assert.deepEqual(legacyExtractFromCgroupPath(`/kubepods/xpod${S.POD_UID}/${S.CONTAINER_ID}`), {});
    assert.deepEqual(legacyExtractFromCgroupPath(`/kubepods/pod${S.POD_UID}`), {});
    assert.deepEqual(legacyExtractFromCgroupPath(`/kubepods/pod${S.POD_UID.toUpperCase()}/${S.CONTAINER_ID}`), {
      podUid: S.POD_UID.toUpperCase(),
      containerId: S.CONTAINER_ID,
    });
  });
  it('the same pod and container twice is one answer; a different container or pod is refused with the path', () => {
    const a = `/kubepods/pod${S.POD_UID}/${S.CONTAINER_ID}`;
    assert.deepEqual(legacyLocate(['/user.slice', a, a]), inPod);
    assert.throws(
      () => legacyLocate([a, `/kubepods/pod${S.POD_UID}/${S.OTHER_CONTAINER_ID}`]),
      (e: unknown) =>
        isZtwimError(e, 'ERR_FAILED_PRECONDITION') &&
        e.message === `k8s: multiple container IDs found in cgroups (${S.CONTAINER_ID}, ${S.OTHER_CONTAINER_ID})` &&
        e.fields.cgroup_path === `/kubepods/pod${S.POD_UID}/${S.OTHER_CONTAINER_ID}`,
    );
    assert.throws(
      () => legacyLocate([a, `/kubepods/pod${S.OTHER_POD_UID}/${S.CONTAINER_ID}`]),
      (e: unknown) =>
        isZtwimError(e, 'ERR_FAILED_PRECONDITION') &&
        e.message === `k8s: multiple pod UIDs found in cgroups (${S.POD_UID}, ${S.OTHER_POD_UID})` &&
        e.fields.cgroup_path === `/kubepods/pod${S.OTHER_POD_UID}/${S.CONTAINER_ID}`,
    );
  });
  it('the legacy locator with no cgroup file: nothing', () => {
    const { l } = locator({});
    const legacy = new ContainerLocator({
      useNewContainerLocator: false,
      readFile: (p) => {
        throw ENOENT(p);
      },
    });
    assert.deepEqual(legacy.locate(5), {});
    assert.deepEqual(l.locate(5), {});
  });
});

describe('k8s locator rules: reading procfs', () => {
  it('the default procfs root is /proc, the new locator the default', () => {
    const { l, reads } = locator({ '/proc/42/cgroup': `0::/kubepods/pod${S.POD_UID}/${S.CONTAINER_ID}-x` });
    assert.deepEqual(l.locate(42), { podUid: S.POD_UID, containerId: S.CONTAINER_ID });
    assert.deepEqual(reads, ['/proc/42/cgroup']);
  });
  it('a procRoot is used for both files', () => {
    const { l, reads } = locator({ '/host/proc/7/mountinfo': S.MOUNTINFO_V1_POD }, { procRoot: '/host/proc' });
    assert.deepEqual(l.locate(7), inPod);
    assert.deepEqual(reads, ['/host/proc/7/cgroup', '/host/proc/7/mountinfo']);
  });
  it('only cgroup and cgroup2 mounts count', () => {
    const other = S.MOUNTINFO_V1_POD.replaceAll(' - cgroup cgroup ', ' - cgroupx cgroup ');
    assert.deepEqual(locator({ '/proc/7/mountinfo': other }).l.locate(7), {});
  });
  it('a read error other than ENOENT fails the lookup with the file, the pid and the cause', () => {
    const eacces = Object.assign(new Error('EACCES'), { code: 'EACCES' });
    for (const [files, name, text] of [
      [{ '/proc/7/cgroup': eacces }, 'cgroup', 'k8s: unable to obtain cgroups at "/proc/7/cgroup"'],
      [{ '/proc/7/mountinfo': eacces }, 'mountinfo', 'k8s: failed to parse mount info at "/proc/7/mountinfo"'],
    ] as const) {
      assert.throws(
        () => locator(files).l.locate(7),
        (e: unknown) => isZtwimError(e, 'ERR_INTERNAL') && e.message === text && e.cause === eacces && e.fields.pid === 7,
        name,
      );
    }
  });
  it('a thrown value that is not an object, or has another code, is no "not found"', () => {
    for (const thrown of ['ENOENT', null, { code: 'ENOTDIR' }]) {
      const l = new ContainerLocator({
        readFile: () => {
          throw thrown;
        },
      });
      assert.throws(
        () => l.locate(7),
        (e: unknown) => isZtwimError(e, 'ERR_INTERNAL') && e.cause === thrown,
      );
    }
  });
  it('verbose: each cgroup path and each mount at debug level, numbered from 1', () => {
    const mounts = '1 2 0:3 / /a rw - tmpfs x rw\n1 2 0:3 /r /b rw - cgroup2 x rw\n';
    const { l, lines } = locator({ '/proc/7/cgroup': '3:cpu:/a\n0::/b\n', '/proc/7/mountinfo': mounts }, { verbose: true });
    assert.deepEqual(l.locate(7), {});
    assert.deepEqual(
      lines.map((x) => [x.level, x.msg, x.pid, x.index, x.total, x.path ?? null, x.type ?? null, x.root ?? null]),
      [
        ['debug', 'k8s: PID cgroup enumerated', 7, 1, 2, '/a', null, null],
        ['debug', 'k8s: PID cgroup enumerated', 7, 2, 2, '/b', null, null],
        ['debug', 'k8s: PID mount enumerated', 7, 1, 2, null, 'tmpfs', '/'],
        ['debug', 'k8s: PID mount enumerated', 7, 2, 2, null, 'cgroup2', '/r'],
      ],
    );
  });
  it('not verbose: no debug lines', () => {
    const { l, lines } = locator({ '/proc/7/cgroup': '0::/b\n', '/proc/7/mountinfo': '1 2 0:3 / /a rw - tmpfs x rw\n' });
    l.locate(7);
    assert.deepEqual(lines, []);
  });
});
