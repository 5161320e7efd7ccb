#!/usr/bin/env bash
# The Strimzi build on this machine (@strimzi_build) is byte for byte the one whose sums are
# committed in build.sha256: every jar, script and config model, Strimzi's own jars and the
# agents included. Maven runs once per machine, so this is what shows that another machine's
# build (CI's, a brand-new one) gives the same jars, and so the same operator and Kafka images.
#   build_sums_test.sh EXPECTED OPERATOR_DIR KAFKA_AGENT_JAR TRACING_AGENT_JAR CONFIG_MODELS_DIR
set -euo pipefail
(($# == 5)) || { echo "usage: build_sums_test.sh EXPECTED OPERATOR KAFKA_AGENT TRACING_AGENT CONFIG_MODELS" >&2; exit 2; }
expected=$1
# The files laid out as build.sh sums them (its SHA256SUMS), summed here again.
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
mkdir "$tree/agents"
ln -s "$(realpath "$2")" "$tree/operator"
ln -s "$(realpath "$3")" "$tree/agents/kafka-agent.jar"
ln -s "$(realpath "$4")" "$tree/agents/tracing-agent.jar"
ln -s "$(realpath "$5")" "$tree/config-models"
(cd "$tree" && find -L . -type f | LC_ALL=C sort | xargs sha256sum) >"$tree.sums"
trap 'rm -rf "$tree" "$tree.sums"' EXIT
if ! diff -u <(grep -v '^#' "$expected") "$tree.sums"; then
  echo "FAIL: the Strimzi build's files differ from tools/strimzi/build.sha256 (- committed, + built here)." >&2
  echo "If the source, build.sh, overrides.txt, dropped.txt, Maven or the JDK changed on purpose, build" >&2
  echo "twice and compare (tools/strimzi/README.md) before writing the new sums there." >&2
  exit 1
fi
echo "PASS: $(grep -vc '^#' "$expected") files as committed"
