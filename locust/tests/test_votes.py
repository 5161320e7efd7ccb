import json
import re
from pathlib import Path

import pytest

from tally_load.votes import VoteFileError, VoteRow, load_votes

DATA = Path(__file__).parent.parent / "data"
BALLOT = Path(__file__).parent.parent.parent / "proto" / "ballot.json"


def write(tmp_path, text):
    path = tmp_path / "votes.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_rows_keep_mockaroo_strings(tmp_path):
    path = write(tmp_path, "name,album,year,rank\nBohemia Suburbana,Sombras en el Jardín,1993,3\n")
    assert load_votes(path) == [VoteRow("Bohemia Suburbana", "Sombras en el Jardín", "1993", "3")]
    assert load_votes(path)[0].body() == {
        "name": "Bohemia Suburbana",
        "album": "Sombras en el Jardín",
        "year": "1993",
        "rank": "3",
    }


def test_column_order_does_not_matter(tmp_path):
    path = write(tmp_path, "rank,year,album,name\n1,1987,Alto al Fuego,Alux Nahual\n")
    assert load_votes(path) == [VoteRow("Alux Nahual", "Alto al Fuego", "1987", "1")]


def test_missing_column_is_an_error(tmp_path):
    path = write(tmp_path, "name,album,year\na,b,2000\n")
    with pytest.raises(VoteFileError, match="missing column.*rank"):
        load_votes(path)


def test_empty_file_is_an_error(tmp_path):
    path = write(tmp_path, "name,album,year,rank\n")
    with pytest.raises(VoteFileError, match="no votes"):
        load_votes(path)


def test_invalid_field_marks_rows_to_be_refused(tmp_path):
    path = write(tmp_path, "name,album,year,rank,invalid_field\nAlux Nahual,Conquista,1982,11,rank\nAlux Nahual,Conquista,1982,1,\n")
    assert [r.invalid_field for r in load_votes(path)] == ["rank", ""]


def test_the_committed_data_file():
    """The input of every run: about 1,000 real votes for 2 bands × 2 albums, and a few invalid rows."""
    rows = load_votes(DATA / "votes.csv")
    valid = [r for r in rows if not r.invalid_field]
    invalid = [r for r in rows if r.invalid_field]
    assert len(valid) == 1000
    assert {(r.name, r.album, r.year) for r in valid} == {
        ("Bohemia Suburbana", "Sombras en el Jardín", "1993"),
        ("Bohemia Suburbana", "Imaginaria Sonora", "2015"),
        ("Alux Nahual", "Conquista", "1982"),
        ("Alux Nahual", "Alto al Fuego", "1987"),
    }
    assert {r.rank for r in valid} == {str(n) for n in range(1, 11)}
    assert 0 < len(invalid) <= 0.05 * len(rows)
    assert {r.invalid_field for r in invalid} == {"name", "album", "year", "rank"}


def write_json(tmp_path, data):
    path = tmp_path / "mockaroo.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def test_mockaroo_json_numbers_as_numbers(tmp_path):
    path = write_json(tmp_path, [{"id": 1, "name": "Alux Nahual", "album": "Conquista", "year": 1982, "rank": 7}])
    [row] = load_votes(path)
    assert row == VoteRow("Alux Nahual", "Conquista", 1982, 7)
    # Sent as the export carries them: numbers stay numbers; Mockaroo's id is not part of a vote.
    assert row.body() == {"name": "Alux Nahual", "album": "Conquista", "year": 1982, "rank": 7}


def test_mockaroo_json_numbers_as_strings(tmp_path):
    path = write_json(tmp_path, '[{"name": "Bohemia Suburbana", "album": "Sub", "year": "2001", "rank": "10"},\n'
                                '{"rank": 2.5, "year": "1993", "album": "Sombras en el Jardín", "name": "Bohemia Suburbana",'
                                ' "invalid_field": "rank"}]')
    assert load_votes(path) == [
        VoteRow("Bohemia Suburbana", "Sub", "2001", "10"),
        VoteRow("Bohemia Suburbana", "Sombras en el Jardín", "1993", 2.5, "rank"),
    ]


