#!/usr/bin/env bash
# Installs what the tests need (npm packages, then the interop peers: openssl, PostgreSQL,
# pebble, py-spiffe, PyJWT, go modules, SPIRE binaries), builds, and runs every test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
node_prefix=$(dirname "$(dirname "$(command -v node)")")
if [ -z "${npm_config_nodedir:-}" ] && [ -f "$node_prefix/include/node/node_api.h" ]; then
  export npm_config_nodedir="$node_prefix"
fi
export GOSUMDB="${GOSUMDB:-off}" GOFLAGS="${GOFLAGS:--mod=mod}"
npm ci --no-audit --no-fund
# The PostgreSQL clusters the tests start (scripts/pg-test-server.sh: the datastore suite's two, the
# outage test's, and the HA tests' two: pg-cluster.test-util.ts's HA_PG_ENV, which outlived the run
# before, and agent-failover's) and the Kubernetes test cluster (scripts/k8s/cluster.sh, brought up by the
# k8s tests through ensureCluster; purged, so every run starts from an empty cluster) are stopped
# when this script ends, however it ends.
stop_test_clusters() {
  local d
  for d in /tmp/ztwim-pg-test:25432 /tmp/ztwim-pg-fault:25433 /tmp/ztwim-pg-server-outage:25434 /tmp/ztwim-pg-ha-server:25471 /tmp/ztwim-pg-ha-agent:25472; do
    ZTWIM_PG_DIR="${d%%:*}" ZTWIM_PG_PORT="${d##*:}" bash scripts/pg-test-server.sh stop >/dev/null 2>&1 || true
  done
  bash scripts/k8s/cluster.sh down --purge || true
  rm -rf "${ZTWIM_IMAGE_STAMPS:-/nonexistent}"
}
trap stop_test_clusters EXIT
# The test images are built and imported once for the tests and the bench smoke run together
# (test/k8s/lib/image.ts, scripts/image-stamps.mjs).
ZTWIM_IMAGE_STAMPS=$(mkdir -p "${ZTWIM_CACHE:-$HOME/.cache/ztwim}/images/run-stamps" && mktemp -d "${ZTWIM_CACHE:-$HOME/.cache/ztwim}/images/run-stamps/run-XXXXXX")
export ZTWIM_IMAGE_STAMPS
if [ -x scripts/setup-interop.sh ]; then bash scripts/setup-interop.sh; fi
npm run build
npm test
# Bench scripts still run (tiny sizes, figures to a temp dir), then mutation testing of the
# security-critical modules (incremental against test/mutation/stryker-incremental.json; fails
# below the baseline score; docs/mutation-testing.md).
node scripts/bench-smoke.mjs
node scripts/mutation.mjs
