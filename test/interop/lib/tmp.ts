// Per-test temporary directories: @ztwim/testkit's, with the interop prefix.
import { makeTmpDir as testkitTmpDir, type TmpDir } from '@ztwim/testkit';

export type { TmpDir };

export function makeTmpDir(prefix = 'ztwim-interop-'): TmpDir {
  return testkitTmpDir(prefix);
}
