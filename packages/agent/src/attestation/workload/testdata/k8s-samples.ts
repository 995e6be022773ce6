// Recorded procfs samples of processes in pods, one per layout the k8s locator must read. The IDs
// are the ones the tests expect; the surrounding lines are as the kernel writes them.
export const POD_UID = '2c48913c-b29f-11e7-9350-020968147796';
export const POD_UID_SYSTEMD = POD_UID.replaceAll('-', '_');
export const CONTAINER_ID = '9bca8d63d5fa610783847915bcff0ecac1273e5b4bed3f6fa1b07350e0135961';
export const OTHER_CONTAINER_ID = 'aff34703e5e1f89443e9a1bffcc80f43f74d4808a2dd22c8f88c08547b323934';
export const OTHER_POD_UID = 'daa5c7ee-3484-4533-af39-3591564fd03e';

/** cgroup v1, cgroupfs driver (the test node's layout; containerd, besteffort QoS). */
export const CGROUP_V1_CGROUPFS = [
  `12:pids:/kubepods/besteffort/pod${POD_UID}/${CONTAINER_ID}`,
  `11:hugetlb:/kubepods/besteffort/pod${POD_UID}/${CONTAINER_ID}`,
  `10:net_cls,net_prio:/kubepods/besteffort/pod${POD_UID}/${CONTAINER_ID}`,
  `9:perf_event:/kubepods/besteffort/pod${POD_UID}/${CONTAINER_ID}`,
  `8:cpu,cpuacct:/kubepods/besteffort/pod${POD_UID}/${CONTAINER_ID}`,
  `7:devices:/kubepods/besteffort/pod${POD_UID}/${CONTAINER_ID}`,
  `6:memory:/kubepods/besteffort/pod${POD_UID}/${CONTAINER_ID}`,
  `5:freezer:/kubepods/besteffort/pod${POD_UID}/${CONTAINER_ID}`,
  `4:blkio:/kubepods/besteffort/pod${POD_UID}/${CONTAINER_ID}`,
  `3:cpuset:/kubepods/besteffort/pod${POD_UID}/${CONTAINER_ID}`,
  `2:rdma:/`,
  `1:name=systemd:/kubepods/besteffort/pod${POD_UID}/${CONTAINER_ID}`,
  `0::/`,
  '',
].join('\n');

/** cgroup v1, burstable QoS, docker runtime (dockershim era). */
export const CGROUP_V1_BURSTABLE_DOCKER = [
  `11:memory:/kubepods/burstable/pod${POD_UID}/${CONTAINER_ID}`,
  `10:cpu,cpuacct:/kubepods/burstable/pod${POD_UID}/${CONTAINER_ID}`,
  `1:name=systemd:/kubepods/burstable/pod${POD_UID}/${CONTAINER_ID}`,
  '',
].join('\n');

/** cgroup v1, systemd driver, containerd. */
export const CGROUP_V1_SYSTEMD_CONTAINERD = [
  `12:memory:/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${POD_UID_SYSTEMD}.slice/cri-containerd-${CONTAINER_ID}.scope`,
  `4:cpu,cpuacct:/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${POD_UID_SYSTEMD}.slice/cri-containerd-${CONTAINER_ID}.scope`,
  `1:name=systemd:/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${POD_UID_SYSTEMD}.slice/cri-containerd-${CONTAINER_ID}.scope`,
  '',
].join('\n');

/** cgroup v2 (unified), systemd driver, CRI-O. */
export const CGROUP_V2_SYSTEMD_CRIO = `0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${POD_UID_SYSTEMD}.slice/crio-${CONTAINER_ID}.scope\n`;

/** cgroup v2, systemd driver, containerd, guaranteed QoS (no QoS slice). */
export const CGROUP_V2_SYSTEMD_CONTAINERD = `0::/kubepods.slice/kubepods-pod${POD_UID_SYSTEMD}.slice/cri-containerd-${CONTAINER_ID}.scope\n`;

/** cgroup v2, cgroupfs driver. */
export const CGROUP_V2_CGROUPFS = `0::/kubepods/besteffort/pod${POD_UID}/${CONTAINER_ID}\n`;

/** systemd driver with the colon form some runtimes write (`<slice>:cri-containerd:<id>`). */
export const CGROUP_SYSTEMD_COLON = `1:name=systemd:/kubepods-besteffort-pod${POD_UID_SYSTEMD}.slice:cri-containerd:${CONTAINER_ID}\n`;

