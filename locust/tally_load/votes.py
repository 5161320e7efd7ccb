"""Reads the vote inputs of a load run: CSV rows in the shape of a Mockaroo export.

Mockaroo writes every column as text, so year and rank stay strings here: the producers accept
numbers as strings, and sending them as the export carries them exercises that rule. An optional
invalid_field column marks a row the producers must reject, naming that field (data/generate.py).
"""

import csv
import json
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
    # The field a producer's 400 must name; empty for a valid vote.
    invalid_field: str = ""

    def body(self) -> dict:
        return {"name": self.name, "album": self.album, "year": self.year, "rank": self.rank}

    def judge(self, status: int, text: str | None) -> str:
        """What is wrong with a producer's answer to this row, or "" when it is the one the
        contract (docs/api.md) gives: 202 with the vote id, or 400 naming the invalid field."""
        try:
            answer = json.loads(text or "")
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            answer = {}
        if not self.invalid_field:
            if status == 202 and answer.get("id"):
                return ""
            return f"want 202 with an id, got {status}: {(text or '')[:200]}"
        if status == 400 and answer.get("field") == self.invalid_field:
            return ""
        return f"want 400 naming {self.invalid_field}, got {status}: {(text or '')[:200]}"


class VoteFileError(ValueError):
    """The input file is not a vote CSV."""


def load_votes(path: Path) -> list[VoteRow]:
    """Loads every row; a missing column or an empty file is an error, never a silent skip."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise VoteFileError(f"{path}: missing column(s) {', '.join(missing)}")
        rows = [VoteRow(*(row[c] for c in COLUMNS), row.get("invalid_field") or "") for row in reader]
    if not rows:
        raise VoteFileError(f"{path}: no votes")
    return rows
