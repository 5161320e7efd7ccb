#!/usr/bin/env bash
# Starts Strimzi's images built here on this machine, without a container runtime, and checks
# their health endpoints: each image's layers are unpacked into a root and run under bubblewrap
# as uid 1001 / gid 0, with the host's network, against a Kubernetes API (the test control plane
# of //tools/kube:cluster, say):
#
#   tools/bazel build //k8s/images/strimzi:all
#   tools/bazel run //tools/kube:cluster            # in another terminal; prints its KUBECONFIG
#   KUBECONFIG=... k8s/images/strimzi/smoke.sh bazel-bin/k8s/images/strimzi ../shared/strimzi-install
#
# operator: Strimzi's CRDs are applied, the cluster operator runs /opt/strimzi/bin/
#   cluster_operator_run.sh watching a namespace of its own, and must answer /healthy and /ready
#   on :8080; then a KafkaNodePool and a Kafka are created and the operator must reconcile them
#   into a StrimziPodSet (kwok plays the node: no broker runs there).
# kafka: the broker runs /opt/kafka/kafka_run.sh as a StrimziPodSet pod would (a one-node KRaft
#   config, a cluster CA and node certificate in Secrets that kafka-agent reads through the API),
#   and kafka_readiness.sh (kafka-agent's :8080/v1/ready/: the broker's state is RUNNING) and
#   kafka_liveness.sh must pass, and the plain listener must accept connections. (The image has
#   no Kafka command-line tools to make a topic with; the real-node test does that through the
#   topic operator.)
#
# Needs bwrap, curl, kubectl, openssl, python3 on the host; ports 8080, 8443, 9090 and 9092 free.
# Runs inside the toolchain root too (tools/toolchain/enter). Leaves nothing behind.
set -euo pipefail

images=${1:?usage: smoke.sh IMAGES_DIR STRIMZI_INSTALL_DIR}
install=${2:?usage: smoke.sh IMAGES_DIR STRIMZI_INSTALL_DIR}
: "${KUBECONFIG:?set KUBECONFIG to the kubeconfig of the test cluster}"
ns=strimzi-smoke-$$

