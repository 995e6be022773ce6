// The mount operations the Node service needs, behind an interface so unit tests run without
// root (fake-mounter.test-util.ts) and the driver does real mounts.
//
// Node has no mount(2)/umount(2) binding, and a native addon for two syscalls would be one more
// thing to compile on every install, so LinuxMounter runs util-linux's `mount` and `umount`
// (what the kubelet's own mount-utils does too). One `mount --bind -o ro SRC TGT` is enough:
// since util-linux 2.27 libmount turns "bind,ro" into the bind mount followed by the
// MS_REMOUNT|MS_BIND|MS_RDONLY remount that makes it read-only (a plain MS_BIND|MS_RDONLY would
// silently stay read-write). The result is checked in mountinfo all the same, and a mount left
// read-write by an older `mount` is undone, never handed out.
import { execFile } from 'node:child_process';
import { realpath } from 'node:fs/promises';
import { resolve } from 'node:path';
import { errnoOf, internal } from '@ztwim/core';
import { readMountInfo, type MountInfoEntry, PROC_SELF_MOUNTINFO } from './mountinfo.ts';

export interface Mounter {
  /** True when `path` (symlinks resolved) is a mount point; false when it is not or does not exist. */
  isMountPoint(path: string): Promise<boolean>;
  /** Bind-mounts directory `source` onto directory `target`, read-only. */
  bindMountReadOnly(source: string, target: string): Promise<void>;
  /** Unmounts the mount at `target`. */
  unmount(target: string): Promise<void>;
}

export interface LinuxMounterOptions {
  /** util-linux `mount` (default: `mount` on PATH). */
  readonly mountCommand?: string;
  /** util-linux `umount` (default: `umount` on PATH). */
  readonly umountCommand?: string;
  /** Default /proc/self/mountinfo. */
  readonly mountInfoPath?: string;
  /** How long one mount/umount may take (default 30 s). */
  readonly timeoutMs?: number;
}

/** `path` with symlinks resolved (mountinfo lists resolved paths); the path itself if it does not exist. */
export async function resolvedPath(path: string): Promise<string> {
  try {
    return await realpath(path);
  } catch (e) {
    if (errnoOf(e) === 'ENOENT' || errnoOf(e) === 'ENOTDIR') return resolve(path);
    throw e;
  }
}

export class LinuxMounter implements Mounter {
  private readonly mountCommand: string;
  private readonly umountCommand: string;
  private readonly mountInfoPath: string;
  private readonly timeoutMs: number;

  constructor(opts: LinuxMounterOptions = {}) {
    this.mountCommand = opts.mountCommand ?? 'mount';
    this.umountCommand = opts.umountCommand ?? 'umount';
    this.mountInfoPath = opts.mountInfoPath ?? PROC_SELF_MOUNTINFO;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
  }

  async isMountPoint(path: string): Promise<boolean> {
    return (await this.mountAt(path)) !== undefined;
  }

  async bindMountReadOnly(source: string, target: string): Promise<void> {
    try {
      await this.run(this.mountCommand, ['--bind', '-o', 'ro', source, target]);
    } catch (e) {
      // Never leave a half-done (read-write) mount behind a failure.
      if (await this.isMountPoint(target)) await this.run(this.umountCommand, [target]).catch(() => undefined);
      throw e;
    }
    const m = await this.mountAt(target);
    if (m === undefined) throw internal(`${this.mountCommand} reported success but ${target} is not a mount point`);
    if (!m.options.includes('ro')) {
      await this.run(this.umountCommand, [target]);
      throw internal(`bind mount of ${source} on ${target} is not read-only (options ${m.options.join(',')}); unmounted it`);
    }
  }

  async unmount(target: string): Promise<void> {
    await this.run(this.umountCommand, [target]);
  }

  /** The topmost mount at `path`, if any. */
  private async mountAt(path: string): Promise<MountInfoEntry | undefined> {
    const p = await resolvedPath(path);
    const entries = await readMountInfo(this.mountInfoPath);
    return entries.findLast((e) => e.mountPoint === p);
  }

  private run(cmd: string, args: readonly string[]): Promise<void> {
    return new Promise((done, fail) => {
      execFile(cmd, args, { timeout: this.timeoutMs, encoding: 'utf8' }, (err, _stdout, stderr) => {
        if (err === null) return done();
        const why = stderr.trim() !== '' ? stderr.trim() : err.message;
        fail(internal(`${cmd} ${args.join(' ')}: ${why}`, { cause: err }));
      });
    });
  }
}
