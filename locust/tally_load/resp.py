"""A minimal Redis client (RESP2 over one socket): the load reads two hashes and nothing more.

Debian's toolchain root has no Python Redis client, and the two reads the counts check needs do
not justify a new package in it.
"""

import socket
from urllib.parse import urlparse


class RedisError(Exception):
    pass


class Redis:
    def __init__(self, url: str, timeout: float = 10.0):
        u = urlparse(url)
        if u.scheme != "redis":
            raise ValueError(f"not a redis:// URL: {url}")
        self._sock = socket.create_connection((u.hostname or "127.0.0.1", u.port or 6379), timeout=timeout)
        self._file = self._sock.makefile("rb")
        db = u.path.strip("/")
        if db:
            self.command("SELECT", db)

    def close(self) -> None:
        self._file.close()
        self._sock.close()

    def __enter__(self) -> "Redis":
        return self

    def __exit__(self, *_) -> None:
        self.close()

    def command(self, *args: str):
        parts = [f"*{len(args)}\r\n".encode()]
        for a in args:
            b = a.encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(b), b))
        self._sock.sendall(b"".join(parts))
        return self._read()

    def hgetall(self, key: str) -> dict[str, int]:
        flat = self.command("HGETALL", key)
        return {flat[i]: int(flat[i + 1]) for i in range(0, len(flat), 2)}

    def _read(self):
        line = self._file.readline()
        if not line.endswith(b"\r\n"):
            raise RedisError("connection closed")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RedisError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self._file.read(n + 2)
            return data[:-2].decode()
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._read() for _ in range(n)]
        raise RedisError(f"unexpected reply {line!r}")
