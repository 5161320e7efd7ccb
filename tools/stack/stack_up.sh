#!/usr/bin/env bash
# Entry point of //:up: stack up with the programs Bazel built, plus the user's flags.
set -euo pipefail
stack=$1
shift
exec "$stack" up "$@"
