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
