#!/usr/bin/env bash
# Runs the Wasm producer's AOT module under WasmEdge (//rust:run):
#
#   tools/bazel run //rust:run -- KAFKA_BROKERS=127.0.0.1:9092 LISTEN_ADDR=0.0.0.0:8081
#
# Settings (docs/wasm.md) come from the environment, then from NAME=VALUE arguments, which win.
# WasmEdge gives a module only the variables passed with --env, so they are forwarded one by one.
set -euo pipefail

module=
for candidate in "${RUNFILES_DIR:-/nonexistent}/_main/rust/wasm_producer_aot.wasm" \
  "$0.runfiles/_main/rust/wasm_producer_aot.wasm" "rust/wasm_producer_aot.wasm"; do
  if [[ -f $candidate ]]; then
    module=$candidate
    break
  fi
done
if [[ -z $module ]]; then
  echo "run.sh: wasm_producer_aot.wasm is not in the runfiles" >&2
  exit 1
fi

declare -A settings=()
for name in LISTEN_ADDR KAFKA_BROKERS KAFKA_BATCH_TIMEOUT KAFKA_BATCH_MAX_RECORDS \
  KAFKA_BATCH_MAX_BYTES KAFKA_MAX_IN_FLIGHT KAFKA_WRITE_TIMEOUT KAFKA_DELIVERY_TIMEOUT \
  KAFKA_RETRY_BACKOFF KAFKA_PARTITIONER KAFKA_CLIENT_ID; do
  if [[ -n ${!name:-} ]]; then
    settings[$name]=${!name}
  fi
done
for arg in "$@"; do
  if [[ $arg != [A-Z]*=* ]]; then
    echo "run.sh: arguments are NAME=VALUE settings (docs/wasm.md), not $arg" >&2
    exit 2
  fi
  settings[${arg%%=*}]=${arg#*=}
done

env_args=()
for name in "${!settings[@]}"; do
  env_args+=(--env "$name=${settings[$name]}")
done
# WasmEdge 0.17 interprets unless told otherwise, even a module carrying AOT code (5x slower).
exec wasmedge --run-mode aot "${env_args[@]}" "$module"
