#!/usr/bin/env bash
# Regenerates the Go code of Tally's protos with protoc and the plugins Bazel built.
#   generate_go.sh <protoc-gen-go> <protoc-gen-go-grpc> <output dir | -> <proto files...>
# "-" means the checkout's proto/ (under bazel run).
# //proto:generate_go writes into the checkout; //proto:generated_go_test writes into a temp dir
# and fails when the checked-in code differs.
set -euo pipefail

gen_go=$(realpath "$1")
gen_go_grpc=$(realpath "$2")
out=$3
[[ $out == - ]] && out=${BUILD_WORKSPACE_DIRECTORY:?run me with bazel run}/proto
shift 3

# Debian's protoc (protobuf-compiler, in the toolchain root).
protoc --plugin=protoc-gen-go="$gen_go" --plugin=protoc-gen-go-grpc="$gen_go_grpc" \
  --proto_path=proto \
  --go_out="$out" --go_opt=paths=source_relative \
  --go-grpc_out="$out" --go-grpc_opt=paths=source_relative \
  $(for f in "$@"; do [[ $f == *.proto ]] && echo "${f#proto/}"; done)
