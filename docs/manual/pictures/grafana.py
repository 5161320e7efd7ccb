"""Grafana's dashboard drawn without Grafana: every panel of k8s/grafana/dashboards/votes.json,
fed by the very Redis commands its redis-datasource targets send, run against a live Redis at
each panel's streaming interval, then drawn by matplotlib in Grafana's layout (gridPos).

Grafana itself cannot run in this build (it is not in the toolchain), so this is how the manual
shows its panels; the picture says so too.

    python3 grafana.py --redis redis://127.0.0.1:6379 --dashboard votes.json --seconds 60 --out grafana.png
"""

import argparse
import shlex
import time
from dataclasses import dataclass, field

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend is chosen first)

NOTE = ("Grafana no se ejecuta en este entorno: estos son los paneles de k8s/grafana/dashboards/votes.json, "
        "dibujados con los datos que leerían (las mismas órdenes de Redis, ejecutadas durante la carga).")


def command(target: dict) -> list[str]:
    """The Redis command a redis-datasource target sends: type "command" names a command and a
    key; type "cli" is a raw command line."""
    if target.get("type") == "cli":
        return shlex.split(target["query"])
    if target.get("type") == "command" and target.get("command") and target.get("keyName"):
        return [target["command"].upper(), target["keyName"]]
    raise ValueError(f"target {target.get('refId')}: a redis-datasource target of type {target.get('type')!r} is not supported")


def value(reply):
    """A reply as the panel uses it: a number, or {field: number} for a hash."""
    if isinstance(reply, dict):
        return {str(k): float(v) for k, v in reply.items()}
    if isinstance(reply, (list, tuple)):  # HGETALL as a flat list
        return {str(reply[i]): float(reply[i + 1]) for i in range(0, len(reply), 2)}
    return float(reply or 0)


@dataclass
class Series:
    """What one panel read: for each of its targets (by refId), (seconds since the start, value)
    per read."""

    panel: dict
    interval_s: float
    points: dict = field(default_factory=dict)

    def latest(self):
        """The first target's last value: what a stat or a bar gauge shows."""
        first = self.points.get(self.panel["targets"][0].get("refId", "A"), [])
        return first[-1][1] if first else 0


def sample(redis_client, dashboard: dict, seconds: float, clock=time.monotonic, sleep=time.sleep) -> list[Series]:
    """Runs every query of every panel at the panel's streaming interval for `seconds` (at least
    one read each)."""
    series = [Series(p, p["targets"][0].get("streamingInterval", 1000) / 1000) for p in dashboard["panels"]]
    commands = [[(t.get("refId", "A"), command(t)) for t in s.panel["targets"]] for s in series]
    start = clock()
    due = [0.0] * len(series)
    while True:
        now = clock() - start
        for i, s in enumerate(series):
            if now >= due[i]:
                for ref, cmd in commands[i]:
                    s.points.setdefault(ref, []).append((now, value(redis_client.execute_command(*cmd))))
                due[i] = now + s.interval_s
        if now >= seconds:
            return series
        sleep(max(0.05, min(due) - (clock() - start)))


GRID_ROW_PX = 30  # Grafana's grid: 24 columns, rows of about 30 px
BG, PANEL, TEXT, GRID = "#111217", "#181b1f", "#ccccdc", "#2c3235"
COLORS = ["#73bf69", "#f2cc0c", "#8ab8ff", "#ff780a", "#f2495c", "#5794f2", "#b877d9", "#fade2a"]


def _bars(ax, values: dict):
    items = sorted(values.items(), key=lambda kv: -kv[1])
    labels = [k for k, _ in items][::-1]
    numbers = [v for _, v in items][::-1]
    top = max(numbers, default=0) or 1
    ax.barh(labels, [top] * len(numbers), color=GRID, height=0.7)
    ax.barh(labels, numbers, color=[COLORS[i % len(COLORS)] for i in range(len(numbers))][::-1], height=0.7)
    for y, n in enumerate(numbers):
        ax.text(top * 1.01, y, f"{n:,.0f}", va="center", color=TEXT, fontsize=9)
    ax.set_xlim(0, top * 1.12)
    ax.set_xticks([])
    ax.tick_params(axis="y", colors=TEXT, labelsize=8, length=0)


def display_name(panel: dict, ref: str) -> str:
    """A target's name in the legend, as Grafana shows it: a displayName override matching its
    refId, else the panel's displayName, else the refId."""
    config = panel.get("fieldConfig", {})
    for override in config.get("overrides", []):
        if override.get("matcher") == {"id": "byFrameRefID", "options": ref}:
            for prop in override.get("properties", []):
                if prop.get("id") == "displayName":
                    return prop["value"]
    return config.get("defaults", {}).get("displayName", ref)


