from pathlib import Path

import pytest

from tally_load.votes import VoteFileError, VoteRow, load_votes


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
    rows = load_votes(Path(__file__).parent.parent / "data" / "votes.csv")
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
