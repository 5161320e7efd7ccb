"""The two small wire clients on fixed bytes. Against real servers they run in //locust:load_stack_test."""

import socket
import threading
from datetime import datetime, timezone

from tally_load.mongowire import Int64, decode, encode
from tally_load.resp import Redis


def test_bson_bytes():
    # {"a": 1} is the example of the BSON specification's shape: size, type, name, int32, end.
    assert encode({"a": 1}) == b"\x0c\x00\x00\x00\x10a\x00\x01\x00\x00\x00\x00"
    assert encode({"c": Int64(1)})[4] == 0x12


def test_bson_round_trip():
    when = datetime(2026, 11, 23, 12, 0, 0, 250000, tzinfo=timezone.utc)
    doc = {"find": "logs", "filter": {"accepted_at": {"$gte": when}}, "n": 2**40, "x": 1.5, "ok": True,
           "none": None, "list": ["a", 2], "text": "Sombras en el Jardín"}
    back = decode(encode(doc))
    assert back["filter"]["accepted_at"]["$gte"] == when.timestamp()  # dates come back as Unix seconds
    assert {k: v for k, v in back.items() if k != "filter"} == {k: v for k, v in doc.items() if k != "filter"}


def test_resp_hgetall():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    got = []

    def serve():
        conn, _ = server.accept()
        got.append(conn.recv(1024))
        field = "Alux Nahual — Conquista".encode()
        conn.sendall(b"*2\r\n$%d\r\n%s\r\n$2\r\n42\r\n" % (len(field), field))
        conn.close()

    t = threading.Thread(target=serve)
    t.start()
    with Redis(f"redis://127.0.0.1:{server.getsockname()[1]}") as r:
        assert r.hgetall("tally:votes:album") == {"Alux Nahual — Conquista": 42}
    t.join()
    server.close()
    assert got == [b"*2\r\n$7\r\nHGETALL\r\n$17\r\ntally:votes:album\r\n"]