@pytest.mark.parametrize("data, error", [
    ('{"name": "Alux Nahual"}', "an array of vote objects, not a dict"),
    ("[]", "no votes"),
    ('[{"name": "a", "album": "b", "year": 2000, "rank": 1}, ["a", "b"]]', "vote 2 is a list, not an object"),
    ('[{"name": "a", "album": "b", "year": 2000}]', "vote 1 has no rank"),
    ('[{"name": "a", "album": "b", "year": null, "rank": 1}]', "vote 1: year must be a number or text, not null"),
    ('[{"name": "a", "album": "b", "year": 2000, "rank": true}]', "vote 1: rank must be a number or text, not true"),
    ('[{"name": 5, "album": "b", "year": 2000, "rank": 1}]', "vote 1: name must be text, not 5"),
    ('[{"name": "a", "album": "b", "year": 2000, "rank": 1, "invalid_field": 3}]', "invalid_field must be text"),
    ('[{"name": "a", ', "not JSON"),
])
def test_mockaroo_json_bad_files(tmp_path, data, error):
    with pytest.raises(VoteFileError, match=re.escape(error)):
        load_votes(write_json(tmp_path, data))


def test_the_shipped_mockaroo_export_is_the_ballots():
    """data/mockaroo_votes.json is what data/mockaroo.py makes from proto/ballot.json today."""
    import mockaroo

    ballot = json.loads(BALLOT.read_text(encoding="utf-8"))
    shipped = DATA / "mockaroo_votes.json"
    assert shipped.read_text(encoding="utf-8") == mockaroo.dumps(mockaroo.export(ballot)), (
        "stale: tools/toolchain/enter python3 locust/data/mockaroo.py proto/ballot.json > locust/data/mockaroo_votes.json")
    rows = load_votes(shipped)
    on_ballot = {(band["name"], a["album"], str(a["year"])) for band in ballot["bands"] for a in band["albums"]}
    assert len(rows) == mockaroo.VOTES
    assert {(r.name, r.album, r.year) for r in rows} == on_ballot  # every album gets votes, none off the ballot
    assert {type(r.rank) for r in rows} == {int} and {r.rank for r in rows} == set(range(1, 11))
    assert not any(r.invalid_field for r in rows)


def test_the_assignments_2x2_export():
    """data/mockaroo_2x2.json, the assignment's load: 2 bands with 2 albums each, all on the ballot
    (the producers refuse anything else), and what data/mockaroo.py makes from the ballot today."""
    import mockaroo

    ballot = json.loads(BALLOT.read_text(encoding="utf-8"))
    shipped = DATA / "mockaroo_2x2.json"
    assert shipped.read_text(encoding="utf-8") == mockaroo.dumps(mockaroo.export(ballot, bands=2, albums=2)), (
        "stale: tools/toolchain/enter python3 locust/data/mockaroo.py proto/ballot.json 2x2 > locust/data/mockaroo_2x2.json")
    rows = load_votes(shipped)
    assert len(rows) == mockaroo.VOTES and not any(r.invalid_field for r in rows)
    on_ballot = {(band["name"], a["album"], str(a["year"])) for band in ballot["bands"] for a in band["albums"]}
    sent = {(r.name, r.album, r.year) for r in rows}
    assert sent <= on_ballot
    assert len({name for name, _, _ in sent}) == 2
    assert all(len({a for n, a, _ in sent if n == band}) == 2 for band, _, _ in sent)


def test_a_subset_the_ballot_cannot_give_is_refused():
    import mockaroo

    ballot = {"bands": [{"name": "A", "albums": [{"album": "a", "year": 2000}]}]}
    with pytest.raises(ValueError, match="the ballot has 1 bands, not 2"):
        mockaroo.export(ballot, bands=2, albums=1)
    with pytest.raises(ValueError, match="A has 1 albums on the ballot, not 2"):
        mockaroo.export(ballot, bands=1, albums=2)
