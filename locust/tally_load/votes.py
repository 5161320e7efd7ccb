"""Reads the vote inputs of a load run: a CSV or a Mockaroo JSON export.

A CSV (Mockaroo's CSV export, or data/generate.py's) carries every column as text, so year and
rank stay strings here. A Mockaroo JSON export is an array of vote objects whose year and rank
are numbers or strings, depending on the field types of the Mockaroo schema. Each value is sent
as the file carries it: the producers accept numbers as strings, and sending both shapes
exercises that rule. An optional invalid_field column (or key) marks a row the producers must
reject, naming that field (data/generate.py).
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
    year: str | int | float
    rank: str | int | float
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
    """The input file is not a vote CSV or a Mockaroo JSON export of votes."""


def load_votes(path: Path) -> list[VoteRow]:
    """Loads every vote of a .json (Mockaroo JSON export) or any other file (CSV); a missing
    column or field, a value of the wrong type or an empty file is an error, never a silent skip."""
    if Path(path).suffix.lower() == ".json":
        return load_json(path)
    return load_csv(path)


def load_csv(path: Path) -> list[VoteRow]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise VoteFileError(f"{path}: missing column(s) {', '.join(missing)}")
        rows = [VoteRow(*(row[c] for c in COLUMNS), row.get("invalid_field") or "") for row in reader]
    if not rows:
        raise VoteFileError(f"{path}: no votes")
    return rows


# The JSON types a field may have: names are text; Mockaroo writes Number fields as numbers and
# Custom List or formula fields as text. bool is an int to Python, and never a year or a rank.
TEXT = ((str,), "text")
NUMBER_OR_TEXT = ((str, int, float), "a number or text")
JSON_TYPES = {"name": TEXT, "album": TEXT, "year": NUMBER_OR_TEXT, "rank": NUMBER_OR_TEXT}


def load_json(path: Path) -> list[VoteRow]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except ValueError as e:
        raise VoteFileError(f"{path}: not JSON: {e}") from None
    if not isinstance(data, list):
        raise VoteFileError(f"{path}: a Mockaroo JSON export is an array of vote objects, not a {type(data).__name__}")
    rows = []
    for n, vote in enumerate(data, start=1):
        if not isinstance(vote, dict):
            raise VoteFileError(f"{path}: vote {n} is a {type(vote).__name__}, not an object")
        missing = [c for c in COLUMNS if c not in vote]
        if missing:
            raise VoteFileError(f"{path}: vote {n} has no {', '.join(missing)}")
        for field, (types, want) in JSON_TYPES.items():
            value = vote[field]
            if isinstance(value, bool) or not isinstance(value, types):
                raise VoteFileError(f"{path}: vote {n}: {field} must be {want}, not {json.dumps(value, ensure_ascii=False)}")
        invalid_field = vote.get("invalid_field") or ""
        if not isinstance(invalid_field, str):
            raise VoteFileError(f"{path}: vote {n}: invalid_field must be text, not {json.dumps(invalid_field, ensure_ascii=False)}")
        rows.append(VoteRow(*(vote[c] for c in COLUMNS), invalid_field))
    if not rows:
        raise VoteFileError(f"{path}: no votes")
    return rows
