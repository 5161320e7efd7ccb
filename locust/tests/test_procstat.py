import os

from tally_load.procstat import TICKS, Usage, route_cpu_us, snapshot, usage


def test_usage_between_snapshots():
    before = {1: ("grpc-front", 0), 2: ("wasmedge", 100)}
    after = {1: ("grpc-front", TICKS * 5), 2: ("wasmedge", 100 + TICKS * 2), 3: ("consumer", TICKS)}
    rows = usage(before, after, seconds=10)
    assert rows == [Usage("grpc-front", 1, 0.5), Usage("wasmedge", 2, 0.2), Usage("consumer", 3, 0.1)]


def test_cpu_per_vote_of_each_route():
    rows = [Usage("grpc-front", 1, 0.3), Usage("grpc-producer", 2, 0.2), Usage("wasmedge", 3, 0.1), Usage("java", 4, 1.0)]
    # 10 s, 1,000 requests each: gRPC 0.5 cores → 5 ms of CPU a request; Wasm 1 ms.
    assert route_cpu_us(rows, 10, {"grpc": 1000, "wasm": 1000}) == {"grpc": 5000.0, "wasm": 1000.0}
    assert route_cpu_us(rows[3:], 10, {"grpc": 1000, "wasm": 1000}) == {}


def test_snapshot_reads_this_process(tmp_path):
    proc = tmp_path / "proc"
    (proc / "42").mkdir(parents=True)
    # comm with a space and a parenthesis, as /proc allows; utime 7 and stime 5 are fields 14 and 15.
    (proc / "42" / "stat").write_text("42 (a (b) c) S 1 42 42 0 -1 4194560 1 0 0 0 7 5 0 0 20 0 1 0 1 1 1\n")
    (proc / "self").mkdir()
    assert snapshot(str(proc)) == {42: ("a (b) c", 12)}
    assert os.getpid() in snapshot()
