"""//locust:load: runs Locust headless against both producer routes at once, then checks what the
consumer counted and writes the report (README.md in locust/ has the flags and examples).

    tools/bazel run //locust:load -- --profile steady
    tools/bazel run //locust:load -- --target https://tally.example --profile smoke
    tools/bazel run //locust:load -- --votes locust/data/mockaroo_votes.json
    tools/bazel run //locust:assignment -- --target https://tally.example   (the assignment's 2 × 2 load)

Exit status: 0 when the run and the end-to-end check passed; 1 when the counts differ, a vote's
log is missing, an invalid row was not refused as it should be, or the check could not be made
on the local stack; 2 for bad flags or a producer that is not ready.
"""

# Locust makes gevent patch the standard library when it is imported, so it comes first: imported
# after ssl (urllib.request imports it), the patch comes too late for ssl and gevent says so with
# a MonkeyPatchWarning in every run's output.
import locust  # noqa: F401, I001  (first, see above)

import argparse
import os
import shlex
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import gevent
import pymongo
import redis
from locust import constant_throughput
from locust.env import Environment
from locust.stats import CSV_STATS_INTERVAL_SEC, PERCENTILES_TO_REPORT, StatsCSVFileWriter, stats_history

import locustfile
from tally_load import counts, report
from tally_load.profiles import PROFILES, Plan, parse_duration, plan
from tally_load.procstat import route_cpu_us, snapshot, usage
from tally_load.promtext import scrape, server_time
from tally_load.stats import Sample, summarize
from tally_load.votes import VoteFileError, load_votes

# The local stack (//:up's ports), or the variables `stack exec` sets for tests.
LOCAL = {
    "grpc": ("GRPC_FRONT_URL", "http://127.0.0.1:8080"),
    "wasm": ("WASM_PRODUCER_URL", "http://127.0.0.1:8081"),
    "redis": ("REDIS_URL", "redis://127.0.0.1:6379"),
    "mongo": ("MONGO_URL", "mongodb://127.0.0.1:27017/"),
}


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="//locust:load", description=__doc__.split("\n\n")[0])
    p.add_argument("--target", default="local",
                   help="'local' (the stack of //:up, or the one `stack exec` describes in its variables), or the "
                        "base URL of a cluster's ingress, whose routes are grpc.<host> and wasm.<host> (then give "
                        "--redis-url and --mongo-url for the end-to-end check)")
    p.add_argument("--profile", default="smoke", choices=PROFILES, help="; ".join(f"{k}: {v.why}" for k, v in PROFILES.items()))
    p.add_argument("--users", type=int, help="users per route (the peak, for spike)")
    p.add_argument("--rate", type=float, help="votes/s each user sends")
    p.add_argument("--duration", type=parse_duration, help="how long the load runs: 90s, 2m, 1h30m")
    p.add_argument("--out", help="output directory (default $TALLY_HOME/load/<UTC time>-<profile>)")
    p.add_argument("--title", help="the report's title")
    p.add_argument("--votes", help="the votes to send, in order: a CSV (name,album,year,rank[,invalid_field]) or a Mockaroo "
                                   "JSON export (.json: an array of vote objects, numbers as numbers or text); default "
                                   "the profile's file of locust/data/ (votes.csv; mockaroo_2x2.json for assignment)")
    for name in ("grpc", "wasm", "redis", "mongo"):
        p.add_argument(f"--{name}-url", help=f"the {name} address, overriding --target")
    p.add_argument("--redis-password-stdin", action="store_true",
                   help="read the Redis password from the first line of stdin and put it into the Redis address, "
                        "so no command line shows it")
    p.add_argument("--settle", type=parse_duration, default=60.0, help="how long to wait for the consumer to count every vote")
    p.add_argument("--keys", default="proto/redis_keys.json", help="the Redis key layout (Bazel passes its runfiles path)")
    return p.parse_args(argv)


def targets(args: argparse.Namespace, stdin=sys.stdin) -> dict[str, str | None]:
    if args.target == "local":
        out = {name: os.environ.get(env) or default for name, (env, default) in LOCAL.items()}
    else:
        # The Kubernetes ingress (k8s/manifests/ingress.yaml) tells the routes apart by host, so
        # each producer keeps its own paths: grpc.<host> and wasm.<host>.
        base = urlsplit(args.target)
        if base.scheme not in ("http", "https") or not base.hostname:
            raise SystemExit(f"load: --target is 'local' or an http(s) base URL, not {args.target!r}")
        out = {route: urlunsplit((base.scheme, f"{route}.{base.netloc}", base.path.rstrip("/"), "", ""))
               for route in ("grpc", "wasm")}
        out |= {"redis": None, "mongo": None}
    for name in out:
        out[name] = getattr(args, f"{name}_url") or out[name]
    if args.redis_password_stdin:
        password = stdin.readline().rstrip("\n")
        url = urlsplit(out["redis"] or "")
        if not password or not url.hostname:
            raise SystemExit("load: --redis-password-stdin needs a password on stdin and a Redis address (--redis-url)")
        host = url.netloc.rsplit("@", 1)[-1]
        out["redis"] = urlunsplit((url.scheme, f"{quote(url.username or '', safe='')}:{quote(password, safe='')}@{host}",
                                   url.path, url.query, ""))
    return out


