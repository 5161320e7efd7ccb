"""The run's report: report.md, summary.json, CSVs and two PNG plots in the run's output dir,
and the comparison table and counts check on the terminal.

Every sentence that compares the routes is computed from the run's own numbers (verdict); the
reasons behind them point at the measurements in docs/performance.md and docs/wasm.md.
"""

import csv
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tally_load.counts import CountsCheck
from tally_load.procstat import Usage
from tally_load.profiles import Plan
from tally_load.promtext import ServerTime
from tally_load.stats import RouteSummary, Sample, per_second, percentile

ROUTES = ("grpc", "wasm")
# Below this relative difference in latency, a run on a shared two-core machine says nothing.
NOISE = 0.10


@dataclass
class Delay:
    """Accept-to-counted time of one route's 202s, from the consumer's log documents."""

    route: str
    found: int  # 202s whose log document was found
    missing: int  # 202s without one
    wrong_route: int  # logs whose route is not the one that answered
    p50_ms: float
    p99_ms: float

    @classmethod
    def of(cls, route: str, delays_ms: list[float], missing: int, wrong_route: int) -> "Delay":
        d = sorted(delays_ms)
        return cls(route, len(d), missing, wrong_route, percentile(d, 50), percentile(d, 99))


@dataclass
class EndToEnd:
    counts: CountsCheck | None  # None: not checked (reason in skipped)
    settle_s: float = math.nan  # from the end of the load until Redis matched
    delays: list[Delay] = field(default_factory=list)
    skipped: str = ""

    @property
    def ok(self) -> bool:
        return (
            self.counts is not None
            and self.counts.ok
            and all(d.missing == 0 and d.wrong_route == 0 for d in self.delays)
        )


def _ms(v: float) -> str:
    return "–" if math.isnan(v) else f"{v:.1f}" if v < 100 else f"{v:.0f}"


def _ratio(a: float, b: float) -> float:
    return a / b if b else math.inf


