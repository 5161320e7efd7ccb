"""Writes mockaroo_votes.json, a vote file in the shape of a Mockaroo JSON export, from the ballot.

    tools/toolchain/enter python3 locust/data/mockaroo.py proto/ballot.json > locust/data/mockaroo_votes.json
    tools/bazel run //locust:load -- --votes locust/data/mockaroo_votes.json

The assignment's input is a file exported from Mockaroo (a random-data service): an array of JSON
objects, one per vote, with the schema's fields in order. This one is what a schema with an "id"
Row Number, a band and one of its albums from the ballot, the album's year as a Custom List
(so text) and a Number rank from 1 to 10 exports: ids and ranks are numbers, the year is a string.
//locust:votes_test regenerates it and fails when it is no longer what the ballot gives.
"""

import json
import random
import sys

VOTES = 1000


def ballot_albums(ballot: dict) -> list[tuple[str, str, int]]:
    """(band, album, year) for every album on the ballot, in the ballot's order."""
    return [(band["name"], a["album"], a["year"]) for band in ballot["bands"] for a in band["albums"]]


def export(ballot: dict, seed: int = 2026) -> list[dict]:
    rng = random.Random(seed)
    albums = ballot_albums(ballot)
    # Uneven, fixed weights per album, so the charts fed by this file show a ranking.
    weights = [rng.randint(1, 20) for _ in albums]
    votes = []
    for n in range(1, VOTES + 1):
        band, album, year = rng.choices(albums, weights=weights)[0]
        votes.append({"id": n, "name": band, "album": album, "year": str(year), "rank": rng.randint(1, 10)})
    return votes


def dumps(votes: list[dict]) -> str:
    """Mockaroo's array layout: one object per line."""
    return "[" + ",\n".join(json.dumps(v, ensure_ascii=False) for v in votes) + "]\n"


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        raise SystemExit("usage: mockaroo.py proto/ballot.json > locust/data/mockaroo_votes.json")
    with open(argv[0], encoding="utf-8") as f:
        sys.stdout.write(dumps(export(json.load(f))))


if __name__ == "__main__":
    main(sys.argv[1:])
