import math

import pytest

from tally_load.stats import Sample, per_second, percentile, summarize


def vote(route, latency, ok=True, start=100.0, invalid=""):
    return Sample(start, route, latency, 202 if ok and not invalid else 400 if ok else 503, invalid, ok,
                  "id" if ok and not invalid else "", "Alux Nahual", "Conquista")


def test_nearest_rank_percentiles():
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 50) == 50
    assert percentile(values, 95) == 95
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile([7.0], 99) == 7
    # Ten values: p99 is the largest, p50 the fifth.
    ten = [1.0, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert percentile(ten, 50) == 5 and percentile(ten, 99) == 10 and percentile(ten, 90) == 9
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError):
        percentile(values, 0)


def test_summary_per_route():
    samples = [vote("grpc", float(ms)) for ms in range(1, 101)]
    samples += [vote("grpc", 500.0, ok=False)]  # a 503: an error, and in the latency tail
    samples += [vote("grpc", 2.0, invalid="rank"), vote("grpc", 2.0, ok=False, invalid="year")]
    samples += [vote("wasm", 3.0)] * 10
    g = summarize("grpc", samples, seconds=10)
    assert (g.votes_sent, g.accepted, g.errors) == (101, 100, 1)
    assert g.error_rate == pytest.approx(1 / 101)
    assert (g.invalid_sent, g.invalid_refused) == (2, 1)
    assert g.votes_per_s == 10.0
    assert (g.p50_ms, g.p95_ms, g.p99_ms, g.max_ms) == (51.0, 96.0, 100.0, 500.0)
    w = summarize("wasm", samples, seconds=10)
    assert (w.accepted, w.p99_ms, w.votes_per_s, w.invalid_sent) == (10, 3.0, 1.0, 0)


def test_latency_per_second():
    samples = [vote("grpc", 1.0, start=100.2), vote("grpc", 9.0, start=100.9), vote("grpc", 4.0, start=102.5),
               vote("wasm", 50.0, start=100.5), vote("grpc", 99.0, start=100.5, invalid="name")]
    assert per_second(samples, "grpc", 100.0, 50) == [(0, 1.0), (2, 4.0)]
    assert per_second(samples, "grpc", 100.0, 99) == [(0, 9.0), (2, 4.0)]
