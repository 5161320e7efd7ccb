import pytest

from tally_load.run import parse_args, targets


def test_local_is_the_stack_of_up_or_the_one_in_the_environment(monkeypatch):
    for name in ("GRPC_FRONT_URL", "WASM_PRODUCER_URL", "REDIS_URL", "MONGO_URL"):
        monkeypatch.delenv(name, raising=False)
    assert targets(parse_args([])) == {
        "grpc": "http://127.0.0.1:8080", "wasm": "http://127.0.0.1:8081",
        "redis": "redis://127.0.0.1:6379", "mongo": "mongodb://127.0.0.1:27017/",
    }
    monkeypatch.setenv("WASM_PRODUCER_URL", "http://127.0.0.1:1234")
    got = targets(parse_args(["--grpc-url", "http://h:1"]))
    assert got["wasm"] == "http://127.0.0.1:1234" and got["grpc"] == "http://h:1"


def test_a_base_url_names_the_ingress_hosts():
    got = targets(parse_args(["--target", "https://tally.example/", "--redis-url", "redis://r:6379"]))
    assert got == {"grpc": "https://grpc.tally.example", "wasm": "https://wasm.tally.example",
                   "redis": "redis://r:6379", "mongo": None}
    with pytest.raises(SystemExit):
        targets(parse_args(["--target", "tally.example"]))


def test_the_redis_password_comes_from_stdin_not_the_command_line():
    import io
    args = parse_args(["--target", "https://tally.example", "--redis-url", "redis://127.0.0.1:6379/0", "--redis-password-stdin"])
    got = targets(args, stdin=io.StringIO("p@ss/w:rd\n"))
    assert got["redis"] == "redis://:p%40ss%2Fw%3Ard@127.0.0.1:6379/0"
    with pytest.raises(SystemExit):
        targets(args, stdin=io.StringIO(""))
