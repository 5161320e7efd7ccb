#!/usr/bin/env bash
# //docs/manual:screenshots: every picture of the manual (docs/manual/img/), from real runs.
#
#   tools/bazel run //docs/manual:screenshots        (about 4 minutes; needs the ports below free)
#
# 1. //:demo's own script (tools/demo.sh) on a stack of its own (a fresh data directory, ports
#    1xxxx so a running //:up is left alone), with a 30 s steady run: its terminal, as an image.
# 2. While that stack keeps running, a second Locust run (60 s, the Mockaroo export of the ballot)
#    loads both routes; meanwhile Chromium shoots the webapp (live logs and charts) and every
#    Grafana panel's Redis query is run at the panel's interval, then drawn (grafana.py).
#    The Locust report's two plots of that run are copied.
# 3. The tests' Kubernetes control plane (etcd, kube-apiserver, kwok) and //k8s:apply's own
#    script on it (the Strimzi operator from its release files, Secrets, the rendered manifests;
#    no push): `kubectl get` of the workloads, pods and Services, as an image.
# 4. The manual's Deployments and Services tables are regenerated (//docs/manual/objects).
set -euo pipefail

declare -A arg
while (($#)) && [[ $1 != -- ]]; do
  arg[${1%%=*}]=${1#*=}
  shift
done
shift # the --: the stack program and its flags (//:demo's), for tools/demo.sh
stack_cmd=("$@")

[[ -n ${BUILD_WORKSPACE_DIRECTORY:-} ]] || { echo "screenshots: run me with tools/bazel run //docs/manual:screenshots" >&2; exit 2; }
img=$BUILD_WORKSPACE_DIRECTORY/docs/manual/img
mkdir -p "$img"
here=$PWD # the runfiles tree
work=$(mktemp -d "${TMPDIR:-/tmp}/manual-shots.XXXXXX")
export NODE_PATH=$here/${arg[--node-modules]}
export PYTHONPATH=$here/docs/manual/pictures${PYTHONPATH:+:$PYTHONPATH}
export PYTHONDONTWRITEBYTECODE=1
started=$SECONDS
log() { printf 'screenshots: %s (%d s)\n' "$*" $((SECONDS - started)); }

pids=() standin=
# TERM, not INT: a background job of a script ignores SIGINT, and cannot trap it.
cleanup() {
  [[ -n $standin ]] && kill "$standin" 2>/dev/null
  for pid in "${pids[@]}"; do
    kill -TERM -- "-$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_for() { # wait_for FILE PATTERN SECONDS PID
  touch "$1"
  for ((i = 0; i < $3 * 2; i++)); do
    grep -q -- "$2" "$1" && return 0
    kill -0 "$4" 2>/dev/null || { tail -n 30 "$1" >&2; return 1; }
    sleep 0.5
  done
  tail -n 30 "$1" >&2
  return 1
}

# 1. //:demo on its own stack.
ports=(--kafka-port=19092 --kafka-controller-port=19093 --redis-port=16379 --mongo-port=17017
  --grpc-front-port=18080 --wasm-producer-port=18081 --grpc-producer-port=15051
  --grpc-producer-http-port=19101 --consumer-port=19102 --api-port=13000 --web-port=18000)
log "//:demo (tools/demo.sh) on a fresh stack"
TALLY_HOME=$work/home setsid "$here/${arg[--demo]}" "${stack_cmd[@]}" "${ports[@]}" --data-dir="$work/data" \
  -- --duration 30s >"$work/demo.log" 2>&1 &
pids+=($!)
wait_for "$work/demo.log" "everything keeps running" 600 "${pids[0]}" || { echo "screenshots: //:demo failed" >&2; exit 1; }
# What the terminal shows, without the run directory's temporary path.
sed "s|$work/home|\$TALLY_HOME|g" "$work/demo.log" |
  python3 -m terminal --title '$ tools/bazel run //:demo' \
    --caption "Salida real de tools/demo.sh (//:demo), capturada por //docs/manual:screenshots el $(date -u +%Y-%m-%d)." \
    >"$work/demo.html"
node "${arg[--shoot]}" page "$work/demo.html" "$img/demo-terminal.png"
log "demo terminal shot"

# 2. A second load while the stack runs: webapp, Grafana's panels, the Locust plots.
addr() { sed -n "s/^  $1 \+\([^ ]*\).*/\1/p" "$work/demo.log" | head -n1; }
web=$(addr web) redis_url=$(addr redis)
[[ -n $web && -n $redis_url ]] || { echo "screenshots: no web or redis address in the demo's output" >&2; exit 1; }
log "Locust (60 s, locust/data/mockaroo_votes.json) with the webapp at $web"
locust/load --grpc-url "$(addr grpc-front)" --wasm-url "$(addr wasm-producer)" --redis-url "$redis_url" \
  --mongo-url "$(addr mongo)" --profile steady --duration 60s --votes "$here/locust/data/mockaroo_votes.json" \
  --title "Locust, carga del manual" --out "$work/load" >"$work/load.log" 2>&1 &
load_pid=$!
python3 -m grafana --redis "$redis_url" --dashboard "${arg[--dashboard]}" --seconds 55 --out "$img/grafana-panels.png" &
grafana_pid=$!
sleep 20
node "${arg[--shoot]}" webapp "$web" "$img/webapp.png"
log "webapp shot"
wait "$grafana_pid"
log "Grafana panels drawn"
wait "$load_pid" || { tail -n 40 "$work/load.log" >&2; echo "screenshots: the load or its check failed" >&2; exit 1; }
cp "$work/load/latency_over_time.png" "$img/locust-latency-over-time.png"
cp "$work/load/latency_distribution.png" "$img/locust-latency-distribution.png"
log "Locust plots copied"
kill -TERM -- "-${pids[0]}"
wait "${pids[0]}" || true
pids=()

# 3. The Kubernetes objects on the test control plane, after //k8s:apply's own script.
log "test Kubernetes control plane"
setsid "$here/${arg[--kubecluster]}" --bin="$here/${arg[--kube-bin]}" --stages="$here/${arg[--kube-stages]}" \
  --crds="$here/${arg[--gke-crds]}" --volumes=4 >"$work/kube.log" 2>&1 &
pids+=($!)
wait_for "$work/kube.log" "export KUBECONFIG=" 300 "${pids[0]}" || { echo "screenshots: the control plane did not start" >&2; exit 1; }
export KUBECONFIG=$(sed -n 's/.*export KUBECONFIG=//p' "$work/kube.log" | head -n1)
# kwok runs no containers, so the Strimzi operator apply installs never marks Kafka Ready; this
# does it in its place once Kafka exists (as //go/test/kubernetes:kubernetes_test does), so that
# apply's wait for Kafka ends.
(
  until kubectl get kafka tally -n tally-kafka >/dev/null 2>&1; do sleep 1; done
  kubectl patch kafka tally -n tally-kafka --subresource=status --type=merge \
    -p '{"status":{"conditions":[{"type":"Ready","status":"True","reason":"ManualStandIn"}]}}' >/dev/null
) &
standin=$!
IFS=, read -r -a apply_args <<<"${arg[--apply-args]}"
for ((i = 0; i < ${#apply_args[@]}; i++)); do apply_args[i]=$here/${apply_args[i]}; done
log "//k8s:apply (without pushing: the kwok nodes pull nothing)"
RUNFILES_DIR=$(dirname "$here") bash "$here/${arg[--apply]}" apply "${apply_args[@]}" --kubeconfig "$KUBECONFIG" \
  --skip-push --strimzi-install "$here/${arg[--strimzi-install]}" --timeout 300s >"$work/apply.log" 2>&1 ||
  { tail -n 40 "$work/apply.log" >&2; echo "screenshots: //k8s:apply failed" >&2; exit 1; }
kill "$standin" 2>/dev/null || true
standin=
{
  echo '$ kubectl get deployments,statefulsets,horizontalpodautoscalers,cronjobs,jobs -A'
  kubectl get deployments,statefulsets,horizontalpodautoscalers,cronjobs,jobs -A
  echo
  echo '$ kubectl get pods -A'
  kubectl get pods -A
  echo
  echo '$ kubectl get services,ingresses -A'
  kubectl get services,ingresses -A
  echo
  echo '$ kubectl get kafkas,kafkanodepools,kafkatopics -A'
  kubectl get kafkas,kafkanodepools,kafkatopics -A
} >"$work/kubectl.txt" 2>&1
python3 -m terminal --title '$ kubectl get … (el plano de control de prueba, después de //k8s:apply)' \
  --caption "etcd + kube-apiserver + kwok (sin contenedores reales; go/internal/kubecluster), tras //k8s:apply --skip-push; el estado Ready de Kafka lo marca el script en lugar del operador de Strimzi, que kwok no ejecuta. $(date -u +%Y-%m-%d)." \
  <"$work/kubectl.txt" >"$work/kubectl.html"
node "${arg[--shoot]}" page "$work/kubectl.html" "$img/kubectl-get.png"
log "kubectl shot"

# 4. The Deployments and Services tables.
BUILD_WORKSPACE_DIRECTORY=$BUILD_WORKSPACE_DIRECTORY "$here/${arg[--objects]}" \
  --manifests="${arg[--manifests]}" --cloudrun="${arg[--cloudrun]}"
log "done; the pictures are in docs/manual/img/"
