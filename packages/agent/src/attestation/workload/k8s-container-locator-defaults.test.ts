// Rules of the container locator left open by k8s-container-locator-rules.test.ts: what it does
// with no options (the files read from disk under the procfs root, a silent logger), which thrown
// values count as "not found", a mountinfo line starting with its separator, the hierarchy ID of a
// cgroup line, and how a segment is cut out of a path that does not start with `/`.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { describe, it } from 'node:test';

import { isZtwimError } from '@ztwim/core';
import { makeTmpDir } from '@ztwim/testkit';

import { ContainerLocator, extractFromCgroupPath, parseCgroupPaths, parseMountInfo } from './k8s-container-locator.ts';
import * as S from './testdata/k8s-samples.ts';

const inPod = { podUid: S.POD_UID, containerId: S.CONTAINER_ID };

describe('k8s locator rules: defaults', () => {
  it('without a reader, the files under the procfs root are read from disk; a missing one is not found', () => {
    const dir = makeTmpDir();
    try {
      mkdirSync(dir.file('9'));
      dir.write('9/cgroup', `0::/kubepods/pod${S.POD_UID}/${S.CONTAINER_ID}\n`);
      mkdirSync(dir.file('11'));
      dir.write('11/mountinfo', S.MOUNTINFO_V1_POD);
      const l = new ContainerLocator({ procRoot: dir.path });
      assert.deepEqual(l.locate(9), inPod);
      // No cgroup file on disk: node's ENOENT, then the mountinfo file.
      assert.deepEqual(l.locate(11), inPod);
      // No pid directory at all.
      assert.deepEqual(l.locate(10), {});
    } finally {
      dir.cleanup();
    }
  });

  it('verbose without a logger logs to a silent one instead of failing', () => {
    const files: Record<string, string> = {
      '/proc/7/cgroup': '0::/\n',
      '/proc/7/mountinfo': S.MOUNTINFO_V1_POD,
    };
    const l = new ContainerLocator({
      verbose: true,
      readFile: (p) => {
        const f = files[p];
        if (f === undefined) throw Object.assign(new Error(`ENOENT: ${p}`), { code: 'ENOENT' });
        return f;
      },
    });
    assert.deepEqual(l.locate(7), inPod);
  });

  it('an undefined thrown by the reader is no "not found": the lookup fails with it as the cause', () => {
    const l = new ContainerLocator({
      readFile: () => {
        throw undefined;
      },
    });
    assert.throws(
      () => l.locate(7),
      (e: unknown) => isZtwimError(e, 'ERR_INTERNAL') && e.message === 'k8s: unable to obtain cgroups at "/proc/7/cgroup"' && e.cause === undefined,
    );
  });
});

describe('k8s locator rules: path shapes', () => {
  it('a mountinfo line whose first field is `-` has no fields before its separator', () => {
    const line = '- cgroup2 none rw';
    assert.throws(
      () => parseMountInfo(`1 2 0:3 / /a rw - tmpfs x rw\n${line}\n`),
      (e: unknown) => isZtwimError(e, 'ERR_INTERNAL') && e.message === `expected at least 6 fields before separator in mountinfo line: ${line}`,
    );
  });

  it('the hierarchy ID of a cgroup line may be empty: the path is still after the second colon', () => {
    assert.deepEqual(parseCgroupPaths(':cpu:/a\n::/b:c\n'), ['/a', '/b:c']);
  });

  it('a first segment without a leading slash is judged whole', () => {
    // A container ID glued to a word character is none, wherever the segment is.
    assert.deepEqual(extractFromCgroupPath(`${S.CONTAINER_ID}x/a`), {});
    assert.deepEqual(extractFromCgroupPath(`pod${S.POD_UID}x/${S.CONTAINER_ID}`), { containerId: S.CONTAINER_ID });
  });
});