def verdict(grpc: RouteSummary, wasm: RouteSummary, plan: Plan, server: dict[str, ServerTime] | None = None,
            cpu_us: dict[str, float] | None = None) -> list[str]:
    """The answers to "which route was faster, and why; when to use each", from this run. server
    holds each route's own request-duration histogram over the run, cpu_us the CPU its processes
    spent per request, when they could be read."""
    lines = []
    load = f"{max(p.users for p in plan.phases) * plan.rate:g} votes/s per route" + (" at the peak" if len(plan.phases) > 1 else "")
    p50 = _ratio(grpc.p50_ms, wasm.p50_ms)
    p99 = _ratio(grpc.p99_ms, wasm.p99_ms)
    if abs(p50 - 1) < NOISE and abs(p99 - 1) < NOISE:
        lines.append(
            f"**Neither route was faster** at {load}: p50 {_ms(grpc.p50_ms)} ms (gRPC) "
            f"against {_ms(wasm.p50_ms)} ms (Wasm), p99 {_ms(grpc.p99_ms)} against {_ms(wasm.p99_ms)} ms, "
            f"within the {NOISE:.0%} this shared machine moves between runs."
        )
    else:
        # The median decides; the tail only when the medians are within the noise.
        by_median = abs(p50 - 1) >= NOISE
        wasm_faster = p50 > 1 if by_median else p99 > 1
        fast, slow = (wasm, grpc) if wasm_faster else (grpc, wasm)
        name = {"grpc": "the gRPC route", "wasm": "the Wasm route"}[fast.route]
        if by_median:
            lines.append(
                f"**{name[0].upper() + name[1:]} was faster** at {load}: median {_ms(fast.p50_ms)} ms against "
                f"{_ms(slow.p50_ms)} ms ({_ratio(slow.p50_ms, fast.p50_ms):.2f}×); p99 {_ms(fast.p99_ms)} against "
                f"{_ms(slow.p99_ms)} ms, max {_ms(fast.max_ms)} against {_ms(slow.max_ms)} ms."
            )
        else:
            lines.append(
                f"**{name[0].upper() + name[1:]} was faster in the tail** at {load}: the medians were within the noise "
                f"({_ms(fast.p50_ms)} ms against {_ms(slow.p50_ms)} ms), p99 {_ms(fast.p99_ms)} against "
                f"{_ms(slow.p99_ms)} ms ({_ratio(slow.p99_ms, fast.p99_ms):.2f}×), max {_ms(fast.max_ms)} against "
                f"{_ms(slow.max_ms)} ms."
            )
    for s in (grpc, wasm):
        if s.errors:
            lines.append(f"The {s.route} route failed {s.errors} of {s.votes_sent} votes ({s.error_rate:.2%}); see locust_failures.csv.")
    for s in (grpc, wasm):
        if s.accepted < 0.9 * plan.offered_votes:
            lines.append(
                f"The {s.route} route accepted {s.accepted} votes of the {plan.offered_votes:.0f} offered: it (or "
                "this machine, or the load generator) could not keep up, so its latencies include queueing."
            )
    gap = grpc.p50_ms - wasm.p50_ms
    why = (
        "**Why.** A vote on the gRPC route crosses two processes before Kafka (HTTP into grpc-front, "
        "one gRPC call to grpc-producer, then kafka-go's writer, which waits up to its 5 ms batch timeout "
        "and sends one Produce request per partition); on the Wasm route one single-threaded WasmEdge "
        "process parses the request and puts every due partition in one Produce request. "
        f"In this run the median difference seen by Locust was {gap:+.1f} ms (gRPC minus Wasm)."
    )
    if server and all(r in server and server[r].votes for r in ROUTES):
        g, w = server["grpc"], server["wasm"]
        why += (
            f" The producers' own histograms put the time inside the route at {_ms(g.mean_ms)} ms a vote on "
            f"average for gRPC (p99 at most {_ms(g.p99_le_ms)} ms) and {_ms(w.mean_ms)} ms for Wasm (p99 at most "
            f"{_ms(w.p99_le_ms)} ms): {g.mean_ms - w.mean_ms:+.1f} ms. Locust's figures add its Python client and "
            "the loopback network on top, the same for both routes."
        )
    if cpu_us and all(r in cpu_us for r in ROUTES):
        why += (
            f" CPU per request of the route's own processes: {cpu_us['grpc']:.0f} µs on the gRPC route "
            f"(grpc-front + grpc-producer) against {cpu_us['wasm']:.0f} µs on the Wasm route (wasmedge), "
            f"{_ratio(cpu_us['grpc'], cpu_us['wasm']):.1f}×."
        )
    why += (
        " Where the time goes, profiled: [performance.md](../../performance.md#where-the-time-goes); the Wasm "
        "producer's design: [wasm.md](../../wasm.md)."
    )
    lines.append(why)
    worst_p99 = max(grpc.p99_ms, wasm.p99_ms)
    if grpc.errors and wasm.errors:
        fit = "Both routes failed votes at this load, so this machine was overloaded: compare them at a lower load. "
    elif grpc.errors or wasm.errors:
        bad, good = (grpc, wasm) if grpc.errors else (wasm, grpc)
        fit = f"At this load the {bad.route} route failed votes and the {good.route} route did not: prefer {good.route} here. "
    else:
        feel = "under the 0.1 s that feels instant" if worst_p99 < 100 else "under the 1 s in which a click still feels fluid" if worst_p99 < 1000 else "in more than a second, which users notice"
        fit = (
            f"At this load neither route failed a vote, and both answered 99 % of votes within {_ms(worst_p99)} ms "
            f"({feel}), so for a vote form the choice rests on the rest of the system. "
        )
    lines.append(
        "**When to use which.** " + fit
        + "Use **gRPC** when other services call the producer (a typed, versioned contract in "
        "proto/vote/v1, deadlines, standard health checks, the Go tooling the consumer shares) or when the "
        "HTTP edge and the Kafka writer must scale apart; use **Wasm** when one small, sandboxed, portable "
        "module should sit at the edge (one process, no gRPC hop) and the last milliseconds or the "
        "throughput per core matter: at saturation (256 connections, Go load generator) performance.md "
        "measured it at 2.6× the gRPC route's votes/s on the same two cores."
    )
    return lines


