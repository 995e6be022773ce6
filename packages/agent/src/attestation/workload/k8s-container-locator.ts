// Pod UID and container ID of a process, from `/proc/<pid>/mountinfo` and `/proc/<pid>/cgroup`, as
// SPIRE v1.13's k8s workload attestor finds them: the "new container locator" (SPIRE
// pkg/common/containerinfo, the default) and the legacy cgroup regex (use_new_container_locator =
// false). Written here rather than taken from a library: no npm package parses these paths, and
// the rules (which segment wins, what counts as a conflict) must be SPIRE's to give its selectors.
import { readFileSync } from 'node:fs';

import { ZtwimError, silentLogger, type Logger, internal } from '@ztwim/core';

/** What the locator found; `containerId` undefined: the process is not in a container. */
export interface ContainerLocation {
  readonly podUid?: string;
  readonly containerId?: string;
}

/** The two fields of a mountinfo line that matter here (proc(5): field 4 and the fs type). */
export interface MountInfoEntry {
  readonly root: string;
  readonly fsType: string;
}

/**
 * Parses `/proc/<pid>/mountinfo`. Lines are split on single spaces, so an empty mount source (a
 * tmpfs line `... - tmpfs  rw,...`) stays an empty field instead of shifting the others (the
 * parser SPIRE v1.13 uses rejects such files; later SPIRE releases split the same way as here).
 */
export function parseMountInfo(text: string): MountInfoEntry[] {
  const out: MountInfoEntry[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const fields = line.split(' ');
    const sep = fields.indexOf('-');
    if (sep < 0) throw internal(`missing separator in mountinfo line: ${line}`);
    if (sep < 6) throw internal(`expected at least 6 fields before separator in mountinfo line: ${line}`);
    const fsType = fields[sep + 1];
    if (fsType === undefined || fsType === '') throw internal(`missing filesystem type in mountinfo line: ${line}`);
    out.push({ root: fields[3] as string, fsType });
  }
  return out;
}

/**
 * Parses `/proc/<pid>/cgroup` (`hierarchy-ID:controllers:path`) into its paths. The path is
 * everything after the second colon: systemd-driver paths may hold colons themselves
 * (`...slice:cri-containerd:<id>`).
 */
export function parseCgroupPaths(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    const a = line.indexOf(':');
    const b = a < 0 ? -1 : line.indexOf(':', a + 1);
    if (b < 0) throw internal(`invalid cgroup entry, contains ${line.split(':').length - 1} colon separators: ${line}`);
    out.push(line.slice(b + 1));
  }
  return out;
}

// cgroupfs (`pod<uid>`) and systemd (`pod<uid with _>`) renderings of the pod UID. `\b` is the
// ASCII word boundary in both Go's RE2 and JavaScript (without the u flag).
const POD_UID = /\bpod([0-9a-fA-F]{8}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{12})\b/;
// A container ID is, by convention, 64 hex characters.
const CONTAINER_ID = /\b([0-9a-fA-F]{64})\b/;

function splitLast(p: string): [rest: string, segment: string] {
  const i = p.lastIndexOf('/');
  const rest = i < 0 ? '' : p.slice(0, i);
  return [rest.replace(/\/+$/, ''), p.slice(i + 1)];
}

/**
 * Pod UID and container ID of one cgroup path or mount root: walking back from the last segment
 * to the first one holding a 64-hex container ID, then from what is left of that segment further
 * back to the first `pod<uid>`.
 */
export function extractFromCgroupPath(path: string, wantPodUid = true): ContainerLocation {
  let [rest, segment] = splitLast(path);
  let containerId: string | undefined;
  while (segment !== '') {
    const m = CONTAINER_ID.exec(segment);
    if (m !== null) {
      containerId = m[1] as string;
      segment = segment.slice(0, m.index);
      break;
    }
    [rest, segment] = splitLast(rest);
  }
  if (containerId === undefined) return {};
  if (!wantPodUid) return { containerId };
  if (segment === '') [rest, segment] = splitLast(rest);
  while (segment !== '') {
    const m = POD_UID.exec(segment);
    if (m !== null) return { podUid: (m[1] as string).replaceAll('_', '-'), containerId };
    [rest, segment] = splitLast(rest);
  }
  return { containerId };
}

