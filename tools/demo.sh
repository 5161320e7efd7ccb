#!/usr/bin/env bash
# //:demo: the README's main command. Until the services land it reports what exists, so a
# newcomer's first run says honestly what the checkout can do.
set -euo pipefail
cat <<'TEXT'
Tally demo — not runnable yet.

The pipeline's services (producers, consumer, API, webapp) and //:up have not landed, so there
is nothing to start. What this checkout has today:
  - the toolchain: tools/bazel (Bazel 7.7.1 in a Debian forky root)
  - the contracts: proto/vote/v1/vote.proto and the validation table proto/vote_cases.json
  - vote validation in Go (go/internal/vote) and Rust (rust/, also built for wasm32-wasip1)
  - tests in every language:  tools/bazel test //...
TEXT