def table(summaries: list[RouteSummary]) -> str:
    head = "| route | votes sent | 202 | votes/s | p50 ms | p95 ms | p99 ms | max ms | error rate | invalid refused |"
    rule = "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    rows = [
        f"| {s.route} | {s.votes_sent} | {s.accepted} | {s.votes_per_s:.1f} | {_ms(s.p50_ms)} | {_ms(s.p95_ms)} | "
        f"{_ms(s.p99_ms)} | {_ms(s.max_ms)} | {s.error_rate:.2%} | {s.invalid_refused}/{s.invalid_sent} |"
        for s in summaries
    ]
    return "\n".join([head, rule, *rows])


def counts_text(e2e: EndToEnd) -> str:
    if e2e.counts is None:
        return f"Not checked: {e2e.skipped}"
    lines = [
        f"**{'PASS' if e2e.ok else 'FAIL'}**: every 202 of this run against the increase of the consumer's Redis "
        f"counts (matched {e2e.settle_s:.1f} s after the load stopped)." if e2e.counts.ok else
        f"**FAIL**: the 202s of this run and the increase of the consumer's Redis counts differ "
        f"(waited {e2e.settle_s:.1f} s after the load stopped).",
        "",
        "| Redis hash | field | 202s | counted | |",
        "|---|---|---:|---:|---|",
    ]
    lines += [f"| `{r.key}` | {r.field} | {r.accepted} | {r.counted} | {'ok' if r.ok else 'MISMATCH'} |" for r in e2e.counts.rows]
    if e2e.delays:
        lines += [
            "",
            "Accept-to-counted time (the log document's `counted_at` − `accepted_at`, both set by the "
            "pipeline: the producer's accept time and the consumer's count time):",
            "",
            "| route | logs found | missing | wrong route | p50 ms | p99 ms |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        lines += [f"| {d.route} | {d.found} | {d.missing} | {d.wrong_route} | {_ms(d.p50_ms)} | {_ms(d.p99_ms)} |" for d in e2e.delays]
    return "\n".join(lines)


def _readable_log_axis(axis) -> None:
    """Plain numbers at 1, 2 and 5 of each decade: latencies span only one or two decades."""
    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FormatStrFormatter("%g"))
    axis.set_minor_formatter(NullFormatter())


def plot(out: Path, samples: list[Sample], start: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.5))
    for route, color in zip(ROUTES, ("tab:blue", "tab:orange")):
        for p, style in ((50, "-"), (99, ":")):
            series = per_second(samples, route, start, p)
            ax.plot([t for t, _ in series], [v for _, v in series], style, color=color, label=f"{route} p{p}")
    ax.set_xlabel("seconds into the run")
    ax.set_ylabel("latency, ms (per second)")
    ax.set_yscale("log")
    _readable_log_axis(ax.yaxis)
    ax.set_title("POST /votes latency over time, valid votes")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "latency_over_time.png", dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(9, 4.5))
    for route, color in zip(ROUTES, ("tab:blue", "tab:orange")):
        lat = sorted(s.latency_ms for s in samples if s.route == route and not s.invalid_field)
        if lat:
            ax.plot(lat, [(i + 1) / len(lat) for i in range(len(lat))], color=color, label=f"{route} (n={len(lat)})")
            ax.axvline(percentile(lat, 99), color=color, linestyle=":", alpha=0.7)
    ax.set_xscale("log")
    _readable_log_axis(ax.xaxis)
    ax.set_xlabel("latency, ms (dotted: p99)")
    ax.set_ylabel("share of votes at or below")
    ax.set_title("POST /votes latency distribution (CDF), valid votes")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "latency_distribution.png", dpi=100)
    plt.close(fig)


