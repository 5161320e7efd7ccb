#!/usr/bin/env bash
# //:demo, the README's main command: the whole pipeline on this machine, loaded and compared.
#
#   tools/bazel run //:demo                      smoke, then steady (60 s), then keeps running
#   tools/bazel run //:demo -- --duration 30s    flags after -- go to the steady run (//locust:load)
#
# tools/bazel has provisioned the toolchain and Bazel has built every program by the time this
# runs; what is left is state, which the stack creates on first start. Then: start the stack with
# //:up's `stack up` (the usual ports, data in $TALLY_HOME/data, logs to a file), wait until every
# server is ready, run the smoke and the steady load on both routes (//locust:load: comparison
# table, counts check, report), and keep everything running, the webapp's address printed when
# the stack has a webapp, until Ctrl-C.
set -euo pipefail

stack=$1
shift
stack_flags=()
while (($#)) && [[ $1 != -- ]]; do
  stack_flags+=("$1")
  shift
done
(($#)) && shift # the --; what follows is the user's, for the steady run
steady_flags=("$@")

home=${TALLY_HOME:-/var/cache/tally}
run_dir=$home/load/$(date -u +%Y%m%dT%H%M%SZ)-demo
mkdir -p "$run_dir"
log=$run_dir/stack.log

echo "demo: starting the stack (its logs: $log)"
# Its own process group, so Ctrl-C reaches it once, through the trap below. LOG_LEVEL=warn (unless
# set): the Go services log every request at info and the Wasm producer does not, and the load
# should compare the routes, not their logging (the benchmarks run the same way).
LOG_LEVEL=${LOG_LEVEL:-warn} setsid "$stack" up "${stack_flags[@]}" >"$log" 2>&1 &
stack_pid=$!
stop() {
  trap - INT TERM EXIT
  if kill -0 "$stack_pid" 2>/dev/null; then
    echo "demo: stopping the stack..."
    kill -INT "$stack_pid"
    wait "$stack_pid" || true
  fi
}
trap stop EXIT
trap 'exit 130' INT TERM

# `stack up` prints "ready in ..." then one "  <name> <address>" line per server, then this line.
for ((i = 0; i < 600; i++)); do
  grep -q '^Ctrl-C stops everything' "$log" && break
  if ! kill -0 "$stack_pid" 2>/dev/null; then
    echo "demo: the stack did not start:" >&2
    tail -n 20 "$log" >&2
    exit 1
  fi
  sleep 0.5
done
if ! grep -q '^Ctrl-C stops everything' "$log"; then
  echo "demo: the stack was not ready after 300 s; see $log" >&2
  exit 1
fi
servers=$(sed -n '/^ready in/,/^Ctrl-C stops everything/{/^  /p}' "$log")
declare -A addr
# The address is the first word after the name; some lines say more after it.
while read -r name address _; do
  addr[$name]=$address
done <<<"$servers"
echo "demo: stack $(grep -m1 '^ready in' "$log")"
echo "$servers"

targets=(--grpc-url "${addr[grpc-front]}" --wasm-url "${addr[wasm-producer]}"
  --redis-url "${addr[redis]}" --mongo-url "${addr[mongo]}")
status=0
echo
echo "demo: smoke load on both routes"
locust/load "${targets[@]}" --profile smoke --out "$run_dir/smoke" || status=$?
echo
echo "demo: steady load on both routes"
locust/load "${targets[@]}" --profile steady --out "$run_dir/steady" "${steady_flags[@]}" || status=$?

echo
((status == 0)) || echo "demo: a load run or its end-to-end check FAILED (above); the stack keeps running for a look"
echo "demo: reports in $run_dir/{smoke,steady}/report.md"
if [[ -n ${addr[web]:-} ]]; then
  echo "demo: the webapp (last 20 logs, live counts): ${addr[web]}"
else
  echo "demo: this stack has no webapp yet; the counts: redis-cli -u ${addr[redis]} HGETALL tally:votes:album"
fi
echo "demo: everything keeps running; Ctrl-C stops it."
wait "$stack_pid"
