"""A minimal MongoDB wire-protocol client (OP_MSG, a BSON subset): enough to read the consumer's
vote logs for the accept-to-counted times.

Debian's toolchain root has no Python MongoDB driver. The load needs one query (find with
getMore), on a server without authentication (the local stack); anything more belongs in a
real driver.
"""

import itertools
import socket
import struct
from datetime import datetime, timezone
from urllib.parse import urlparse

OP_MSG = 2013
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class MongoError(Exception):
    pass


class Int64(int):
    """An integer BSON must carry as int64 (cursor ids)."""


def encode(doc: dict) -> bytes:
    body = b"".join(_element(k, v) for k, v in doc.items())
    return struct.pack("<i", len(body) + 5) + body + b"\x00"


def _cstring(s: str) -> bytes:
    b = s.encode()
    if b"\x00" in b:
        raise ValueError(f"NUL in BSON key {s!r}")
    return b + b"\x00"


def _element(key: str, v) -> bytes:
    name = _cstring(key)
    if isinstance(v, bool):
        return b"\x08" + name + (b"\x01" if v else b"\x00")
    if isinstance(v, Int64) or (isinstance(v, int) and not -(2**31) <= v < 2**31):
        return b"\x12" + name + struct.pack("<q", v)
    if isinstance(v, int):
        return b"\x10" + name + struct.pack("<i", v)
    if isinstance(v, float):
        return b"\x01" + name + struct.pack("<d", v)
    if isinstance(v, str):
        b = v.encode()
        return b"\x02" + name + struct.pack("<i", len(b) + 1) + b + b"\x00"
    if isinstance(v, datetime):
        return b"\x09" + name + struct.pack("<q", round((v - EPOCH).total_seconds() * 1000))
    if isinstance(v, dict):
        return b"\x03" + name + encode(v)
    if isinstance(v, (list, tuple)):
        return b"\x04" + name + encode({str(i): x for i, x in enumerate(v)})
    if v is None:
        return b"\x0a" + name
    raise TypeError(f"cannot encode {type(v).__name__} in BSON")


def decode(data: bytes) -> dict:
    doc, end = _decode_doc(data, 0)
    if end != len(data):
        raise MongoError("trailing bytes after a BSON document")
    return doc


def _decode_doc(data: bytes, pos: int) -> tuple[dict, int]:
    (size,) = struct.unpack_from("<i", data, pos)
    end = pos + size
    pos += 4
    doc = {}
    while pos < end - 1:
        kind = data[pos]
        nul = data.index(b"\x00", pos + 1)
        key = data[pos + 1 : nul].decode()
        doc[key], pos = _decode_value(kind, data, nul + 1)
    return doc, end


def _decode_value(kind: int, data: bytes, pos: int):
    if kind == 0x01:
        return struct.unpack_from("<d", data, pos)[0], pos + 8
    if kind == 0x02:
        (n,) = struct.unpack_from("<i", data, pos)
        return data[pos + 4 : pos + 3 + n].decode(), pos + 4 + n
    if kind in (0x03, 0x04):
        doc, end = _decode_doc(data, pos)
        return (doc if kind == 0x03 else list(doc.values())), end
    if kind == 0x05:
        (n,) = struct.unpack_from("<i", data, pos)
        return data[pos + 5 : pos + 5 + n], pos + 5 + n
    if kind == 0x07:
        return data[pos : pos + 12].hex(), pos + 12
    if kind == 0x08:
        return data[pos] == 1, pos + 1
    if kind == 0x09:
        (ms,) = struct.unpack_from("<q", data, pos)
        return EPOCH.timestamp() + ms / 1000, pos + 8  # Unix seconds: all the load needs
    if kind == 0x0A:
        return None, pos
    if kind == 0x10:
        return struct.unpack_from("<i", data, pos)[0], pos + 4
    if kind in (0x11, 0x12):
        return struct.unpack_from("<q", data, pos)[0], pos + 8
    raise MongoError(f"unsupported BSON type 0x{kind:02x}")


class Mongo:
    def __init__(self, url: str, timeout: float = 60.0):
        u = urlparse(url)
        if u.scheme != "mongodb":
            raise ValueError(f"not a mongodb:// URL: {url}")
        self._sock = socket.create_connection((u.hostname or "127.0.0.1", u.port or 27017), timeout=timeout)
        self._ids = itertools.count(1)

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> "Mongo":
        return self

    def __exit__(self, *_) -> None:
        self.close()

    def command(self, db: str, cmd: dict) -> dict:
        payload = struct.pack("<I", 0) + b"\x00" + encode({**cmd, "$db": db})
        request_id = next(self._ids)
        self._sock.sendall(struct.pack("<iiii", 16 + len(payload), request_id, 0, OP_MSG) + payload)
        length, _, response_to, opcode = struct.unpack("<iiii", self._recv(16))
        body = self._recv(length - 16)
        if opcode != OP_MSG or response_to != request_id:
            raise MongoError(f"unexpected reply (opcode {opcode}, to {response_to})")
        if body[4] != 0:
            raise MongoError("reply without a body section")
        reply = decode(body[5 : 5 + struct.unpack_from("<i", body, 5)[0]])
        if reply.get("ok") != 1 and reply.get("ok") != 1.0:
            raise MongoError(f"{next(iter(cmd))}: {reply.get('errmsg', reply)}")
        return reply

    def find(self, db: str, collection: str, filter: dict, projection: dict, batch: int = 10_000):
        """Yields every matching document, following the cursor."""
        reply = self.command(db, {"find": collection, "filter": filter, "projection": projection, "batchSize": batch})
        cursor = reply["cursor"]
        yield from cursor["firstBatch"]
        while cursor["id"]:
            reply = self.command(db, {"getMore": Int64(cursor["id"]), "collection": collection, "batchSize": batch})
            cursor = reply["cursor"]
            yield from cursor["nextBatch"]

    def _recv(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self._sock.recv(n - len(buf))
            if not chunk:
                raise MongoError("connection closed")
            buf += chunk
        return bytes(buf)
