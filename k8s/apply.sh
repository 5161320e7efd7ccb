#!/usr/bin/env bash
# Deploys Tally's rendered manifests to the cluster of the current kubeconfig context:
#
#   tools/bazel run //k8s:apply [-- --context NAME] [--kubeconfig FILE] [--timeout 5m] [--skip-push]
#   tools/bazel run //k8s:diff  [-- --context NAME] [--kubeconfig FILE]
#
# apply: pushes every image by digest (//k8s:push) to where the manifests point, creates the
# Secrets that do not exist yet (random passwords, never stored in the repository), shows what
# will change, applies everything with `kubectl apply --server-side`, then waits for every
# Deployment and StatefulSet to roll out. diff: only shows what apply would change.
#
# Strimzi's operator and CRDs must be installed first (docs/kubernetes.md); apply checks for them.
set -euo pipefail

mode=$1 manifests=$2 refs=$3 push=$4
shift 4

usage() {
  sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

kubectl_args=() timeout=5m skip_push=false
while (($#)); do
  case $1 in
    --context) kubectl_args+=(--context "$2"); shift 2 ;;
    --context=*) kubectl_args+=("$1"); shift ;;
    --kubeconfig) kubectl_args+=(--kubeconfig "$2"); shift 2 ;;
    --kubeconfig=*) kubectl_args+=("$1"); shift ;;
    --timeout) timeout=$2; shift 2 ;;
    --timeout=*) timeout=${1#*=}; shift ;;
    # For a cluster that never pulls (the tests' kwok nodes), or images pushed already.
    --skip-push) skip_push=true; shift ;;
    -h | --help) usage ;;
    *) echo "k8s: unknown argument $1" >&2; usage ;;
  esac
done

