"""Reads the vote inputs of a load run: CSV rows in the shape of a Mockaroo export.

Mockaroo writes every column as text, so year and rank stay strings here: the producers accept
numbers as strings, and sending them as the export carries them exercises that rule.
"""

import csv
from dataclasses import dataclass
from pathlib import Path

COLUMNS = ("name", "album", "year", "rank")


@dataclass(frozen=True)
class VoteRow:
    """One row of the input file, sent as the JSON body of POST /votes."""

    name: str
    album: str
    year: str
    rank: str

    def body(self) -> dict:
        return {"name": self.name, "album": self.album, "year": self.year, "rank": self.rank}


class VoteFileError(ValueError):
    """The input file is not a vote CSV."""


def load_votes(path: Path) -> list[VoteRow]:
    """Loads every row; a missing column or an empty file is an error, never a silent skip."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise VoteFileError(f"{path}: missing column(s) {', '.join(missing)}")
        rows = [VoteRow(*(row[c] for c in COLUMNS)) for row in reader]
    if not rows:
        raise VoteFileError(f"{path}: no votes")
    return rows
