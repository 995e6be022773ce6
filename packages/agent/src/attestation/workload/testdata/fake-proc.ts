// Test helper (tests only): a procfs stand-in in a temp dir, for the `procRoot` option of the unix
// attestor and the peer tracker (SPIRE's HOST_PROC). `<root>/<pid>/{stat,status,exe}` are plain
// files and a symlink that a test rewrites at will, so each check of the pinned-process rules can
// be driven to one exact state (a changed uid, a replaced executable, a new process under the same
// pid) without racing a real process.
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface FakeProcess {
  readonly uid: number;
  readonly gid: number;
  readonly groups?: readonly (number | string)[];
  readonly startTime?: string;
  /** Target of the `exe` symlink; none when undefined. */
  readonly exe?: string;
}

/** `/proc/<pid>/status` as the kernel writes it (real, effective, saved, fs ids). */
export function statusText(p: { readonly uid: number; readonly gid: number; readonly groups?: readonly (number | string)[] }): string {
  return [
    'Name:\tworkload',
    'Umask:\t0022',
    'State:\tS (sleeping)',
    `Uid:\t${p.uid}\t${p.uid}\t${p.uid}\t${p.uid}`,
    `Gid:\t${p.gid}\t${p.gid}\t${p.gid}\t${p.gid}`,
    `Groups:\t${(p.groups ?? []).join(' ')} `,
    'NStgid:\t1',
    '',
  ].join('\n');
}

/** `/proc/<pid>/stat` of Linux 6.x (52 fields), with `startTime` as field 22. */
export function statText(pid: number, startTime: string): string {
  const after = Array.from({ length: 50 }, (_, i) => (i === 19 ? startTime : '0'));
  return `${pid} (workload) ${after.join(' ')}\n`;
}

export class FakeProc {
  readonly root = mkdtempSync(join(tmpdir(), 'ztwim-fakeproc-'));
  #moved = 0;

  dir(pid: number): string {
    return join(this.root, String(pid));
  }

  /** Creates (or rewrites) `<root>/<pid>` with these contents. */
  set(pid: number, p: FakeProcess): string {
    const d = this.dir(pid);
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, 'stat'), statText(pid, p.startTime ?? '4242'));
    writeFileSync(join(d, 'status'), statusText(p));
    this.setExe(pid, p.exe);
    return d;
  }

  setExe(pid: number, target: string | undefined): void {
    const link = join(this.dir(pid), 'exe');
    rmSync(link, { force: true });
    if (target !== undefined) symlinkSync(target, link);
  }

  writeStatus(pid: number, p: { readonly uid: number; readonly gid: number }): void {
    writeFileSync(join(this.dir(pid), 'status'), statusText(p));
  }

  /** Moves `<root>/<pid>` aside (the pinned directory lives on under another name): the pid is free. */
  vacate(pid: number): string {
    const aside = join(this.root, `gone-${this.#moved++}`);
    renameSync(this.dir(pid), aside);
    return aside;
  }

  unlink(pid: number, file: string): void {
    unlinkSync(join(this.dir(pid), file));
  }

  remove(): void {
    rmSync(this.root, { recursive: true, force: true });
  }
}
