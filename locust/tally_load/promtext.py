"""The producers' own view of a run: their request-duration histograms (docs/api.md, metrics), read
from /metrics before and after the load. Server time per vote is what the route itself costs;
what Locust sees beyond it is the client and the machine, the same for both routes.
"""

import math
import re
import urllib.request
from dataclasses import dataclass

HISTOGRAM = "tally_http_request_duration_seconds"
_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)')
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse(text: str) -> dict[tuple[str, frozenset], float]:
    """Samples of the Prometheus text format, keyed by name and labels."""
    out = {}
    for line in text.splitlines():
        m = _LINE.match(line)
        if m and not line.startswith("#"):
            labels = frozenset(_LABEL.findall(m.group(2) or ""))
            out[(m.group(1), labels)] = float(m.group(3))
    return out


def scrape(base_url: str) -> dict[tuple[str, frozenset], float]:
    with urllib.request.urlopen(base_url + "/metrics", timeout=10) as r:
        return parse(r.read().decode())


@dataclass(frozen=True)
class ServerTime:
    votes: int  # POST /votes answered during the run
    mean_ms: float
    p99_le_ms: float  # the histogram bucket the 99th percentile falls in: at most this


def server_time(before: dict, after: dict, path: str = "/votes") -> ServerTime:
    def delta(name: str, **labels) -> float:
        key = (name, frozenset({"path": path, **labels}.items()))
        return after.get(key, 0.0) - before.get(key, 0.0)

    count = delta(HISTOGRAM + "_count")
    mean = delta(HISTOGRAM + "_sum") / count * 1000 if count else math.nan
    bounds = sorted(
        (float(dict(labels)["le"]), key)
        for key in after
        for (name, labels) in [key]
        if name == HISTOGRAM + "_bucket" and dict(labels).get("path") == path
    )
    p99 = math.nan
    for le, key in bounds:
        if count and after[key] - before.get(key, 0.0) >= 0.99 * count:
            p99 = le * 1000
            break
    return ServerTime(int(count), mean, p99)