def write(out: Path, *, title: str, plan: Plan, targets: dict, summaries: list[RouteSummary], e2e: EndToEnd,
          samples: list[Sample], start: float, how: str, server: dict[str, ServerTime] | None = None,
          conditions: str = "", processes: list[Usage] | None = None, cpu_us: dict[str, float] | None = None,
          votes: str = "locust/data/votes.csv") -> str:
    """Writes every file of the report and returns the text for the terminal."""
    plot(out, samples, start)
    with open(out / "summary.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["route", "votes_sent", "accepted", "votes_per_s", "p50_ms", "p95_ms", "p99_ms", "max_ms", "error_rate", "invalid_sent", "invalid_refused"])
        for s in summaries:
            w.writerow([s.route, s.votes_sent, s.accepted, f"{s.votes_per_s:.2f}", f"{s.p50_ms:.3f}", f"{s.p95_ms:.3f}",
                        f"{s.p99_ms:.3f}", f"{s.max_ms:.3f}", f"{s.error_rate:.5f}", s.invalid_sent, s.invalid_refused])
    if e2e.counts is not None:
        with open(out / "counts.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["key", "field", "accepted", "counted", "ok"])
            for r in e2e.counts.rows:
                w.writerow([r.key, r.field, r.accepted, r.counted, r.ok])
    by_route = {s.route: s for s in summaries}
    answers = verdict(by_route["grpc"], by_route["wasm"], plan, server, cpu_us)
    (out / "summary.json").write_text(json.dumps({
        "title": title, "plan": plan.describe(), "targets": targets,
        "routes": [{**asdict(s), "error_rate": s.error_rate} for s in summaries],
        "end_to_end": {"ok": e2e.ok, "checked": e2e.counts is not None, "skipped": e2e.skipped, "settle_s": e2e.settle_s,
                       "counts": [asdict(r) | {"ok": r.ok} for r in (e2e.counts.rows if e2e.counts else [])],
                       "accept_to_counted": [asdict(d) for d in e2e.delays]},
        "server_time": {r: asdict(t) for r, t in (server or {}).items()},
        "cpu_us_per_request": cpu_us or {},
        "processes": [asdict(u) for u in processes or []],
        "conditions": conditions,
        "verdict": answers,
    }, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    md = "\n".join([
        f"# {title}", "",
        f"Load: {plan.describe()}. Both routes in the same Locust run, the same votes in the same order "
        f"({votes}).", "",
        "Targets: " + ", ".join(f"{k} `{v}`" for k, v in targets.items()) + ".", "",
        *([conditions, ""] if conditions else []),
        "## The two routes", "",
        table(summaries), "",
        "Latency is Locust's time for each `POST /votes` of a valid row, unrounded, nearest-rank "
        "percentiles; votes/s counts 202s over the load's duration. Invalid rows (a few % of the file) are "
        "sent too and counted apart: refused means a 400 naming the expected field.", "",
        "![latency over time](latency_over_time.png)", "",
        "![latency distribution](latency_distribution.png)", "",
        *(["CPU by process while the load ran (the busiest; cores):", "",
            "| process | pid | cores |", "|---|---:|---:|",
            *[f"| {u.name} | {u.pid} | {u.cores:.2f} |" for u in processes], ""] if processes else []),
        "## End to end: what the consumer counted", "",
        counts_text(e2e), "",
        "## Which route was faster, and why; when to use gRPC and when Wasm", "",
        *[line + "\n" for line in answers],
        "## Files and how to rerun", "",
        "`summary.csv`, `summary.json`, `counts.csv`: this report's numbers. `locust_*.csv`: Locust's own "
        "statistics (its percentiles are rounded to whole milliseconds and coarser above 100 ms).", "",
        f"    {how}", "",
    ])
    (out / "report.md").write_text(md, encoding="utf-8")
    return "\n\n".join([table(summaries), counts_text(e2e), *answers])
