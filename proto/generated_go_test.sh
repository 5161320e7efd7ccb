#!/usr/bin/env bash
# Fails when the checked-in Go code under proto/ is not what the proto files generate now.
set -euo pipefail

generate=$1
shift
out=$TEST_TMPDIR/generated
mkdir -p "$out"
protos=()
for f in "$@"; do [[ $f == *.proto ]] && protos+=("$f"); done
"$generate" "${GEN_GO}" "${GEN_GO_GRPC}" "$out" "${protos[@]}"

status=0
while IFS= read -r generated; do
  rel=${generated#"$out"/}
  if ! diff -u "proto/$rel" "$generated"; then
    status=1
  fi
done < <(find "$out" -type f | sort)
if ((status)); then
  echo "generated Go code is stale: run 'tools/bazel run //proto:generate_go'" >&2
fi
exit $status
