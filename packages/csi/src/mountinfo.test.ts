import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseMountInfo, readMountInfo } from './mountinfo.ts';

// Lines as the kernel writes them (proc(5)); the second has a space, a tab and a backslash escaped.
const SAMPLE = [
  '22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw',
  '45 22 254:0 /run/spire/sockets /var/lib/kubelet/pods/u-1/volumes/kubernetes.io~csi/my\\040vol\\011x\\134y/mount ro,relatime shared:1 - ext4 /dev/vda rw',
  '46 22 0:52 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw',
  'garbage',
  '',
].join('\n');

test('parseMountInfo reads ids, root, mount point (octal escapes undone) and options', () => {
  const entries = parseMountInfo(SAMPLE);
  assert.equal(entries.length, 3);
  assert.deepEqual(entries[1], {
    mountId: 45,
    parentId: 22,
    device: '254:0',
    root: '/run/spire/sockets',
    mountPoint: '/var/lib/kubelet/pods/u-1/volumes/kubernetes.io~csi/my vol\tx\\y/mount',
    options: ['ro', 'relatime'],
  });
  assert.equal(entries[2]?.mountPoint, '/proc');
});

test("readMountInfo reads this process's mounts, / among them", async () => {
  const entries = await readMountInfo();
  assert.ok(entries.some((e) => e.mountPoint === '/'));
});
