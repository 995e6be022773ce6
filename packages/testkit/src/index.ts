export { FakeClock } from './fake-clock.ts';
export { eventually, holdsFor } from './eventually.ts';
export type { EventuallyOptions, HoldsForOptions } from './eventually.ts';
export { makeTmpDir, withTmpDir } from './tmp-dir.ts';
export { captureLogs } from './capture-logs.ts';
export type { CapturedLogs, LogLine } from './capture-logs.ts';
export type { TmpDir } from './tmp-dir.ts';
export { makeCa, issueServerCert, opensslCert, tempDir, OpensslError } from './test-pki.ts';
export type { OpensslCertOptions, TestCa, TestCert } from './test-pki.ts';
export {
  H2_PREFACE,
  FRAME,
  FLAG,
  h2Frame,
  hpackLiterals,
  h2Hello,
  grpcRequestHeaders,
  hostile,
  connectRaw,
  closedPromise,
  openFds,
  waitUntil,
  trickle,
} from './hostile-h2.ts';
export type { RawTarget } from './hostile-h2.ts';
