#!/usr/bin/env bash
# The project's Kubernetes test cluster on this machine: etcd 3.6 + kube-apiserver +
# kube-controller-manager + kube-scheduler v1.37.2 (from scripts/k8s/build.sh) and one real node
# (Debian containerd + runc + the kubelet, node name `localhost`, loopback-only CNI, so pods run
# with hostNetwork). Facts behind every flag: /work/shared/spec/kubernetes-test-cluster.md.
#
#   scripts/k8s/cluster.sh up       start what is not running (idempotent, serialised with flock)
#                                   and print `export NAME='value'` lines (also in $DIR/env):
#                                   eval "$(scripts/k8s/cluster.sh up)"
#   scripts/k8s/cluster.sh env      print the env of a running cluster
#   scripts/k8s/cluster.sh status   one line per component: running (pid) or stopped
#   scripts/k8s/cluster.sh down [--purge]
#                                   stop everything by PID (containerd tasks and shims too),
#                                   unmount under $DIR, remove the kubepods cgroups, check that
#                                   no process is left. The state stays (objects, imported
#                                   images: the next up restarts the same cluster, pods and all);
#                                   --purge also removes etcd data, containerd's root and the
#                                   kubelet dir (kept: $DIR/pki, $DIR/images, $DIR/logs)
#
# Settings (environment; the first `up` of a dir records them in $DIR/settings and later calls
# on that dir use the recorded ones, except that WITH_NODE=1 adds the node to a dir without one):
#   ZTWIM_K8S_DIR   state dir (default /tmp/ztwim-k8s)
#   ZTWIM_K8S_BIN   binaries (default ${ZTWIM_CACHE:-~/.cache/ztwim}/k8s-v1.37.2/bin)
#   WITH_NODE=0     control plane only (only one kubelet can run on a machine)
#   ZTWIM_K8S_{ETCD,APISERVER,KCM,SCHEDULER,KUBELET,KUBELET_RO,KUBELET_HEALTHZ}_PORT
#                   defaults 26379 (and +1 for etcd peers), 26443, 26257, 26259, 26250, 26255, 26248
#   ZTWIM_K8S_TIMEOUT  seconds each component may take to become ready (default 120)
set -euo pipefail

