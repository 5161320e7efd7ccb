"""Writes a vote file in the shape of a Mockaroo JSON export from the ballot: mockaroo_votes.json
(every album of the ballot) and mockaroo_2x2.json (the assignment's "2 bandas con 2 álbumes cada
una": the ballot's first two bands, the first two albums of each).

    tools/toolchain/enter python3 locust/data/mockaroo.py proto/ballot.json > locust/data/mockaroo_votes.json
    tools/toolchain/enter python3 locust/data/mockaroo.py proto/ballot.json 2x2 > locust/data/mockaroo_2x2.json
    tools/bazel run //locust:load -- --votes locust/data/mockaroo_votes.json
    tools/bazel run //locust:assignment

The assignment's input is a file exported from Mockaroo (a random-data service): an array of JSON
objects, one per vote, with the schema's fields in order. This one is what a schema with an "id"
Row Number, a band and one of its albums from the ballot, the album's year as a Custom List
(so text) and a Number rank from 1 to 10 exports: ids and ranks are numbers, the year is a string.
//locust:votes_test regenerates both and fails when one is no longer what the ballot gives. The
votes are real ballot entries because the producers refuse any other (proto/ballot.json).
"""

import json
import random
import re
import sys

VOTES = 1000


def ballot_albums(ballot: dict, bands: int | None = None, albums: int | None = None) -> list[tuple[str, str, int]]:
    """(band, album, year) for the albums on the ballot, in the ballot's order: every one, or the
    first `albums` of each of the first `bands` bands (each must have that many)."""
    chosen = ballot["bands"][:bands]
    if bands is not None and len(chosen) < bands:
        raise ValueError(f"the ballot has {len(chosen)} bands, not {bands}")
    out = []
    for band in chosen:
        if albums is not None and len(band["albums"]) < albums:
            raise ValueError(f"{band['name']} has {len(band['albums'])} albums on the ballot, not {albums}")
        out += [(band["name"], a["album"], a["year"]) for a in band["albums"][:albums]]
    return out


def export(ballot: dict, seed: int = 2026, bands: int | None = None, albums: int | None = None) -> list[dict]:
    rng = random.Random(seed)
    albums = ballot_albums(ballot, bands, albums)
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
    if len(argv) not in (1, 2) or (len(argv) == 2 and not re.fullmatch(r"\d+x\d+", argv[1])):
        raise SystemExit("usage: mockaroo.py proto/ballot.json [BANDSxALBUMS, e.g. 2x2] > locust/data/<file>.json")
    bands, albums = map(int, argv[1].split("x")) if len(argv) == 2 else (None, None)
    with open(argv[0], encoding="utf-8") as f:
        try:
            sys.stdout.write(dumps(export(json.load(f), bands=bands, albums=albums)))
        except ValueError as e:
            raise SystemExit(f"mockaroo.py: {e}") from None


if __name__ == "__main__":
    main(sys.argv[1:])
