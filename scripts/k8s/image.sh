#!/usr/bin/env bash
# Builds the ztwim container image from this tree without a registry or a container engine, and
# with --import loads it into the running test node (scripts/k8s/cluster.sh).
#
#   scripts/k8s/image.sh [--spire] [--import]
#
#   (default)  ztwim:<version>: the installed node and the libraries ldd lists, passwd/group with
#              the non-root user 65532, CA certificates, the CLI bundle and the packages it keeps
#              external, mount/umount for `ztwim csi`, /usr/local/bin/ztwim as entrypoint
#              (scripts/k8s/image-contents.mjs holds the list; the Dockerfile follows it too)
#   --spire    ztwim-spire-test:<version>, the same plus SPIRE v1.13.0's spire-agent and
#              spire-server from ${ZTWIM_CACHE:-~/.cache/ztwim}/spire-v1.13.0/bin/ (tests only)
#   ZTWIM_IMAGE_TAG=<tag>  names the image ztwim:<tag> instead of ztwim:<version> (a branch's image
#              on the shared test node, beside main's)
#   --import   `ctr -a $ZTWIM_K8S_CONTAINERD_SOCK -n k8s.io image import` of the tarball (the env
#              comes from `eval "$(scripts/k8s/cluster.sh up)"`, or from $ZTWIM_K8S_DIR/env);
#              skipped when the node already has that image at the same digest
#
# The OCI image-layout tarball is cached under ${ZTWIM_CACHE:-~/.cache/ztwim}/images/ by a hash of
# every input (each file's content, place and mode, the image config, the build scripts), so a
# second run only re-bundles the CLI (a few seconds) and hashes. Prints one JSON line on stdout:
# {"tarball","name","cached","hash","files","rootfsBytes","imported","seconds"}; progress on stderr.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
spire=() import=0
for a in "$@"; do
  case "$a" in
    --spire) spire=(--spire) ;;
    --import) import=1 ;;
    -h|--help) sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "image.sh: unknown argument $a (see --help)" >&2; exit 2 ;;
  esac
done

start=$(date +%s%3N)
sock=""
if [ "$import" = 1 ]; then
  if [ -z "${ZTWIM_K8S_CONTAINERD_SOCK:-}" ] && [ -f "${ZTWIM_K8S_DIR:-/tmp/ztwim-k8s}/env" ]; then
    # shellcheck disable=SC1091
    . "${ZTWIM_K8S_DIR:-/tmp/ztwim-k8s}/env"
  fi
  sock="${ZTWIM_K8S_CONTAINERD_SOCK:-}"
  if [ -z "$sock" ] || [ ! -S "$sock" ]; then
    echo "image.sh: --import needs the test node's containerd socket in ZTWIM_K8S_CONTAINERD_SOCK (eval \"\$(scripts/k8s/cluster.sh up)\")" >&2
    exit 1
  fi
fi

json=$(node "$ROOT/scripts/k8s/image-contents.mjs" build "${spire[@]}")
tarball=$(node -e 'console.log(JSON.parse(process.argv[1]).tarball)' "$json")
name=$(node -e 'console.log(JSON.parse(process.argv[1]).name)' "$json")
echo "image.sh: $name in $tarball" >&2

imported=false
if [ "$import" = 1 ]; then
  want=$(tar -xOf "$tarball" index.json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).manifests[0].digest))')
  if ! list=$(ctr -a "$sock" -n k8s.io image ls "name==$name" 2>&1); then
    echo "image.sh: ctr image ls on $sock failed: $list" >&2
    exit 1
  fi
  have=$(printf '%s\n' "$list" | awk 'NR>1 {print $3}')
  if [ "$have" = "$want" ]; then
    echo "image.sh: the node already has $name at $want" >&2
  else
    if ! ctr -a "$sock" -n k8s.io image import "$tarball" >&2; then
      echo "image.sh: ctr image import of $tarball into $sock failed" >&2
      exit 1
    fi
    imported=true
  fi
fi
node -e 'const j=JSON.parse(process.argv[1]); j.imported=process.argv[2]==="true"; j.seconds=Number(((Date.now()-Number(process.argv[3]))/1000).toFixed(1)); console.log(JSON.stringify(j))' "$json" "$imported" "$start"
