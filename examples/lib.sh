# Shared by the example scripts (sourced, not run): starts `ztwim up` in a temp dir, registers the
# demo workload, fetches JWT-SVIDs, and cleans everything up on exit.
#
# `ztwim` below is `packages/cli/bin/ztwim.js`, run as a program (its first line picks node and
# its V8 flags), which is what `npx ztwim` runs inside this repository (after `npm ci`, which
# builds it). Naming the file keeps the scripts working from any directory without npx looking
# for a `ztwim` package elsewhere.
#
# Environment: TRUST_DOMAIN (example.org), OIDC_PORT (8443), SERVER_PORT (8081).
set -euo pipefail

EX_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$EX_DIR/.." && pwd)"
TD="${TRUST_DOMAIN:-example.org}"
OIDC_PORT="${OIDC_PORT:-8443}"
SERVER_PORT="${SERVER_PORT:-8081}"
WORKLOAD_ID="spiffe://$TD/ns/demo/sa/client"
ZTWIM_JS="$ROOT/packages/cli/bin/ztwim.js"

ztwim() { "$ZTWIM_JS" "$@"; }
step() { printf '\n==> %s\n' "$*"; }
ok() { printf 'ok: %s\n' "$*"; }
die() {
  printf 'FAIL: %s\n' "$*" >&2
  exit 1
}

[ -f "$ROOT/packages/cli/dist/main.js" ] || die "ztwim is not built: run \`npm ci\` (or \`npm run build\`) in $ROOT first"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/ztwim-example-XXXXXX")"
UP_PID=""
cleanup() {
  local rc=$?
  if [ -n "$UP_PID" ] && kill -0 "$UP_PID" 2>/dev/null; then
    kill -INT "$UP_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do
      kill -0 "$UP_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$UP_PID" 2>/dev/null || true
  fi
  if [ "$rc" != 0 ] && [ -f "$WORK/up.log" ]; then
    printf -- '--- ztwim up output ---\n' >&2
    cat "$WORK/up.log" >&2
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_up [extra `ztwim up` flags...]: server + agent + OIDC provider, state and sockets in $WORK.
start_up() {
  step "ztwim up -trustDomain $TD -oidcPort $OIDC_PORT${*:+ $*} (state and sockets in $WORK)"
  (cd "$WORK" && exec "$ZTWIM_JS" up -trustDomain "$TD" -dataDir "$WORK/state" \
    -serverPort "$SERVER_PORT" -serverSocketPath "$WORK/server.sock" -socketPath "$WORK/agent.sock" \
    -oidcPort "$OIDC_PORT" -metricsPort 0 -agentMetricsPort 0 "$@" >"$WORK/up.log" 2>&1) &
  UP_PID=$!
  for _ in $(seq 1 600); do
    grep -q 'Press Ctrl-C to stop.' "$WORK/up.log" 2>/dev/null && break
    kill -0 "$UP_PID" 2>/dev/null || die "ztwim up exited during start-up"
    sleep 0.1
  done
  grep -q 'Press Ctrl-C to stop.' "$WORK/up.log" || die "ztwim up not ready after 60 s"
  sed -n '1,/^$/p' "$WORK/up.log"
}

# register_workload: the entry for $WORKLOAD_ID, parented by spiffe://$TD/host, the node alias
# `ztwim up` gives its agent (whatever the agent's own ID, which changes when it is attested
# again), for every process of this unix user (the same selector a Kubernetes deployment would
# express as k8s:ns:demo + k8s:sa:client).
register_workload() {
  step "register $WORKLOAD_ID (selector unix:uid:$(id -u))"
  echo "parent (the agent's node alias): spiffe://$TD/host"
  ztwim server entry create -socketPath "$WORK/server.sock" -parentID "spiffe://$TD/host" -spiffeID "$WORKLOAD_ID" -selector "unix:uid:$(id -u)"
}

# fetch_jwt AUDIENCE SPIFFE_ID: prints the JWT-SVID the Workload API hands this process
# (retries while the agent has not synced a new entry yet).
fetch_jwt() {
  local aud="$1" id="$2" out
  for _ in $(seq 1 60); do
    if out="$(ztwim api fetch jwt -socketPath "$WORK/agent.sock" -audience "$aud" -spiffeID "$id" -output json 2>"$WORK/fetch.err")"; then
      printf '%s' "$out" | node -e 'const j = JSON.parse(require("fs").readFileSync(0, "utf8")); process.stdout.write(j[0].svids[0].svid)'
      return 0
    fi
    sleep 0.5
  done
  die "no JWT-SVID for $id (audience $aud): $(cat "$WORK/fetch.err")"
}

# show_claims TOKEN: the JOSE header and claims, for the reader.
show_claims() {
  node -e 'const [h, p] = process.argv[1].split("."); const d = (s) => JSON.parse(Buffer.from(s, "base64url").toString()); console.log("header:", JSON.stringify(d(h))); console.log("claims:", JSON.stringify(d(p)))' "$1"
}
