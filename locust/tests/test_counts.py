from collections import Counter
from pathlib import Path

from tally_load.counts import KeyLayout, accepted, check
from tally_load.stats import Sample

KEYS = Path(__file__).parent.parent.parent / "proto" / "redis_keys.json"


def sample(band, album, ok=True, invalid=""):
    return Sample(0.0, "grpc", 1.0, 202 if ok else 503, invalid, ok, "id" if ok else "", band, album)


def test_layout_comes_from_the_contract():
    layout = KeyLayout.load(KEYS)
    assert layout.by_band == "tally:votes:band"
    assert layout.by_album == "tally:votes:album"
    assert layout.album("Alux Nahual", "Conquista") == "Alux Nahual \u2014 Conquista"


def test_only_202s_of_valid_rows_are_expected():
    layout = KeyLayout.load(KEYS)
    samples = [
        sample("Alux Nahual", "Conquista"),
        sample("Alux Nahual", "Conquista"),
        sample("Alux Nahual", "Alto al Fuego"),
        sample("Bohemia Suburbana", "Imaginaria Sonora"),
        sample("Bohemia Suburbana", "Imaginaria Sonora", ok=False),  # a 503: not expected
        sample("Bohemia Suburbana", "Imaginaria Sonora", invalid="rank"),  # refused as it should be
    ]
    assert accepted(layout, samples) == {
        "tally:votes:band": Counter({"Alux Nahual": 3, "Bohemia Suburbana": 1}),
        "tally:votes:album": Counter({"Alux Nahual — Conquista": 2, "Alux Nahual — Alto al Fuego": 1,
                                      "Bohemia Suburbana — Imaginaria Sonora": 1}),
    }


def test_check_compares_the_increase_exactly():
    expected = {"band": Counter({"A": 3, "B": 1})}
    before = {"band": {"A": 10, "C": 5}}
    assert check(expected, before, {"band": {"A": 13, "B": 1, "C": 5}}).ok
    # One vote short, one counted twice.
    short = check(expected, before, {"band": {"A": 12, "B": 1, "C": 5}})
    assert not short.ok and [(r.field, r.accepted, r.counted) for r in short.rows if not r.ok] == [("A", 3, 2)]
    assert not check(expected, before, {"band": {"A": 13, "B": 2, "C": 5}}).ok
    # A field that moved without a 202 in the run is a mismatch too.
    other = check(expected, before, {"band": {"A": 13, "B": 1, "C": 6}})
    assert [(r.field, r.accepted, r.counted) for r in other.rows if not r.ok] == [("C", 0, 1)]
    # Nothing to compare is not a pass.
    assert not check({"band": Counter()}, {}, {}).ok
