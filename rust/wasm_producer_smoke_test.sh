#!/usr/bin/env bash
# Starts the AOT Wasm producer under wasmedge (through //rust:run) with no Kafka behind it and
# checks that it serves HTTP from the AOT code: health, the contract's refusals, and 503 for a
# valid vote.
# With Kafka, the whole contract is go/test/httpcontract's job.
set -euo pipefail

log=${TEST_TMPDIR:-$(mktemp -d)}/producer.log
# Port 1 on loopback refuses connections: Kafka is "down".
rust/run LISTEN_ADDR=127.0.0.1:0 KAFKA_BROKERS=127.0.0.1:1 KAFKA_RETRY_BACKOFF=100ms >"$log" 2>&1 &
producer=$!
trap 'kill "$producer" 2>/dev/null || true' EXIT

port=
for _ in $(seq 100); do
  port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\),.*/\1/p' "$log")
  [[ -n $port ]] && break
  kill -0 "$producer" 2>/dev/null || { cat "$log" >&2; exit 1; }
  sleep 0.1
done
[[ -n $port ]] || { echo "producer did not start" >&2; cat "$log" >&2; exit 1; }

# request METHOD PATH CONTENT_TYPE BODY: prints the whole response.
request() {
  local headers=""
  [[ -n $3 ]] && headers="Content-Type: $3"$'\r\n'
  exec 3<>"/dev/tcp/127.0.0.1/$port"
  printf '%s %s HTTP/1.1\r\nHost: test\r\nConnection: close\r\n%sContent-Length: %d\r\n\r\n%s' \
    "$1" "$2" "$headers" "${#4}" "$4" >&3
  cat <&3
  exec 3<&-
}

failures=0
expect() { # NAME RESPONSE PATTERN...
  local name=$1 response=$2
  shift 2
  for pattern in "$@"; do
    if ! grep -q -- "$pattern" <<<"$response"; then
      echo "FAIL $name: no $pattern in:"$'\n'"$response" >&2
      failures=$((failures + 1))
    fi
  done
}

vote='{"name":"Alux Nahual","album":"Alux Nahual","year":1983,"rank":1}'
expect healthz "$(request GET /healthz '' '')" "HTTP/1.1 200" '"status":"ok"'
expect readyz "$(request GET /readyz '' '')" "HTTP/1.1 503" "Retry-After: 1"
expect vote "$(request POST /votes application/json "$vote")" "HTTP/1.1 503" "Retry-After: 1" "vote queue unavailable"
expect invalid "$(request POST /votes application/json '{"name":"a","album":"b","year":1800,"rank":1}')" \
  "HTTP/1.1 400" '"field":"year"'
expect media "$(request POST /votes text/plain "$vote")" "HTTP/1.1 415" '"field":"Content-Type"'
expect method "$(request GET /votes '' '')" "HTTP/1.1 405" "Allow: POST"
expect path "$(request GET /nope '' '')" "HTTP/1.1 404"
expect metrics "$(request GET /metrics '' '')" 'tally_http_requests_total{path="/votes",method="POST",code="503"} 1' \
  'tally_kafka_errors_total{kind="refused"} 1'

if grep -q "falling back to interpreter" "$log"; then
  echo "FAIL: wasmedge did not run the AOT code" >&2
  failures=$((failures + 1))
fi

if ((failures)); then
  cat "$log" >&2
  exit 1
fi
echo "wasm producer smoke test: ok (port $port)"
