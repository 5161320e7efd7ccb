"""The end-to-end check: the votes answered 202 per band and per album against what the consumer
counted in Redis, exactly.

Redis counts are cumulative (the local stack keeps its data), so the run reads both hashes before
and after, and compares the difference. The key names and the album field's format come from
the one key-layout contract, proto/redis_keys.json.
"""

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from tally_load.stats import Sample


@dataclass(frozen=True)
class KeyLayout:
    by_band: str  # hash key: band -> count
    by_album: str  # hash key: album field -> count
    album_field: str  # template of the album hash's field, with {band} and {album}

    @classmethod
    def load(cls, path: Path) -> "KeyLayout":
        keys = {k["name"]: k for k in json.loads(path.read_text(encoding="utf-8"))["keys"]}
        return cls(
            by_band=keys["by_band"]["template"],
            by_album=keys["by_album"]["template"],
            album_field=keys["by_album"]["field"],
        )

    def album(self, band: str, album: str) -> str:
        return self.album_field.format(band=band, album=album)


@dataclass(frozen=True)
class Row:
    key: str  # the Redis hash
    field: str
    accepted: int  # 202s in this run
    counted: int  # the hash's increase over the run

    @property
    def ok(self) -> bool:
        return self.accepted == self.counted


@dataclass(frozen=True)
class CountsCheck:
    rows: list[Row]

    @property
    def ok(self) -> bool:
        return bool(self.rows) and all(r.ok for r in self.rows)


def accepted(layout: KeyLayout, samples: list[Sample]) -> dict[str, Counter]:
    """The 202s of the run, per Redis hash and field, as the consumer should count them. The
    producers trim band and album; the data file's valid rows have nothing to trim."""
    out = {layout.by_band: Counter(), layout.by_album: Counter()}
    for s in samples:
        if s.ok and not s.invalid_field:
            out[layout.by_band][s.band] += 1
            out[layout.by_album][layout.album(s.band, s.album)] += 1
    return out


def check(expected: dict[str, Counter], before: dict[str, dict[str, int]], after: dict[str, dict[str, int]]) -> CountsCheck:
    """Compares the increase of each hash field with the 202s. A field that changed without a
    202 in this run (someone else voting, or a vote counted twice) is a mismatch too."""
    rows = []
    for key, want in expected.items():
        fields = set(want) | {f for f in after.get(key, {}) if after[key][f] != before.get(key, {}).get(f, 0)}
        for field in sorted(fields):
            counted = after.get(key, {}).get(field, 0) - before.get(key, {}).get(field, 0)
            rows.append(Row(key, field, want.get(field, 0), counted))
    return CountsCheck(rows)
