// A fake Workload API server (gRPC over a Unix socket) and the test CA that issues its SVIDs: the
// SDK's own test helpers. A subpath of its own (@ztwim/testkit/workload-api) so that tests that
// only want FakeClock do not load the gRPC server and jose.
export { FakeWorkloadApi, makeTestCa, makeJwtIssuer, signJwtSvid } from '@ztwim/spiffe/testing';
export type { FakeSvid, FakeState, JwtIssuer, TestCa } from '@ztwim/spiffe/testing';
