// Test helpers of the SDK for other packages' tests, through @ztwim/testkit (subpath
// @ztwim/spiffe/testing; left out of the packed package with the rest of dist/testdata).
export { FakeWorkloadApi, makeTestCa, makeJwtIssuer, signJwtSvid } from './fake-workload-api.ts';
export type { FakeSvid, FakeState, JwtIssuer, TestCa } from './fake-workload-api.ts';
