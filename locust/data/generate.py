"""Writes votes.csv, the load's input: about 1,000 valid votes and a small share of invalid ones.

    tools/toolchain/enter python3 locust/data/generate.py > locust/data/votes.csv

The rows have the shape of a Mockaroo export (every column as text, so year and rank are strings),
for 2 real Guatemalan bands with 2 real albums each, every album with the release year the ballot
(proto/ballot.json, which the producers check votes against) gives it: an album not on the ballot
stops the script. A fixed seed makes the file the same on every run; the weights make the four
albums' counts differ, so the charts show something.

Invalid rows name the field the producers must reject in their invalid_field column (empty for
valid rows); the load sends them like any other row, expects 400 naming that field, and counts
them apart from the votes. Each kind breaks one rule of proto/vote_cases.json, the ballot's
included (a band off it, another band's album, an album's wrong year).
"""

import csv
import json
import pathlib
import random
import sys

BALLOT = pathlib.Path(__file__).resolve().parents[2] / "proto" / "ballot.json"

# (band, album, weight); the year is the ballot's.
WEIGHTS = [
    ("Bohemia Suburbana", "Sombras en el Jardín", 34),
    ("Bohemia Suburbana", "Imaginaria Sonora", 21),
    ("Alux Nahual", "Conquista", 18),
    ("Alux Nahual", "Alto al Fuego", 27),
]


def ballot_years(path: pathlib.Path = BALLOT) -> dict:
    """(band, album) -> year, from the ballot."""
    ballot = json.loads(path.read_text(encoding="utf-8"))
    return {(band["name"], a["album"]): a["year"] for band in ballot["bands"] for a in band["albums"]}


def albums(years: dict) -> list:
    """(band, album, year, weight) for every weighted album, each of which must be on the ballot."""
    missing = [(band, album) for band, album, _ in WEIGHTS if (band, album) not in years]
    if missing:
        sys.exit(f"not on the ballot ({BALLOT}): {missing}")
    return [(band, album, years[(band, album)], weight) for band, album, weight in WEIGHTS]


ALBUMS = albums(ballot_years())

VALID_ROWS = 1000

# (field the producer names, how the row is broken); each applied to a random valid row.
INVALID = [
    ("name", lambda r: {**r, "name": ""}),
    ("name", lambda r: {**r, "name": "B" * 101}),
    ("album", lambda r: {**r, "album": "   "}),
    ("year", lambda r: {**r, "year": "1850"}),
    ("year", lambda r: {**r, "year": "19x3"}),
    ("year", lambda r: {**r, "year": "9999"}),
    ("rank", lambda r: {**r, "rank": "0"}),
    ("rank", lambda r: {**r, "rank": "11"}),
    ("rank", lambda r: {**r, "rank": "7.5"}),
    ("rank", lambda r: {**r, "rank": ""}),
    ("name", lambda r: {**r, "name": "Los Made Up"}),
    ("album", lambda r: {**r, "album": "Sub" if r["name"] != "Bohemia Suburbana" else "Conquista"}),
    ("year", lambda r: {**r, "year": str(int(r["year"]) + 1)}),
]
INVALID_PER_KIND = 3  # 30 invalid rows: about 3 % of the file


def valid_row(rng: random.Random) -> dict:
    band, album, year, _ = rng.choices(ALBUMS, weights=[a[3] for a in ALBUMS])[0]
    return {"name": band, "album": album, "year": str(year), "rank": str(rng.randint(1, 10))}


def rows(seed: int = 502) -> list[dict]:
    rng = random.Random(seed)
    out = [{**valid_row(rng), "invalid_field": ""} for _ in range(VALID_ROWS)]
    for field, breaks in INVALID:
        for _ in range(INVALID_PER_KIND):
            out.append({**breaks(valid_row(rng)), "invalid_field": field})
    rng.shuffle(out)
    return out


def main() -> None:
    writer = csv.DictWriter(sys.stdout, fieldnames=["name", "album", "year", "rank", "invalid_field"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows())


if __name__ == "__main__":
    main()