/** kind on a docker host: the pod's path under the node container's, plus the host's own. */
export const CGROUP_KIND_ON_DOCKER = [
  `1:cpuset:/docker/${OTHER_CONTAINER_ID}/kubepods/besteffort/pod${POD_UID}/${CONTAINER_ID}`,
  `0::/docker/${OTHER_CONTAINER_ID}/system.slice/containerd.service`,
  '',
].join('\n');

/** An agent in its own cgroup namespace reading another pod's process (v2, private cgroupns). */
export const CGROUP_V2_NAMESPACED = `0::/../../pod${POD_UID}/${CONTAINER_ID}\n`;

/** A plain docker container (no pod). */
export const CGROUP_DOCKER_ONLY = `0::/system.slice/docker-${CONTAINER_ID}.scope\n`;

/** Two hierarchies naming different pods: refused. */
export const CGROUP_POD_CONFLICT = [
  `4:memory:/kubepods/besteffort/pod${POD_UID}/${CONTAINER_ID}`,
  `3:cpuset:/kubepods/besteffort/pod${OTHER_POD_UID}/${CONTAINER_ID}`,
  '',
].join('\n');

/** Two hierarchies naming different containers of one pod: refused. */
export const CGROUP_CONTAINER_CONFLICT = [
  `4:memory:/kubepods/besteffort/pod${POD_UID}/${CONTAINER_ID}`,
  `3:cpuset:/kubepods/besteffort/pod${POD_UID}/${OTHER_CONTAINER_ID}`,
  '',
].join('\n');

/** A host process (systemd user session), cgroup v1. */
export const CGROUP_HOST_PROCESS = [
  '12:pids:/user.slice/user-0.slice/session-3.scope',
  '6:memory:/user.slice/user-0.slice/session-3.scope',
  '1:name=systemd:/user.slice/user-0.slice/session-3.scope',
  '0::/user.slice/user-0.slice/session-3.scope',
  '',
].join('\n');

/** mountinfo of a container process (cgroup v1): its cgroup mounts have the container's path as root. */
export const MOUNTINFO_V1_POD = [
  '1330 1216 0:180 / / rw,relatime master:409 - overlay overlay rw,lowerdir=/var/lib/containerd/l/A,upperdir=/var/lib/containerd/u,workdir=/var/lib/containerd/w',
  '1331 1330 0:182 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw',
  '1332 1330 0:183 / /dev rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755',
  '1336 1330 0:186 / /sys ro,nosuid,nodev,noexec,relatime - sysfs sysfs ro',
  '1337 1336 0:187 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - tmpfs tmpfs rw,mode=755',
  `1338 1337 0:29 /kubepods/besteffort/pod${POD_UID}/${CONTAINER_ID} /sys/fs/cgroup/systemd ro,nosuid,nodev,noexec,relatime master:11 - cgroup cgroup ro,xattr,name=systemd`,
  `1339 1337 0:33 /kubepods/besteffort/pod${POD_UID}/${CONTAINER_ID} /sys/fs/cgroup/memory ro,nosuid,nodev,noexec,relatime master:16 - cgroup cgroup ro,memory`,
  `1340 1337 0:34 / /sys/fs/cgroup/rdma ro,nosuid,nodev,noexec,relatime master:17 - cgroup cgroup ro,rdma`,
  '1360 1332 0:179 / /dev/mqueue rw,nosuid,nodev,noexec,relatime - mqueue mqueue rw',
  '1361 1330 0:201 / /local rw,relatime - tmpfs  rw,size=8192k',
  '',
].join('\n');

/** mountinfo of a container process with cgroup v2 and a private cgroup namespace (root `/..`). */
export const MOUNTINFO_V2_POD = [
  '2021 1917 0:254 / / rw,relatime - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w',
  `2030 2021 0:26 /../../kubepods-besteffort-pod${POD_UID_SYSTEMD}.slice/cri-containerd-${CONTAINER_ID}.scope /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - cgroup2 cgroup rw,nsdelegate,memory_recursiveprot`,
  '',
].join('\n');

/** mountinfo without any cgroup mount. */
export const MOUNTINFO_NO_CGROUP = [
  '22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw',
  '23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw',
  '',
].join('\n');
