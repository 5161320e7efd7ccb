#!/usr/bin/env bash
# Builds kube-router, the test node's NetworkPolicy enforcer, and prints the directory holding
# bin/kube-router. Runs inside the toolchain root (tools/toolchain/enter), which provides the
# iptables and ipset it drives at run time.
#
# Only its firewall runs on the test node (go/internal/kubenode.StartFirewall: no routing, no
# service proxy): it turns NetworkPolicies into iptables rules and ipsets, in the node's own
# network namespace. The release's own main package, built from its Go module. Like node.sh, a
# cold build takes minutes, so the result is cached under $TALLY_HOME/kube-router/<key>, keyed by
# this script (the version is below) and the Go version, and shares the Kubernetes builds' Go
# build cache. Idempotent, built in <key>.partial and renamed when complete; a lock makes
# concurrent callers wait for one build.
set -euo pipefail

KUBE_ROUTER_VERSION=v2.1.0

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TALLY_HOME=${TALLY_HOME:-/var/cache/tally}
if [[ -z ${GOPROXY:-} && -r /etc/tally/env ]]; then
  GOPROXY=$(sed -n 's/^GOPROXY=//p' /etc/tally/env)
fi
export GOPROXY GOFLAGS=-modcacherw GOMODCACHE=$TALLY_HOME/gomodcache GOTOOLCHAIN=local CGO_ENABLED=0
export GOCACHE=${GOCACHE:-$TALLY_HOME/kube/go-build}

log() { printf '\033[1mtools/kube kube-router:\033[0m %s\n' "$*" >&2; }
die() { printf 'tools/kube kube-router: %s\n' "$*" >&2; exit 1; }

key=$({ cat "$here/kube-router.sh"; go version; } | sha256sum | cut -c1-12)
out=$TALLY_HOME/kube-router/$key
if [[ -e $out/.complete ]]; then
  echo "$out"
  exit 0
fi

mkdir -p "$TALLY_HOME/kube-router"
exec 9>"$TALLY_HOME/kube-router/.lock"
flock 9
if [[ -e $out/.complete ]]; then
  echo "$out"
  exit 0
fi

partial=$out.partial
src=$partial/src
mkdir -p "$partial/bin" "$src"
started=$SECONDS
log "building kube-router $KUBE_ROUTER_VERSION (minutes cold; once per machine)"
module=github.com/cloudnativelabs/kube-router/v2
# kube-router requires docker v25 "+incompatible" (no go.mod), so some of its imports come with
# no version: without these lines `go mod tidy` would take each one's newest, a different build
# every month. The versions tidy chose on 2026-12-06, when this build was first measured.
cat >"$src/go.mod" <<EOF
module tally.local/kuberouterbuild

go 1.25

require (
	$module $KUBE_ROUTER_VERSION
	github.com/Azure/go-ansiterm v0.0.0-20261006220739-8c912ac31dd4
	github.com/cenkalti/backoff/v4 v4.3.0
	go.opentelemetry.io/otel/exporters/otlp/otlptrace v1.47.0
	go.opentelemetry.io/proto/otlp v1.11.1
)
EOF
printf '//go:build tools\n\npackage tools\n\nimport _ "%s/cmd/kube-router"\n' "$module" >"$src/tools.go"
(cd "$src" && go mod tidy) || die "go mod tidy for kube-router failed"
(cd "$src" && nice -n 10 go build -trimpath \
  -ldflags "-s -w -X $module/pkg/version.Version=$KUBE_ROUTER_VERSION" \
  -o "$partial/bin/kube-router.tmp" "$module/cmd/kube-router") || die "building kube-router failed"
mv "$partial/bin/kube-router.tmp" "$partial/bin/kube-router"
rm -rf "$src"
touch "$partial/.complete"
rm -rf "$out"
mv "$partial" "$out"
log "kube-router ready in $out ($((SECONDS - started)) s)"
echo "$out"
