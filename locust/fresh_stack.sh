#!/usr/bin/env bash
# //locust:load_fresh_stack: //locust:load on a stack of its own (stack exec: free ports, a temp
# data dir), after a smoke run that also waits out the consumer joining its group, so the
# measured run starts warm. How the runs in docs/results/*-locust-* are made.
set -euo pipefail
warmup=$(mktemp -d)
trap 'rm -rf "$warmup"' EXIT
echo "load_fresh_stack: warming up with a smoke run (its report: discarded)"
locust/load --profile smoke --out "$warmup" >/dev/null
TALLY_LOAD_TARGET=//locust:load_fresh_stack locust/load "$@"