log() { printf '\033[1msmoke:\033[0m %s\n' "$*" >&2; }
die() { printf 'smoke: FAIL: %s\n' "$*" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  kubectl delete namespace "$ns" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# unpack LAYOUT DIR: the image's layers, in order, into DIR (a directory that is not an OCI
# layout is taken as the image's root already unpacked).
unpack() {
  if [[ ! -f $1/index.json ]]; then
    cp -a "$1/." "$2/"
    return
  fi
  python3 - "$1" "$2" <<'EOF'
import json, os, sys, tarfile
layout, out = sys.argv[1], sys.argv[2]
blob = lambda d: os.path.join(layout, "blobs", "sha256", d.split(":")[1])
manifest = json.load(open(blob(json.load(open(os.path.join(layout, "index.json")))["manifests"][0]["digest"])))
for layer in manifest["layers"]:
    with tarfile.open(blob(layer["digest"]), "r:*") as t:
        t.extractall(out, numeric_owner=True)
EOF
}

# run ROOT WORKDIR HOSTNAME ENV_FILE COMMAND...: COMMAND in ROOT as 1001:0 with ENV_FILE's variables.
run() {
  local root=$1 dir=$2 host=$3 envfile=$4
  shift 4
  local env_args=(--setenv PATH /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)
  while IFS='=' read -r k v; do
    [[ -n $k ]] && env_args+=(--setenv "$k" "$v")
  done <"$envfile"
  # bwrap applies --clearenv and --setenv in order: clear first.
  bwrap --clearenv --bind "$root" / --proc /proc --dev /dev --tmpfs /tmp \
    --ro-bind "$KUBECONFIG" /etc/kubeconfig --setenv KUBECONFIG /etc/kubeconfig \
    --unshare-user --unshare-uts --unshare-pid --uid 1001 --gid 0 --hostname "$host" \
    --setenv HOSTNAME "$host" --die-with-parent --chdir "$dir" "${env_args[@]}" "$@"
}

wait_for() { # seconds description command...
  local seconds=$1 what=$2
  shift 2
  for ((i = 0; i < seconds; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 1
  done
  printf 'smoke: FAIL: %s after %ss\n' "$what" "$seconds" >&2
  return 1
}

kubectl create namespace "$ns" >/dev/null
crds=()
for f in "$install"/04*-Crd-*.yaml; do crds+=(-f "$f"); done
kubectl apply --server-side "${crds[@]}" >/dev/null
kubectl wait --for condition=Established crd --all --timeout 60s >/dev/null

# ---- The operator ------------------------------------------------------------------------------
log "operator: unpacking"
unpack "$images/operator" "$work/operator"
{
  echo "STRIMZI_NAMESPACE=$ns"
  echo "STRIMZI_FULL_RECONCILIATION_INTERVAL_MS=30000"
  echo "STRIMZI_OPERATION_TIMEOUT_MS=60000"
  echo "STRIMZI_KAFKA_IMAGES=4.3.1=strimzi-kafka"
  echo "STRIMZI_KAFKA_CONNECT_IMAGES=4.3.1=strimzi-kafka"
  echo "STRIMZI_KAFKA_MIRROR_MAKER_2_IMAGES=4.3.1=strimzi-kafka"
  for v in TOPIC_OPERATOR USER_OPERATOR KAFKA_INIT; do echo "STRIMZI_DEFAULT_${v}_IMAGE=strimzi-operator"; done
  for v in KAFKA_EXPORTER CRUISE_CONTROL; do echo "STRIMZI_DEFAULT_${v}_IMAGE=strimzi-kafka"; done
  echo "STRIMZI_DEFAULT_KAFKA_BRIDGE_IMAGE=kafka-bridge"
  echo "STRIMZI_OPERATOR_NAMESPACE=$ns"
  echo "JAVA_HOME=/usr/lib/jvm/java-21-openjdk-amd64"
  echo "STRIMZI_HOME=/opt/strimzi"
} >"$work/operator.env"
log "operator: starting /opt/strimzi/bin/cluster_operator_run.sh"
run "$work/operator" /opt/strimzi strimzi-cluster-operator "$work/operator.env" \
  /opt/strimzi/bin/cluster_operator_run.sh >"$work/operator.log" 2>&1 &
pids+=($!)
wait_for 180 "the operator answers /healthy" curl -fsS http://127.0.0.1:8080/healthy ||
  { tail -30 "$work/operator.log"; exit 1; }
wait_for 60 "the operator answers /ready" curl -fsS http://127.0.0.1:8080/ready || exit 1
log "operator: /healthy and /ready answer"
kubectl apply -n "$ns" -f - >/dev/null <<EOF
apiVersion: kafka.strimzi.io/v1
kind: KafkaNodePool
metadata:
  name: dual-role
  labels: {strimzi.io/cluster: smoke}
spec:
  replicas: 1
  roles: [controller, broker]
  storage: {type: ephemeral}
---
apiVersion: kafka.strimzi.io/v1
kind: Kafka
metadata:
  name: smoke
spec:
  kafka:
    version: 4.3.1
    listeners:
      - {name: plain, port: 9092, type: internal, tls: false}
    config: {offsets.topic.replication.factor: 1}
  entityOperator:
    topicOperator: {}
EOF
wait_for 240 "the operator made StrimziPodSet smoke-dual-role" kubectl get strimzipodset -n "$ns" smoke-dual-role ||
  { grep -E 'ERROR|WARN|Exception' "$work/operator.log" | tail -30; exit 1; }
podset_image=$(kubectl get strimzipodset -n "$ns" smoke-dual-role -o 'jsonpath={.spec.pods[0].spec.containers[0].image}')
log "operator: reconciled the Kafka into StrimziPodSet smoke-dual-role, its pod running image $podset_image"
for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
wait 2>/dev/null || true
pids=()

# ---- The broker --------------------------------------------------------------------------------
log "kafka: unpacking"
unpack "$images/kafka" "$work/kafka"
# Another cluster name than the operator's Kafka above, whose Secrets the operator made.
pod=broker-dual-role-0
config=$work/kafka/opt/kafka/custom-config
mkdir -p "$config" "$work/kafka/var/lib/kafka/data-0" "$work/kafka/var/run/secrets/kubernetes.io/serviceaccount"
chmod 0777 "$work/kafka/var/lib/kafka/data-0"
echo "$ns" >"$work/kafka/var/run/secrets/kubernetes.io/serviceaccount/namespace"
cat >"$config/server.config" <<EOF
node.id=0
process.roles=broker,controller
controller.quorum.voters=0@127.0.0.1:9090
controller.listener.names=CONTROLPLANE-9090
listeners=CONTROLPLANE-9090://127.0.0.1:9090,PLAIN-9092://127.0.0.1:9092
advertised.listeners=PLAIN-9092://127.0.0.1:9092
listener.security.protocol.map=CONTROLPLANE-9090:PLAINTEXT,PLAIN-9092:PLAINTEXT
inter.broker.listener.name=PLAIN-9092
log.dirs=/var/lib/kafka/data-0/kafka-log0
metadata.log.dir=/var/lib/kafka/data-0/kafka-log0
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
EOF
echo "smoke-cluster-id-0000A" >"$config/cluster.id"
echo "4.3-IV0" >"$config/metadata.version"
cat >"$config/log4j2.properties" <<'EOF'
appender.console.type=Console
appender.console.name=STDOUT
appender.console.layout.type=PatternLayout
appender.console.layout.pattern=%d %p %c{1} %m%n
rootLogger.level=INFO
rootLogger.appenderRefs=console
rootLogger.appenderRef.console.ref=STDOUT
EOF
# What the operator's cluster CA and the node's certificate Secrets hold, for kafka-agent.
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=smoke-ca -keyout "$work/ca.key" -out "$work/ca.crt" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=$pod" -keyout "$work/$pod.key" -out "$work/$pod.csr" 2>/dev/null
openssl x509 -req -in "$work/$pod.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" -CAcreateserial -days 1 -out "$work/$pod.crt" 2>/dev/null
kubectl create secret generic -n "$ns" broker-cluster-ca-cert --from-file=ca.crt="$work/ca.crt" >/dev/null
kubectl create secret generic -n "$ns" "$pod" --from-file="$work/$pod.crt" --from-file="$work/$pod.key" >/dev/null
{
  echo "KAFKA_CLUSTER_NAME=broker"
  echo "KAFKA_HEAP_OPTS=-Xms256m -Xmx256m"
  echo "JAVA_HOME=/usr/lib/jvm/java-21-openjdk-amd64"
  echo "KAFKA_HOME=/opt/kafka"
} >"$work/kafka.env"
log "kafka: starting /opt/kafka/kafka_run.sh as $pod"
# The probes run in the broker's own sandbox, as Kubernetes runs them in its container (they read
# its /tmp and /proc); each result is written to a folder shared with this script.
mkdir -p "$work/kafka/smoke" && chmod 0777 "$work/kafka/smoke"
run "$work/kafka" /opt/kafka "$pod" "$work/kafka.env" bash -c '
  /opt/kafka/kafka_run.sh &
  for _ in $(seq 240); do
    if /opt/kafka/kafka_readiness.sh >/dev/null 2>&1; then
      echo ready >/smoke/readiness
      /opt/kafka/kafka_liveness.sh && echo live >/smoke/liveness
      (exec 3<>/dev/tcp/127.0.0.1/9092) && echo listening >/smoke/listener
      break
    fi
    sleep 1
  done
  wait' >"$work/kafka.log" 2>&1 &
pids+=($!)
wait_for 240 "kafka_readiness.sh passes (kafka-agent's /v1/ready/: the broker is RUNNING)" test -s "$work/kafka/smoke/readiness" ||
  { grep -E 'ERROR|Exception|Agent' "$work/kafka.log" | tail -30; exit 1; }
log "kafka: kafka_readiness.sh passes"
wait_for 10 "kafka_liveness.sh passes" test -s "$work/kafka/smoke/liveness" || exit 1
log "kafka: kafka_liveness.sh passes"
wait_for 10 "the plain listener accepts connections" test -s "$work/kafka/smoke/listener" || exit 1
log "kafka: the plain listener accepts connections"
log "PASS"
