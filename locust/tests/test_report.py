import json
from collections import Counter

from tally_load import report
from tally_load.counts import check
from tally_load.profiles import plan
from tally_load.promtext import ServerTime
from tally_load.stats import RouteSummary, Sample


def summary(route, p50, p99, accepted=3000, errors=0):
    return RouteSummary(route, accepted + errors, accepted, errors, 90, 90, accepted / 60, p50, p50 * 1.5, p99, p99 * 2)


STEADY = plan("steady", users=10, rate=5.0, seconds=60)  # 3,000 votes offered per route


def test_the_faster_route_is_named_with_its_ratios():
    lines = report.verdict(summary("grpc", 6.0, 12.0), summary("wasm", 4.0, 8.0), STEADY)
    assert lines[0] == ("**The Wasm route was faster** at 50 votes/s per route: median 4.0 ms against 6.0 ms (1.50×); "
                        "p99 8.0 against 12.0 ms, max 16.0 against 24.0 ms.")
    assert "median difference seen by Locust was +2.0 ms (gRPC minus Wasm)" in "\n".join(lines)
    assert "neither route failed a vote, and both answered 99 % of votes within 12.0 ms (under the 0.1 s that feels instant)" in lines[-1]
    lines = report.verdict(summary("grpc", 3.0, 9.0), summary("wasm", 4.0, 8.0), STEADY)
    assert lines[0].startswith("**The gRPC route was faster** at 50 votes/s per route: median 3.0 ms against 4.0 ms")


def test_medians_within_noise_leave_it_to_the_tail():
    lines = report.verdict(summary("grpc", 5.0, 20.0), summary("wasm", 5.2, 10.0), STEADY)
    assert lines[0].startswith("**The Wasm route was faster in the tail** at 50 votes/s per route: the medians were "
                               "within the noise (5.2 ms against 5.0 ms), p99 10.0 against 20.0 ms (2.00×)")
    lines = report.verdict(summary("grpc", 5.0, 10.0), summary("wasm", 5.2, 10.5), STEADY)
    assert lines[0].startswith("**Neither route was faster**")


def test_errors_and_shortfalls_are_said():
    lines = report.verdict(summary("grpc", 6.0, 150.0, accepted=2000, errors=30), summary("wasm", 4.0, 8.0), STEADY)
    text = "\n".join(lines)
    assert "The grpc route failed 30 of 2030 votes (1.48%)" in text
    assert "The grpc route accepted 2000 votes of the 3000 offered" in text
    assert "the grpc route failed votes and the wasm route did not: prefer wasm here" in lines[-1]


def test_report_files(tmp_path):
    samples = [Sample(1000.0 + i / 10, route, 2.0 + i % 7, 202, "", True, f"{route}{i}", "Alux Nahual", "Conquista")
               for i in range(50) for route in ("grpc", "wasm")]
    counts = check({"tally:votes:band": Counter({"Alux Nahual": 100})}, {}, {"tally:votes:band": {"Alux Nahual": 100}})
    e2e = report.EndToEnd(counts, settle_s=1.25, delays=[report.Delay.of("grpc", [10.0, 30.0], 0, 0),
                                                         report.Delay.of("wasm", [20.0], 0, 0)])
    summaries = [summary("grpc", 4.0, 6.0), summary("wasm", 3.0, 5.0)]
    text = report.write(tmp_path, title="t", plan=STEADY, targets={"grpc": "http://g"}, summaries=summaries,
                        e2e=e2e, samples=samples, start=1000.0, how="tools/bazel run //locust:load")
    assert "**PASS**" in text and "matched 1.2 s after" in text
    for name in ("report.md", "summary.json", "summary.csv", "counts.csv", "latency_over_time.png", "latency_distribution.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    data = json.loads((tmp_path / "summary.json").read_text())
    assert data["end_to_end"]["ok"] and data["end_to_end"]["accept_to_counted"][0]["p50_ms"] == 10.0
    assert "| grpc | 3000 | 3000 | 50.0 | 4.0 | 6.0 | 6.0 | 12.0 | 0.00% | 90/90 |" in (tmp_path / "report.md").read_text()


def test_a_missing_log_fails_the_check():
    counts = check({"k": Counter({"a": 1})}, {}, {"k": {"a": 1}})
    assert report.EndToEnd(counts, delays=[report.Delay.of("grpc", [], missing=1, wrong_route=0)]).ok is False
    assert report.EndToEnd(None, skipped="no Redis").ok is False


def test_server_time_splits_route_from_client():
    server = {"grpc": ServerTime(3000, 4.5, 8.0), "wasm": ServerTime(3000, 2.25, 4.0)}
    why = report.verdict(summary("grpc", 20.0, 130.0), summary("wasm", 17.5, 120.0), STEADY, server)[1]
    assert "median difference seen by Locust was +2.5 ms" in why
    assert "4.5 ms a vote on average for gRPC (p99 at most 8.0 ms) and 2.2 ms for Wasm (p99 at most 4.0 ms): +2.2 ms." in why
    # Without the histograms (a target whose /metrics is not reachable) the sentence is left out.
    assert "histograms" not in report.verdict(summary("grpc", 20.0, 130.0), summary("wasm", 17.5, 120.0), STEADY)[1]
    fit = report.verdict(summary("grpc", 20.0, 130.0), summary("wasm", 17.5, 120.0), STEADY)[-1]
    assert "within 130 ms (under the 1 s in which a click still feels fluid)" in fit


def test_cpu_per_request_of_each_route():
    why = report.verdict(summary("grpc", 20.0, 130.0), summary("wasm", 17.5, 120.0), STEADY,
                         cpu_us={"grpc": 450.0, "wasm": 90.0})[1]
    assert "450 µs on the gRPC route (grpc-front + grpc-producer) against 90 µs on the Wasm route (wasmedge), 5.0×" in why
