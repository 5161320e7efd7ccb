"""The integration test of the load (//locust:load_stack_test): a short smoke run against a real
stack (Kafka, Redis, FerretDB, both producer routes and the consumer, started by `stack exec`),
then checks that the end-to-end check ran and passed: every 202 counted once in Redis per band
and album, every vote's log found with the route that accepted it, the invalid rows refused.
"""

import json
import os
import sys
from pathlib import Path

from tally_load import run


def main() -> None:
    # Not the undeclared outputs: Bazel zips those, and the toolchain root has no zip.
    out = Path(os.environ["TEST_TMPDIR"]) / "smoke"
    code = run.main(["--profile", "smoke", "--duration", "15s", "--out", str(out), "--settle", "30s"])
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    routes = {r["route"]: r for r in summary["routes"]}
    e2e = summary["end_to_end"]

    assert code == 0, f"the load exited {code}"
    assert e2e["checked"] and e2e["ok"], e2e
    for route in ("grpc", "wasm"):
        r = routes[route]
        # 5 users × 2 votes/s × 15 s, less the invalid rows and the start: well over 100.
        assert r["accepted"] > 100, r
        assert r["errors"] == 0, r
        assert r["invalid_sent"] > 0 and r["invalid_refused"] == r["invalid_sent"], r
    counted = sum(c["counted"] for c in e2e["counts"] if c["key"] == "tally:votes:band")
    assert counted == routes["grpc"]["accepted"] + routes["wasm"]["accepted"], (counted, routes)
    delays = {d["route"]: d for d in e2e["accept_to_counted"]}
    for route in ("grpc", "wasm"):
        assert delays[route]["found"] == routes[route]["accepted"] and delays[route]["missing"] == 0, delays
        assert delays[route]["wrong_route"] == 0, delays
    for png in ("latency_over_time.png", "latency_distribution.png"):
        assert (out / png).stat().st_size > 1000, png
    print("stack smoke: ok", file=sys.stderr)


if __name__ == "__main__":
    main()
