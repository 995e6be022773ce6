#!/usr/bin/env bash
# Builds the Kubernetes binaries the tests run (kube-apiserver, kube-controller-manager,
# kube-scheduler, kubelet, kubectl v1.37.2), etcd/etcdctl 3.6 and csi-sanity from the Go module
# proxy into ${ZTWIM_CACHE:-~/.cache/ztwim}/k8s-v1.37.2/bin. Nothing is committed: the wrapper
# module is generated in the cache dir, Go's own caches (~/go/pkg/mod, ~/.cache/go-build) keep a
# second build short (~30 s warm; ~15-20 min on a new 2-core machine).
#
# Why a wrapper module: `go install k8s.io/kubernetes/cmd/...@v1.37.2` fails because kubernetes'
# go.mod requires its staging modules at v0.0.0 with `replace => ./staging/...`; the wrapper
# replaces each of them with the published v0.37.2.
set -euo pipefail
K8S_VERSION="v1.37.2"
STAGING_VERSION="v0.37.2"
ETCD_VERSION="v3.6.17"
CSI_SANITY_VERSION="v5.6.0"
CACHE="${ZTWIM_CACHE:-$HOME/.cache/ztwim}"
OUT="$CACHE/k8s-$K8S_VERSION"
BIN="$OUT/bin"
export GOSUMDB=off GOFLAGS=-mod=mod CGO_ENABLED=0
log() { printf '[k8s-build] %s\n' "$*" >&2; }

mkdir -p "$BIN" "$OUT/wrapper"
K8S_CMDS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl)
need=()
for c in "${K8S_CMDS[@]}"; do [ -x "$BIN/$c" ] || need+=("$c"); done

if [ "${#need[@]}" -gt 0 ]; then
  cd "$OUT/wrapper"
  if [ ! -f go.mod ] || ! grep -q "k8s.io/kubernetes $K8S_VERSION" go.mod; then
    log "generating the wrapper module"
    gomod="$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
    [ -f "$gomod" ] || { log "cannot find kubernetes' go.mod"; exit 1; }
    {
      echo "module ztwim.local/k8s-build"
      echo
      echo "go 1.26.0"
      echo
      echo "require k8s.io/kubernetes $K8S_VERSION"
      echo
      # Every k8s.io module kubernetes requires at v0.0.0 is one of its staging modules.
      grep -E '^[[:space:]]+k8s\.io/[^ ]+ v0\.0\.0$' "$gomod" | awk -v v="$STAGING_VERSION" '{print "replace " $1 " => " $1 " " v}' | sort -u
    } > go.mod
    {
      echo "//go:build tools"
      echo
      echo "package tools"
      echo
      echo "import ("
      for c in "${K8S_CMDS[@]}"; do echo "	_ \"k8s.io/kubernetes/cmd/$c\""; done
      echo ")"
    } > tools.go
    go mod tidy >&2
  fi
  ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37 -X k8s.io/component-base/version.gitTreeState=clean -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"
  for c in "${need[@]}"; do
    log "building $c $K8S_VERSION"
    t0=$(date +%s)
    go build -trimpath -ldflags "$ldflags" -o "$BIN/$c.tmp" "k8s.io/kubernetes/cmd/$c"
    mv "$BIN/$c.tmp" "$BIN/$c"
    log "  $c built in $(( $(date +%s) - t0 )) s"
  done
fi

if [ ! -x "$BIN/etcd" ] || [ ! -x "$BIN/etcdctl" ]; then
  # etcd's server and etcdctl modules carry replace directives (to their sibling modules), so
  # `go install ...@version` refuses them; a wrapper module requiring both builds them with the
  # published sibling versions.
  log "building etcd $ETCD_VERSION"
  mkdir -p "$OUT/etcd-wrapper"
  (
    cd "$OUT/etcd-wrapper"
    if [ ! -f go.mod ] || ! grep -q "go.etcd.io/etcd/server/v3 $ETCD_VERSION" go.mod; then
      printf 'module ztwim.local/etcd-build\n\ngo 1.24\n' > go.mod
      go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" "go.etcd.io/etcd/etcdctl/v3@$ETCD_VERSION" >&2
    fi
    go build -trimpath -ldflags "-s -w" -o "$BIN/etcd.tmp" go.etcd.io/etcd/server/v3
    go build -trimpath -ldflags "-s -w" -o "$BIN/etcdctl.tmp" go.etcd.io/etcd/etcdctl/v3
    mv "$BIN/etcd.tmp" "$BIN/etcd"
    mv "$BIN/etcdctl.tmp" "$BIN/etcdctl"
  )
fi
if [ ! -x "$BIN/csi-sanity" ]; then
  log "building csi-sanity $CSI_SANITY_VERSION"
  GOBIN="$BIN" go install -trimpath -ldflags "-s -w" "github.com/kubernetes-csi/csi-test/v5/cmd/csi-sanity@$CSI_SANITY_VERSION"
fi
for c in "${K8S_CMDS[@]}" etcd etcdctl csi-sanity; do [ -x "$BIN/$c" ] || { log "missing $BIN/$c"; exit 1; }; done
log "binaries in $BIN"
echo "$BIN"