def users_path(path: str) -> Path:
    """A path the user gave: bazel run starts in the runfiles tree, so a relative path means the
    user's directory."""
    return Path(os.environ.get("BUILD_WORKING_DIRECTORY", ".")) / path


def out_dir(args: argparse.Namespace, started: datetime) -> Path:
    if args.out:
        path = users_path(args.out)
    else:
        home = Path(os.environ.get("TALLY_HOME", "/var/cache/tally"))
        path = home / "load" / f"{started:%Y%m%dT%H%M%SZ}-{args.profile}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def wait_ready(name: str, url: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=5) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError) as e:
            err = e
        if time.monotonic() > deadline:
            raise SystemExit(f"load: the {name} route at {url} is not ready ({err}); is the stack up? (tools/bazel run //:up)")
        time.sleep(0.5)


def run_load(p: Plan, hosts: dict[str, str], out: Path) -> tuple[list[Sample], float, float]:
    """Runs the plan with both user classes in one Locust environment; returns every request's
    sample and the load's start and end (Unix seconds)."""
    samples: list[Sample] = []
    classes = [locustfile.GrpcVoter, locustfile.WasmVoter]
    for cls in classes:
        cls.host = hosts[cls.route]
    locustfile.VoteUser.wait_time = constant_throughput(p.rate)
    # Users finish the request they are in when the load stops or shrinks: a vote whose 202 the
    # load never saw would still be counted, and the counts check would rightly fail.
    env = Environment(user_classes=classes, stop_timeout=30)

    def on_request(response_time, context=None, exception=None, response=None, start_time=None, **_):
        row = (context or {}).get("row")
        if row is None:
            return
        ok = exception is None
        vote_id = response.json()["id"] if ok and not row.invalid_field else ""
        samples.append(Sample(start_time, context["route"], response_time, getattr(response, "status_code", 0) or 0,
                              row.invalid_field, ok, vote_id, row.name.strip(), row.album.strip()))

    env.events.request.add_listener(on_request)
    runner = env.create_local_runner()
    writer = StatsCSVFileWriter(env, PERCENTILES_TO_REPORT, str(out / "locust"), full_history=True)
    greenlets = [gevent.spawn(stats_history, runner), gevent.spawn(writer.stats_writer)]
    start = time.time()
    running = 0
    for phase in p.phases:
        total = 2 * phase.users  # equal weights: Locust gives each class half
        # Locust adds or stops spawn_rate users a second: the whole change within one second.
        runner.start(total, spawn_rate=max(total, running))
        running = total
        gevent.sleep(phase.seconds)
    runner.stop()
    end = time.time()
    gevent.sleep(CSV_STATS_INTERVAL_SEC + 0.5)  # one more write of Locust's CSVs, with the last requests
    runner.quit()
    gevent.killall(greenlets)
    writer.close_files()
    return samples, start, end


def cpu_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [float(x) for x in f.readline().split()[1:]]
    return sum(fields) - fields[3] - fields[4], sum(fields)  # idle and iowait are not busy


def cores(before: tuple[float, float], after: tuple[float, float], cpus: int) -> float:
    """Cores the machine kept busy between two cpu_busy() readings."""
    return (after[0] - before[0]) / max(after[1] - before[1], 1) * cpus


def metrics(hosts: dict) -> dict | None:
    try:
        return {route: scrape(hosts[route]) for route in report.ROUTES}
    except (urllib.error.URLError, OSError, ValueError):
        return None


def redis_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, decode_responses=True, socket_timeout=10)


def hash_counts(r: redis.Redis, key: str) -> dict[str, int]:
    """A counts hash (field -> votes) as integers."""
    return {field: int(votes) for field, votes in r.hgetall(key).items()}


