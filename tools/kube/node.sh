#!/usr/bin/env bash
# Builds the binaries of a real test Kubernetes node and prints the directory holding them:
# bin/{kubelet,kube-proxy,coredns,pause}. Runs inside the toolchain root (tools/toolchain/enter),
# which provides containerd, runc and the CNI plugins from Debian.
#
# kubelet and kube-proxy come from the same k8s.io/kubernetes release as the control plane
# (versions.env), pause from that release's build/pause/linux/pause.c compiled statically, CoreDNS
# from its Go module (node-versions.env). Like provision.sh, a cold build takes minutes, so the
# result is cached under $TALLY_HOME/kube-node/<key>, keyed by this script, both version files and
# the Go version. The key is separate from the control plane's: adding or changing the node never
# rebuilds the control plane. Idempotent, built in <key>.partial and renamed when complete; a lock
# makes concurrent callers wait for one build.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
# shellcheck source=node-versions.env
source "$here/node-versions.env"
TALLY_HOME=${TALLY_HOME:-/var/cache/tally}
if [[ -z ${GOPROXY:-} && -r /etc/tally/env ]]; then
  GOPROXY=$(sed -n 's/^GOPROXY=//p' /etc/tally/env)
fi
# The control plane's build cache: kubelet shares most packages with the control plane.
export GOPROXY GOFLAGS=-modcacherw GOMODCACHE=$TALLY_HOME/gomodcache GOTOOLCHAIN=local CGO_ENABLED=0
export GOCACHE=${GOCACHE:-$TALLY_HOME/kube/go-build}

log() { printf '\033[1mtools/kube node:\033[0m %s\n' "$*" >&2; }
die() { printf 'tools/kube node: %s\n' "$*" >&2; exit 1; }

key=$({ cat "$here/node.sh" "$here/versions.env" "$here/node-versions.env"; go version; } | sha256sum | cut -c1-12)
out=$TALLY_HOME/kube-node/$key
if [[ -e $out/.complete ]]; then
  echo "$out"
  exit 0
fi

mkdir -p "$TALLY_HOME/kube-node"
exec 9>"$TALLY_HOME/kube-node/.lock"
flock 9
if [[ -e $out/.complete ]]; then
  echo "$out"
  exit 0
fi

partial=$out.partial
mkdir -p "$partial/bin" "$partial/src"
started=$SECONDS
build() { nice -n 10 go build -trimpath "$@"; }

# wrapper_module writes a module in $1 that requires $2@$3, with a tools file importing the
# packages to build so that `go mod tidy` resolves them.
wrapper_module() {
  local dir=$1 module=$2 version=$3
  shift 3
  mkdir -p "$dir"
  printf 'module tally.local/nodebuild\n\ngo 1.25\n\nrequire %s %s\n' "$module" "$version" >"$dir/go.mod"
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    local pkg
    for pkg in "$@"; do printf '\t_ "%s"\n' "$pkg"; done
    printf ')\n'
  } >"$dir/tools.go"
}

build_kubernetes() {
  [[ -x $partial/bin/kube-proxy && -x $partial/bin/pause ]] && return
  log "building kubelet and kube-proxy $KUBERNETES_VERSION (minutes cold; once per machine)"
  local dir=$partial/src/kubernetes moddir staging
  wrapper_module "$dir" k8s.io/kubernetes "$KUBERNETES_VERSION" \
    k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy
  moddir=$(cd "$dir" && go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [[ -n $moddir ]] || die "go mod download k8s.io/kubernetes@$KUBERNETES_VERSION failed"
  # As in provision.sh: pin each staging module to its release, and Kubernetes's Go defaults.
  staging=$(sed -n 's|^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*|\1|p' "$moddir/go.mod")
  [[ -n $staging ]] || die "no staging replace lines in k8s.io/kubernetes's go.mod"
  {
    printf '\ngodebug default=go1.25\n\n'
    local m
    for m in $staging; do echo "replace $m => $m v0${KUBERNETES_VERSION#v1}"; done
  } >>"$dir/go.mod"
  (cd "$dir" && go mod tidy) || die "go mod tidy for Kubernetes failed"
  local minor=${KUBERNETES_VERSION#v1.}
  minor=${minor%%.*}
  local ldflags="-s -w" pkg cmd
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  done
  for cmd in kubelet kube-proxy; do
    log "  go build $cmd"
    (cd "$dir" && build -ldflags "$ldflags" -o "$partial/bin/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd") ||
      die "building $cmd failed"
    mv "$partial/bin/$cmd.tmp" "$partial/bin/$cmd"
  done
  # The pod sandbox's process: the release's own pause.c, static so that its image needs no libc.
  log "  cc pause"
  nice -n 10 cc -Os -static -Wall -Werror -DVERSION="$KUBERNETES_VERSION" \
    -o "$partial/bin/pause.tmp" "$moddir/build/pause/linux/pause.c" || die "compiling pause.c failed"
  strip "$partial/bin/pause.tmp"
  mv "$partial/bin/pause.tmp" "$partial/bin/pause"
}

build_coredns() {
  [[ -x $partial/bin/coredns ]] && return
  log "building CoreDNS $COREDNS_VERSION"
  local dir=$partial/src/coredns
  wrapper_module "$dir" github.com/coredns/coredns "$COREDNS_VERSION" github.com/coredns/coredns
  (cd "$dir" && go mod tidy) || die "go mod tidy for CoreDNS failed"
  (cd "$dir" && build -ldflags "-s -w" -o "$partial/bin/coredns.tmp" github.com/coredns/coredns) ||
    die "building CoreDNS failed"
  mv "$partial/bin/coredns.tmp" "$partial/bin/coredns"
}

build_kubernetes
build_coredns
rm -rf "$partial/src"
touch "$partial/.complete"
rm -rf "$out"
mv "$partial" "$out"
log "node binaries ready in $out ($((SECONDS - started)) s)"
echo "$out"
