"""The arithmetic of a run's report: one sample per request, summarised per route.

Pure functions over fixed inputs (tests/test_stats.py). Latencies are Locust's own per-request
times in milliseconds, kept unrounded: Locust's CSVs round them into buckets, which at the few
milliseconds a vote takes here would hide the difference between the routes.
"""

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Sample:
    """One request of the run, as the load saw it."""

    start: float  # Unix seconds when the request was sent
    route: str  # "grpc" or "wasm"
    latency_ms: float
    status: int  # HTTP status; 0 when no answer came (connection error, timeout)
    invalid_field: str  # the field a 400 had to name; empty for a valid vote
    ok: bool  # the answer was the expected one: 202 for a vote, 400 naming the field otherwise
    vote_id: str = ""  # from a 202
    band: str = ""
    album: str = ""


def percentile(sorted_values: list[float], p: float) -> float:
    """The nearest-rank percentile: the smallest value with at least p % of the values at or below it."""
    if not sorted_values:
        return math.nan
    if not 0 < p <= 100:
        raise ValueError(f"percentile {p} is not in (0, 100]")
    rank = math.ceil(p / 100 * len(sorted_values))
    return sorted_values[rank - 1]


@dataclass(frozen=True)
class RouteSummary:
    route: str
    votes_sent: int  # valid rows sent
    accepted: int  # of those, answered 202
    errors: int  # valid rows not answered 202
    invalid_sent: int
    invalid_refused: int  # invalid rows answered 400 naming the expected field
    votes_per_s: float  # accepted votes per second of the measured window
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float

    @property
    def error_rate(self) -> float:
        return self.errors / self.votes_sent if self.votes_sent else math.nan


def summarize(route: str, samples: list[Sample], seconds: float) -> RouteSummary:
    """Summarises one route's samples over a window of `seconds`. Latency percentiles are over
    every valid vote's request, answered or not, so errors are not left out of the tail."""
    votes = [s for s in samples if s.route == route and not s.invalid_field]
    invalid = [s for s in samples if s.route == route and s.invalid_field]
    latencies = sorted(s.latency_ms for s in votes)
    accepted = sum(1 for s in votes if s.ok)
    return RouteSummary(
        route=route,
        votes_sent=len(votes),
        accepted=accepted,
        errors=len(votes) - accepted,
        invalid_sent=len(invalid),
        invalid_refused=sum(1 for s in invalid if s.ok),
        votes_per_s=accepted / seconds if seconds > 0 else math.nan,
        p50_ms=percentile(latencies, 50),
        p95_ms=percentile(latencies, 95),
        p99_ms=percentile(latencies, 99),
        max_ms=latencies[-1] if latencies else math.nan,
    )


def per_second(samples: list[Sample], route: str, start: float, p: float) -> list[tuple[float, float]]:
    """(seconds since start, p-th percentile latency) for each whole second in which the route
    sent valid votes: the latency-over-time series."""
    buckets: dict[int, list[float]] = {}
    for s in samples:
        if s.route == route and not s.invalid_field:
            buckets.setdefault(int(s.start - start), []).append(s.latency_ms)
    return [(sec, percentile(sorted(v), p)) for sec, v in sorted(buckets.items())]
