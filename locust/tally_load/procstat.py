"""CPU by process over the load, from /proc: where the machine's time went, and what each route's
own processes cost per vote (grpc-front + grpc-producer against wasmedge). Only processes on this
machine are seen, so a remote target gets no per-route CPU.
"""

import os
from dataclasses import dataclass

# The processes of each route, by their /proc comm name.
ROUTE_PROCESSES = {"grpc": ("grpc-front", "grpc-producer"), "wasm": ("wasmedge",)}
TICKS = os.sysconf("SC_CLK_TCK")


def snapshot(proc: str = "/proc") -> dict[int, tuple[str, int]]:
    """pid → (comm, user + system clock ticks) of every process that can be read."""
    out = {}
    for entry in os.listdir(proc):
        if not entry.isdigit():
            continue
        try:
            with open(f"{proc}/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue  # gone, or not ours to read
        # comm is in parentheses and may hold spaces; the fields after it are space-separated.
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        out[int(entry)] = (name, int(fields[11]) + int(fields[12]))
    return out


@dataclass(frozen=True)
class Usage:
    name: str
    pid: int
    cores: float


def usage(before: dict, after: dict, seconds: float) -> list[Usage]:
    """Cores each process used between two snapshots, busiest first (processes started in
    between count from zero)."""
    rows = []
    for pid, (name, ticks) in after.items():
        start = before.get(pid, (name, 0))[1]
        if ticks > start:
            rows.append(Usage(name, pid, (ticks - start) / TICKS / seconds))
    return sorted(rows, key=lambda u: -u.cores)


def route_cpu_us(rows: list[Usage], seconds: float, votes: dict[str, int]) -> dict[str, float]:
    """CPU microseconds per answered request of each route's own processes; a route whose
    processes were not seen is left out."""
    out = {}
    for route, names in ROUTE_PROCESSES.items():
        cores = sum(u.cores for u in rows if u.name in names)
        if cores and votes.get(route):
            out[route] = cores * seconds / votes[route] * 1e6
    return out
