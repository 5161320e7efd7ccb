"""Load profiles: how many users each route gets, at what rate, for how long.

Every profile offers both routes the same load: the same number of users per route, each sending
a vote every 1/rate seconds (Locust's constant_throughput), so the offered load per route is
users × rate votes/s as long as answers come back faster than that. One Locust process reaches
about 2,300 requests/s on this machine, far below what the producers take (docs/performance.md):
these are user-facing profiles, not saturation tests.
"""

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Phase:
    users: int  # per route
    seconds: float


@dataclass(frozen=True)
class Plan:
    profile: str
    rate: float  # votes/s each user offers
    phases: tuple[Phase, ...]

    @property
    def offered_votes(self) -> float:
        """Votes each route is offered over the whole run."""
        return sum(p.users * p.seconds for p in self.phases) * self.rate

    def describe(self) -> str:
        steps = ", then ".join(f"{p.users} users for {p.seconds:g} s ({p.users * self.rate:g} votes/s)" for p in self.phases)
        return f"{self.profile}: per route {steps}; each user {self.rate:g} votes/s"


@dataclass(frozen=True)
class Profile:
    users: int  # per route (the peak, for spike)
    rate: float
    seconds: float
    why: str
    # The votes the profile sends unless --votes says otherwise: a file of locust/data/.
    votes: str = "votes.csv"


PROFILES = {
    "smoke": Profile(5, 2.0, 20, "a quick end-to-end check: every part answers and counts match"),
    "steady": Profile(50, 5.0, 60, "a steady crowd voting: 250 votes/s per route, 500 in all"),
    "spike": Profile(100, 5.0, 60, "a crowd arriving at once: a tenth of the users, then all of them, then a tenth again"),
    "soak": Profile(20, 5.0, 1800, "a long quiet run: 100 votes/s per route for half an hour"),
    # The assignment's own load: "2 bandas con 2 álbumes cada una", from a Mockaroo JSON export.
    "assignment": Profile(25, 4.0, 60, "the assignment's load: 2 bands × 2 albums from a Mockaroo JSON export "
                          "(data/mockaroo_2x2.json), 100 votes/s per route", votes="mockaroo_2x2.json"),
}


def plan(profile: str, users: int | None = None, rate: float | None = None, seconds: float | None = None) -> Plan:
    """The phases of a profile, with any of users (per route), rate and duration overridden."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r} (known: {', '.join(PROFILES)})")
    base = PROFILES[profile]
    users = base.users if users is None else users
    rate = base.rate if rate is None else rate
    seconds = base.seconds if seconds is None else seconds
    if users < 1 or rate <= 0 or seconds <= 0:
        raise ValueError("users, rate and duration must be positive")
    if profile == "spike":
        third = seconds / 3
        low = max(1, users // 10)
        phases = (Phase(low, third), Phase(users, third), Phase(low, third))
    else:
        phases = (Phase(users, seconds),)
    return Plan(profile, rate, phases)


_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s?)?")


def parse_duration(text: str) -> float:
    """Seconds from "90", "90s", "2m", "1h", "1m30s" (Locust's --run-time style)."""
    m = _DURATION.fullmatch(text.strip())
    if not text.strip() or not m or not any(m.groups()):
        raise ValueError(f"not a duration: {text!r} (e.g. 90s, 2m, 1h30m)")
    h, mins, s = m.groups()
    return int(h or 0) * 3600 + int(mins or 0) * 60 + float(s or 0)
