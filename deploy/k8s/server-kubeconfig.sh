#!/usr/bin/env bash
# Writes a kubeconfig for a ztwim server running outside the cluster (kube_config_file of
# k8s_psat in deploy/k8s/server.conf): the current kubeconfig's API server and CA, and a token of
# the ztwim-server service account, which rbac.yaml allows only TokenReviews and reading pods
# and nodes. Run it again before the token expires (--duration, default 24h; the API server may
# cap it with --service-account-max-token-expiration).
#
#   deploy/k8s/server-kubeconfig.sh OUT [--namespace ztwim] [--service-account ztwim-server] [--duration 24h]
#
# Uses kubectl with the caller's KUBECONFIG/context.
set -euo pipefail
usage="usage: server-kubeconfig.sh OUT [--namespace NS] [--service-account SA] [--duration D]"
out="" ns=ztwim sa=ztwim-server duration=24h
while [ $# -gt 0 ]; do
  case "$1" in
    --namespace) ns="$2"; shift 2 ;;
    --service-account) sa="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    -h|--help) echo "$usage"; exit 0 ;;
    -*) echo "server-kubeconfig.sh: unknown flag $1; $usage" >&2; exit 2 ;;
    *) [ -z "$out" ] || { echo "$usage" >&2; exit 2; }; out="$1"; shift ;;
  esac
done
[ -n "$out" ] || { echo "$usage" >&2; exit 2; }

server=$(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}')
ca=$(kubectl config view --minify --flatten -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')
[ -n "$server" ] && [ -n "$ca" ] || { echo "server-kubeconfig.sh: the current kubeconfig has no cluster server or CA data" >&2; exit 1; }
token=$(kubectl create token "$sa" -n "$ns" --duration "$duration")

umask 077
tmp="$out.tmp.$$"
cat > "$tmp" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
  - name: cluster
    cluster:
      server: $server
      certificate-authority-data: $ca
users:
  - name: $ns-$sa
    user:
      token: $token
contexts:
  - name: $ns-$sa
    context:
      cluster: cluster
      user: $ns-$sa
current-context: $ns-$sa
KUBECONFIG
mv "$tmp" "$out"
echo "server-kubeconfig.sh: wrote $out for system:serviceaccount:$ns:$sa ($duration)" >&2
