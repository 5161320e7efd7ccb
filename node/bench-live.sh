#!/usr/bin/env bash
# What one API instance holds for the live page: GET /api/live (and, to compare, /api/results and
# /api/logs, which read a store per request) under wrk, with real Redis and the MongoDB-wire
# server behind it, all on this machine. docs/performance.md has the numbers and how they were
# taken. Run from the checkout, inside the toolchain root (wrk, redis-server and node are there):
#
#   tools/bazel build //go/cmd/ferretdb
#   (cd node && tools/toolchain/enter npm ci)   # or a copy of node/ with its modules
#   tools/toolchain/enter node/bench-live.sh bazel-bin/go/cmd/ferretdb/ferretdb_/ferretdb [node dir]
#
# Env: DURATION (15s), CONNECTIONS (100), LOG_LEVEL (info: what Cloud Run runs).
set -euo pipefail
ferretdb=$(realpath "$1")
api_dir=$(realpath "${2:-node}")
duration=${DURATION:-15s} connections=${CONNECTIONS:-100}
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
redis_port=$(free_port) mongo_port=$(free_port) api_port=$(free_port)

redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" >"$work/redis.log" 2>&1 &
pids+=($!)
mkdir "$work/mongo"
"$ferretdb" -listen "127.0.0.1:$mongo_port" -data-dir "$work/mongo" >"$work/ferretdb.log" 2>&1 &
pids+=($!)
until redis-cli -p "$redis_port" ping >/dev/null 2>&1; do sleep 0.2; done

# A contest in progress: the ballot's bands counted, 200 recent logs (proto/redis_keys.json, docs/data.md).
redis-cli -p "$redis_port" set tally:votes:total 120000 >/dev/null
for band in "Alux Nahual" "Bohemia Suburbana" "Viernes Verde" "Malacates Trébol Shop" "Ricardo Andrade"; do
  redis-cli -p "$redis_port" hset tally:votes:band "$band" 24000 >/dev/null
  redis-cli -p "$redis_port" hset "tally:votes:band:$band" "Album A" 12000 "Album B" 12000 >/dev/null
done

cd "$api_dir"
PORT=$api_port HOST=127.0.0.1 REDIS_URL="redis://127.0.0.1:$redis_port" MONGO_URL="mongodb://127.0.0.1:$mongo_port/" \
  LOG_LEVEL=${LOG_LEVEL:-info} NODE_ENV=production node src/server.js >"$work/api.log" 2>&1 &
pids+=($!)
api_pid=$!
until curl -fs "http://127.0.0.1:$api_port/readyz" >/dev/null 2>&1; do sleep 0.2; done
node -e '
  const { MongoClient } = require("mongodb");
  (async () => {
    const c = await MongoClient.connect(process.argv[1]);
    const now = Date.now();
    const logs = Array.from({ length: 200 }, (_, i) => ({ _id: `vote-${i}`, name: "Alux Nahual", album: "Album A", year: 1981, rank: 1 + (i % 10),
      route: i % 2 ? "grpc" : "wasm", accepted_at: new Date(now - i * 10), counted_at: new Date(now - i * 10 + 5) }));
    await c.db("tally_recent").collection("logs_recent").insertMany(logs);
    await c.close();
  })();' "mongodb://127.0.0.1:$mongo_port/"

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) before the runs"
echo "document: $(curl -s "http://127.0.0.1:$api_port/api/live" | wc -c) bytes; headers: $(curl -sI "http://127.0.0.1:$api_port/api/live" | grep -i '^cache-control' | tr -d '\r')"
for path in /api/live /api/results "/api/logs?limit=20"; do
  echo "== GET $path: wrk -t2 -c$connections -d$duration"
  wrk -t2 -c"$connections" -d"$duration" --latency "http://127.0.0.1:$api_port$path" | grep -E 'Requests/sec|Latency|50%|99%|Non-2xx|Socket errors'
  echo "   API peak RSS: $(grep VmHWM /proc/$api_pid/status | awk '{print $2, $3}')"
done
