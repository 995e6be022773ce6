#!/usr/bin/env bash
# Installs the peers the interop tests (test/interop) talk to. Idempotent and fast on a second run.
# Run as root (CI runs it before the tests). Prints what it installed or found.
#
#   apt:  openssl pebble postgresql systemd strace, and for the Kubernetes test node containerd runc
#         busybox-static containernetworking-plugins, chromium for the console's browser tests
#         (apt-get update only when something is missing)
#   pip:  spiffe (py-spiffe) PyJWT cryptography; moto[server] (moto_server: AWS STS for examples/sdk/aws-sts.ts)
#   go:   module downloads for every test/interop/*/go.mod (GOSUMDB=off: the checksum DB is unreachable)
#   java: java-spiffe 0.8.17 probe (test/interop/java, Maven; deps in ~/.m2) built into
#         ${ZTWIM_CACHE:-~/.cache/ztwim}/java-probe/<hash of its sources>/ (apt: openjdk-17-jdk-headless maven if missing)
#   SPIRE v1.13.0 spire-server + spire-agent + oidc-discovery-provider built from test/interop/spire (the proxy refuses
#         `go install ...@v1.13.0`), into ${ZTWIM_CACHE:-~/.cache/ztwim}/spire-v1.13.0/bin/
#         (ZTWIM_SKIP_SPIRE=1 skips this step)
#   k8s:  Kubernetes v1.37.2, etcd 3.6, csi-sanity built by scripts/k8s/build.sh into
#         ${ZTWIM_CACHE:-~/.cache/ztwim}/k8s-v1.37.2/bin/ (15-20 min cold, ~30 s warm;
#         ZTWIM_SKIP_K8S=1 skips this step)
#   helm: Helm v4.3.2 (`go install helm.sh/helm/v4/cmd/helm@v4.3.2`) into
#         ${ZTWIM_CACHE:-~/.cache/ztwim}/helm-v4.3.2/bin/ for the operator chart tests (helm lint, helm template)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${ZTWIM_CACHE:-$HOME/.cache/ztwim}"
SPIRE_VERSION="v1.13.0"
SPIRE_BIN="$CACHE/spire-$SPIRE_VERSION/bin"
export GOSUMDB=off
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=mod"

log() { printf '[setup-interop] %s\n' "$*"; }
die() { printf '[setup-interop] ERROR: %s\n' "$*" >&2; exit 1; }

SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else log "not root and no sudo: apt step may fail"; fi
fi

# ---- apt ---------------------------------------------------------------------------------------
APT_PKGS=(openssl pebble postgresql systemd   # systemd: systemd-analyze verify of deploy/systemd units
  strace   # the crash and directory-fsync tests of @ztwim/core's atomicWriteFile
  containerd runc busybox-static containernetworking-plugins   # the k8s test node (scripts/k8s/cluster.sh)
  chromium)   # the console's browser tests (playwright-core drives Debian's chromium)
missing=()
for p in "${APT_PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "apt: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Update the package lists only when apt cannot find a candidate for a missing package.
  need_update=0
  for p in "${missing[@]}"; do
    cand="$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/ {print $2}')"
    if [ -z "$cand" ] || [ "$cand" = "(none)" ]; then need_update=1; fi
  done
  if [ "$need_update" = 1 ]; then $SUDO apt-get update -qq; fi
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  log "apt: installed ${missing[*]}"
else
  log "apt: already installed: ${APT_PKGS[*]}"
fi
for p in "${APT_PKGS[@]}"; do
  log "  $p $(dpkg-query -W -f='${Version}' "$p")"
done
# pebble installs to /usr/bin/pebble on Debian; postgres binaries live under /usr/lib/postgresql/<v>/bin.
command -v openssl >/dev/null || die "openssl not on PATH after install"

# ---- pip ---------------------------------------------------------------------------------------
PY="${PYTHON:-python3}"
command -v "$PY" >/dev/null || die "python3 not found"
if "$PY" -c 'import spiffe, jwt, cryptography' 2>/dev/null; then
  log "pip: spiffe PyJWT cryptography already importable"
else
  if ! "$PY" -m pip --version >/dev/null 2>&1; then
    log "pip: installing python3-pip (apt)"
    $SUDO apt-get install -y -qq --no-install-recommends python3-pip >/dev/null || {
      $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends python3-pip >/dev/null
    }
  fi
  log "pip: installing spiffe PyJWT cryptography"
  # A Debian system python refuses (PEP 668) unless told otherwise; pyenv/venv pythons do not.
  "$PY" -m pip install --quiet --disable-pip-version-check spiffe PyJWT cryptography ||
    "$PY" -m pip install --quiet --disable-pip-version-check --break-system-packages spiffe PyJWT cryptography
  "$PY" -c 'import spiffe, jwt, cryptography' || die "python packages still not importable by $PY"
fi
# moto's server (moto_server) stands in for AWS STS in test/interop/sdk-examples.test.ts.
if "$PY" -c 'import moto.server, flask' 2>/dev/null && command -v moto_server >/dev/null; then
  log "pip: moto[server] already installed"
