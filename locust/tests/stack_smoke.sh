#!/usr/bin/env bash
# Runs tests/stack_smoke.py under `stack exec` (//locust:load_stack_test), with locust/ on the
# import path; the stack's addresses come from the variables stack exec sets.
set -euo pipefail
export PYTHONPATH=$PWD/locust${PYTHONPATH:+:$PYTHONPATH}
export PYTHONDONTWRITEBYTECODE=1
exec python3 locust/tests/stack_smoke.py
