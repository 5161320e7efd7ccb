#!/usr/bin/env bash
# //:demo: the README's main command. Until the whole pipeline lands it says what exists, so a
# newcomer's first run tells the truth about what the checkout can do.
set -euo pipefail
cat <<'TEXT'
Tally demo — the full demo (load on both routes, the comparison table, the webapp) is not
runnable yet: the producers, consumer, API and webapp are still being built.

What this checkout runs today:
  tools/bazel run //:up       Kafka, Redis and the MongoDB-wire server on loopback (docs/local.md)
  tools/bazel test //...      every test, in Go, Rust (host and wasm32 on WasmEdge), Node, Vue, Python
  tools/bazel run //go/internal/votelog:newest_benchmark
                              the newest-20 log query at 100k logs (docs/performance.md)
TEXT
