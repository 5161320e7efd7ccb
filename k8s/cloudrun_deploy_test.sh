#!/usr/bin/env bash
# //k8s:cloudrun_deploy without gcloud on the PATH: exit 1 and a message naming gcloud, before
# anything else is touched.
set -uo pipefail
out=$(PATH=/nonexistent /bin/bash "$1" services.yaml services.refs push ballot.json 2>&1)
status=$?
if ((status != 1)) || ! grep -q "gcloud is not on the PATH" <<<"$out"; then
  echo "cloudrun.sh without gcloud: exit $status, output:" >&2
  echo "$out" >&2
  exit 1
fi
