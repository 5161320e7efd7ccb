#!/usr/bin/env bash
# Entry point of //locust:load: the toolchain's python3 (Locust and matplotlib are Debian packages
# in the toolchain root) on tally_load.run, with locust/ on the import path. It runs from a
# runfiles tree that holds locust/ and proto/ (its own under bazel run, or //:demo's).
set -euo pipefail
export PYTHONPATH=$PWD/locust${PYTHONPATH:+:$PYTHONPATH}
export PYTHONDONTWRITEBYTECODE=1
exec python3 -m tally_load.run "$@"
