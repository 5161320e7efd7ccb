"""grafana.py: each panel's redis-datasource target becomes the right command, and the real
dashboard's queries, run against a real redis-server, read what the consumer's keys hold."""

import json
import socket
import subprocess
import time
from pathlib import Path

import pytest
import redis

import grafana

# pytest runs in the runfiles tree of the workspace.
DASHBOARD = json.loads(Path("k8s/grafana/dashboards/votes.json").read_text(encoding="utf-8"))


def test_command_of_each_target_type():
    assert grafana.command({"type": "command", "command": "hgetall", "keyName": "tally:votes:band"}) == ["HGETALL", "tally:votes:band"]
    assert grafana.command({"type": "cli", "query": "EVAL_RO \"return 'a b'\" 0"}) == ["EVAL_RO", "return 'a b'", "0"]
    with pytest.raises(ValueError, match="not supported"):
        grafana.command({"refId": "A", "type": "timeSeries"})


def test_value_shapes():
    assert grafana.value("12") == 12.0
    assert grafana.value(None) == 0.0
    assert grafana.value({"a": "3"}) == {"a": 3.0}
    assert grafana.value(["a", "3", "b", "4"]) == {"a": 3.0, "b": 4.0}


@pytest.fixture
def redis_server(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path), "--save", ""],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port, decode_responses=True)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    yield client
    client.close()
    proc.kill()
    proc.wait()


def test_every_panel_of_the_dashboard_reads_the_consumers_keys(redis_server, tmp_path):
    r = redis_server
    r.set("tally:votes:total", 7)
    r.hset("tally:votes:band", mapping={"Alux Nahual": 4, "Viernes Verde": 3})
    r.hset("tally:votes:album", mapping={"Alux Nahual — Conquista": 4, "Viernes Verde — P.M.": 3})
    now = int(r.time()[0])
    # The panel sums the last whole 10-second bucket (the one before the current).
    r.hset(f"tally:votes:10s:{now - now % 10 - 10}", mapping={"Alux Nahual": 2, "Viernes Verde": 3})
    series = grafana.sample(r, DASHBOARD, seconds=0)
    got = {s.panel["title"]: s.latest() for s in series}
    assert got["Votes counted"] == 7
    assert got["Votes per band"] == {"Alux Nahual": 4, "Viernes Verde": 3}
    assert got["Votes per album"] == {"Alux Nahual — Conquista": 4, "Viernes Verde — P.M.": 3}
    assert got["Votes per band over time"] == got["Votes per band"]
    if int(r.time()[0]) // 10 == now // 10:  # the clock did not cross into the next bucket meanwhile
        assert got["Votes per 10 seconds"] == 5
    out = tmp_path / "grafana.png"
    grafana.draw(DASHBOARD, series, str(out))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sample_follows_each_panels_interval():
    class Clock:
        t = 0.0

        def now(self):
            return self.t

        def sleep(self, s):
            self.t += s

    class Counting:
        def execute_command(self, *args):
            return "1" if args[0] != "HGETALL" else {"a": "1"}

    clock = Clock()
    series = grafana.sample(Counting(), DASHBOARD, seconds=20, clock=clock.now, sleep=clock.sleep)
    reads = {s.panel["title"]: len(s.points["A"]) for s in series}
    assert reads["Votes counted"] >= 20  # every second
    assert 2 <= reads["Votes per 10 seconds"] <= 3  # every 10 s


def test_a_panel_with_two_queries_reads_and_draws_both(redis_server):
    """Accept to counted has two targets, p50 (A) and p99 (B): both are read, and both drawn
    under the names the dashboard's overrides give them."""
    r = redis_server
    now = int(r.time()[0])
    # The last whole 10-second bucket, and the current one in case the clock crosses into the
    # next meanwhile: 98 votes counted within 5 ms, two within 250 ms.
    for bucket in (now - now % 10 - 10, now - now % 10):
        r.hset(f"tally:votes:latency:10s:{bucket}", mapping={"5": 98, "250": 2})
    panel = next(p for p in DASHBOARD["panels"] if p["title"].startswith("Accept to counted"))
    [s] = grafana.sample(r, {"panels": [panel]}, seconds=0)
    assert {ref: points[-1][1] for ref, points in s.points.items()} == {"A": 5, "B": 250}
    fig = grafana.plt.figure()
    ax = fig.add_subplot()
    grafana._time(ax, s)
    assert ax.get_legend_handles_labels()[1] == ["p50: 5", "p99: 250"]
    grafana.plt.close(fig)