def _time(ax, s: Series):
    lines = list(s.points.items())
    first = lines[0][1] if lines else []
    if first and isinstance(first[0][1], dict):  # a hash: a line per field
        names = sorted({k for _, v in first for k in v})
        for i, name in enumerate(names):
            ax.plot([t for t, _ in first], [v.get(name, 0) for _, v in first], color=COLORS[i % len(COLORS)],
                    linewidth=2, label=f"{name}: {first[-1][1].get(name, 0):,.0f}")
        ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, labelcolor=TEXT, fontsize=8)
    elif len(lines) == 1:  # one number per read: bars
        ref, points = lines[0]
        ax.bar([t for t, _ in points], [v for _, v in points], width=s.interval_s * 0.8, color=COLORS[0], alpha=0.8,
               label=display_name(s.panel, ref), align="edge")
        ax.legend(loc="upper left", frameon=False, labelcolor=TEXT, fontsize=8)
    else:  # several queries, one number each per read: a line per query
        for i, (ref, points) in enumerate(lines):
            last = f": {points[-1][1]:,.0f}" if points else ""
            ax.plot([t for t, _ in points], [v for _, v in points], color=COLORS[i % len(COLORS)], linewidth=2,
                    marker="o", label=display_name(s.panel, ref) + last)
        ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, labelcolor=TEXT, fontsize=8)
    unit = s.panel.get("fieldConfig", {}).get("defaults", {}).get("unit")
    if unit not in (None, "short", "none"):  # Grafana's plain-number formats name no unit
        ax.set_ylabel(unit, color=TEXT, fontsize=8)
    ax.set_xlabel("segundos desde el inicio de la lectura", color=TEXT, fontsize=8)
    ax.tick_params(colors=TEXT, labelsize=8)
    ax.grid(color=GRID, linewidth=0.5)
    for spine in ax.spines.values():
        spine.set_color(GRID)


def draw(dashboard: dict, series: list[Series], out: str, width_px: int = 1400) -> None:
    bottom = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in dashboard["panels"])
    banner = 2
    height_px = (bottom + banner) * GRID_ROW_PX + 20
    dpi = 100
    fig = plt.figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi, facecolor=BG)
    fig.text(0.01, 1 - 0.6 * GRID_ROW_PX / height_px, dashboard.get("title", ""), color=TEXT, fontsize=14, weight="bold",
             va="center")
    fig.text(0.01, 1 - 1.5 * GRID_ROW_PX / height_px, NOTE, color="#f2cc0c", fontsize=9, va="center")
    pad = 6 / width_px
    for s in series:
        g = s.panel["gridPos"]
        left, w = g["x"] / 24 + pad, g["w"] / 24 - 2 * pad
        top_px = (g["y"] + banner) * GRID_ROW_PX
        h = g["h"] * GRID_ROW_PX / height_px
        bottom_frac = 1 - top_px / height_px - h
        frame = fig.add_axes((left, bottom_frac + 4 / height_px, w, h - 8 / height_px))
        frame.set_facecolor(PANEL)
        frame.set_xticks([])
        frame.set_yticks([])
        for spine in frame.spines.values():
            spine.set_color(GRID)
        frame.text(0.01, 0.97, s.panel["title"], transform=frame.transAxes, color=TEXT, fontsize=10, weight="bold", va="top")
        last = s.latest()
        if s.panel["type"] == "stat":
            frame.text(0.5, 0.42, f"{last:,.0f}", transform=frame.transAxes, color=COLORS[0], fontsize=40, weight="bold",
                       ha="center", va="center")
        elif s.panel["type"] == "bargauge":
            values = last if isinstance(last, dict) else {}
            # Room on the left for the longest name (about 6.5 px a character at this size).
            labels = min(0.45, (6.5 * max(map(len, values), default=0) + 24) / (w * width_px))
            ax = fig.add_axes((left + w * labels, bottom_frac + h * 0.14, w * (0.88 - labels), h * 0.68), facecolor=PANEL)
            _bars(ax, values)
            for spine in ax.spines.values():
                spine.set_visible(False)
        else:
            ax = fig.add_axes((left + w * 0.05, bottom_frac + h * 0.2, w * 0.72, h * 0.62), facecolor=PANEL)
            _time(ax, s)
    fig.savefig(out, facecolor=BG)
    plt.close(fig)


def main() -> None:
    import json

    import redis

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--redis", required=True)
    p.add_argument("--dashboard", required=True)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    with open(args.dashboard, encoding="utf-8") as f:
        dashboard = json.load(f)
    with redis.Redis.from_url(args.redis, decode_responses=True, socket_timeout=10) as r:
        series = sample(r, dashboard, args.seconds)
    draw(dashboard, series, args.out)
    print(f"grafana: {len(series)} panels, {sum(len(s.points) for s in series)} reads over {args.seconds:.0f} s -> {args.out}")


if __name__ == "__main__":
    main()
