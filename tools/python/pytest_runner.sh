#!/usr/bin/env bash
# Runs pytest from the toolchain's Python (Debian's python3-pytest) on the given test files,
# with the workspace directories named in PYTEST_IMPORTS (space-separated) on sys.path.
set -euo pipefail

for dir in ${PYTEST_IMPORTS:-.}; do
  PYTHONPATH=$PWD/$dir${PYTHONPATH:+:$PYTHONPATH}
done
export PYTHONPATH
export PYTHONDONTWRITEBYTECODE=1
# Bazel's XML_OUTPUT_FILE makes the results show up per test case in Bazel's test reports.
exec python3 -m pytest -p no:cacheprovider -q ${XML_OUTPUT_FILE:+--junitxml="$XML_OUTPUT_FILE"} "$@"
