// Reads which paths are mount points from /proc/self/mountinfo (proc(5)): field 5 of each line
// is the mount point, relative to the process's root, with space, tab, newline and backslash
// written as octal escapes (`\040`, `\011`, `\012`, `\134`). Used to make NodePublishVolume and
// NodeUnpublishVolume idempotent and for NodeGetVolumeStats, as spiffe-csi does.
import { readFile } from 'node:fs/promises';

export interface MountInfoEntry {
  readonly mountId: number;
  readonly parentId: number;
  /** `major:minor` of the mounted filesystem. */
  readonly device: string;
  /** The directory of that filesystem mounted here (a bind mount's source, within its filesystem). */
  readonly root: string;
  readonly mountPoint: string;
  /** Per-mount options, e.g. `ro,relatime`. */
  readonly options: readonly string[];
}

export const PROC_SELF_MOUNTINFO = '/proc/self/mountinfo';

function unescapeOctal(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Parses mountinfo text; lines with fewer than 6 fields are skipped (the kernel never writes them). */
export function parseMountInfo(text: string): MountInfoEntry[] {
  const out: MountInfoEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f.length < 6) continue;
    const [id, parent, device, root, mountPoint, options] = f as [string, string, string, string, string, string];
    const mountId = Number(id);
    const parentId = Number(parent);
    if (!Number.isInteger(mountId) || !Number.isInteger(parentId)) continue;
    out.push({ mountId, parentId, device, root: unescapeOctal(root), mountPoint: unescapeOctal(mountPoint), options: options.split(',') });
  }
  return out;
}

/** The entries of a mountinfo file (default: this process's). */
export async function readMountInfo(path: string = PROC_SELF_MOUNTINFO): Promise<MountInfoEntry[]> {
  return parseMountInfo(await readFile(path, 'utf8'));
}
