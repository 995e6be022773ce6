export { FakeClock } from './fake-clock.ts';
export {
  H2_PREFACE, FRAME, FLAG, h2Frame, hpackLiterals, h2Hello, grpcRequestHeaders, hostile,
  connectRaw, closedPromise, openFds, waitUntil, trickle,
} from './hostile-h2.ts';
export type { RawTarget } from './hostile-h2.ts';
export { makeCa, issueServerCert, tempDir } from './pki.ts';
export type { TestCa, TestCert } from './pki.ts';