CMD="${1:-}"
REQUESTED_WITH_NODE="${WITH_NODE:-}"
DIR="${ZTWIM_K8S_DIR:-/tmp/ztwim-k8s}"
case "$DIR" in /*) ;; *) DIR="$PWD/$DIR" ;; esac
DIR="${DIR%/}"
K8S_VERSION="v1.37.2"
CLUSTER_NAME="test"
NODE_NAME="localhost"
SA_ISSUER="https://kubernetes.default.svc.cluster.local"
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

log() { printf '[cluster] %s\n' "$*" >&2; }
die() { printf '[cluster] error: %s\n' "$*" >&2; exit 1; }

usage() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}" >&2
  exit 2
}

# --- settings -------------------------------------------------------------------------------
load_settings() {
  if [ -f "$DIR/settings" ]; then
    # shellcheck disable=SC1091
    . "$DIR/settings"
    return
  fi
  BIN="${ZTWIM_K8S_BIN:-${ZTWIM_CACHE:-$HOME/.cache/ztwim}/k8s-$K8S_VERSION/bin}"
  WITH_NODE="${WITH_NODE:-1}"
  ETCD_PORT="${ZTWIM_K8S_ETCD_PORT:-26379}"
  ETCD_PEER_PORT="$((ETCD_PORT + 1))"
  APISERVER_PORT="${ZTWIM_K8S_APISERVER_PORT:-26443}"
  KCM_PORT="${ZTWIM_K8S_KCM_PORT:-26257}"
  SCHEDULER_PORT="${ZTWIM_K8S_SCHEDULER_PORT:-26259}"
  KUBELET_PORT="${ZTWIM_K8S_KUBELET_PORT:-26250}"
  KUBELET_RO_PORT="${ZTWIM_K8S_KUBELET_RO_PORT:-26255}"
  KUBELET_HEALTHZ_PORT="${ZTWIM_K8S_KUBELET_HEALTHZ_PORT:-26248}"
}

save_settings() {
  [ -f "$DIR/settings" ] && return
  local v
  {
    echo "# written by scripts/k8s/cluster.sh on the first up of this dir"
    for v in BIN WITH_NODE ETCD_PORT ETCD_PEER_PORT APISERVER_PORT KCM_PORT SCHEDULER_PORT \
             KUBELET_PORT KUBELET_RO_PORT KUBELET_HEALTHZ_PORT; do
      printf '%s=%q\n' "$v" "${!v}"
    done
  } > "$DIR/settings.tmp"
  mv "$DIR/settings.tmp" "$DIR/settings"
}

TIMEOUT="${ZTWIM_K8S_TIMEOUT:-120}"
PKI="$DIR/pki"
LOGS="$DIR/logs"
RUN="$DIR/run"
CTRD_SOCK="$DIR/containerd/containerd.sock"
KUBELET_ROOT="$DIR/kubelet"
CONTROL_PLANE=(etcd kube-apiserver kube-controller-manager kube-scheduler)
NODE_PARTS=(containerd kubelet)

# --- prerequisites --------------------------------------------------------------------------
check_prereqs() {
  local c missing=() pkgs=()
  for c in openssl curl flock findmnt setsid; do
    command -v "$c" >/dev/null || missing+=("$c")
  done
  [ "${#missing[@]}" -eq 0 ] || die "missing commands: ${missing[*]} (Debian: apt-get install -y openssl curl util-linux)"
  missing=()
  for c in etcd kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    [ -x "$BIN/$c" ] || missing+=("$c")
  done
  if [ "$WITH_NODE" != 0 ]; then [ -x "$BIN/kubelet" ] || missing+=("kubelet"); fi
  [ "${#missing[@]}" -eq 0 ] || die "missing in $BIN: ${missing[*]}; build them with: bash $SCRIPT_DIR/build.sh (15-20 min cold, ~30 s warm)"
  [ "$WITH_NODE" = 0 ] && return
  command -v containerd >/dev/null && command -v ctr >/dev/null || pkgs+=(containerd)
  command -v runc >/dev/null || pkgs+=(runc)
  [ -x /usr/lib/cni/loopback ] || pkgs+=(containernetworking-plugins)
  if [ ! -x /bin/busybox ] || ldd /bin/busybox >/dev/null 2>&1; then pkgs+=(busybox-static); fi
  [ "${#pkgs[@]}" -eq 0 ] || die "missing Debian packages: ${pkgs[*]}; install them with: apt-get install -y ${pkgs[*]}"
}

# --- processes ------------------------------------------------------------------------------
pid_of() { # prints the pid of a component when it is running (and really is that program)
  local f="$RUN/$1.pid" pid
  [ -f "$f" ] || return 1
  pid="$(cat "$f")"
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF -- "$DIR/" || return 1
  echo "$pid"
}

running() { pid_of "$1" >/dev/null; }

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# start NAME PORT... -- CMD ARGS: runs CMD in its own session, detached from the caller's stdio
# and without the lock fd, so `up` returns while it keeps running.
start() {
  local name="$1"
  shift
  while [ "$1" != "--" ]; do
    port_busy "$1" && die "port $1 (for $name) is already in use; stop what holds it or set the ZTWIM_K8S_*_PORT variables with a fresh ZTWIM_K8S_DIR"
    shift
  done
  shift
  log "starting $name"
  printf '\n=== %s start %s\n' "$(date -u +%FT%TZ)" "$name" >> "$LOGS/$name.log"
  setsid "$@" >> "$LOGS/$name.log" 2>&1 < /dev/null 9>&- &
  echo "$!" > "$RUN/$name.pid"
}

failed() { # failed NAME MESSAGE: print the tail of the component's log, then exit
  log "$1: $2"
  if [ -f "$LOGS/$1.log" ]; then
    printf -- '--- last lines of %s ---\n' "$LOGS/$1.log" >&2
    tail -n 40 "$LOGS/$1.log" >&2
    printf -- '---\n' >&2
  fi
  exit 1
}

# wait_for NAME CHECK...: runs CHECK until it succeeds; fails when NAME dies or TIMEOUT passes.
wait_for() {
  local name="$1" end=$((SECONDS + TIMEOUT))
  shift
  until "$@" >/dev/null 2>&1; do
    running "$name" || failed "$name" "exited while starting"
    [ "$SECONDS" -lt "$end" ] || failed "$name" "not ready after ${TIMEOUT} s"
    sleep 0.2
  done
}

stop_pid() { # stop_pid NAME PID: TERM, then KILL after 10 s
  local name="$1" pid="$2" i
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 1 50); do
    [ -d "/proc/$pid" ] || return 0
    sleep 0.2
  done
  log "$name ($pid) ignored TERM; killing it"
  kill -KILL "$pid" 2>/dev/null || true
  for i in $(seq 1 25); do
    [ -d "/proc/$pid" ] || return 0
    sleep 0.2
  done
}

stop_components() { # stop_components NAME...: stops the running ones at the same time
  local c pid waits=()
  for c in "$@"; do
    if pid="$(pid_of "$c")"; then
      log "stopping $c"
      stop_pid "$c" "$pid" &
      waits+=("$!")
    fi
  done
  [ "${#waits[@]}" -eq 0 ] || wait "${waits[@]}"
}

# --- PKI and kubeconfigs --------------------------------------------------------------------
issue_cert() { # issue_cert NAME SUBJECT EXTKEYUSAGE [SAN]
  local name="$1" subj="$2" eku="$3" san="${4:-}" ext="$PKI/$1.ext"
  [ -f "$PKI/$name.crt" ] && return
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$PKI/$name.key" 2>/dev/null
  openssl req -new -key "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr"
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$eku"
    [ -n "$san" ] && echo "subjectAltName=$san"
  } > "$ext"
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
    -days 3650 -sha256 -extfile "$ext" -out "$PKI/$name.crt" 2>/dev/null
  rm -f "$PKI/$name.csr" "$ext"
}

make_pki() {
  mkdir -p "$PKI"
  chmod 700 "$PKI"
  if [ ! -f "$PKI/ca.crt" ]; then
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$PKI/ca.key" 2>/dev/null
    openssl req -x509 -new -key "$PKI/ca.key" -subj "/CN=ztwim-test-cluster-ca" -days 3650 -sha256 \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
      -out "$PKI/ca.crt"
  fi
  issue_cert apiserver "/CN=kube-apiserver" serverAuth \
    "IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  issue_cert admin "/O=system:masters/CN=admin" clientAuth
  issue_cert kube-controller-manager "/CN=system:kube-controller-manager" clientAuth
  issue_cert kube-scheduler "/CN=system:kube-scheduler" clientAuth
  issue_cert kubelet-client "/O=system:nodes/CN=system:node:$NODE_NAME" clientAuth
  # The kubelet's serving cert, signed by the cluster CA so clients of the kubelet API can check
  # it with the cluster CA (the kubelet would otherwise make a self-signed one).
  issue_cert kubelet-serving "/O=system:nodes/CN=system:node:$NODE_NAME" serverAuth "IP:127.0.0.1,DNS:localhost"
  if [ ! -f "$PKI/sa.key" ]; then
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$PKI/sa.key" 2>/dev/null
    openssl pkey -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub"
  fi
  if [ ! -f "$PKI/admin.token" ]; then
    openssl rand -hex 24 > "$PKI/admin.token"
    printf '%s,admin,admin-uid,system:masters\n' "$(cat "$PKI/admin.token")" > "$PKI/tokens.csv"
  fi
}

write_kubeconfig() { # write_kubeconfig FILE CERTNAME
  cat > "$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: $CLUSTER_NAME
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority: $PKI/ca.crt
users:
- name: $2
  user:
    client-certificate: $PKI/$2.crt
    client-key: $PKI/$2.key
contexts:
- name: $CLUSTER_NAME
  context:
    cluster: $CLUSTER_NAME
    user: $2
current-context: $CLUSTER_NAME
EOF
}

# --- control plane --------------------------------------------------------------------------
etcd_ready() { curl -fsS "http://127.0.0.1:$ETCD_PORT/health" | grep -q '"health":"true"'; }
apiserver_ready() {
  curl -fsS --cacert "$PKI/ca.crt" -H "Authorization: Bearer $(cat "$PKI/admin.token")" \
    "https://127.0.0.1:$APISERVER_PORT/readyz"
}
healthz_ready() { curl -fsSk "https://127.0.0.1:$1/healthz"; }

up_control_plane() {
  if ! running etcd; then
    mkdir -p "$DIR/etcd"
    start etcd "$ETCD_PORT" "$ETCD_PEER_PORT" -- "$BIN/etcd" --name "$CLUSTER_NAME" --data-dir "$DIR/etcd" \
      --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
      --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
      --initial-cluster "$CLUSTER_NAME=http://127.0.0.1:$ETCD_PEER_PORT" --unsafe-no-fsync \
      --log-level warn
  fi
  wait_for etcd etcd_ready
  if ! running kube-apiserver; then
    mkdir -p "$DIR/apiserver-certs"
    start kube-apiserver "$APISERVER_PORT" -- "$BIN/kube-apiserver" \
      --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
      --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$APISERVER_PORT" \
      --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
      --client-ca-file "$PKI/ca.crt" --token-auth-file "$PKI/tokens.csv" \
      --service-account-issuer "$SA_ISSUER" --api-audiences "$SA_ISSUER,spire-server" \
      --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
      --authorization-mode RBAC --allow-privileged=true --service-cluster-ip-range 10.0.0.0/24 \
      --endpoint-reconciler-type none --kubelet-preferred-address-types Hostname,InternalIP \
      --kubelet-client-certificate "$PKI/admin.crt" --kubelet-client-key "$PKI/admin.key" \
      --kubelet-certificate-authority "$PKI/ca.crt" \
      --cert-dir "$DIR/apiserver-certs"
  fi
  wait_for kube-apiserver apiserver_ready
  write_kubeconfig "$DIR/kubeconfig" admin
  write_kubeconfig "$DIR/kube-controller-manager.kubeconfig" kube-controller-manager
  write_kubeconfig "$DIR/kube-scheduler.kubeconfig" kube-scheduler
  if ! running kube-controller-manager; then
    local k="$DIR/kube-controller-manager.kubeconfig"
    start kube-controller-manager "$KCM_PORT" -- "$BIN/kube-controller-manager" \
      --kubeconfig "$k" --authentication-kubeconfig "$k" --authorization-kubeconfig "$k" \
      --bind-address 127.0.0.1 --secure-port "$KCM_PORT" --leader-elect=false \
      --use-service-account-credentials=true --service-account-private-key-file "$PKI/sa.key" \
      --root-ca-file "$PKI/ca.crt" --cluster-signing-cert-file "$PKI/ca.crt" \
      --cluster-signing-key-file "$PKI/ca.key" --cert-dir "$DIR/kcm-certs"
  fi
  if ! running kube-scheduler; then
    local s="$DIR/kube-scheduler.kubeconfig"
    start kube-scheduler "$SCHEDULER_PORT" -- "$BIN/kube-scheduler" \
      --kubeconfig "$s" --authentication-kubeconfig "$s" --authorization-kubeconfig "$s" \
      --bind-address 127.0.0.1 --secure-port "$SCHEDULER_PORT" --leader-elect=false \
      --cert-dir "$DIR/scheduler-certs"
  fi
  wait_for kube-controller-manager healthz_ready "$KCM_PORT"
  wait_for kube-scheduler healthz_ready "$SCHEDULER_PORT"
}

apply_rbac() {
  # The kubelet authenticates as system:node:localhost (group system:nodes); with RBAC alone
  # (no Node authorizer) the group needs the system:node role. The admin user (cert CN=admin,
  # token user admin) is the apiserver's kubelet client and the tests' kubelet-API client.
  "$BIN/kubectl" --kubeconfig "$DIR/kubeconfig" apply -f - >/dev/null <<'EOF'
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: ztwim-test:system-nodes
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:node}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: Group, name: system:nodes}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: ztwim-test:kubelet-api-admin
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:kubelet-api-admin}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: admin}
EOF
}

# --- node -----------------------------------------------------------------------------------
build_images() {
  # A busybox-static rootfs serves both as the pod sandbox ("pause") image and as the test
  # pods' busybox image; the tarballs are reproducible, so they are built once per dir.
  local img="$DIR/images" rootfs
  mkdir -p "$img"
  [ -f "$img/pause.tar" ] && [ -f "$img/busybox.tar" ] && return
  rootfs="$img/busybox-rootfs"
  rm -rf "$rootfs"
  mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/proc" "$rootfs/sys" "$rootfs/dev" "$rootfs/tmp" "$rootfs/root"
  chmod 1777 "$rootfs/tmp"
  cp /bin/busybox "$rootfs/bin/busybox"
  local a
  for a in $(/bin/busybox --list); do
    [ "$a" = busybox ] || ln -s busybox "$rootfs/bin/$a"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$rootfs/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\n' > "$rootfs/etc/group"
  node "$SCRIPT_DIR/oci-layout.mjs" --rootfs "$rootfs" --name registry.k8s.io/pause:local \
    --out "$img/pause.tar.tmp" --entrypoint '["/bin/sleep","2147483647"]' >/dev/null
  node "$SCRIPT_DIR/oci-layout.mjs" --rootfs "$rootfs" --name docker.io/library/busybox:local \
    --out "$img/busybox.tar.tmp" --cmd '["/bin/sh"]' --env PATH=/bin >/dev/null
  mv "$img/pause.tar.tmp" "$img/pause.tar"
  mv "$img/busybox.tar.tmp" "$img/busybox.tar"
  rm -rf "$rootfs"
}

write_containerd_config() {
  mkdir -p "$DIR/containerd" "$DIR/cni/net.d"
  cat > "$DIR/cni/net.d/10-loopback.conflist" <<'EOF'
{"cniVersion":"1.0.0","name":"loopback-only","plugins":[{"type":"loopback"}]}
EOF
  cat > "$DIR/containerd/config.toml" <<EOF
version = 2
root = "$DIR/containerd/root"
state = "$DIR/containerd/state"
[grpc]
  address = "$CTRD_SOCK"
[ttrpc]
  address = "$CTRD_SOCK.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$DIR/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:local"
  # Without CAP_SYS_RESOURCE runc cannot lower oom_score_adj ("can't get final child's PID").
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$DIR/cni/net.d"
EOF
}

write_kubelet_config() {
  mkdir -p "$KUBELET_ROOT" "$DIR/static-pods" "$DIR/pod-logs"
  cat > "$DIR/kubelet-config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$CTRD_SOCK
address: 127.0.0.1
port: $KUBELET_PORT
readOnlyPort: $KUBELET_RO_PORT
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
tlsCertFile: $PKI/kubelet-serving.crt
tlsPrivateKeyFile: $PKI/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization:
  mode: Webhook
staticPodPath: $DIR/static-pods
podLogsDir: $DIR/pod-logs
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1%
  nodefs.inodesFree: 1%
  imagefs.available: 1%
imageGCHighThresholdPercent: 100
failSwapOn: false
protectKernelDefaults: false
makeIPTablesUtilChains: false
EOF
}

kubelet_healthy() { curl -fsS "http://127.0.0.1:$KUBELET_HEALTHZ_PORT/healthz"; }
containerd_ready() { ctr -a "$CTRD_SOCK" version; }
node_ready() {
  "$BIN/kubectl" --kubeconfig "$DIR/kubeconfig" get node "$NODE_NAME" \
    -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' | grep -qx True
}

up_node() {
  touch "$DIR/node"  # tells down that this dir ran the machine's kubelet (kubepods cgroups)
  build_images
  if ! running containerd; then
    write_containerd_config
    start containerd -- containerd --config "$DIR/containerd/config.toml"
  fi
  wait_for containerd containerd_ready
  local name
  for name in pause busybox; do
    ctr -a "$CTRD_SOCK" -n k8s.io image import "$DIR/images/$name.tar" >> "$LOGS/containerd.log" 2>&1 \
      || failed containerd "ctr image import $DIR/images/$name.tar failed"
  done
  if ! running kubelet; then
    write_kubeconfig "$DIR/kubelet.kubeconfig" kubelet-client
    write_kubelet_config
    start kubelet "$KUBELET_PORT" "$KUBELET_RO_PORT" "$KUBELET_HEALTHZ_PORT" -- "$BIN/kubelet" \
      --config "$DIR/kubelet-config.yaml" --kubeconfig "$DIR/kubelet.kubeconfig" \
      --hostname-override "$NODE_NAME" \
      --root-dir "$KUBELET_ROOT" --cert-dir "$KUBELET_ROOT/pki"
  fi
  wait_for kubelet kubelet_healthy
  wait_for kubelet node_ready
}

# --- env ------------------------------------------------------------------------------------
write_env() {
  local f="$DIR/env.tmp"
  {
    printf "export KUBECONFIG='%s'\n" "$DIR/kubeconfig"
    printf "export PATH='%s':\"\$PATH\"\n" "$BIN"
    printf "export ZTWIM_K8S_DIR='%s'\n" "$DIR"
    printf "export ZTWIM_K8S_BIN='%s'\n" "$BIN"
    printf "export ZTWIM_K8S_APISERVER='%s'\n" "https://127.0.0.1:$APISERVER_PORT"
    printf "export ZTWIM_K8S_CA='%s'\n" "$PKI/ca.crt"
    printf "export ZTWIM_K8S_ADMIN_TOKEN='%s'\n" "$(cat "$PKI/admin.token")"
    printf "export ZTWIM_K8S_CLUSTER_NAME='%s'\n" "$CLUSTER_NAME"
    printf "export ZTWIM_K8S_SA_ISSUER='%s'\n" "$SA_ISSUER"
    printf "export ZTWIM_K8S_WITH_NODE='%s'\n" "$([ "$WITH_NODE" = 0 ] && echo 0 || echo 1)"
    if [ "$WITH_NODE" != 0 ]; then
      printf "export ZTWIM_K8S_NODE_NAME='%s'\n" "$NODE_NAME"
      printf "export ZTWIM_K8S_KUBELET_URL='%s'\n" "https://127.0.0.1:$KUBELET_PORT"
      printf "export ZTWIM_K8S_KUBELET_RO_URL='%s'\n" "http://127.0.0.1:$KUBELET_RO_PORT"
      printf "export ZTWIM_K8S_KUBELET_ROOT='%s'\n" "$KUBELET_ROOT"
      printf "export ZTWIM_K8S_KUBELET_CERT='%s'\n" "$PKI/kubelet-serving.crt"
      printf "export ZTWIM_K8S_CONTAINERD_SOCK='%s'\n" "$CTRD_SOCK"
    fi
  } > "$f"
  mv "$f" "$DIR/env"
}

components() {
  if [ "${WITH_NODE:-1}" != 0 ]; then echo "${CONTROL_PLANE[@]}" "${NODE_PARTS[@]}"; else echo "${CONTROL_PLANE[@]}"; fi
}

all_running() {
  local c
  for c in $(components); do running "$c" || return 1; done
}

# --- commands -------------------------------------------------------------------------------
cmd_up() {
  mkdir -p "$DIR"
  exec 9> "$DIR/lock"
  flock -x 9
  load_settings
  if [ "$REQUESTED_WITH_NODE" = 1 ] && [ "$WITH_NODE" = 0 ]; then
    # A control-plane-only dir asked for a node: add it (and record that).
    WITH_NODE=1
    rm -f "$DIR/settings"
  fi
  if [ -f "$DIR/env" ] && all_running && apiserver_ready >/dev/null 2>&1; then
    cat "$DIR/env"
    return
  fi
  check_prereqs
  mkdir -p "$LOGS" "$RUN"
  save_settings
  local t0=$SECONDS
  make_pki
  up_control_plane
  apply_rbac
  log "control plane ready in $((SECONDS - t0)) s"
  if [ "$WITH_NODE" != 0 ]; then
    local t1=$SECONDS
    up_node
    log "node $NODE_NAME ready in $((SECONDS - t1)) s"
  fi
  write_env
  cat "$DIR/env"
}

cmd_env() {
  [ -f "$DIR/settings" ] || die "no cluster in $DIR (run: $0 up)"
  load_settings
  all_running && [ -f "$DIR/env" ] || die "the cluster in $DIR is not (fully) running (run: $0 up)"
  cat "$DIR/env"
}

cmd_status() {
  [ -f "$DIR/settings" ] || { echo "no cluster in $DIR"; return 1; }
  load_settings
  local c pid rc=0
  for c in $(components); do
    if pid="$(pid_of "$c")"; then echo "$c running (pid $pid)"; else echo "$c stopped"; rc=1; fi
  done
  if apiserver_ready >/dev/null 2>&1; then echo "apiserver https://127.0.0.1:$APISERVER_PORT ready"; else echo "apiserver not ready"; rc=1; fi
  return "$rc"
}

# Pids of this cluster's own processes: the components and containerd's shims, found by an
# argument under this dir (the shims carry "-address <our socket>"). Clients such as a test's
# kubectl --kubeconfig $DIR/kubeconfig are not ours to stop.
pids_in_dir() {
  local re f pid comm
  re="$(printf '%s' "$DIR" | sed 's/[.[\*^$()+?{|]/\\&/g')"
  # grep -z reads each NUL-ended argument as a line: one process for the whole scan.
  grep -lszE -- "^$re(/|\$)" /proc/[0-9]*/cmdline | while IFS= read -r f; do
    pid="${f#/proc/}"
    pid="${pid%/cmdline}"
    comm="$(cat "/proc/$pid/comm" 2>/dev/null)" || continue
    case "$comm" in
      etcd|kube-apiserver|kube-controller*|kube-scheduler|kubelet|containerd|containerd-shim*) echo "$pid" ;;
    esac
  done
  return 0
}

