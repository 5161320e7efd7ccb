#!/usr/bin/env bash
# Runs the shared vote cases in wasmedge:
#   vote_cases_wasm_test.sh <module.wasm> <vote_cases.json> <ballot.json>
set -euo pipefail

wasm=$PWD/$1
cases=$2
ballot=$3

# A platform mix-up would hand us a host ELF that still "passes"; insist on a Wasm module
# (magic "\0asm", version 1).
header=$(od -An -tx1 -N8 "$wasm" | tr -d ' \n')
if [[ $header != 0061736d01000000 ]]; then
  echo "$wasm is not a Wasm module (header: $header)" >&2
  exit 1
fi

# Runfiles are symlinks out of the runfiles tree, and WASI refuses to follow a symlink out of a
# preopened directory ("Operation not permitted"), so the module gets a real copy to read.
scratch=${TEST_TMPDIR:-$(mktemp -d)}
cp -L "$cases" "$scratch/vote_cases.json"
cp -L "$ballot" "$scratch/ballot.json"
cd "$scratch"
exec wasmedge --dir .:. "$wasm" vote_cases.json ballot.json
