// StrykerJS mutation testing of the security-critical modules (docs/mutation-testing.md).
// Test runner: @stryker-mutator/tap-runner, one `node --import tsx <test file>` process per test
// file with node's TAP reporter; coverage is per test file, so a mutant only runs the files that
// reach it. Mutants are written in place (the workspace packages resolve each other through
// node_modules symlinks to the real source tree, which a sandbox copy would bypass), activated
// by environment variable, and restored when the run ends. Run it with `node scripts/mutation.mjs`.
// Mutated in CI: the files with a committed baseline in test/mutation/stryker-incremental.json
// (a warm run only re-tests mutants whose code or tests changed). A new file gets its baseline
// from a cold run of that file alone, `node scripts/mutation.mjs --force --mutate <file>... --tests <glob>...`
// (docs/mutation-testing.md, "Adding a file"), before it joins MUTATE: a cold run of every file
// does not fit in CI time on a 2-core machine.
export const MUTATE = [
  'packages/server/src/api/authz.ts',
  'packages/server/src/api/agent-service.ts',
  'packages/server/src/attestation/join-token.ts',
  'packages/server/src/attestation/x509pop.ts',
  'packages/server/src/attestation/k8s-psat.ts',
  'packages/server/src/attestation/node-attestor.ts',
  'packages/spiffe/src/svid/verify.ts',
  'packages/spiffe/src/svid/jws-signature.ts',
  'packages/server/src/ca/x509-ca.ts',
  'packages/agent/src/attestation/workload/workload-attestor.ts',
  'packages/agent/src/attestation/workload/user-db.ts',
  'packages/agent/src/attestation/workload/peer-tracker.ts',
  'packages/agent/src/endpoints/workload-checks.ts',
  'packages/spiffe/src/id/spiffe-id.ts',
  'packages/spiffe/src/id/trust-domain.ts',
  'packages/spiffe/src/id/matcher.ts',
  'packages/spiffe/src/bundle/x509-bundle.ts',
  'packages/spiffe/src/bundle/set.ts',
  'packages/spiffe/src/svid/jwt-svid.ts',
  'packages/spiffe/src/bundle/jwt-bundle.ts',
  'packages/spiffe/src/svid/x509-svid.ts',
  'packages/spiffe/src/svid/svid-csr.ts',
  'packages/spiffe/src/bundle/spiffe-bundle.ts',
  'packages/server/src/ca/csr.ts',
  'packages/agent/src/attestation/workload/unix.ts',
  'packages/agent/src/attestation/workload/proc-linux.ts',
  'packages/agent/src/attestation/workload/k8s-selectors.ts',
  'packages/agent/src/attestation/workload/k8s-pod-list-cache.ts',
  'packages/agent/src/attestation/workload/k8s.ts',
  'packages/agent/src/attestation/workload/k8s-kubelet-client.ts',
  'packages/agent/src/attestation/workload/k8s-container-locator.ts',
];

// Security-critical modules still without a baseline: none (every module of issue #24's list is
// in MUTATE). A file to add goes here first, with its tests in NEXT_TEST_FILES.
export const NEXT = [];

