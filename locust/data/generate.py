"""Writes votes.csv, the load's input: about 1,000 valid votes and a small share of invalid ones.

    tools/toolchain/enter python3 locust/data/generate.py > locust/data/votes.csv

The rows have the shape of a Mockaroo export (every column as text, so year and rank are strings),
for 2 real Guatemalan bands with 2 real albums each, every album with its release year. A fixed
seed makes the file the same on every run; the weights make the four albums' counts differ, so
the charts show something.

Invalid rows name the field the producers must reject in their invalid_field column (empty for
valid rows); the load sends them like any other row, expects 400 naming that field, and counts
them apart from the votes. Each kind breaks one rule of proto/vote_cases.json.
"""

import csv
import random
import sys

# (band, album, release year, weight)
ALBUMS = [
    ("Bohemia Suburbana", "Sombras en el Jardín", 1993, 34),
    ("Bohemia Suburbana", "Imaginaria Sonora", 2015, 21),
    ("Alux Nahual", "Conquista", 1982, 18),
    ("Alux Nahual", "Alto al Fuego", 1987, 27),
]

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
