#!/usr/bin/env bash
# Deploys Tally's rendered manifests to the cluster of the current kubeconfig context:
#
#   tools/bazel run //k8s:apply  [-- --context NAME] [--kubeconfig FILE] [--timeout 10m] [--skip-push]
#   tools/bazel run //k8s:diff   [-- --context NAME] [--kubeconfig FILE]
#   tools/bazel run //k8s:delete [-- --context NAME] [--kubeconfig FILE] [--volumes]
#   (all three: [--strimzi-install DIR] to take Strimzi's release files from DIR, not GitHub)
#
# apply: pushes every image by digest (//k8s:push) to where the manifests point; installs the
# Strimzi operator (the pinned release, checked against its sha256 sums, watching tally-kafka)
# and waits for it; creates the Secrets that do not exist yet (random passwords, never stored in
# the repository); shows what will change; applies everything with `kubectl apply --server-side`;
# then waits for Kafka, every Job, Deployment and StatefulSet. diff: only shows what apply would
# change, the operator included. delete: removes all of it but the volumes (and the Secrets
# their data was made with, and Kafka's cluster id, which apply gives back to the kept brokers'
# volumes); --volumes removes those too.
set -euo pipefail

mode=$1 manifests=$2 refs=$3 push=$4 strimzi=$5 pin=$6
shift 6

usage() {
  sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

kubectl_args=() timeout=10m skip_push=false volumes=false strimzi_from=()
while (($#)); do
  case $1 in
    --context) kubectl_args+=(--context "$2"); shift 2 ;;
    --context=*) kubectl_args+=("$1"); shift ;;
    --kubeconfig) kubectl_args+=(--kubeconfig "$2"); shift 2 ;;
    --kubeconfig=*) kubectl_args+=("$1"); shift ;;
    --timeout) timeout=$2; shift 2 ;;
    --timeout=*) timeout=${1#*=}; shift ;;
    --strimzi-install) strimzi_from=(--from "$2"); shift 2 ;;
    --strimzi-install=*) strimzi_from=(--from "${1#*=}"); shift ;;
    # For a cluster that never pulls (the tests' kwok nodes), or images pushed already.
    --skip-push) skip_push=true; shift ;;
    --volumes) volumes=true; shift ;;
    -h | --help) usage ;;
    *) echo "k8s: unknown argument $1" >&2; usage ;;
  esac
done