/**
 * Combines the findings of several cgroup paths (one per v1 hierarchy, or mounts) the way SPIRE's
 * extractor does: an entry with a pod UID overrides those without (kind on a docker host shows
 * the host container too), entries without one are then ignored, and two different pod UIDs or
 * container IDs are an error: the safe answer is none.
 */
export class LocationAccumulator {
  #podUid = '';
  #containerId = '';

  add(found: ContainerLocation, where: string): void {
    const podUid = found.podUid ?? '';
    const containerId = found.containerId ?? '';
    // A path without a container ID (a cgroup mount at `/`, a host-level hierarchy) says nothing
    // about the process, so it is skipped rather than counted as a conflict.
    if (containerId === '') return;
    if (this.#podUid !== '' && podUid === '') return;
    if (this.#podUid === '' && podUid !== '') {
      this.#podUid = podUid;
      this.#containerId = containerId;
    }
    if (podUid !== '' && this.#podUid !== '' && podUid !== this.#podUid) {
      throw conflict(`multiple pod UIDs found (${JSON.stringify(this.#podUid)}, ${JSON.stringify(podUid)})`, where);
    }
    if (this.#containerId !== '' && containerId !== this.#containerId) {
      throw conflict(`multiple container IDs found (${JSON.stringify(this.#containerId)}, ${JSON.stringify(containerId)})`, where);
    }
    this.#containerId = containerId;
    this.#podUid = podUid;
  }

  result(): ContainerLocation {
    return {
      ...(this.#podUid === '' ? {} : { podUid: this.#podUid }),
      ...(this.#containerId === '' ? {} : { containerId: this.#containerId }),
    };
  }
}

function conflict(message: string, where: string): ZtwimError {
  return new ZtwimError('ERR_FAILED_PRECONDITION', `k8s: ${message}`, { fields: { cgroup_path: where } });
}

// The legacy locator's regex (SPIRE's `cgroupRE`): a `pod`-prefixed UID between punctuation, then
// punctuation-separated segments, the last one the container ID. [[:punct:]] is ASCII punctuation.
const P = '[!-/:-@\\[-`{-~]';
const NP = '[^!-/:-@\\[-`{-~]';
const LEGACY_CGROUP = new RegExp(
  `${P}pod([0-9a-fA-F]{8}${P}[0-9a-fA-F]{4}${P}[0-9a-fA-F]{4}${P}[0-9a-fA-F]{4}${P}[0-9a-fA-F]{12})${P}(?:${NP}+${P})*(${NP}+)$`,
);

/** The legacy locator on one cgroup path (`.scope` trimmed first); both parts or nothing. */
export function legacyExtractFromCgroupPath(path: string): ContainerLocation {
  const m = LEGACY_CGROUP.exec(path.endsWith('.scope') ? path.slice(0, -'.scope'.length) : path);
  if (m === null) return {};
  return { podUid: (m[1] as string).replace(new RegExp(P, 'g'), '-'), containerId: m[2] as string };
}

/** The legacy locator over every cgroup path: the first match wins, any different one is an error. */
export function legacyLocate(paths: readonly string[]): ContainerLocation {
  let found: Required<ContainerLocation> | undefined;
  for (const path of paths) {
    const c = legacyExtractFromCgroupPath(path);
    if (c.containerId === undefined || c.podUid === undefined) continue;
    if (found === undefined) found = { podUid: c.podUid, containerId: c.containerId };
    else if (found.containerId !== c.containerId) {
      throw conflict(`multiple container IDs found in cgroups (${found.containerId}, ${c.containerId})`, path);
    } else if (found.podUid !== c.podUid) {
      throw conflict(`multiple pod UIDs found in cgroups (${found.podUid}, ${c.podUid})`, path);
    }
  }
  return found ?? {};
}

export interface ContainerLocatorOptions {
  /** procfs mount (SPIRE's HOST_PROC); default `/proc`. */
  readonly procRoot?: string;
  /** `use_new_container_locator` (default true). */
  readonly useNewContainerLocator?: boolean;
  /** `verbose_container_locator_logs`: every mount and cgroup path at debug level. */
  readonly verbose?: boolean;
  readonly logger?: Logger;
  /** Reads a procfs file; ENOENT (the process or file is gone) means "not found". */
  readonly readFile?: (path: string) => string;
}

function isNotFound(e: unknown): boolean {
  return typeof e === 'object' && e !== null && (e as { code?: unknown }).code === 'ENOENT';
}

/** Finds where a process runs: reads procfs synchronously (no disk wait, as the unix attestor). */
export class ContainerLocator {
  readonly #procRoot: string;
  readonly #newLocator: boolean;
  readonly #verbose: boolean;
  readonly #log: Logger;
  readonly #read: (path: string) => string;

  constructor(opts: ContainerLocatorOptions = {}) {
    this.#procRoot = opts.procRoot ?? '/proc';
    this.#newLocator = opts.useNewContainerLocator ?? true;
    this.#verbose = opts.verbose ?? false;
    this.#log = opts.logger ?? silentLogger();
    this.#read = opts.readFile ?? ((p) => readFileSync(p, 'utf8'));
  }

  /** The process's pod UID and container ID; `{}` when it is not in a container. */
  locate(pid: number): ContainerLocation {
    if (!this.#newLocator) {
      const paths = this.#cgroupPaths(pid);
      return paths === undefined ? {} : legacyLocate(paths);
    }
    // /proc/<pid>/cgroup first: the kernel assigns it and a workload cannot forge it, whereas a
    // process allowed to mount could bind another pod's cgroup into its mountinfo. SPIRE v1.13.0
    // read mountinfo first; later releases changed to this order for that reason. For a real pod
    // both name the same pod and container. mountinfo is the fallback when the cgroup file holds
    // no container ID.
    const paths = this.#cgroupPaths(pid);
    if (paths !== undefined) {
      const acc = new LocationAccumulator();
      for (const p of paths) acc.add(extractFromCgroupPath(p), p);
      const fromCgroup = acc.result();
      if (fromCgroup.containerId !== undefined) return fromCgroup;
    }
    return this.#fromMountInfo(pid);
  }

  #fromMountInfo(pid: number): ContainerLocation {
    const path = `${this.#procRoot}/${pid}/mountinfo`;
    let entries: MountInfoEntry[];
    try {
      entries = parseMountInfo(this.#read(path));
    } catch (e) {
      if (isNotFound(e)) return {};
      throw new ZtwimError('ERR_INTERNAL', `k8s: failed to parse mount info at ${JSON.stringify(path)}`, { cause: e, fields: { pid } });
    }
    if (this.#verbose) {
      entries.forEach((m, i) => this.#log.debug({ pid, index: i + 1, total: entries.length, type: m.fsType, root: m.root }, 'k8s: PID mount enumerated'));
    }
    const acc = new LocationAccumulator();
    for (const m of entries) {
      if (m.fsType !== 'cgroup' && m.fsType !== 'cgroup2') continue;
      acc.add(extractFromCgroupPath(m.root), m.root);
    }
    return acc.result();
  }

  #cgroupPaths(pid: number): string[] | undefined {
    const path = `${this.#procRoot}/${pid}/cgroup`;
    let paths: string[];
    try {
      paths = parseCgroupPaths(this.#read(path));
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw new ZtwimError('ERR_INTERNAL', `k8s: unable to obtain cgroups at ${JSON.stringify(path)}`, { cause: e, fields: { pid } });
    }
    if (this.#verbose) {
      paths.forEach((p, i) => this.#log.debug({ pid, index: i + 1, total: paths.length, path: p }, 'k8s: PID cgroup enumerated'));
    }
    return paths;
  }
}