else
  log "pip: installing moto[server]"
  "$PY" -m pip install --quiet --disable-pip-version-check 'moto[server]' ||
    "$PY" -m pip install --quiet --disable-pip-version-check --break-system-packages 'moto[server]'
  command -v moto_server >/dev/null || die "moto_server not on PATH after pip install 'moto[server]'"
fi
"$PY" - <<'EOF2'
import importlib.metadata as m
for d in ("spiffe", "PyJWT", "cryptography", "moto"):
    print(f"[setup-interop]   {d} {m.version(d)}")
EOF2

# ---- go ----------------------------------------------------------------------------------------
if ! command -v go >/dev/null && [ -x /usr/local/go/bin/go ]; then export PATH="$PATH:/usr/local/go/bin"; fi
command -v go >/dev/null || die "go not found on PATH (need Go >= 1.24; the tests also look in /usr/local/go/bin)"
log "go: $(go version)"
for mod in "$ROOT"/test/interop/*/go.mod; do
  dir="$(dirname "$mod")"
  rel="${dir#"$ROOT"/}"
  if [ "$(basename "$dir")" = "spire" ]; then continue; fi # handled below
  log "go: downloading modules for $rel"
  (cd "$dir" && go mod download)
done

# ---- java --------------------------------------------------------------------------------------
if ! command -v java >/dev/null || ! command -v mvn >/dev/null; then
  log "java: installing openjdk-17-jdk-headless maven"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends openjdk-17-jdk-headless maven >/dev/null
fi
log "java: $(java -version 2>&1 | head -1); $(mvn -v 2>/dev/null | head -1 | sed 's/\x1b\[[0-9;]*m//g')"
# The key must match javaProbe() in test/interop/lib/peers.ts: sha256 over each file of pom.xml and
# src/ (sorted paths), as path NUL content, first 16 hex digits.
JAVA_DIR="$ROOT/test/interop/java"
JAVA_KEY="$(cd "$JAVA_DIR" && find pom.xml src -type f | LC_ALL=C sort | while IFS= read -r f; do printf '%s\0' "$f"; cat "$f"; done | sha256sum | cut -c1-16)"
JAVA_OUT="$CACHE/java-probe/$JAVA_KEY"
if [ -f "$JAVA_OUT/java-spiffe-probe.jar" ]; then
  log "java: probe already built in $JAVA_OUT"
else
  log "java: building the java-spiffe probe into $JAVA_OUT"
  (cd "$JAVA_DIR" && mvn -B -q -Dprobe.build.dir="$JAVA_OUT" package) || die "java: mvn package failed"
fi

# ---- Kubernetes --------------------------------------------------------------------------------
if [ "${ZTWIM_SKIP_K8S:-0}" = 1 ]; then
  log "k8s: skipped (ZTWIM_SKIP_K8S=1); the k8s tests will fail"
else
  log "k8s: building or finding the binaries (scripts/k8s/build.sh; the first build takes 15-20 min)"
  K8S_BIN="$(bash "$ROOT/scripts/k8s/build.sh")" || die "k8s: scripts/k8s/build.sh failed"
  log "k8s: $("$K8S_BIN/kubectl" version --client 2>/dev/null | head -1), etcd $("$K8S_BIN/etcd" --version | sed -n 's/^etcd Version: //p')"
fi

# ---- Helm --------------------------------------------------------------------------------------
HELM_VERSION="v4.3.2"
HELM_BIN="$CACHE/helm-$HELM_VERSION/bin"
if [ -x "$HELM_BIN/helm" ]; then
  log "helm: $HELM_VERSION already in $HELM_BIN"
else
  log "helm: building $HELM_VERSION from the Go module proxy (a few minutes)"
  mkdir -p "$HELM_BIN"
  GOBIN="$HELM_BIN" GOFLAGS= go install "helm.sh/helm/v4/cmd/helm@$HELM_VERSION" || die "helm: go install failed"
fi
"$HELM_BIN/helm" version --short 2>&1 | sed 's/^/[setup-interop]   helm /' || die "helm does not run"

# ---- SPIRE -------------------------------------------------------------------------------------
if [ "${ZTWIM_SKIP_SPIRE:-0}" = 1 ]; then
  log "spire: skipped (ZTWIM_SKIP_SPIRE=1); SPIRE interop tests will fail"
  exit 0
fi
if [ -x "$SPIRE_BIN/spire-server" ] && [ -x "$SPIRE_BIN/spire-agent" ] && [ -x "$SPIRE_BIN/oidc-discovery-provider" ]; then
  log "spire: $SPIRE_VERSION binaries already built in $SPIRE_BIN"
else
  log "spire: building $SPIRE_VERSION (first run takes several minutes)"
  mkdir -p "$SPIRE_BIN"
  (
    cd "$ROOT/test/interop/spire"
    go mod download
    go build -o "$SPIRE_BIN/" github.com/spiffe/spire/cmd/spire-server github.com/spiffe/spire/cmd/spire-agent \
      github.com/spiffe/spire/support/oidc-discovery-provider
  )
fi
"$SPIRE_BIN/spire-server" --version 2>&1 | sed 's/^/[setup-interop]   spire-server /' || die "spire-server does not run"
"$SPIRE_BIN/spire-agent" --version 2>&1 | sed 's/^/[setup-interop]   spire-agent /' || die "spire-agent does not run"
log "done"