// The test files that reach MUTATE (the dry run runs all of them once to map coverage).
export const TEST_FILES = [
  'packages/server/src/api/authz.test.ts',
  'packages/server/src/api/authz-*.test.ts',
  'packages/server/src/api/agent-attest.test.ts',
  'packages/server/src/api/agent-service-rules.test.ts',
  'packages/server/src/api/agent-filters.test.ts',
  'packages/server/src/api/agent-join-token-alias.test.ts',
  'packages/server/src/attestation/*.test.ts',
  'packages/spiffe/src/svid/verify.test.ts',
  'packages/spiffe/src/svid/verify-rules.test.ts',
  'packages/spiffe/src/svid/jws-signature.test.ts',
  'packages/spiffe/src/svid/jws-signature-rules.test.ts',
  'packages/spiffe/src/svid/jwt-svid.test.ts',
  'packages/spiffe/src/svid/jwt-svid-rules.test.ts',
  'packages/spiffe/src/svid/jwt-svid-claims-rules.test.ts',
  'packages/server/src/ca/x509-ca.test.ts',
  'packages/server/src/ca/x509-ca-*.test.ts',
  // The agent's workload attestation and peer pinning: the example tests and the rules tests on a
  // procfs stand-in (testdata/fake-proc.ts). unix.test.ts and peer-tracker.test.ts are left out:
  // each spawns some twenty real processes (setpriv, exec, pid reuse), a minute or more per
  // mutant on the shared machine; the rules they check are driven exactly by the *-rules tests.
  'packages/agent/src/attestation/workload/unix-rules.test.ts',
  'packages/agent/src/attestation/workload/unix-selectors.test.ts',
  'packages/agent/src/attestation/workload/unix-size-limit.test.ts',
  'packages/agent/src/attestation/workload/peer-tracker-rules.test.ts',
  'packages/agent/src/attestation/workload/peer-tracker-refusals.test.ts',
  'packages/agent/src/attestation/workload/peer-tracker-shared-pin.test.ts',
  'packages/agent/src/attestation/workload/proc-linux*.test.ts',
  'packages/agent/src/attestation/workload/user-db*.test.ts',
  'packages/agent/src/endpoints/workload-checks*.test.ts',
  'packages/agent/src/attestation/workload/k8s.test.ts',
  'packages/agent/src/attestation/workload/k8s-rules.test.ts',
  'packages/agent/src/attestation/workload/k8s-attestor-wiring.test.ts',
  'packages/agent/src/attestation/workload/k8s-kubelet-client*.test.ts',
  'packages/agent/src/attestation/workload/k8s-container-locator*.test.ts',
  'packages/spiffe/src/id/spiffe-id*.test.ts',
  'packages/spiffe/src/id/matcher.test.ts',
  'packages/spiffe/src/bundle/x509-bundle*.test.ts',
  'packages/spiffe/src/bundle/jwt-bundle*.test.ts',
  'packages/spiffe/src/svid/x509-svid*.test.ts',
  'packages/spiffe/src/svid/svid-csr.test.ts',
  'packages/spiffe/src/bundle/spiffe-bundle*.test.ts',
  'packages/server/src/ca/csr.test.ts',
  'packages/server/src/ca/csr-structure.test.ts',
  'packages/server/src/ca/csr-rules.test.ts',
  'packages/server/src/ca/csr-labels.test.ts',
];

// With NEXT: the tests that reach those modules.
export const NEXT_TEST_FILES = [];

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  packageManager: 'npm',
  plugins: ['@stryker-mutator/tap-runner'],
  testRunner: 'tap',
  tap: {
    testFiles: TEST_FILES,
    nodeArgs: [
      '-r',
      '{{hookFile}}',
      '--conditions=ztwim-source',
      '--import',
      'tsx',
      '--import',
      './scripts/fast-check-setup.mjs',
      '--test-reporter=tap',
      '{{testFile}}',
    ],
    forceBail: true,
  },
  mutate: MUTATE,
  coverageAnalysis: 'perTest',
  inPlace: true,
  incremental: true,
  incrementalFile: 'test/mutation/stryker-incremental.json',
  concurrency: 2,
  timeoutMS: 20000,
  timeoutFactor: 2,
  // The dry run runs every test file of TEST_FILES once; on the shared 2-core machine under load
  // it took more than Stryker's default 5 minutes.
  dryRunTimeoutMinutes: 20,
  thresholds: { high: 90, low: 80, break: null },
  // In place, Stryker would otherwise add `// @ts-nocheck` to every source file of the repository
  // (and restore them all at the end); tsx does not type-check, so the mutated files need none.
  disableTypeChecks: false,
  reporters: ['clear-text', 'progress-append-only', 'json'],
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  clearTextReporter: { allowColor: false, logTests: false, reportScoreTable: true, reportMutants: false },
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
};
