#!/usr/bin/env bash
# Test entry point of stack_test: stack exec [flags] -- <test binary>.
set -euo pipefail
stack=$1
shift
exec "$stack" exec "$@"