stop_containers() {
  [ -S "$CTRD_SOCK" ] && running containerd || return 0
  local ns t
  for ns in $(ctr -a "$CTRD_SOCK" namespaces ls -q 2>/dev/null); do
    for t in $(ctr -a "$CTRD_SOCK" -n "$ns" tasks ls -q 2>/dev/null); do
      ctr -a "$CTRD_SOCK" -n "$ns" tasks kill -s SIGKILL "$t" >/dev/null 2>&1 || true
    done
    for t in $(ctr -a "$CTRD_SOCK" -n "$ns" tasks ls -q 2>/dev/null); do
      ctr -a "$CTRD_SOCK" -n "$ns" tasks delete -f "$t" >/dev/null 2>&1 || true
    done
  done
}

kubepods_cgroups() { # the kubepods cgroup dirs the kubelet made (cgroup v1 and v2 layouts)
  local d
  for d in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods /sys/fs/cgroup/*/kubepods.slice /sys/fs/cgroup/kubepods.slice; do
    [ -d "$d" ] && echo "$d"
  done
  return 0
}

remove_kubepods_cgroups() {
  local d pid
  # Anything still inside is a container process this node left: kill it by pid first.
  for d in $(kubepods_cgroups); do
    for pid in $(find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u); do
      kill -KILL "$pid" 2>/dev/null || true
    done
  done
  sleep 0.2
  for d in $(kubepods_cgroups); do
    find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
    [ -d "$d" ] && log "could not remove cgroup $d"
  done
  return 0
}

unmount_all() {
  local m i
  for i in 1 2 3; do
    m="$(findmnt -rn -o TARGET | awk -v d="$DIR" 'index($0, d "/") == 1 || $0 == d' | sort -r)"
    [ -z "$m" ] && return 0
    while IFS= read -r t; do
      # findmnt escapes blanks as \x20; printf %b turns them back.
      umount "$(printf '%b' "$t")" 2>/dev/null || umount -l "$(printf '%b' "$t")" 2>/dev/null || true
    done <<< "$m"
  done
  m="$(findmnt -rn -o TARGET | awk -v d="$DIR" 'index($0, d "/") == 1')"
  [ -z "$m" ] || { log "still mounted under $DIR:"; echo "$m" >&2; return 1; }
}

cmd_down() {
  [ -d "$DIR" ] || { log "nothing to stop in $DIR"; return 0; }
  exec 9> "$DIR/lock"
  flock -x 9
  load_settings
  local pid rc=0 t0=$SECONDS
  stop_components kubelet
  stop_containers
  # Each takes 1-3 s to shut down: stop them together, etcd last (the apiserver's store).
  stop_components containerd kube-scheduler kube-controller-manager kube-apiserver
  stop_components etcd
  # containerd shims outlive containerd; theirs carry "-address <our socket>".
  for pid in $(pids_in_dir); do
    log "stopping leftover $(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | cut -c1-120) ($pid)"
    stop_pid leftover "$pid"
  done
  [ -f "$DIR/node" ] && remove_kubepods_cgroups
  unmount_all || rc=1
  rm -f "$RUN"/*.pid "$DIR/env" "$DIR/node"
  if [ "$PURGE" = 1 ]; then
    log "removing the cluster's state (etcd data, containerd images, kubelet dir)"
    rm -rf --one-file-system "$DIR/etcd" "$DIR/containerd" "$DIR/kubelet" "$DIR/static-pods" \
      "$DIR/pod-logs" "$DIR/apiserver-certs" "$DIR/kcm-certs" "$DIR/scheduler-certs" "$DIR/cni" || rc=1
  fi
  local left
  left="$(pids_in_dir)"
  if [ -n "$left" ]; then log "processes left: $left"; rc=1; fi
  [ "$rc" = 0 ] && log "stopped in $((SECONDS - t0)) s"
  return "$rc"
}

PURGE=0
case "$CMD" in
  up) cmd_up ;;
  down)
    case "${2:-}" in
      "") ;;
      --purge) PURGE=1 ;;
      *) usage ;;
    esac
    cmd_down ;;
  env) cmd_env ;;
  status) cmd_status ;;
  *) usage ;;
esac
