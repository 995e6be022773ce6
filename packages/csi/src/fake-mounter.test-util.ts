// An in-memory Mounter for unit tests (no root needed): remembers which targets are "mounted",
// counts the calls, and can fail or hold a mount on request.
import { resolve } from 'node:path';
import type { Mounter } from './mounter.ts';

export class FakeMounter implements Mounter {
  /** target → source, for each mount made and not undone. A target can be mounted more than once (stacked). */
  readonly mounts: Array<{ source: string; target: string }> = [];
  binds = 0;
  unmounts = 0;
  /** When set, the next bindMountReadOnly throws it. */
  failNextBind: Error | undefined;
  /** When set, bindMountReadOnly waits for this promise before recording the mount. */
  holdBind: Promise<void> | undefined;

  async isMountPoint(path: string): Promise<boolean> {
    const p = resolve(path);
    return this.mounts.some((m) => m.target === p);
  }

  async bindMountReadOnly(source: string, target: string): Promise<void> {
    this.binds++;
    const err = this.failNextBind;
    this.failNextBind = undefined;
    if (err !== undefined) throw err;
    if (this.holdBind !== undefined) await this.holdBind;
    this.mounts.push({ source, target: resolve(target) });
  }

  async unmount(target: string): Promise<void> {
    this.unmounts++;
    const p = resolve(target);
    const i = this.mounts.findLastIndex((m) => m.target === p);
    if (i < 0) throw new Error(`umount: ${target}: not mounted`);
    this.mounts.splice(i, 1);
  }
}
