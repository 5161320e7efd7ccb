#!/usr/bin/env bash
# Runs go/cmd/kubecluster from its runfiles (the arguments are runfiles paths).
set -euo pipefail
cd "${RUNFILES_DIR:-$0.runfiles}"
exec "$@"