# Bazel passes runfiles paths; the push launcher finds its own files through RUNFILES_DIR (ours
# hold them). A relative --kubeconfig or --strimzi-install is relative to where the command was run.
RUNFILES_DIR=$(cd "${RUNFILES_DIR:-$0.runfiles}" && pwd)
export RUNFILES_DIR
runfiles=$RUNFILES_DIR/_main
resolve() { [[ $1 == /* ]] && echo "$1" || echo "$runfiles/$1"; }
manifests=$(resolve "$manifests") refs=$(resolve "$refs") push=$(resolve "$push")
strimzi=$(resolve "$strimzi") pin=$(resolve "$pin")
[[ -n ${BUILD_WORKING_DIRECTORY:-} ]] && cd "$BUILD_WORKING_DIRECTORY"

k() { kubectl "${kubectl_args[@]}" "$@"; }
log() { printf '\033[1mk8s:\033[0m %s\n' "$*" >&2; }
die() { printf 'k8s: %s\n' "$*" >&2; exit 1; }

context=$(k config current-context 2>/dev/null) || die "no kubeconfig context: set KUBECONFIG, --kubeconfig or --context"
k version >/dev/null 2>&1 || die "cannot reach the cluster of context $context"
log "cluster: context $context"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The Strimzi operator's install: the pinned release's files, verified and namespaced, running
# the Strimzi images built here when the render listed them (images.strimzi: ours in the
# settings), else the release's images with the digests of k8s/image-pins.txt.
operator=$work/strimzi-operator.yaml
strimzi_args=(--images "$refs" --unpinned "$work/strimzi-unpinned")
[[ -f $(dirname "$pin")/image-pins.txt ]] && strimzi_args+=(--pins "$(dirname "$pin")/image-pins.txt")
"$strimzi" --pin "$pin" "${strimzi_from[@]}" "${strimzi_args[@]}" --out "$operator" ||
  die "cannot prepare the Strimzi operator's install"
if grep -q '^strimzi-operator ' "$refs"; then
  log "Strimzi: the operator and Kafka images built here (images.strimzi: ours)"
elif [[ -s $work/strimzi-unpinned ]]; then
  log "Strimzi: the release's images, named by tag (no digest in k8s/image-pins.txt): $(paste -sd ' ' "$work/strimzi-unpinned")"
fi

# The documents of one kind in a stream, on their own.
docs_of_kind() { # kind file
  awk -v kind="$1" 'BEGIN { RS = "\n---\n" } $0 ~ "(^|\n)kind: " kind "\n" { printf "%s\n---\n", $0 }' "$2"
}
namespaces() { docs_of_kind Namespace "$manifests"; }

# Every object of a stream as "Kind namespace/name" (for a cluster that cannot dry-run them yet).
list_objects() { # file
  awk 'BEGIN { RS = "\n---\n" } {
      kind = ""; name = ""; ns = ""; inmeta = 0
      n = split($0, line, "\n")
      for (i = 1; i <= n; i++) {
        if (line[i] ~ /^kind: /) { kind = substr(line[i], 7) }
        else if (line[i] ~ /^metadata:/) { inmeta = 1 }
        else if (line[i] ~ /^[^ #]/) { inmeta = 0 }
        else if (inmeta && line[i] ~ /^  name: / && name == "") { name = substr(line[i], 9) }
        else if (inmeta && line[i] ~ /^  namespace: /) { ns = substr(line[i], 14) }
      }
      if (kind != "") print "  create  " kind " " (ns == "" ? "" : ns "/") name
    }' "$1"
}

# What would change: kubectl diff exits 1 when there are differences.
diff_of() { # file
  local status=0
  k diff --server-side --field-manager=tally -f "$1" || status=$?
  ((status <= 1)) || die "kubectl diff failed (exit $status)"
  return "$status"
}

if [[ $mode == diff ]]; then
  # kubectl diff cannot dry-run objects in namespaces (or of CRDs) that do not exist yet.
  missing=$(namespaces | awk '/^  name: / {print $2}' | while read -r ns; do
    k get namespace "$ns" >/dev/null 2>&1 || echo "$ns"
  done)
  if [[ -n $missing ]]; then
    log "namespaces $(echo $missing) do not exist yet: apply would create every object"
    list_objects "$operator" >&2
    list_objects "$manifests" >&2
    exit 0
  fi
  changed=false
  diff_of "$operator" || changed=true
  diff_of "$manifests" || changed=true
  $changed || log "no changes"
  exit 0
fi

# Kafka's cluster id lives only in the Kafka resource's status, but every broker's volume is
# formatted with it: a new Kafka gets a new id and its brokers refuse the kept volumes. So delete
# keeps it in this ConfigMap, in a namespace it keeps, and apply gives it back (below).
cluster_id_map=kafka-cluster-id
kafka_cluster_id() { k get kafka tally -n tally-kafka -o 'jsonpath={.status.clusterId}' 2>/dev/null || true; }

if [[ $mode == delete ]]; then
  if ! $volumes && [[ -n $(kafka_cluster_id) ]]; then
    id=$(kafka_cluster_id)
    k create configmap "$cluster_id_map" -n tally-kafka --from-literal=clusterId="$id" --dry-run=client -o yaml |
      k apply --server-side --field-manager=tally -f - >/dev/null
    log "Kafka's cluster id $id kept in ConfigMap tally-kafka/$cluster_id_map, for apply to give back to the kept volumes"
  fi
  # Kafka topics first, while their operator still runs: without --volumes they are let go
  # unmanaged first, so the topic operator leaves their data alone.
  if k get crd kafkatopics.kafka.strimzi.io >/dev/null 2>&1; then
    $volumes || k annotate kafkatopics --all -n tally-kafka strimzi.io/managed=false --overwrite >/dev/null
    k delete kafkatopics --all -n tally-kafka --ignore-not-found --timeout "$timeout" >/dev/null
  fi
  if $volumes; then
    log "deleting everything, volumes included"
    k delete -f "$manifests" --ignore-not-found --timeout "$timeout"
  else
    # The namespaces holding volumes stay, with the volumes and the Secrets their data was
    # made with (MongoDB keeps its users' passwords in its volume); everything else goes.
    log "deleting everything but the volumes (and their namespaces' Secrets): --volumes deletes those too"
    keep='^(tally-data|tally-kafka)$'
    awk -v keep="$keep" 'BEGIN { RS = "\n---\n" }
      !(/(^|\n)kind: Namespace\n/ && match($0, /\n  name: [^\n]*/) && substr($0, RSTART + 9, RLENGTH - 9) ~ keep) { printf "%s\n---\n", $0 }' "$manifests" >"$work/delete.yaml"
    k delete -f "$work/delete.yaml" --ignore-not-found --timeout "$timeout"
  fi
  k delete -f "$operator" --ignore-not-found --timeout "$timeout"
  log "done"
  exit 0
fi

# Kafka's volumes kept by a delete without --volumes, and no Kafka resource: a new one must get
# their cluster id back, or its brokers refuse them. Without the id, stop before changing anything.
restore_id=
if ! k get kafka tally -n tally-kafka >/dev/null 2>&1; then
  kept=$(k get pvc -n tally-kafka -l strimzi.io/cluster=tally -o name 2>/dev/null || true)
  if [[ -n $kept ]]; then
    restore_id=$(k get configmap "$cluster_id_map" -n tally-kafka -o 'jsonpath={.data.clusterId}' 2>/dev/null || true)
    [[ -n $restore_id ]] || die "Kafka's volumes are kept ($(echo $kept)) but the cluster id they were formatted with is not (ConfigMap tally-kafka/$cluster_id_map): a new Kafka would get a new id and its brokers would refuse them. Create the ConfigMap with the old id (kubectl create configmap $cluster_id_map -n tally-kafka --from-literal=clusterId=<id>; a broker's volume holds it in meta.properties) and apply again, or delete the volumes (//k8s:delete -- --volumes) to start Kafka empty"
    log "Kafka's volumes are kept ($(echo $kept)): the new Kafka gets their cluster id $restore_id"
  fi
fi

# The images first: the operator's own when the settings choose Strimzi's images built here
# (images.strimzi: ours), which its rollout below waits for.
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

log "the Strimzi operator ($(basename "$pin" .sha256))"
diff_of "$operator" >/dev/null || log "  installing or updating it"
k apply --server-side --field-manager=tally -f "$operator" >/dev/null
# Polled: `kubectl wait` fails at once on a CRD whose status is not written yet.
docs_of_kind CustomResourceDefinition "$operator" >"$work/crds.yaml"
for attempt in {1..60}; do
  established=$(k get -f "$work/crds.yaml" -o 'jsonpath={range .items[*]}{.status.conditions[?(@.type=="Established")].status}{"\n"}{end}')
  [[ $(grep -c '^True$' <<<"$established") == $(grep -c '^kind: CustomResourceDefinition$' "$work/crds.yaml") ]] && break
  ((attempt < 60)) || die "Strimzi's CRDs are not established after a minute"
  sleep 1
done
k rollout status deployment/strimzi-cluster-operator -n strimzi --timeout "$timeout"

# Secrets: created once with random passwords, then left alone (a rerun keeps them). A value
# shared by a server and its clients (a Redis user's password, say) is copied into each namespace
# that needs it, since pods read Secrets only from their own namespace; tally-data, where the
# servers are, holds the original. The Cloud Run services get theirs from Secret Manager
# (//k8s:cloudrun_deploy copies them there).
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
shared() { # name key: the value tally-data already has, or a new random one
  local v
  v=$(secret_value tally-data "$1" "$2")
  [[ -n $v ]] && echo "$v" || random
}
ensure_secret redis-auth "password=$(shared redis-auth password)" tally-data
ensure_secret redis-consumer "password=$(shared redis-consumer password)" tally-data tally
ensure_secret redis-api "password=$(shared redis-api password)" tally-data
# Grafana's Secrets only where the render has its Deployment (images.grafana: none leaves it out):
# Redis keeps its grafana user, whose password stays in tally-data.
grafana=()
# grep reads all of its input (no -q), so awk never meets a closed pipe under pipefail.
if docs_of_kind Deployment "$manifests" | grep -x '  name: grafana' >/dev/null; then
  grafana=(tally-monitoring)
fi
ensure_secret redis-grafana "password=$(shared redis-grafana password)" tally-data "${grafana[@]}"
ensure_secret mongodb-auth "username=root password=$(shared mongodb-auth password)" tally-data
ensure_secret mongodb-keyfile "keyfile=$(random)$(random)$(random)" tally-data
ensure_secret mongodb-consumer "password=$(shared mongodb-consumer password)" tally-data tally
ensure_secret mongodb-api "password=$(shared mongodb-api password)" tally-data
if ((${#grafana[@]})); then
  ensure_secret grafana-admin "password=$(random)" "${grafana[@]}"
fi

# A Job's template cannot change: one whose manifest changed is deleted, so it runs again.
docs_of_kind Job "$manifests" >"$work/jobs.yaml"
while read -r ns name; do
  awk -v name="$name" 'BEGIN { RS = "\n---\n" } $0 ~ "\n  name: " name "\n" { print }' "$work/jobs.yaml" >"$work/job.yaml"
  # Unchanged: diff exits 0. Changed: 1, or an error when the server refuses the new template.
  if ! k diff --server-side --field-manager=tally -f "$work/job.yaml" >/dev/null 2>&1; then
    log "Job $ns/$name changed: deleting it to run it again"
    k delete job "$name" -n "$ns" --wait >/dev/null
  fi
done < <([[ -s $work/jobs.yaml ]] && k get -f "$work/jobs.yaml" --ignore-not-found --no-headers -o custom-columns=NS:.metadata.namespace,NAME:.metadata.name)

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
if [[ -n $restore_id ]]; then
  # Strimzi's recovery of a KRaft cluster from kept volumes: create the Kafka with reconciliation
  # paused, set its status.clusterId to the volumes' id, then let the operator reconcile.
  docs_of_kind Kafka "$manifests" |
    awk '{ print } /^metadata:$/ { print "  annotations:"; print "    strimzi.io/pause-reconciliation: \"true\"" }' |
    k apply --server-side --field-manager=tally -f - >/dev/null
  # A paused operator still writes the status (its ReconciliationPaused condition): set the id
  # until it stays.
  for attempt in {1..10}; do
    k patch kafka tally -n tally-kafka --subresource=status --type=merge \
      -p "{\"status\":{\"clusterId\":\"$restore_id\"}}" >/dev/null
    sleep 2
    [[ $(kafka_cluster_id) == "$restore_id" ]] && break
    ((attempt < 10)) || die "Kafka tally's status.clusterId does not keep $restore_id (is reconciliation paused?)"
  done
  k annotate kafka tally -n tally-kafka strimzi.io/pause-reconciliation- >/dev/null
  log "Kafka tally re-created with the kept volumes' cluster id $restore_id"
fi
k apply --server-side --field-manager=tally -f "$manifests" >/dev/null
if [[ -n $restore_id ]]; then
  k delete configmap "$cluster_id_map" -n tally-kafka >/dev/null
fi

log "waiting for the workloads (up to $timeout each)"
while read -r kind name ns; do
  case $kind in
    Deployment | StatefulSet) k rollout status "$kind/$name" -n "$ns" --timeout "$timeout" ;;
    Job) k wait "job/$name" -n "$ns" --for condition=complete --timeout "$timeout" ;;
    Kafka) k wait "kafka/$name" -n "$ns" --for condition=Ready --timeout "$timeout" ;;
  esac
done < <(k get -f "$manifests" -o jsonpath='{range .items[*]}{.kind} {.metadata.name} {.metadata.namespace}{"\n"}{end}')
log "done"