# Bazel passes runfiles paths; the push launcher finds its own files through RUNFILES_DIR (ours
# hold them). A relative --kubeconfig is relative to where the command was run.
RUNFILES_DIR=$(cd "${RUNFILES_DIR:-$0.runfiles}" && pwd)
export RUNFILES_DIR
runfiles=$RUNFILES_DIR/_main
resolve() { [[ $1 == /* ]] && echo "$1" || echo "$runfiles/$1"; }
manifests=$(resolve "$manifests") refs=$(resolve "$refs") push=$(resolve "$push")
[[ -n ${BUILD_WORKING_DIRECTORY:-} ]] && cd "$BUILD_WORKING_DIRECTORY"

k() { kubectl "${kubectl_args[@]}" "$@"; }
log() { printf '\033[1mk8s:\033[0m %s\n' "$*" >&2; }
die() { printf 'k8s: %s\n' "$*" >&2; exit 1; }

context=$(k config current-context 2>/dev/null) || die "no kubeconfig context: set KUBECONFIG, --kubeconfig or --context"
k version >/dev/null 2>&1 || die "cannot reach the cluster of context $context"
log "cluster: context $context"

# What would change: kubectl diff exits 1 when there are differences.
show_diff() {
  local status=0
  k diff --server-side --field-manager=tally -f "$manifests" || status=$?
  case $status in
    0) log "no changes" ;;
    1) ;;
    *) die "kubectl diff failed (exit $status)" ;;
  esac
}

require_strimzi() {
  local crd
  for crd in kafkas kafkanodepools kafkatopics; do
    k get crd "$crd.kafka.strimzi.io" >/dev/null 2>&1 ||
      die "Strimzi's CRD $crd.kafka.strimzi.io is missing: install the Strimzi operator first (docs/kubernetes.md)"
  done
}

# The manifests' Namespace documents, on their own: everything else lives in them.
namespaces() { awk 'BEGIN { RS = "\n---\n" } /(^|\n)kind: Namespace\n/ { printf "%s\n---\n", $0 }' "$manifests"; }

if [[ $mode == diff ]]; then
  require_strimzi
  # kubectl diff cannot dry-run objects in namespaces that do not exist yet.
  missing=$(namespaces | awk '/^  name: / {print $2}' | while read -r ns; do
    k get namespace "$ns" >/dev/null 2>&1 || echo "$ns"
  done)
  if [[ -n $missing ]]; then
    log "namespaces $(echo $missing) do not exist yet: apply would create every object"
    k apply --dry-run=client -f "$manifests" -o name | sed 's/^/  create  /' >&2
    exit 0
  fi
  show_diff
  exit 0
fi

require_strimzi

if $skip_push; then
  log "not pushing (--skip-push)"
else
  # Push to exactly where the manifests point: the registry and repository of the refs.
  read -r _ first_ref <"$refs"
  registry=${first_ref%%/*}
  repository=${first_ref#*/}
  repository=${repository%/*}
  log "pushing the images to $registry/$repository"
  pushed=$("$push" --registry "$registry" --repository "$repository")
  while read -r _ ref; do
    grep -qxF "$ref" <<<"$pushed" || die "the push did not report $ref (it printed: $pushed)"
  done <"$refs"
fi

log "namespaces"
namespaces | k apply --server-side --field-manager=tally -f - >/dev/null

# Secrets: created once with random passwords, then left alone (a rerun keeps them). A value
# shared by a server and its clients (the Redis password, say) is copied into each namespace that
# needs it, since pods read Secrets only from their own namespace.
secret_value() { # namespace name key
  k get secret "$2" -n "$1" -o "jsonpath={.data.$3}" 2>/dev/null | base64 -d
}
random() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
ensure_secret() { # name "key=value ..." namespace...
  local name=$1 pairs=$2 ns dir pair
  shift 2
  for ns in "$@"; do
    k get secret "$name" -n "$ns" >/dev/null 2>&1 && continue
    # Values go through files, not the command line, so no process listing shows them.
    dir=$(mktemp -d)
    local from=()
    for pair in $pairs; do
      (umask 077 && printf '%s' "${pair#*=}" >"$dir/${pair%%=*}")
      from+=(--from-file="${pair%%=*}=$dir/${pair%%=*}")
    done
    k create secret generic "$name" -n "$ns" "${from[@]}" >/dev/null
    rm -rf "$dir"
    log "created Secret $ns/$name"
  done
}
shared_password() { # name: the password tally-data already has, or a new one
  local v
  v=$(secret_value tally-data "$1" password)
  [[ -n $v ]] && echo "$v" || random
}
ensure_secret redis-auth "password=$(shared_password redis-auth)" tally-data tally
ensure_secret redis-grafana "password=$(shared_password redis-grafana)" tally-data tally-monitoring
ensure_secret mongodb-auth "username=tally password=$(shared_password mongodb-auth)" tally-data tally
ensure_secret grafana-admin "password=$(random)" tally-monitoring

# What will change, one line per object (the whole diff is what //k8s:diff shows).
diff_out=$(k diff --server-side --field-manager=tally -f "$manifests") || (($? == 1)) ||
  die "kubectl diff failed"
changes=$(awk '/^diff -u -N / {
    n = split($NF, part, "/"); object = part[n]
    getline; getline; getline
    print ($0 ~ /^@@ -0,0 /) ? "  create  " object : "  change  " object
  }' <<<"$diff_out")
if [[ -z $changes ]]; then
  log "no changes to apply"
else
  log "applying $(wc -l <<<"$changes") changes (group.version.Kind.namespace.name):"
  echo "$changes" >&2
fi
k apply --server-side --field-manager=tally -f "$manifests" >/dev/null

log "waiting for rollouts (up to $timeout each)"
while read -r kind name ns; do
  k rollout status "$kind/$name" -n "$ns" --timeout "$timeout"
done < <(k get -f "$manifests" -o jsonpath='{range .items[*]}{.kind} {.metadata.name} {.metadata.namespace}{"\n"}{end}' |
  awk '$1 == "Deployment" || $1 == "StatefulSet"')
log "done"
