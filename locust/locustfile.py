"""Tally's Locust load: one user class per producer route, the same task and the same votes.

Both classes walk the vote file (data/votes.csv) in the same order and send each row as the JSON
body of POST /votes: a valid row must get 202 with the vote id, an invalid one 400 naming its
field (data/generate.py says which). Requests are named per route and kind ("grpc vote",
"wasm invalid"), so Locust's statistics keep the routes and the refusals apart.

Headless, both routes in one run, with the report: tools/bazel run //locust:load (README.md).
With Locust's own web UI, against the local stack:
    tools/toolchain/enter bash -c 'cd locust && locust -f locustfile.py'
"""

import itertools
import os
from pathlib import Path

from locust import FastHttpUser, constant_throughput, task

from tally_load.votes import load_votes

VOTES = load_votes(Path(os.environ.get("TALLY_VOTES", Path(__file__).parent / "data" / "votes.csv")))


class VoteUser(FastHttpUser):
    """A voter: POSTs the next row of the file at a fixed rate (the run sets it per profile)."""

    abstract = True
    route = ""
    wait_time = constant_throughput(1)

    @task
    def vote(self) -> None:
        row = VOTES[next(self.sequence) % len(VOTES)]
        kind = "invalid" if row.invalid_field else "vote"
        with self.client.post(
            "/votes",
            json=row.body(),
            name=f"{self.route} {kind}",
            catch_response=True,
            context={"route": self.route, "row": row},
        ) as resp:
            problem = row.judge(resp.status_code, resp.text)
            if problem:
                resp.failure(problem)
            else:
                resp.success()


class GrpcVoter(VoteUser):
    """The gRPC route: grpc-front (HTTP) → grpc-producer (gRPC) → Kafka."""

    route = "grpc"
    host = os.environ.get("GRPC_FRONT_URL", "http://127.0.0.1:8080")
    sequence = itertools.count()


class WasmVoter(VoteUser):
    """The Wasm route: the Rust producer on WasmEdge → Kafka."""

    route = "wasm"
    host = os.environ.get("WASM_PRODUCER_URL", "http://127.0.0.1:8081")
    sequence = itertools.count()