def end_to_end(hosts: dict, layout: counts.KeyLayout, samples: list[Sample], before: dict | None,
               load_start: float, settle_s: float) -> report.EndToEnd:
    if before is None:
        return report.EndToEnd(None, skipped="no Redis address for this target (--redis-url)")
    expected = counts.accepted(layout, samples)
    stopped = time.monotonic()
    with redis_client(hosts["redis"]) as r:
        while True:
            after = {key: hash_counts(r, key) for key in expected}
            check = counts.check(expected, before, after)
            if check.ok or time.monotonic() - stopped > settle_s:
                break
            time.sleep(0.5)
    e2e = report.EndToEnd(check, settle_s=time.monotonic() - stopped)
    if not hosts["mongo"]:
        e2e.skipped = "accept-to-counted not measured: no MongoDB address (--mongo-url)"
        return e2e
    accepted = {s.vote_id: s.route for s in samples if s.vote_id}
    found: dict[str, tuple[str, float]] = {}
    since = datetime.fromtimestamp(load_start - 5, timezone.utc)
    # Filtered by accept time, not by id: FerretDB evaluates $in over thousands of ids per document.
    with pymongo.MongoClient(hosts["mongo"], tz_aware=True, serverSelectionTimeoutMS=10_000) as m:
        logs = m["tally"]["logs"].find({"accepted_at": {"$gte": since}}, {"accepted_at": 1, "counted_at": 1, "route": 1},
                                       batch_size=10_000)
        for doc in logs:
            if doc["_id"] in accepted:
                found[doc["_id"]] = (doc["route"], (doc["counted_at"] - doc["accepted_at"]).total_seconds() * 1000)
    for route in report.ROUTES:
        ids = [i for i, r in accepted.items() if r == route]
        e2e.delays.append(report.Delay.of(
            route,
            [found[i][1] for i in ids if i in found],
            missing=sum(1 for i in ids if i not in found),
            wrong_route=sum(1 for i in ids if i in found and found[i][0] != route),
        ))
    return e2e


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        the_plan = plan(args.profile, args.users, args.rate, args.duration)
    except ValueError as e:
        print(f"load: {e}", file=sys.stderr)
        return 2
    # The user's file, else the profile's own (a file of locust/data/, next to the locustfile).
    votes_file = args.votes or f"locust/data/{PROFILES[args.profile].votes}"
    votes_path = users_path(args.votes) if args.votes else Path(locustfile.__file__).parent / "data" / PROFILES[args.profile].votes
    try:
        locustfile.VOTES = load_votes(votes_path)
    except (OSError, VoteFileError) as e:
        print(f"load: --votes: {e}", file=sys.stderr)
        return 2
    hosts = targets(args)
    for route in report.ROUTES:
        wait_ready(route, hosts[route])
    layout = counts.KeyLayout.load(Path(args.keys))
    before = None
    if hosts["redis"]:
        with redis_client(hosts["redis"]) as r:
            before = {key: hash_counts(r, key) for key in (layout.by_band, layout.by_album)}

    started = datetime.now(timezone.utc)
    out = out_dir(args, started)
    print(f"load: {the_plan.describe()}\nload: gRPC {hosts['grpc']}, Wasm {hosts['wasm']}; output in {out}", flush=True)
    cpus = os.cpu_count() or 1
    # What the machine does without the load (the idle stack, and anyone else's work), for scale.
    quiet_before = cpu_busy()
    time.sleep(3)
    metrics_before, busy_before, cpu_before = metrics(hosts), cpu_busy(), time.process_time()
    procs_before, t_before = snapshot(), time.time()
    quiet = cores(quiet_before, busy_before, cpus)
    samples, start, end = run_load(the_plan, hosts, out)
    metrics_after, busy_after, cpu_after = metrics(hosts), cpu_busy(), time.process_time()
    window = time.time() - t_before
    processes = usage(procs_before, snapshot(), window)
    server = None
    if metrics_before and metrics_after:
        server = {r: server_time(metrics_before[r], metrics_after[r]) for r in report.ROUTES}
    machine = cores(busy_before, busy_after, cpus)
    conditions = (
        f"While the load ran, Locust (one Python process) used {(cpu_after - cpu_before) / (end - start):.2f} cores "
        f"and the whole machine {machine:.2f} of its {cpus} (everything on it, the stack included); in the 3 s "
        f"before the load, {quiet:.2f}."
    )
    if machine > 0.8 * cpus:
        conditions += (
            " The machine was close to full, so every latency here includes waiting for a core: compare only "
            "with runs made under a similar load."
        )
    summaries = [summarize(route, samples, end - start) for route in report.ROUTES]
    requests = {s.route: s.votes_sent + s.invalid_sent for s in summaries}
    cpu_us = route_cpu_us(processes, window, requests)
    e2e = end_to_end(hosts, layout, samples, before, start, args.settle)
    # The target that ran this (//locust:load_fresh_stack says so), for the report's rerun line.
    how = f"tools/bazel run {os.environ.get('TALLY_LOAD_TARGET', '//locust:load')} -- " + shlex.join(argv)
    title = args.title or f"Locust {args.profile} run, {started:%Y-%m-%d %H:%M} UTC"
    text = report.write(out, title=title, plan=the_plan, targets={k: v for k, v in hosts.items() if v},
                        summaries=summaries, e2e=e2e, samples=samples, start=start, how=how, server=server, votes=votes_file,
                        conditions=conditions, processes=[u for u in processes[:10] if u.cores >= 0.005], cpu_us=cpu_us)
    print("\n" + text + f"\n\nreport: {out / 'report.md'}")
    refused_wrong = sum(s.invalid_sent - s.invalid_refused for s in summaries)
    local = args.target == "local"
    if refused_wrong:
        print(f"load: {refused_wrong} invalid rows were not refused with 400 naming their field", file=sys.stderr)
    if (e2e.counts is not None or local) and not e2e.ok:
        print("load: the end-to-end check failed", file=sys.stderr)
        return 1
    return 1 if refused_wrong else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
