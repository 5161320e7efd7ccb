#!/usr/bin/env bash
# Builds the binaries of a test Kubernetes control plane from the Go module proxy and prints the
# directory holding them: bin/{etcd,kube-apiserver,kube-controller-manager,kube-scheduler,kwok}
# and stages/ (kwok's Stage configs). Runs inside the toolchain root (tools/toolchain/enter).
#
# None of these are packaged for Debian in versions that work together (Debian's etcd 3.4 is too
# old for kwok's watches), and a cold build takes ~13 min on 2 cores, so the result is cached
# under $TALLY_HOME/kube/<key>, keyed by this script, versions.env and the Go version: every
# checkout on the machine shares it and a fresh machine builds it once. Idempotent: it builds in
# <key>.partial and renames it when complete; a lock makes concurrent callers wait for one build.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
TALLY_HOME=${TALLY_HOME:-/var/cache/tally}
# The module proxy comes from the root's configuration, never from the checkout.
if [[ -z ${GOPROXY:-} && -r /etc/tally/env ]]; then
  GOPROXY=$(sed -n 's/^GOPROXY=//p' /etc/tally/env)
fi
export GOPROXY GOFLAGS=-modcacherw GOMODCACHE=$TALLY_HOME/gomodcache GOTOOLCHAIN=local CGO_ENABLED=0

log() { printf '\033[1mtools/kube:\033[0m %s\n' "$*" >&2; }
die() { printf 'tools/kube: %s\n' "$*" >&2; exit 1; }

key=$({ cat "$here/provision.sh" "$here/versions.env"; go version; } | sha256sum | cut -c1-12)
out=$TALLY_HOME/kube/$key
if [[ -e $out/.complete ]]; then
  echo "$out"
  exit 0
fi

mkdir -p "$TALLY_HOME/kube"
exec 9>"$TALLY_HOME/kube/.lock"
flock 9
if [[ -e $out/.complete ]]; then
  echo "$out"
  exit 0
fi

partial=$out.partial
mkdir -p "$partial/bin" "$partial/src"
started=$SECONDS
# Heavy builds share the machine: stay out of the way of interactive work.
build() { nice -n 10 go build -trimpath "$@"; }

# wrapper_module writes a module in $1 that requires $2@$3; blank imports in a tools file let
# `go mod tidy` resolve the packages we build.
wrapper_module() {
  local dir=$1 module=$2 version=$3
  shift 3
  mkdir -p "$dir"
  {
    echo "module tally.local/kubebuild"
    echo
    echo "go 1.25"
    echo
    echo "require $module $version"
  } >"$dir/go.mod"
  {
    echo "//go:build tools"
    echo
    echo "package tools"
    echo
    echo "import ("
    local pkg
    for pkg in "$@"; do echo "	_ \"$pkg\""; done
    echo ")"
  } >"$dir/tools.go"
}

build_kubernetes() {
  [[ -x $partial/bin/kube-scheduler ]] && return
  log "building kube-apiserver, kube-controller-manager and kube-scheduler $KUBERNETES_VERSION (~13 min cold on 2 cores; once per machine)"
  local dir=$partial/src/kubernetes moddir staging
  wrapper_module "$dir" k8s.io/kubernetes "$KUBERNETES_VERSION" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler
  # k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with directories
  # of its own repository; a module outside that repository must pin each one to its release.
  moddir=$(cd "$dir" && go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [[ -n $moddir ]] || die "go mod download k8s.io/kubernetes@$KUBERNETES_VERSION failed"
  staging=$(sed -n 's|^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*|\1|p' "$moddir/go.mod")
  [[ -n $staging ]] || die "no staging replace lines in k8s.io/kubernetes's go.mod"
  {
    echo
    # Kubernetes pins runtime behaviour to its own Go version's defaults.
    echo "godebug default=go1.25"
    echo
    local m
    for m in $staging; do echo "replace $m => $m v0${KUBERNETES_VERSION#v1}"; done
  } >>"$dir/go.mod"
  (cd "$dir" && go mod tidy) || die "go mod tidy for Kubernetes failed"
  local minor=${KUBERNETES_VERSION#v1.}
  minor=${minor%%.*}
  local ldflags="-s -w"
  local pkg
  # Without these the binaries report v0.0.0 and kubectl and the apiserver's version checks fail.
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  done
  local cmd
  for cmd in kube-apiserver kube-controller-manager kube-scheduler; do
    log "  go build $cmd"
    (cd "$dir" && build -ldflags "$ldflags" -o "$partial/bin/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd") ||
      die "building $cmd failed"
    mv "$partial/bin/$cmd.tmp" "$partial/bin/$cmd"
  done
}

build_etcd() {
  [[ -x $partial/bin/etcd ]] && return
  log "building etcd $ETCD_VERSION"
  local dir=$partial/src/etcd
  wrapper_module "$dir" go.etcd.io/etcd/server/v3 "$ETCD_VERSION" go.etcd.io/etcd/server/v3
  (cd "$dir" && go mod tidy) || die "go mod tidy for etcd failed"
  (cd "$dir" && build -ldflags "-s -w" -o "$partial/bin/etcd.tmp" go.etcd.io/etcd/server/v3) ||
    die "building etcd failed"
  mv "$partial/bin/etcd.tmp" "$partial/bin/etcd"
}

build_kwok() {
  [[ -x $partial/bin/kwok && -d $partial/stages ]] && return
  log "building kwok $KWOK_VERSION"
  local dir=$partial/src/kwok moddir
  wrapper_module "$dir" sigs.k8s.io/kwok "$KWOK_VERSION" sigs.k8s.io/kwok/cmd/kwok
  (cd "$dir" && go mod tidy) || die "go mod tidy for kwok failed"
  (cd "$dir" && build -ldflags "-s -w" -o "$partial/bin/kwok.tmp" sigs.k8s.io/kwok/cmd/kwok) ||
    die "building kwok failed"
  # kwok does nothing without Stage configs; its module ships the standard ones.
  moddir=$(cd "$dir" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
  rm -rf "$partial/stages"
  cp -r "$moddir/kustomize/stage" "$partial/stages"
  chmod -R u+w "$partial/stages"
  mv "$partial/bin/kwok.tmp" "$partial/bin/kwok"
}

build_etcd
build_kwok
build_kubernetes
# The sources and module metadata are not needed once built.
rm -rf "$partial/src"
touch "$partial/.complete"
rm -rf "$out"
mv "$partial" "$out"
log "control plane binaries ready in $out ($((SECONDS - started)) s)"
echo "$out"
